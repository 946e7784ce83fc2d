"""Checking a listening port before a server tries it, to fail with a useful message."""

from __future__ import annotations

import socket


class PortInUseError(RuntimeError):
    pass


def ensure_port_free(host: str, port: int, *, what: str, setting: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the servers themselves do: connections of a previous run lingering in
        # TIME_WAIT must not count as "in use"; a listening socket still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"{what} cannot listen on {host}:{port}: {exc.strerror}. "
                f"Stop whatever uses it or choose another port with {setting}."
            ) from exc

"""Waiting for a `deskpilot up` subprocess to serve /readyz."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def wait_until_ready(
    process: subprocess.Popen[str], base: str, seconds: float, log: Path | None = None
) -> float:
    """Poll {base}/readyz until 200; fail with the process's output (its pipe, or the `log`
    file it writes to) if it exits first. Returns the seconds it took."""
    began = time.monotonic()
    while True:
        if process.poll() is not None:
            output = log.read_text() if log else process.stdout.read() if process.stdout else ""
            raise AssertionError(f"deskpilot exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        assert time.monotonic() - began < seconds, f"deskpilot up was not ready in {seconds:.0f} s"
        time.sleep(0.2)

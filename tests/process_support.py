"""Waiting for a `deskpilot up` subprocess to serve /readyz."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_ready(process: subprocess.Popen[str], base: str, seconds: float) -> float:
    """Poll {base}/readyz until 200; fail with the process's output if it exits first.
    Returns the seconds it took."""
    began = time.monotonic()
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        assert time.monotonic() - began < seconds, f"deskpilot up was not ready in {seconds:.0f} s"
        time.sleep(0.2)

"""The benchmark still runs (tiny and untimed: speed is judged by running bench/ by hand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_pipeline_benchmark_runs_end_to_end(repo_root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--messages", "3", "--concurrency", "2"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ratio pipeline / baseline:" in result.stdout
    assert "approve -> executed" in result.stdout


def test_inbox_benchmark_runs_end_to_end(repo_root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.inbox", "--threads", "300", "--requests", "3"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "worst listing p95 over HTTP" in result.stdout
    assert "needs_decision page 5 (" in result.stdout
    # The order searched for exists, so the search must find its thread.
    assert "search order name (1 rows)" in result.stdout


def test_playbook_latency_benchmark_runs_end_to_end(repo_root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.playbook_latency", "--messages", "2", "--concurrency", "2"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ratio automatic / person:" in result.stdout
    assert "(b) playbook approves on its own" in result.stdout

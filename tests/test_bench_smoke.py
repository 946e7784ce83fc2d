"""The benchmark still runs (tiny and untimed: speed is judged by running bench/ by hand)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_pipeline_benchmark_runs_end_to_end(repo_root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.pipeline",
            "--messages",
            "3",
            "--concurrency",
            "2",
            "--playbook",
            "2",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "ratio pipeline / baseline:" in out
    assert "approve -> executed" in out and "email -> executed by playbook" in out
    # Each figure was measured, not left at nothing: the processes used CPU, the proxy saw
    # the database's work, the sandbox charged the store's bucket.
    cpu = re.search(r"cpu ms per message: api ([\d.]+), worker ([\d.]+), total ([\d.]+)", out)
    db = re.search(r"db per message: transactions ([\d.]+), round trips ([\d.]+)", out)
    points = re.search(r"shopify points per message: requested ([\d.]+), actual ([\d.]+)", out)
    assert cpu and db and points, out
    assert all(float(v) > 0 for m in (cpu, db, points) for v in m.groups()), out
    assert float(db.group(2)) >= float(db.group(1)), "a transaction is at least a round trip"


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

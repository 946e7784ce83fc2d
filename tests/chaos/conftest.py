"""The chaos cases' desk, and their one-line summaries at the end of the pytest run.

Each case reports its counts through `chaos_report`; the lines are printed as they come
(visible with -s or -rA) and again, with each case's wall time, in a "chaos" section of
the terminal summary, so CI's log always shows them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.chaos.desk import Desk, open_desk

SUMMARIES = pytest.StashKey[list[str]]()

Report = Callable[[str], None]


@pytest.fixture
def chaos_report(request: pytest.FixtureRequest) -> Report:
    """Record a case's one-line summary, with the seconds since the case began."""
    began = time.monotonic()
    lines = request.config.stash.setdefault(SUMMARIES, [])

    def report(line: str) -> None:
        stamped = f"{line} ({time.monotonic() - began:.1f} s)"
        lines.append(stamped)
        print(stamped)

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(SUMMARIES, [])
    if lines:
        terminalreporter.section("chaos")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def bytecode(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The processes' environment for one bytecode cache shared by every case's processes
    (outside the working tree): each cold start of Python then compiles nothing twice."""
    return {"PYTHONPYCACHEPREFIX": str(tmp_path_factory.mktemp("pycache"))}


@pytest.fixture
async def desk(
    own_database: str,
    own_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    bytecode: dict[str, str],
) -> AsyncIterator[Desk]:
    """A desk on the session's PostgreSQL (a database of the case's own); nothing started."""
    async with open_desk(tmp_path, own_database, own_sessions, **bytecode) as opened:
        yield opened

"""PostgreSQL from the `pgserver` wheel, for `deskpilot up` and the tests.

pgserver starts the server detached over a Unix socket. We start it with
`cleanup_mode=None` and stop it ourselves, because pgserver's own reference
counting (a pid list on disk) keeps a server alive forever once a previous
owner was killed without cleaning up.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # pgserver asks platformdirs for a runtime dir at import; without
    # XDG_RUNTIME_DIR (containers, CI) it warns and falls back to /tmp, which is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver
    from pgserver import _commands as pg_commands
    from pgserver.utils import PostmasterInfo

from kernel.database_url import with_database

log = logging.getLogger(__name__)

# Lines of the server's log an error quotes: enough for its reason, short for a terminal.
LOG_TAIL_LINES = 5


class PostgresStartError(RuntimeError):
    """The embedded server would not start; the message says why and where its log is."""


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: pgserver.PostgresServer | None = None
    started_here: bool = False

    def start(self) -> str:
        """Start (or reuse) the server; return its `postgresql://` URI."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        running = PostmasterInfo.read_from_pgdata(self.data_dir)
        self.started_here = running is None or not running.is_running()
        try:
            # A new server object starts its server; pgserver keeps one per data directory
            # for the life of the process, and after a stop() it hands back that one,
            # stopped, without starting it.
            self._server = pgserver.get_server(self.data_dir, cleanup_mode=None)
            if self.started_here:
                self._server.ensure_postgres_running()
        except subprocess.CalledProcessError as exc:
            raise self._start_error() from exc
        uri = self._server.get_uri()
        log.info("embedded postgres ready", extra={"pgdata": str(self.data_dir)})
        return uri

    def _start_error(self) -> PostgresStartError:
        log_path = self.data_dir / "log"
        try:
            lines = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            lines = []
        said = "".join(f"\n  {line}" for line in lines)
        return PostgresStartError(
            f"the embedded PostgreSQL in {self.data_dir} did not start; see {log_path}{said}"
        )

    def ensure_database(self, name: str) -> str:
        """Create database `name` if missing; return a URI that points at it."""
        server = self._require()
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{name}";')
        return with_database(server.get_uri(), name)

    def stop(self, *, only_if_started_here: bool = False) -> None:
        """Stop the server. A helper command (`db upgrade`) passes only_if_started_here
        so it never stops the server a running `deskpilot up` is using."""
        if self._server is None or (only_if_started_here and not self.started_here):
            self._server = None
            return
        server, self._server = self._server, None
        try:
            pg_commands.pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=server.pgdata,
                user=server.system_user,
                timeout=30,
            )
        except subprocess.CalledProcessError:
            # Already stopped (by an operator, or a previous run): nothing to do.
            log.info("embedded postgres was not running", extra={"pgdata": str(self.data_dir)})

    def _require(self) -> pgserver.PostgresServer:
        if self._server is None:
            raise RuntimeError("embedded postgres is not started")
        return self._server

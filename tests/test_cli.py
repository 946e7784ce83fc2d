"""The `deskpilot` command, run as a newcomer or an operator would: in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import httpx
import psutil
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from models import migrate
from tests.process_support import wait_until_ready
from tests.test_migrations import TABLES, _fetch
from tests.test_web_auth import build_app, client_for

# Variables a developer's shell might carry that would change what the CLI does.
_OURS = ("DATABASE_URL", "DESKPILOT_", "TEMPORAL_", "TEST_DATABASE_URL")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(extra)
    return env


def _deskpilot(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deskpilot", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up_ports() -> list[str]:
    """`up` options that put every listener on a free port, so parallel runs never collide."""
    options = ("--port", "--temporal-port", "--temporal-ui-port", "--sandbox-port", "--smtp-port")
    # Held open together so the kernel hands out different ports.
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in options]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        ports = [str(s.getsockname()[1]) for s in sockets]
    return [part for option, port in zip(options, ports, strict=True) for part in (option, port)]


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    return _processes("postgres", str(pgdata))


def _temporal_processes(home: Path) -> list[psutil.Process]:
    return _processes("temporal", str(home / "temporal.db"))


def _processes(name: str, argument: str) -> list[psutil.Process]:
    """Live processes called `name` with `argument` in their command line."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if (
            process.info["name"] == name
            and process.info["status"] != psutil.STATUS_ZOMBIE
            and any(argument in part for part in cmdline)
        ):
            found.append(process)
    return found


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "deskpilot"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("up", "worker", "api", "smtp", "suggest", "db", "user", "token"):
        assert command in result.stdout


async def test_db_upgrade_on_an_empty_external_database(
    empty_database: str, tmp_path: Path
) -> None:
    env = _env(DATABASE_URL=empty_database, DESKPILOT_HOME=str(tmp_path / "home"))
    first = _deskpilot("db", "upgrade", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert f"revision {migrate.head_revision()}" in first.stdout
    again = _deskpilot("db", "upgrade", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr

    tables = {
        r["tablename"]
        for r in await _fetch(
            empty_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
    }
    assert tables >= TABLES
    enum_count = await _fetch(
        empty_database, "SELECT count(*) AS n FROM pg_type WHERE typtype = 'e'"
    )
    assert enum_count[0]["n"] == 8
    # External mode never starts an embedded server.
    assert not (tmp_path / "home" / "pgdata").exists()


async def test_user_create_against_external_database(own_database: str, tmp_path: Path) -> None:
    env = _env(DATABASE_URL=own_database, DESKPILOT_SECRET_KEY="k" * 48)
    created = _deskpilot(
        "user", "create", "owner@store.example", "--name", "Owner", cwd=tmp_path, env=env
    )
    assert created.returncode == 0, created.stderr
    assert "created user" in created.stdout
    token = created.stdout.split("keep it): ", 1)[1].strip()
    another = _deskpilot("user", "token", "OWNER@store.example", cwd=tmp_path, env=env)
    assert another.returncode == 0, another.stderr
    hashes = {
        r["token_hash"] for r in await _fetch(own_database, "SELECT token_hash FROM api_tokens")
    }
    printed = {token, another.stdout.strip()}
    assert hashes == {hashlib.sha256(t.encode()).hexdigest() for t in printed} and len(hashes) == 2
    unknown = _deskpilot("user", "token", "nobody@store.example", cwd=tmp_path, env=env)
    assert unknown.returncode == 1 and "no user" in unknown.stderr

    rows = await _fetch(
        own_database,
        "SELECT u.name, s.plan_type::text AS plan, (SELECT count(*) FROM playbooks p WHERE p.user_id = u.id) AS playbooks "
        "FROM users u JOIN subscriptions s ON s.user_id = u.id",
    )
    assert [(r["name"], r["plan"]) for r in rows] == [("Owner", "TRIAL")]
    assert rows[0]["playbooks"] >= 5
    # The operator vouched for the address: no verification banner, no link to follow.
    verified = await _fetch(own_database, "SELECT email_verified_at FROM users")
    assert [r["email_verified_at"] is not None for r in verified] == [True]

    duplicate = _deskpilot("user", "create", "OWNER@store.example", cwd=tmp_path, env=env)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    invalid = _deskpilot("user", "create", "not-an-email", cwd=tmp_path, env=env)
    assert invalid.returncode == 1
    assert "not a valid email" in invalid.stderr


async def test_user_create_with_a_password_can_sign_in_on_the_web(
    own_database: str, own_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    env = _env(DATABASE_URL=own_database, DESKPILOT_SECRET_KEY="k" * 48)
    short = _deskpilot(
        "user", "create", "owner@store.example", "--password-stdin",
        cwd=tmp_path, env=env, stdin="short\n",
    )  # fmt: skip
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert await _fetch(own_database, "SELECT id FROM users") == []

    created = _deskpilot(
        "user", "create", "owner@store.example", "--password-stdin",
        cwd=tmp_path, env=env, stdin="  spaces kept, newline not  \n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "created user" in created.stdout
    stored = await _fetch(own_database, "SELECT password_hash FROM users")
    assert stored[0]["password_hash"].startswith("$argon2id$")

    app = build_app(own_sessions)
    async with client_for(app) as browser:
        signed_in = await browser.post(
            "/api/session",
            json={"email": "owner@store.example", "password": "  spaces kept, newline not  "},
        )
        assert signed_in.status_code == 200, signed_in.text
        assert (await browser.get("/api/session")).status_code == 200

        # A new password signs the merchant out everywhere; the old one stops working.
        changed = _deskpilot(
            "user", "password", "OWNER@store.example",
            cwd=tmp_path, env=env, stdin="a brand new password\n",
        )  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        assert (await browser.get("/api/session")).status_code == 401
    async with client_for(app) as browser:
        old = {"email": "owner@store.example", "password": "  spaces kept, newline not  "}
        assert (await browser.post("/api/session", json=old)).status_code == 401
        new = {**old, "password": "a brand new password"}
        assert (await browser.post("/api/session", json=new)).status_code == 200

    unknown = _deskpilot(
        "user", "password", "nobody@store.example", cwd=tmp_path, env=env, stdin="long enough\n"
    )
    assert unknown.returncode == 1 and "no user" in unknown.stderr


async def test_token_create_prints_a_token_the_api_accepts(
    own_database: str, own_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    env = _env(DATABASE_URL=own_database, DESKPILOT_SECRET_KEY="k" * 48)
    assert (
        _deskpilot("user", "create", "owner@store.example", cwd=tmp_path, env=env).returncode == 0
    )
    issued = _deskpilot(
        "token", "create", "Owner@Store.example", "--name", "zapier", cwd=tmp_path, env=env
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("dpk_")
    rows = await _fetch(
        own_database, "SELECT name, token_hash FROM api_tokens WHERE name = 'zapier'"
    )
    assert [r["token_hash"] for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]

    async with client_for(build_app(own_sessions), Authorization=f"Bearer {token}") as program:
        # Auth passed: an unknown message is 404, not 401.
        assert (await program.get(f"/api/messages/{uuid.uuid4()}")).status_code == 404

    unknown = _deskpilot("token", "create", "nobody@store.example", cwd=tmp_path, env=env)
    assert unknown.returncode == 1 and "no user" in unknown.stderr


def test_external_database_without_secret_key_is_refused(
    empty_database: str, tmp_path: Path
) -> None:
    env = _env(DATABASE_URL=empty_database)
    result = _deskpilot("up", *_up_ports(), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "DESKPILOT_SECRET_KEY is not set" in result.stderr


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _deskpilot(
            "up", "--port", str(port), cwd=tmp_path, env=_env(DESKPILOT_HOME=str(tmp_path / "h"))
        )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr and "DESKPILOT_API_PORT" in result.stderr


@pytest.mark.parametrize(
    ("option", "setting"),
    [
        ("--temporal-port", "DESKPILOT_TEMPORAL_PORT"),
        ("--temporal-ui-port", "DESKPILOT_TEMPORAL_UI_PORT"),
        ("--sandbox-port", "DESKPILOT_SANDBOX_PORT"),
        ("--smtp-port", "DESKPILOT_SMTP_PORT"),
    ],
)
def test_up_names_the_setting_of_a_busy_port(tmp_path: Path, option: str, setting: str) -> None:
    home = tmp_path / "h"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = _up_ports()
        ports[ports.index(option) + 1] = str(port)
        result = _deskpilot("up", *ports, cwd=tmp_path, env=_env(DESKPILOT_HOME=str(home)))
    assert result.returncode == 2, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr and setting in result.stderr
    # Refused before anything started: no database was created.
    assert not (home / "pgdata").exists()


@pytest.fixture
def running_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path, float]]:
    """`deskpilot up` on embedded defaults in an empty folder; yields once /readyz answers."""
    ports = _up_ports()
    port = int(ports[1])
    home = tmp_path / ".deskpilot"  # the default DESKPILOT_HOME, relative to where it runs
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "deskpilot", "up", *ports],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, base, 90)
        yield process, base, home, time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for leftover in _postgres_processes(home / "pgdata") + _temporal_processes(home):
            leftover.kill()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_serves_readyz_and_stops_cleanly(
    running_up: tuple[subprocess.Popen[str], str, Path, float], stop_signal: signal.Signals
) -> None:
    process, base, home, cold_start = running_up
    print(f"cold start of deskpilot up to /readyz: {cold_start:.2f} s")
    ready = httpx.get(f"{base}/readyz").json()
    assert ready["schema"] == migrate.head_revision()
    key = home / "secret_key"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert _postgres_processes(home / "pgdata"), "embedded postgres should be running"
    assert _temporal_processes(home), "the embedded Temporal dev server should be running"

    process.send_signal(stop_signal)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "deskpilot stopped" in output
    deadline = time.monotonic() + 10
    while _postgres_processes(home / "pgdata") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _postgres_processes(home / "pgdata") == [], "postgres outlived deskpilot up"
    assert _temporal_processes(home) == [], "the Temporal dev server outlived deskpilot up"


async def test_worker_and_api_commands_serve_and_stop_on_sigterm(
    own_database: str, temporal_dev: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The production pair against an external database and Temporal, as compose runs them."""
    port = _free_port()
    env = _env(
        DATABASE_URL=own_database,
        DESKPILOT_SECRET_KEY="k" * 48,
        TEMPORAL_ADDRESS=temporal_dev.client.service_client.config.target_host,
        DESKPILOT_SANDBOX_URL="http://127.0.0.1:9",
    )

    async def start(*args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "deskpilot",
            *args,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    worker = await start("worker")
    api = await start("api", "--port", str(port))
    smtp_port = _free_port()
    smtp = await start("smtp", "--port", str(smtp_port))
    try:
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 60
            while True:
                assert api.returncode is None and worker.returncode is None
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, "deskpilot api did not become ready"
                await asyncio.sleep(0.2)
        # The SMTP receiver answers, and looks aliases up in the database.
        while True:
            assert smtp.returncode is None
            try:
                async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port) as mail:
                    await mail.mail("someone@example.com")
                    code, text = await mail.rcpt("nobody@inbound.localhost")
                break
            except (OSError, aiosmtplib.SMTPConnectError):
                assert time.monotonic() < deadline, "deskpilot smtp did not start"
                await asyncio.sleep(0.2)
            except aiosmtplib.SMTPRecipientRefused as refused:
                code, text = refused.code, refused.message
                break
        assert code == 550 and "no such alias" in text
        for process, name in ((api, "api"), (worker, "worker"), (smtp, "smtp")):
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 0, output.decode()
            assert f"{name} running" in output.decode()  # it got as far as serving
            assert f"deskpilot {name} stopped" in output.decode()
    finally:
        for process in (api, worker, smtp):
            if process.returncode is None:
                process.kill()
                await process.wait()

"""`deskpilot up` as a newcomer runs it: demo mode, an email in, a decision, the action out.

Also the pieces it stands on: the embedded Temporal dev server (restart on its
database, search attributes) and the idempotent demo bootstrap.
"""

from __future__ import annotations

import asyncio
import json
import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

from deskpilot.demo import DEMO_EMAIL, bootstrap_demo
from deskpilot.embedded_temporal import EmbeddedTemporal, temporal_executable
from deskpilot.ports import PortInUseError
from deskpilot.temporal_client import connect_temporal
from kernel.enums import ConnectionType
from kernel.settings import Settings
from models import Connection, Order, User
from models.api_token import user_for_token
from sandbox.server import Sandbox, serving, shop_base
from sandbox.shopify.server import DEMO_SHOP, ShopifySandbox
from tests.process_support import wait_until_ready
from tests.test_cli import _env, _postgres_processes, _temporal_processes, _up_ports
from workflows import search_attributes
from workflows.contracts import message_workflow_id

DEMO_KEYS = {
    "api_base",
    "api_token",
    "inbound_url",
    "alias_address",
    "temporal_ui",
    "gmail_address",
    "gmail_deliver_url",
    "login_url",
    "email",
    "password",
}


# --- a running `deskpilot up` ------------------------------------------------------------


@dataclass
class Up:
    process: subprocess.Popen[str]
    home: Path
    ports: dict[str, int]
    seconds_to_ready: float
    # Its output goes to a file: an unread pipe fills up and stalls a chatty process.
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['--port']}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports['--temporal-port']}"

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.ports['--sandbox-port']}"

    def demo(self) -> dict[str, Any]:
        return json.loads((self.home / "demo.json").read_text())

    def temporal(self, *args: str) -> str:
        """The `temporal` CLI, as the README tells an operator to use it."""
        result = subprocess.run(
            [str(temporal_executable()), *args, "--address", self.temporal_address],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def stop(self, how: signal.Signals = signal.SIGINT) -> str:
        """Stop as Ctrl-C does; nothing it started may outlive it."""
        self.process.send_signal(how)
        self.process.wait(timeout=60)
        output = self.log.read_text()
        assert self.process.returncode == 0, output
        assert "deskpilot stopped" in output
        deadline = time.monotonic() + 10
        while _leftovers(self.home) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _leftovers(self.home) == [], "postgres or temporal outlived deskpilot up"
        return output


def _leftovers(home: Path) -> list[Any]:
    return _postgres_processes(home / "pgdata") + _temporal_processes(home)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[Path, list[str]], Up]]:
    """Starts `deskpilot up` in tmp_path with DESKPILOT_HOME=home; kills what is left after."""
    started: list[Up] = []

    def start(home: Path, ports: list[str]) -> Up:
        began = time.monotonic()
        log = tmp_path / f"up-{len(started)}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "deskpilot", "up", *ports],
                cwd=tmp_path,
                env=_env(DESKPILOT_HOME=str(home)),
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
        up = Up(process, home, dict(zip(ports[::2], map(int, ports[1::2]), strict=True)), 0, log)
        started.append(up)
        wait_until_ready(process, up.base, 120, log)
        up.seconds_to_ready = time.monotonic() - began
        return up

    try:
        yield start
    finally:
        for up in started:
            if up.process.poll() is None:
                up.process.kill()
                up.process.wait()
            for leftover in _leftovers(up.home):
                leftover.kill()


def _refund_request(message_id: str) -> bytes:
    """A customer asking for a refund on #1001, from that order's address in the sandbox."""
    return _customer_email(
        message_id,
        "1001",
        "Refund for order #1001",
        "Hello,\n\nThe shirt from order #1001 does not fit. Please refund me.\n",
    )


def _customer_email(message_id: str, number: str, subject: str, text: str) -> bytes:
    email = EmailMessage()
    email["From"] = f"Customer <{_demo_customer(number)}>"
    email["To"] = "support@demo-store.example"
    email["Subject"] = subject
    email["Message-ID"] = message_id
    email["Date"] = format_datetime(datetime.now(UTC))
    email.set_content(text)
    return email.as_bytes()


def _post_email(demo: dict[str, Any], raw: bytes) -> dict[str, str]:
    response = httpx.post(
        demo["inbound_url"],
        content=raw,
        headers={
            "Authorization": f"Bearer {demo['api_token']}",
            "Content-Type": "message/rfc822",
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()


def _wait_for_action(
    demo: dict[str, Any], message_id: str, status: str, within: float = 60
) -> dict[str, Any]:
    """Poll GET /api/messages/{id} until its action has `status`; returns the message view."""
    deadline = time.monotonic() + within
    while True:
        response = httpx.get(
            f"{demo['api_base']}/api/messages/{message_id}",
            headers={"Authorization": f"Bearer {demo['api_token']}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        view = response.json()
        if view["action"] and view["action"]["status"] == status:
            return view
        assert time.monotonic() < deadline, f"action never reached {status}: {view}"
        time.sleep(0.2)


def _gmail_diagnosis(up: Up, state: dict[str, Any]) -> str:
    """What a Gmail message that never arrived went through: pushes, syncs, up's log."""
    pushes = httpx.get(f"{up.sandbox}/sandbox/gmail/pushes", timeout=10).json()
    mailboxes = up.temporal("workflow", "list", "--query", "WorkflowType='MailboxSyncWorkflow'")
    log_tail = "\n".join(up.log.read_text().splitlines()[-40:])
    return (
        f"the Gmail message never awaited a decision: {state}\npushes: {pushes}\n"
        f"mailbox syncs: {mailboxes}\nup's log, last lines:\n{log_tail}"
    )


def _owner(workflow_id: str) -> str:
    """msg-<owner uuid>-<hash>"""
    return str(uuid.UUID(workflow_id[len("msg-") : len("msg-") + 36]))


# --- the whole product through `deskpilot up` ----------------------------------------------


def test_up_demo_mode_email_to_executed_refund(
    launch: Callable[[Path, list[str]], Up], tmp_path: Path
) -> None:
    up = launch(tmp_path / "home", _up_ports())
    print(
        f"cold start of deskpilot up (postgres, temporal, worker, api) to /readyz: "
        f"{up.seconds_to_ready:.2f} s"
    )
    # The demo mailbox syncs (and is watched) from the start, whenever the worker's
    # reconciler had its first round.
    syncing = up.temporal(
        "workflow",
        "list",
        "--query",
        "WorkflowType='MailboxSyncWorkflow' AND ExecutionStatus='Running'",
    )
    assert "mailbox-sync-" in syncing, syncing

    demo_file = up.home / "demo.json"
    assert oct(demo_file.stat().st_mode & 0o777) == "0o600"
    demo = up.demo()
    assert set(demo) == DEMO_KEYS
    assert demo["api_base"] == up.base
    # The demo merchant's web sign-in works with what demo.json says.
    assert demo["login_url"] == f"{up.base}/login" and demo["email"] == DEMO_EMAIL
    signed_in = httpx.post(
        f"{up.base}/api/session",
        json={"email": demo["email"], "password": demo["password"]},
        timeout=30,
    )
    assert signed_in.status_code == 200, signed_in.text
    assert demo["inbound_url"] == f"{up.base}/api/inbound/email"
    assert demo["alias_address"].startswith("demo-")
    assert demo["temporal_ui"] == f"http://127.0.0.1:{up.ports['--temporal-ui-port']}"
    assert httpx.get(demo["temporal_ui"], timeout=10).status_code == 200

    accepted = _post_email(demo, _refund_request(make_msgid(domain="customer.example")))
    pending = _wait_for_action(demo, accepted["message_id"], "PENDING")
    assert pending["workflow_id"] == accepted["workflow_id"]
    assert pending["action"]["type"] == "REFUND"
    assert pending["message"]["order_id"] is not None

    approved = httpx.post(
        f"{demo['api_base']}/api/actions/{pending['action']['id']}/approve",
        headers={"Authorization": f"Bearer {demo['api_token']}"},
        timeout=30,
    )
    assert approved.status_code == 200, approved.text
    _wait_for_action(demo, accepted["message_id"], "EXECUTED")

    ledger = httpx.get(f"{shop_base(up.sandbox, DEMO_SHOP)}/_sandbox/ledger").json()
    assert [(e["type"], e["order"]) for e in ledger] == [("refund", "#1001")]
    replies = httpx.get(f"{up.sandbox}/mail/messages").json()
    assert [r["recipients"] for r in replies] == [[_demo_customer("1001")]]
    assert [r["via"] for r in replies] == ["smtp"], "demo replies leave through SMTP, once"

    # The forwarding alias over SMTP, as the README shows with smtplib.
    smtp_id = make_msgid(domain="customer.example")
    with smtplib.SMTP("127.0.0.1", up.ports["--smtp-port"], timeout=30) as smtp:
        smtp.sendmail(_demo_customer("1001"), [demo["alias_address"]], _refund_request(smtp_id))
    smtp_workflow = message_workflow_id(uuid.UUID(_owner(accepted["workflow_id"])), smtp_id)
    owner_query = f"DeskpilotOwner='{_owner(accepted['workflow_id'])}'"
    deadline = time.monotonic() + 60
    while smtp_workflow not in up.temporal("workflow", "list", "--query", owner_query):
        assert time.monotonic() < deadline, "the SMTP message never started a workflow"
        time.sleep(0.5)

    listed = up.temporal("workflow", "list")
    assert accepted["workflow_id"] in listed

    # The store's sandbox Gmail mailbox: mail dropped in is pushed, synced, answered in
    # its Gmail thread.
    gmail_id = make_msgid(domain="customer.example")
    question = _customer_email(
        gmail_id, "1002", "Where is order #1002?", "Hi, where is my order #1002? Thanks.\n"
    )
    dropped = httpx.post(demo["gmail_deliver_url"], content=question, timeout=30)
    assert dropped.status_code == 200, dropped.text
    gmail_workflow = message_workflow_id(uuid.UUID(_owner(accepted["workflow_id"])), gmail_id)
    deadline = time.monotonic() + 60
    while True:
        state = json.loads(
            up.temporal(
                "workflow",
                "query",
                "--workflow-id",
                gmail_workflow,
                "--name",
                "state",
                "-o",
                "json",
            )
            if gmail_workflow in up.temporal("workflow", "list", "--query", owner_query)
            else '{"queryResult": [{}]}'
        )["queryResult"][0]
        if state.get("stage") == "awaiting_decision":
            break
        assert time.monotonic() < deadline, _gmail_diagnosis(up, state)
        time.sleep(0.5)
    approved = httpx.post(
        f"{demo['api_base']}/api/actions/{state['action_id']}/approve",
        headers={"Authorization": f"Bearer {demo['api_token']}"},
        timeout=30,
    )
    assert approved.status_code == 200, approved.text
    sent_url = f"{up.sandbox}/sandbox/gmail/sent"
    while not (sent := httpx.get(sent_url, params={"address": demo["gmail_address"]}).json()):
        assert time.monotonic() < deadline + 60, "no reply left through Gmail"
        time.sleep(0.5)
    assert [m["threadId"] for m in sent] == [dropped.json()["threadId"]]
    assert f"In-Reply-To: {gmail_id}" in sent[0]["raw"]

    up.stop(signal.SIGINT)


def test_up_restart_keeps_workflows_and_the_demo_token(
    launch: Callable[[Path, list[str]], Up], tmp_path: Path
) -> None:
    home, ports = tmp_path / "home", _up_ports()
    first = launch(home, ports)
    demo = first.demo()
    accepted = _post_email(demo, _refund_request(make_msgid(domain="customer.example")))
    pending = _wait_for_action(demo, accepted["message_id"], "PENDING")
    first.stop(signal.SIGTERM)

    # Same home, same ports (the previous run's TIME_WAIT connections must not block them).
    second = launch(home, ports)
    assert second.demo() == demo, "a restart reuses the demo token, alias and URLs"
    workflow_id = accepted["workflow_id"]
    owner_query = f"DeskpilotOwner='{_owner(workflow_id)}'"
    assert workflow_id in second.temporal("workflow", "list", "--query", owner_query)
    state = second.temporal("workflow", "query", "--workflow-id", workflow_id, "--name", "state")
    assert "awaiting_decision" in state

    # The decision the README shows for operators, through the CLI instead of the API.
    second.temporal(
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        workflow_id,
        "--name",
        "approve",
        "--input",
        json.dumps({"action_id": pending["action"]["id"]}),
    )
    _wait_for_action(demo, accepted["message_id"], "EXECUTED")
    # The action is recorded before the reply goes out, and the workflow closes after it;
    # the list (Temporal's visibility) follows a moment later.
    by_message = f"DeskpilotMessage='{accepted['message_id']}'"
    deadline = time.monotonic() + 60
    while "Completed" not in (listed := second.temporal("workflow", "list", "--query", by_message)):
        assert time.monotonic() < deadline, f"the workflow never completed: {listed}"
        time.sleep(0.5)
    # The sandbox store is in memory and starts from its seed: one refund, this run's.
    ledger = httpx.get(f"{shop_base(second.sandbox, DEMO_SHOP)}/_sandbox/ledger").json()
    assert [(e["type"], e["order"]) for e in ledger] == [("refund", "#1001")]
    second.stop(signal.SIGINT)


def _up_until_it_fails(tmp_path: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`deskpilot up` on free ports, run to its end (it fails to start)."""
    return subprocess.run(
        [sys.executable, "-m", "deskpilot", "up", *_up_ports()],
        cwd=tmp_path,
        env=_env(DESKPILOT_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_reports_a_temporal_that_does_not_start(tmp_path: Path) -> None:
    """A broken Temporal database: a clear error that points at the log, and no Postgres left."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "temporal.db").write_bytes(b"this is not a sqlite database" * 100)
    result = _up_until_it_fails(tmp_path, home)
    assert result.returncode == 1, result.stderr
    assert str(home / "temporal.log") in result.stderr
    assert _leftovers(home) == []


def test_up_leaves_no_temporal_behind_when_postgres_does_not_start(tmp_path: Path) -> None:
    """The Temporal dev server starts while PostgreSQL does; when PostgreSQL cannot (a data
    directory that is not one), `up` says why and stops the server it spawned."""
    home = tmp_path / "home"
    (home / "pgdata").mkdir(parents=True)
    (home / "pgdata" / "PG_VERSION").write_text("9\n")
    result = _up_until_it_fails(tmp_path, home)
    assert result.returncode == 1, result.stderr
    assert f"the embedded PostgreSQL in {home / 'pgdata'} did not start" in result.stderr
    assert "postgresql.conf" in result.stderr  # the log's reason, quoted
    assert "Traceback" not in result.stderr
    assert "deskpilot started the Temporal dev server" in (home / "temporal.log").read_text()
    assert _leftovers(home) == []


# --- the embedded Temporal dev server -----------------------------------------------------


def _two_free_ports() -> tuple[int, int]:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]


async def _wait_for_temporal(address: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            await connect_temporal(address)
            return
        except RuntimeError:
            assert time.monotonic() < deadline, f"no Temporal at {address} after 60 s"
            await asyncio.sleep(0.2)


async def _custom_attributes(temporal: EmbeddedTemporal) -> set[str]:
    async with temporal.running() as client:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=temporal.namespace)
        )
    return set(listed.custom_attributes)


async def test_embedded_temporal_restarts_on_an_older_database(tmp_path: Path) -> None:
    """A database made before an attribute existed gets it on the next start."""
    port, ui_port = _two_free_ports()
    older = await asyncio.create_subprocess_exec(
        temporal_executable(),
        "server",
        "start-dev",
        "--db-filename",
        str(tmp_path / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--headless",
        "--search-attribute",
        f"{search_attributes.OWNER.name}=Keyword",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _wait_for_temporal(f"127.0.0.1:{port}")
    finally:
        older.terminate()
        await older.wait()

    wanted = {key.name for key in search_attributes.ALL}
    for _ in range(2):  # and a plain restart after that
        temporal = EmbeddedTemporal(tmp_path, port=port, ui_port=ui_port)
        assert wanted <= await _custom_attributes(temporal)
        assert temporal.pid is None
        assert _temporal_processes(tmp_path) == []


def test_embedded_temporal_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match="DESKPILOT_TEMPORAL_UI_PORT"):
            EmbeddedTemporal(tmp_path, port=_two_free_ports()[0], ui_port=port).spawn()


# --- the demo bootstrap -------------------------------------------------------------------


def _demo_customer(number: str) -> str:
    """The email on a demo store order: the seed is the same on every start."""
    order = ShopifySandbox().add_shop(DEMO_SHOP).by_name(f"#{number}")
    assert order is not None and order.email
    return order.email


async def test_demo_bootstrap_is_idempotent(
    own_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = Settings(DESKPILOT_HOME=str(tmp_path), INBOUND_DOMAIN="in.example")
    demo_file = tmp_path / "demo.json"

    async def bootstrap() -> tuple[Any, Sandbox, str]:
        """A fresh sandbox each time, as after a restart, on a new port."""
        sandbox = Sandbox()
        async with serving(sandbox) as sandbox_url:
            info = await bootstrap_demo(
                own_sessions,
                settings,
                sandbox,
                sandbox_url,
                api_base="http://127.0.0.1:9",
                temporal_ui=None,
            )
        return info, sandbox, sandbox_url

    first, sandbox, _ = await bootstrap()
    assert json.loads(demo_file.read_text()) == first.public()
    assert set(first.public()) == DEMO_KEYS
    assert oct(demo_file.stat().st_mode & 0o777) == "0o600"
    assert first.alias_address.endswith("@in.example")
    [shop_token] = sandbox.shopify.shop(DEMO_SHOP).tokens

    second, sandbox, second_url = await bootstrap()
    assert second == first
    assert list(sandbox.shopify.shop(DEMO_SHOP).tokens) == [shop_token]

    async with own_sessions() as session:
        users = (await session.execute(select(User).where(User.email == DEMO_EMAIL))).scalars()
        # One demo merchant, whose address is ours: nothing for it to verify.
        assert [(u.id, u.email_verified_at is not None) for u in users] == [(first.user_id, True)]
        connections = (
            await session.execute(select(Connection).where(Connection.user_id == first.user_id))
        ).scalars()
        by_type = {c.type: c for c in connections}
        assert set(by_type) == {ConnectionType.SHOPIFY, ConnectionType.CUSTOM_EMAIL}
        assert by_type[ConnectionType.SHOPIFY].metadata_ == {
            "apiBase": shop_base(second_url, DEMO_SHOP)
        }
        assert by_type[ConnectionType.SHOPIFY].access_token == shop_token
        alias = by_type[ConnectionType.CUSTOM_EMAIL].metadata_
        assert alias is not None
        assert alias["alias"] == first.alias_address and alias["shopDomain"] == DEMO_SHOP
        orders = await session.scalar(select(func.count()).select_from(Order))
        assert orders == len(sandbox.shopify.shop(DEMO_SHOP).orders)
        order = (await session.execute(select(Order).where(Order.name == "#1001"))).scalar_one()
        assert order.email == _demo_customer("1001")
        assert await user_for_token(session, first.api_token) == first.user_id

    # Without demo.json the plaintext is gone: a new token is issued and saved.
    demo_file.unlink()
    third, _, _ = await bootstrap()
    assert third.api_token != first.api_token
    assert json.loads(demo_file.read_text())["api_token"] == third.api_token

"""The `deskpilot` command."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from types import FrameType
from typing import Annotated

import typer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.backtest_command import playbook_app
from deskpilot.demo import (
    DEMO_APP_KEY,
    DEMO_FILE,
    DemoInfo,
    bootstrap_demo,
    demo_gmail_settings,
)
from deskpilot.demo_billing import demo_billing_banner, demo_billing_settings
from deskpilot.embedded_postgres import PostgresStartError
from deskpilot.embedded_temporal import TEMPORAL_DB, EmbeddedTemporal, TemporalStartError
from deskpilot.ports import PortInUseError, ensure_port_free
from deskpilot.processes import (
    ServiceError,
    connect_with_retry,
    first_to_stop,
    http_server,
    run_until_signalled,
    run_worker,
    temporal_address,
)
from deskpilot.runtime import database_url
from deskpilot.suggest_command import suggest
from deskpilot.worker_process import WorkerSupervisor, worker_process
from deskpilot.worker_spawn import take_prestarted
from kernel.logs import configure_logging
from kernel.settings import ConfigurationError, Settings, get_settings
from models import migrate
from models.api_token import issue_api_token
from models.db import create_engine, session_factory, unit_of_work
from models.user import PasswordError, check_password, set_password
from models.web_session import end_user_sessions
from sandbox.server import Sandbox
from sandbox.shopify.server import DEMO_SHOP, SECOND_DEMO_SHOP
from services.accounts import AccountError, create_user, find_user

log = logging.getLogger(__name__)

# The demo sandbox is for this machine only.
SANDBOX_HOST = "127.0.0.1"

app = typer.Typer(
    help="deskpilot: the AI support desk for Shopify merchants.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Merchant accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for a merchant's programs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(playbook_app, name="playbook")
# One suggestion for an .eml file, through the guardrails: no database, no Temporal.
app.command()(suggest)


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level)
    return settings


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="API host [DESKPILOT_API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="API port [DESKPILOT_API_PORT]")] = None,
    temporal_port: Annotated[
        int | None, typer.Option(help="embedded Temporal gRPC port [DESKPILOT_TEMPORAL_PORT]")
    ] = None,
    temporal_ui_port: Annotated[
        int | None, typer.Option(help="Temporal Web UI port [DESKPILOT_TEMPORAL_UI_PORT]")
    ] = None,
    sandbox_port: Annotated[
        int | None, typer.Option(help="demo sandbox port [DESKPILOT_SANDBOX_PORT]")
    ] = None,
    smtp_port: Annotated[
        int | None, typer.Option(help="SMTP receiver port for the aliases [DESKPILOT_SMTP_PORT]")
    ] = None,
) -> None:
    """Start everything on this machine: database, migrations, Temporal, worker, API and
    the SMTP receiver for the forwarding aliases.

    PostgreSQL is embedded unless DATABASE_URL is set, Temporal unless
    TEMPORAL_ADDRESS is; without Shopify/Gmail credentials a demo store and
    merchant are set up (see DESKPILOT_HOME/demo.json).
    """
    settings = _with_overrides(
        _settings(),
        api_host=host,
        api_port=port,
        temporal_port=temporal_port,
        temporal_ui_port=temporal_ui_port,
        sandbox_port=sandbox_port,
        smtp_receiver_port=smtp_port,
    )
    # Spawned while PostgreSQL starts (both take seconds); `_up` waits for it after the
    # migrations and stops it before PostgreSQL.
    temporal = EmbeddedTemporal.from_settings(settings) if settings.embedded_temporal else None

    def meanwhile() -> None:
        if temporal is not None:
            temporal.spawn()  # on the main thread, as its parent-death signal needs
        _load_up()

    try:
        _run_services(
            settings,
            lambda url, key: _up(url, key, settings, temporal),
            owner=True,
            checks=_up_ports,
            meanwhile=meanwhile,
        )
    finally:
        if temporal is not None and temporal.pid is not None:
            # `up` failed before `_up` took the server over (PostgreSQL did not start).
            asyncio.run(temporal.stop())
    typer.echo("deskpilot stopped")


@app.command()
def worker() -> None:
    """Run the Temporal worker (production): Temporal at TEMPORAL_ADDRESS, or on this machine."""
    settings = _settings()
    _run_services(settings, lambda url, key: run_worker(url, key, settings))
    typer.echo("deskpilot worker stopped")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="API host [DESKPILOT_API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="API port [DESKPILOT_API_PORT]")] = None,
) -> None:
    """Serve the API (production), connected to Temporal at TEMPORAL_ADDRESS or on this machine."""
    settings = _with_overrides(_settings(), api_host=host, api_port=port)
    _run_services(settings, lambda url, key: _api(url, key, settings), checks=_api_port)
    typer.echo("deskpilot api stopped")


@app.command()
def smtp(
    host: Annotated[str | None, typer.Option(help="listen host [DESKPILOT_SMTP_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="listen port [DESKPILOT_SMTP_PORT]")] = None,
) -> None:
    """Receive the aliases' mail over SMTP (production), handing it to Temporal at
    TEMPORAL_ADDRESS or on this machine."""
    settings = _with_overrides(_settings(), smtp_receiver_host=host, smtp_receiver_port=port)
    _run_services(settings, lambda url, key: _smtp(url, key, settings), checks=_smtp_port)
    typer.echo("deskpilot smtp stopped")


def _with_overrides(settings: Settings, **options: object) -> Settings:
    given = {name: value for name, value in options.items() if value is not None}
    return settings.model_copy(update=given) if given else settings


ServiceMain = Callable[[str, str], Coroutine[None, None, None]]


def _run_services(
    settings: Settings,
    main: ServiceMain,
    *,
    owner: bool = False,
    checks: Callable[[Settings], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """Database, then `main(url, secret_key)` in one event loop until it ends or a signal stops it."""
    # A service manager's SIGTERM must clean up like Ctrl-C; inside the event loop
    # `run_until_signalled` takes over both signals.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        secret_key = settings.resolve_secret_key()
        if checks is not None:
            checks(settings)
        with database_url(settings, owner=owner, meanwhile=meanwhile) as url:
            try:
                asyncio.run(run_until_signalled(main(url, secret_key)))
            finally:
                # Stopping Postgres must not be cut short by an impatient second Ctrl-C.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except (ConfigurationError, PortInUseError) as exc:
        raise _fail(str(exc), 2) from exc
    except (TemporalStartError, PostgresStartError, ServiceError) as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        pass  # a signal before the event loop took over; the context above stopped Postgres


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _api_port(settings: Settings) -> None:
    ensure_port_free(
        settings.api_host,
        settings.api_port,
        what="the API",
        setting="--port or DESKPILOT_API_PORT",
    )


def _smtp_port(settings: Settings) -> None:
    ensure_port_free(
        settings.smtp_receiver_host,
        settings.smtp_receiver_port,
        what="the SMTP receiver",
        setting="--smtp-port or DESKPILOT_SMTP_PORT",
    )


def _up_ports(settings: Settings) -> None:
    """Every port `up` will listen on, checked before anything starts."""
    _api_port(settings)
    _smtp_port(settings)
    if settings.embedded_temporal:
        EmbeddedTemporal.from_settings(settings).check_ports()
    if settings.demo_mode:
        ensure_port_free(
            SANDBOX_HOST,
            settings.sandbox_port,
            what="the demo sandbox",
            setting="--sandbox-port or DESKPILOT_SANDBOX_PORT",
        )


def _reachable(host: str) -> str:
    """A listening address as a client on this machine connects to it."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _api_base(settings: Settings) -> str:
    """The API's address as a client on this machine reaches it."""
    if "public_url" in settings.model_fields_set:
        return settings.public_url.rstrip("/")
    host = _reachable(settings.api_host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}"


def _load_up() -> None:
    """What `up` serves, loaded while PostgreSQL starts: not at the top, so that
    `deskpilot db ...` does not load the API."""
    import sandbox.smtp_sink  # noqa: F401


async def _up(
    url: str, secret_key: str, settings: Settings, temporal: EmbeddedTemporal | None
) -> None:
    from api.app import create_app
    from deskpilot.smtp_receiver import smtp_receiver
    from sandbox.smtp_sink import MailRelay, serving_smtp_sink
    from services.mailbox_workflows import reconcile_mailboxes

    # Read once: the demo's own settings below give it Gmail credentials.
    demo_mode = settings.demo_mode
    async with AsyncExitStack() as stack:
        # Spawned when `up` began (deskpilot/entry.py): it loads while the database starts.
        supervisor = WorkerSupervisor()
        supervisor.spawn(take_prestarted())
        stack.push_async_callback(supervisor.stop)
        await migrate.upgrade(url)
        engine = create_engine(url, secret_key=secret_key)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)

        temporal_ui: str | None = None
        if temporal is not None:
            client = await stack.enter_async_context(temporal.running())
            temporal_ui = temporal.ui_url
        else:
            client = await connect_with_retry(
                temporal_address(settings), settings.temporal_namespace
            )

        api_base = _api_base(settings)
        demo: DemoInfo | None = None
        sink_address: str | None = None
        services: list[asyncio.Task[None]] = []
        if demo_mode:
            sandbox = Sandbox()
            services.append(
                await stack.enter_async_context(
                    http_server(sandbox.app(), SANDBOX_HOST, settings.sandbox_port, name="sandbox")
                )
            )
            sandbox_url = f"http://{SANDBOX_HOST}:{settings.sandbox_port}"
            # Replies leave over SMTP, as in production, to a sink that records them in the
            # sandbox (GET /mail/messages); always in demo mode, so the demo store's
            # made-up customers are never mailed through a real relay.
            # Mail for the inbound domain is passed on to the SMTP receiver, as its MX
            # would be: an alias's test email arrives.
            relay = MailRelay(
                settings.inbound_domain,
                _reachable(settings.smtp_receiver_host),
                settings.smtp_receiver_port,
            )
            sink_port = await stack.enter_async_context(
                serving_smtp_sink(sandbox.sink, SANDBOX_HOST, relay=relay)
            )
            sink_address = f"{SANDBOX_HOST}:{sink_port}"
            # The worker's integrations find the demo store and mail sink here, and the
            # API checks the demo store's webhooks with the demo app's secret.
            settings = settings.model_copy(
                update={
                    "sandbox_url": sandbox_url,
                    "smtp_host": SANDBOX_HOST,
                    "smtp_port": sink_port,
                    "smtp_starttls": False,
                    "smtp_username": None,
                    "smtp_password": None,
                    "shopify_api_secret": settings.shopify_api_secret
                    or SecretStr(secrets.token_hex(16)),
                    # Installs (e.g. of SECOND_DEMO_SHOP from /connections) go through the
                    # sandbox's consent as the demo app, back to this API's callback.
                    "shopify_api_key": DEMO_APP_KEY,
                    "shopify_admin_base_url": f"{sandbox_url}/shops/{{shop}}",
                    "public_url": api_base,
                }
            )
            # The store's support mailbox is a sandbox Gmail account, synced like a real one.
            settings = demo_gmail_settings(settings, sandbox_url)
            # Razorpay and Paddle, where no real credentials are set, are sandbox stand-ins.
            settings = demo_billing_settings(settings, sandbox, sandbox_url, api_base=api_base)

        # The worker, with its reconciler, in its own process: stopped after the API below.
        worker_settings = settings.model_copy(
            update={
                "database_url": url,
                "secret_key": SecretStr(secret_key),
                "temporal_address": temporal_address(settings),
            }
        )
        services.append(
            await stack.enter_async_context(worker_process(supervisor, worker_settings))
        )
        if demo_mode:
            demo = await bootstrap_demo(
                sessions, settings, sandbox, sandbox_url, api_base=api_base, temporal_ui=temporal_ui
            )
            # Its mailbox syncs now: the worker's reconciler may have had its first round
            # before the mailbox was connected, and its next is minutes away.
            await reconcile_mailboxes(sessions, client, settings)
        await supervisor.ready()
        await stack.enter_async_context(smtp_receiver(sessions, client, settings))
        services.append(
            await stack.enter_async_context(
                http_server(
                    create_app(engine, client, settings), settings.api_host, settings.api_port
                )
            )
        )
        typer.echo(_banner(settings, api_base, temporal_ui, demo, sink_address))
        await first_to_stop(*services)


def _banner(
    settings: Settings,
    api_base: str,
    temporal_ui: str | None,
    demo: DemoInfo | None,
    sink_address: str | None = None,
) -> str:
    home = settings.resolved_home()
    database = f"embedded, {home / 'pgdata'}" if settings.embedded_database else "DATABASE_URL"
    temporal = (
        f"embedded, 127.0.0.1:{settings.temporal_port}, state in {home / TEMPORAL_DB}"
        if settings.embedded_temporal
        else f"{settings.temporal_address}"
    )
    lines = [
        "deskpilot is up",
        f"  API          {api_base}  (/healthz, /readyz, /docs)",
        f"  database     {database}",
        f"  Temporal     {temporal}, namespace {settings.temporal_namespace}",
        f"  SMTP in      {settings.smtp_receiver_host}:{settings.smtp_receiver_port}"
        f"  (mail to the aliases @{settings.inbound_domain})",
    ]
    if temporal_ui:
        lines.append(f"  Web UI       {temporal_ui}")
    if demo is not None:
        lines += [
            "Demo mode (no Shopify or Gmail credentials configured):",
            f"  web sign-in  {api_base}/login  {demo.email} / {demo.password}",
            f"  store        {DEMO_SHOP}, served by the sandbox at {settings.sandbox_url}",
            f"  2nd store    {SECOND_DEMO_SHOP}, installed by nobody: sign up, then install"
            " it from /connections",
            f"  inbound URL  {demo.inbound_url}",
            f"  API token    {demo.api_token}",
            f"  alias        {demo.alias_address}  (send mail to it at SMTP in, see README)",
            f"  replies      SMTP sink {sink_address}, listed at {settings.sandbox_url}/mail/messages",
            f"  Gmail        {demo.gmail_address} (sandbox): POST a raw message to",
            f"               {demo.gmail_deliver_url}",
            f"               replies sent from it: {settings.sandbox_url}/sandbox/gmail/sent"
            f"?address={demo.gmail_address}",
            f"  saved in     {home / DEMO_FILE}",
        ]
        billing = demo_billing_banner(settings)
        if billing:
            lines.insert(-1, billing)
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


async def _api(url: str, secret_key: str, settings: Settings) -> None:
    from api.app import create_app

    async with AsyncExitStack() as stack:
        engine = create_engine(url, secret_key=secret_key)
        stack.push_async_callback(engine.dispose)
        client = await connect_with_retry(temporal_address(settings), settings.temporal_namespace)
        api_task = await stack.enter_async_context(
            http_server(create_app(engine, client, settings), settings.api_host, settings.api_port)
        )
        log.info("api running", extra={"api": _api_base(settings)})
        await first_to_stop(api_task)


async def _smtp(url: str, secret_key: str, settings: Settings) -> None:
    from deskpilot.smtp_receiver import smtp_receiver

    async with AsyncExitStack() as stack:
        engine = create_engine(url, secret_key=secret_key)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)
        client = await connect_with_retry(temporal_address(settings), settings.temporal_namespace)
        # Messages stored while Temporal is away are started by the worker's reconciler.
        port = await stack.enter_async_context(smtp_receiver(sessions, client, settings))
        log.info(
            "smtp running",
            extra={"listen": f"{settings.smtp_receiver_host}:{port}"},
        )
        await asyncio.Event().wait()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the latest). Safe to run again."""
    settings = _settings()
    with database_url(settings) as url:
        asyncio.run(migrate.upgrade(url, revision))
        current = asyncio.run(migrate.current_revision(url))
    typer.echo(f"database schema at revision {current}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision."""
    with database_url(_settings()) as url:
        typer.echo(asyncio.run(migrate.current_revision(url)) or "empty (no migrations applied)")


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", "--message")]) -> None:
    """For maintainers: write a migration with what the models add to the schema."""
    with database_url(_settings()) as url:
        asyncio.run(migrate.upgrade(url))
        asyncio.run(migrate.autogenerate_revision(url, message))


def _read_password() -> str:
    """The password from standard input: one line, without its line ending."""
    if sys.stdin.isatty():
        typer.echo("Password: ", nl=False, err=True)
    password = sys.stdin.readline().rstrip("\r\n")
    check_password(password)
    return password


@user_app.command("create")
def user_create(
    email: str,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read a web sign-in password from standard input (one line)"
        ),
    ] = False,
) -> None:
    """Create a merchant account with a trial subscription, the default playbooks and an
    API token (printed once); with --password-stdin the merchant can also sign in on the web."""
    settings = _settings()
    try:
        # Read before touching the database: a bad password changes nothing.
        password = _read_password() if password_stdin else None
        secret_key = settings.resolve_secret_key()
        with database_url(settings) as url:
            user_id, token = asyncio.run(_create_user(url, secret_key, email, name, password))
    except (ConfigurationError, AccountError, PasswordError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"created user {user_id} <{email}>")
    typer.echo(f"API token (shown once, keep it): {token}")


@user_app.command("password")
def user_password(email: str) -> None:
    """Set a merchant's web sign-in password from standard input (one line); signs the
    merchant out of every browser."""
    settings = _settings()
    try:
        password = _read_password()
        secret_key = settings.resolve_secret_key()
        with database_url(settings) as url:
            asyncio.run(_change_password(url, secret_key, email, password))
    except (ConfigurationError, AccountError, PasswordError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"password set for {email}")


@token_app.command("create")
def token_create(
    email: str, name: Annotated[str, typer.Option(help="What the token is for")] = "cli"
) -> None:
    """Issue an API token for a merchant (printed once; only its hash is stored)."""
    settings = _settings()
    try:
        secret_key = settings.resolve_secret_key()
        with database_url(settings) as url:
            token = asyncio.run(_issue_token(url, secret_key, email, name))
    except (ConfigurationError, AccountError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(token)


# The older spelling of `deskpilot token create`, kept for scripts that use it.
user_app.command("token", help="Same as `deskpilot token create`.")(token_create)


async def _create_user(
    url: str, secret_key: str, email: str, name: str | None, password: str | None = None
) -> tuple[str, str]:
    engine = create_engine(url, secret_key=secret_key, pool_size=1)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            # The operator vouches for the address: no verification link is asked for.
            user = await create_user(session, email, name, verified=True)
            if password is not None:
                await set_password(session, user.id, password)
            return str(user.id), await issue_api_token(session, user.id, "cli")
    finally:
        await engine.dispose()


async def _find(session: AsyncSession, email: str) -> uuid.UUID:
    user = await find_user(session, email)
    if user is None:
        raise AccountError(f"no user with email {email}")
    return user.id


async def _change_password(url: str, secret_key: str, email: str, password: str) -> None:
    engine = create_engine(url, secret_key=secret_key, pool_size=1)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            user_id = await _find(session, email)
            await set_password(session, user_id, password)
            await end_user_sessions(session, user_id)
    finally:
        await engine.dispose()


async def _issue_token(url: str, secret_key: str, email: str, name: str) -> str:
    engine = create_engine(url, secret_key=secret_key, pool_size=1)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            return await issue_api_token(session, await _find(session, email), name)
    finally:
        await engine.dispose()


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)

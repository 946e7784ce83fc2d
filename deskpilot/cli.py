"""The `deskpilot` command."""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from api.app import create_app
from deskpilot import migrate
from deskpilot.logs import configure_logging
from deskpilot.ports import PortInUseError, ensure_port_free
from deskpilot.runtime import database_url
from deskpilot.settings import ConfigurationError, Settings, get_settings
from models.accounts import AccountError, create_user
from models.db import create_engine, session_factory, unit_of_work

app = typer.Typer(
    help="deskpilot: the AI support desk for Shopify merchants.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Merchant accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")


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
) -> None:
    """Start everything on this machine: database (embedded unless DATABASE_URL), migrations, API."""
    settings = _settings()
    # A service manager's SIGTERM must clean up like Ctrl-C (uvicorn re-raises the
    # signal after its graceful shutdown; the default action would orphan Postgres).
    signal.signal(signal.SIGTERM, _interrupt)
    host = host or settings.api_host
    port = port or settings.api_port
    try:
        ensure_port_free(host, port, what="the API", setting="--port or DESKPILOT_API_PORT")
        secret_key = settings.resolve_secret_key()
        with database_url(settings, owner=True) as url:
            asyncio.run(migrate.upgrade(url))
            typer.echo(
                f"deskpilot is up\n"
                f"  API        http://{host}:{port}  (/healthz, /readyz, /docs)\n"
                f"  database   {'embedded, ' + str(settings.resolved_home() / 'pgdata') if settings.embedded_database else 'DATABASE_URL'}\n"
                f"Press Ctrl-C to stop."
            )
            asyncio.run(_serve(url, secret_key, host, port))
    except (ConfigurationError, PortInUseError) as exc:
        raise _fail(str(exc), 2) from exc
    except KeyboardInterrupt:
        pass  # Ctrl-C before the server took over; the context above stopped Postgres.
    typer.echo("deskpilot stopped")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


async def _serve(url: str, secret_key: str, host: str, port: int) -> None:
    engine = create_engine(url, secret_key=secret_key)
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host=host, port=port, log_config=None)
    )
    try:
        await server.serve()
    finally:
        await engine.dispose()


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


@user_app.command("create")
def user_create(
    email: str, name: Annotated[str | None, typer.Option(help="Display name")] = None
) -> None:
    """Create a merchant account with a trial subscription and the default playbooks."""
    settings = _settings()
    try:
        secret_key = settings.resolve_secret_key()
        with database_url(settings) as url:
            user_id = asyncio.run(_create_user(url, secret_key, email, name))
    except (ConfigurationError, AccountError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"created user {user_id} <{email}>")


async def _create_user(url: str, secret_key: str, email: str, name: str | None) -> str:
    engine = create_engine(url, secret_key=secret_key, pool_size=1)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            user = await create_user(session, email, name)
            return str(user.id)
    finally:
        await engine.dispose()


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)

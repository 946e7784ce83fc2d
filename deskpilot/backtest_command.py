"""`deskpilot playbook backtest NAME [--days 30] [--email MERCHANT] [--json]`: replay one of a
merchant's playbooks over their messages of the last days, as POST
/api/playbooks/{id}/backtest does (services.playbook_backtest), changing nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from deskpilot.demo import DEMO_EMAIL
from deskpilot.runtime import database_url
from domain.playbook_backtest import describe
from kernel.errors import DeskpilotError
from kernel.logs import configure_logging
from kernel.settings import ConfigurationError, get_settings
from models.db import create_engine, session_factory
from services.accounts import AccountError, find_user
from services.playbook_backtest import (
    DEFAULT_DAYS,
    MAX_DAYS,
    BacktestIn,
    BacktestOut,
    backtest,
    playbook_named,
)
from services.playbook_settings import PlaybookRulesIn

playbook_app = typer.Typer(help="A merchant's playbooks.", no_args_is_help=True)


@playbook_app.command("backtest")
def backtest_command(
    name: Annotated[str, typer.Argument(help="the playbook's name (or id)")],
    days: Annotated[
        int, typer.Option(min=1, max=MAX_DAYS, help="how many days back to replay")
    ] = DEFAULT_DAYS,
    email: Annotated[
        str, typer.Option(help="the merchant's email (default: the demo merchant)")
    ] = DEMO_EMAIL,
    without_approval: Annotated[
        bool,
        typer.Option(
            "--without-approval",
            help="as if its 'A person approves' were switched off: what it would do alone",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON answer")] = False,
) -> None:
    """What the playbook would have done with the last DAYS of inbound messages, beside what
    people decided on them. Uses the stored suggestions; nothing runs, nothing is sent."""
    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        secret_key = settings.resolve_secret_key()
        with database_url(settings) as url:
            result = asyncio.run(_backtest(url, secret_key, email, name, days, without_approval))
    except (ConfigurationError, AccountError, DeskpilotError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(_text(result))


async def _backtest(
    url: str, secret_key: str, email: str, name: str, days: int, without_approval: bool
) -> BacktestOut:
    engine = create_engine(url, secret_key=secret_key, pool_size=1)
    try:
        async with session_factory(engine)() as session:
            user = await find_user(session, email)
            if user is None:
                raise AccountError(f"no user with email {email}")
            playbook = await playbook_named(session, user.id, name)
            draft = (
                PlaybookRulesIn(
                    trigger=playbook.trigger,
                    conditions=playbook.conditions,
                    actions=playbook.actions,
                    requires_approval=False,
                )
                if without_approval
                else None
            )
            return await backtest(session, user.id, playbook.id, BacktestIn(days=days, draft=draft))
    finally:
        await engine.dispose()


def _text(result: BacktestOut) -> str:
    lines = [
        f"Backtest of {result.playbook_name!r}"
        f"{' as if no person had to approve' if result.draft else ''}, messages received "
        f"{result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC",
        *describe(result, result.days),
    ]
    if result.truncated:
        lines.append(f"(only the newest {result.messages} of the window were replayed)")
    if result.examples:
        lines.append("Examples (disagreements first):")
    for e in result.examples:
        agreed = {True: "agreed", False: "DISAGREED", None: "undecided"}[e.agreed]
        confidence = f"{e.confidence:.2f}" if e.confidence is not None else "-"
        held = f" [{', '.join(e.blocked_by)}]" if e.blocked_by else ""
        lines.append(
            f"  {e.received_at:%Y-%m-%d %H:%M}  {e.outcome.value:7} {e.action_type or '-':12} "
            f"{confidence}  person: {e.decision.value:8} {agreed:9} {e.thread_url}  "
            f"{json.dumps(e.subject, ensure_ascii=False)}{held}"
        )
    return "\n".join(lines)

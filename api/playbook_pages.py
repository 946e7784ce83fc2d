"""The playbook pages: the list (with the automation settings, creating and deleting custom
playbooks) and one playbook (the WHEN / IF / THEN rule builder, the JSON as an advanced
view, its executions, and a dry run on a recent message).

Server-rendered forms that work without JavaScript (the builder's add / remove buttons post
the form and get it back one row longer or shorter); every POST carries the session's CSRF
token. The data comes from the same services as the JSON API (api/settings_api.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api import rule_form
from api.deps import CsrfProtected, SessionDep, WebUser
from api.rendering import render
from api.temporal_links import temporal_ui_url
from domain.playbook_backtest import describe
from domain.playbook_rules import (
    CONDITION_FIELDS,
    Channel,
    Intent,
    OrderTopic,
    PlaybookRuleError,
    PlaybookRules,
)
from kernel.enums import ActionType
from kernel.errors import Conflict, Invalid, NotFound
from models.playbook import Playbook
from models.playbook_history import recent_messages
from services.automation_settings import (
    AutomationSettingsPatch,
    InvalidAutomationSettings,
    get_automation_settings,
    update_automation_settings,
)
from services.onboarding import note_playbooks_viewed
from services.playbook_backtest import DEFAULT_DAYS, MAX_DAYS, BacktestIn, backtest
from services.playbook_catalog import PlaybookCreate, create_playbook, delete_playbook
from services.playbook_dry_run import DryRunOut, dry_run
from services.playbook_executions import list_executions
from services.playbook_settings import (
    PlaybookPatch,
    PlaybookRulesIn,
    get_playbook,
    list_playbooks,
    patch_playbook_flags,
    update_playbook_rules,
)
from services.threshold_proposals import proposals_for_playbook

router = APIRouter(include_in_schema=False)

# Messages a redirect may ask the page to show; never text taken from the URL itself.
NOTICES = {
    "enabled": "Enabled.",
    "disabled": "Disabled.",
    "saved": "Saved.",
    "created": "Created, switched off: build its rules, then enable it.",
    "deleted": "Deleted.",
    "automation_on": "Automation is on: playbooks may act on their own again.",
    "automation_off": "All automation is paused: every suggestion waits for a person.",
    "automation_saved": "Automation settings saved.",
}
MISSING_PLAYBOOK = "That playbook was not found: it may have been removed."
EXECUTIONS_PAGE_SIZE = 20
_MAX_JSON_FIELD = 100_000
WEEKDAYS = ((1, "Mon"), (2, "Tue"), (3, "Wed"), (4, "Thu"), (5, "Fri"), (6, "Sat"), (7, "Sun"))
ACTION_LABELS = {
    "approve_suggestion": "Approve the suggestion",
    "reply_with_template": "Reply with a template",
    "escalate": "Escalate to a person",
    "wait": "Wait",
    "send_followup": "Send a follow-up",
    "tag_thread": "Tag the thread",
    "close_thread": "Close the thread",
}
# What a new custom playbook starts as: it matches every message and only asks a person.
NEW_PLAYBOOK_RULES: dict[str, Any] = {
    "trigger": {"version": 2, "event": "message.received"},
    "conditions": [],
    "actions": [{"version": 2, "type": "escalate", "reason": "A person looks first."}],
}


def _notice(value: str | None) -> str | None:
    return NOTICES.get(value or "")


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "on", "yes"}


# --- the list, with the automation settings --------------------------------------------------


def _automation_form(settings: Any) -> dict[str, Any]:
    return {
        "daily_refund_cap": format(settings.daily_refund_cap.normalize(), "f"),
        "daily_execution_cap": str(settings.daily_execution_cap),
        "pause_after_failures": str(settings.pause_after_failures),
        "timezone": settings.timezone,
        "business_hours_start": str(settings.business_hours_start),
        "business_hours_end": str(settings.business_hours_end),
        "business_days": [str(d) for d in settings.business_days],
    }


async def _playbooks(
    request: Request,
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    automation_form: dict[str, Any] | None = None,
    automation_errors: dict[str, str] | None = None,
    create_form: dict[str, str] | None = None,
    create_errors: dict[str, str] | None = None,
) -> HTMLResponse:
    playbooks = await list_playbooks(session, user_id)
    automation = await get_automation_settings(session, user_id)
    await session.commit()  # the first read stores the default settings
    return render(
        request,
        "playbooks.html",
        status_code=status_code,
        playbooks=playbooks,
        automation=automation,
        automation_form=automation_form or _automation_form(automation),
        automation_errors=automation_errors or {},
        create_form=create_form or {"name": "", "description": ""},
        create_errors=create_errors or {},
        weekdays=WEEKDAYS,
        notice=notice,
        error=error,
    )


async def _missing_playbook(
    request: Request, session: AsyncSession, user_id: uuid.UUID
) -> HTMLResponse:
    # A page, not the API's JSON: a stale link lands on the list with a word on why.
    await session.rollback()
    return await _playbooks(request, session, user_id, error=MISSING_PLAYBOOK, status_code=404)


@router.get("/playbooks", response_class=HTMLResponse)
async def playbooks_page(
    request: Request, user_id: WebUser, session: SessionDep, notice: str | None = None
) -> HTMLResponse:
    # The first-run checklist's "review the playbooks" step; committed by _playbooks.
    await note_playbooks_viewed(session, user_id)
    return await _playbooks(request, session, user_id, notice=_notice(notice))


@router.post("/playbooks", response_class=HTMLResponse, response_model=None)
async def create_playbook_form(
    request: Request,
    user_id: CsrfProtected,
    session: SessionDep,
    name: Annotated[str, Form(max_length=1_000)] = "",
    description: Annotated[str, Form(max_length=5_000)] = "",
) -> HTMLResponse | RedirectResponse:
    typed = {"name": name, "description": description}
    try:
        body = PlaybookCreate(
            **NEW_PLAYBOOK_RULES,
            name=name.strip(),
            description=description.strip() or None,
            enabled=False,  # nothing fires before its rules are built
        )
    except ValidationError as exc:
        errors = {str(e["loc"][0]): f"{e['loc'][0]}: {e['msg']}" for e in exc.errors()}
        return await _playbooks(
            request, session, user_id, status_code=422, create_form=typed, create_errors=errors
        )
    playbook = await create_playbook(session, user_id, body)
    await session.commit()
    return RedirectResponse(f"/playbooks/{playbook.id}?notice=created", status_code=303)


@router.post("/playbooks/{playbook_id}/enabled", response_model=None)
async def playbook_enabled_form(
    request: Request,
    playbook_id: uuid.UUID,
    user_id: CsrfProtected,
    session: SessionDep,
    enabled: Annotated[str, Form(max_length=10)],
) -> HTMLResponse | RedirectResponse:
    on = _truthy(enabled)
    try:
        await patch_playbook_flags(session, user_id, playbook_id, PlaybookPatch(enabled=on))
    except NotFound:
        return await _missing_playbook(request, session, user_id)
    await session.commit()
    notice = "enabled" if on else "disabled"
    return RedirectResponse(f"/playbooks?notice={notice}#p-{playbook_id}", status_code=303)


@router.post("/playbooks/{playbook_id}/delete", response_model=None)
async def playbook_delete_form(
    request: Request, playbook_id: uuid.UUID, user_id: CsrfProtected, session: SessionDep
) -> HTMLResponse | RedirectResponse:
    try:
        await delete_playbook(session, user_id, playbook_id)
    except NotFound:
        return await _missing_playbook(request, session, user_id)
    except Conflict as exc:
        await session.rollback()
        return await _playbooks(
            request, session, user_id, error=f"Not deleted: {exc.message}.", status_code=409
        )
    await session.commit()
    return RedirectResponse("/playbooks?notice=deleted", status_code=303)


@router.post("/automation/enabled", response_model=None)
async def automation_enabled_form(
    user_id: CsrfProtected, session: SessionDep, enabled: Annotated[str, Form(max_length=10)]
) -> RedirectResponse:
    on = _truthy(enabled)
    await update_automation_settings(session, user_id, AutomationSettingsPatch(enabled=on))
    await session.commit()
    notice = "automation_on" if on else "automation_off"
    return RedirectResponse(f"/playbooks?notice={notice}#automation", status_code=303)


_AUTOMATION_FIELDS = (
    "daily_refund_cap",
    "daily_execution_cap",
    "pause_after_failures",
    "timezone",
    "business_hours_start",
    "business_hours_end",
)


@router.post("/automation", response_class=HTMLResponse, response_model=None)
async def automation_form(
    request: Request, user_id: CsrfProtected, session: SessionDep
) -> HTMLResponse | RedirectResponse:
    posted = await request.form()
    typed: dict[str, Any] = {
        name: str(posted.get(name) or "")[:100].strip() for name in _AUTOMATION_FIELDS
    }
    typed["business_days"] = [str(d) for d in posted.getlist("business_days")][:7]
    errors: dict[str, str] = {}
    if not typed["business_days"]:
        errors["business_days"] = "choose at least one day"
    given = {k: v for k, v in typed.items() if v and k != "business_days"}
    try:
        patch = AutomationSettingsPatch.model_validate(
            {**given, "business_days": typed["business_days"] or None}
        )
        if not errors:
            await update_automation_settings(session, user_id, patch)
    except ValidationError as exc:
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else "settings"
            errors.setdefault(name, e["msg"].removeprefix("Value error, "))
    except InvalidAutomationSettings as exc:
        errors[str(exc.details["field"])] = str(exc.details["reason"])
    if errors:
        await session.rollback()
        return await _playbooks(
            request,
            session,
            user_id,
            status_code=422,
            automation_form=typed,
            automation_errors=errors,
        )
    await session.commit()
    return RedirectResponse("/playbooks?notice=automation_saved#automation", status_code=303)


# --- one playbook ----------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%d %b %Y, %H:%M UTC")


def show(value: Any) -> str:
    """A fact or a condition's value as a person reads it; None is a fact nobody knows."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(show(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _pretty(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def _json_form(playbook: Playbook) -> dict[str, Any]:
    return {
        "trigger": _pretty(playbook.trigger),
        "conditions": _pretty(playbook.conditions),
        "actions": _pretty(playbook.actions),
        "confidence_threshold": f"{playbook.confidence_threshold:g}",
        "requires_approval": playbook.requires_approval,
    }


def _flags(playbook: Playbook) -> dict[str, Any]:
    return {
        "confidence_threshold": f"{playbook.confidence_threshold:g}",
        "requires_approval": playbook.requires_approval,
        "priority": str(playbook.priority),
        "stop_processing": playbook.stop_processing,
        "run_once_per_thread": playbook.run_once_per_thread,
    }


def _builder(playbook: Playbook) -> rule_form.RuleForm:
    try:
        rules = PlaybookRules.parse(playbook.trigger, playbook.conditions, playbook.actions)
    except PlaybookRuleError:
        return rule_form.RuleForm()  # unreadable rules: start again (the JSON view shows them)
    return rule_form.form_from_rules(rules)


def _vocabulary() -> dict[str, Any]:
    return {
        "events": rule_form.EVENTS,
        "fields": list(CONDITION_FIELDS),
        "operators_for": rule_form.operators_for,
        "value_kind": rule_form.value_kind,
        "operator_labels": rule_form.OPERATOR_LABELS,
        "intents": [i.value for i in Intent],
        "channels": [c.value for c in Channel],
        "topics": [t.value for t in OrderTopic],
        "suggested_types": [t.value for t in ActionType],
        "units": list(rule_form.UNITS),
        "action_types": rule_form.ACTION_TYPES,
        "action_labels": ACTION_LABELS,
        "script_vocabulary": {
            **rule_form.vocabulary(),
            "action_types": [t.value for t in ActionType],
        },
    }


async def _playbook_page(
    request: Request,
    session: AsyncSession,
    user_id: uuid.UUID,
    playbook_id: uuid.UUID,
    *,
    status_code: int = 200,
    cursor: str | None = None,
    **context: Any,
) -> HTMLResponse:
    # Read again: a rollback before (a refused form, a dry run) expired the loaded row.
    playbook = await get_playbook(session, user_id, playbook_id)
    executions_error = None
    try:
        executions = await list_executions(
            session, user_id, playbook.id, cursor=cursor, limit=EXECUTIONS_PAGE_SIZE
        )
    except Invalid as exc:
        executions_error = f"{exc.message}. Showing the newest instead."
        cursor = None
        executions = await list_executions(
            session, user_id, playbook.id, limit=EXECUTIONS_PAGE_SIZE
        )
    settings = request.app.state.settings
    recent = await recent_messages(session, user_id)
    values: dict[str, Any] = {
        "playbook": playbook,
        "builder": _builder(playbook),
        "builder_errors": {},
        "flags": _flags(playbook),
        "form": _json_form(playbook),
        "errors": [],
        "invalid": set(),
        "json_open": False,
        "notice": None,
        "executions": executions.executions,
        "executions_error": executions_error,
        "older_url": f"/playbooks/{playbook.id}?cursor={executions.next_cursor}#executions"
        if executions.next_cursor
        else None,
        "newest_url": f"/playbooks/{playbook.id}#executions" if cursor else None,
        "workflow_url": lambda workflow_id: temporal_ui_url(settings, workflow_id),
        "recent": recent,
        "recent_ids": {str(m.id) for m in recent},
        "when": _when,
        "show": show,
        "test": None,
        "test_error": None,
        "test_message_id": "",
        "backtest": None,
        "backtest_lines": [],
        "backtest_days": str(DEFAULT_DAYS),
        # Beside the threshold field; read only, the merchant saves any change themselves.
        "thresholds": await proposals_for_playbook(session, user_id, playbook),
        **_vocabulary(),
    }
    values.update(context)
    return render(request, "playbook_edit.html", status_code=status_code, **values)


@router.get("/playbooks/{playbook_id}", response_class=HTMLResponse)
async def playbook_edit_page(
    request: Request,
    playbook_id: uuid.UUID,
    user_id: WebUser,
    session: SessionDep,
    notice: str | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    try:
        await get_playbook(session, user_id, playbook_id)
    except NotFound:
        return await _missing_playbook(request, session, user_id)
    return await _playbook_page(
        request, session, user_id, playbook_id, cursor=cursor, notice=_notice(notice)
    )


def _read_json(part: str, text: str, errors: list[str]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        errors.append(f"{part}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
        return None


def _invalid_fields(errors: list[str]) -> set[str]:
    """The fields an error names: each message starts with its part ("conditions[0]: ...")."""
    parts = ("trigger", "conditions", "actions", "confidence threshold")
    return {p.replace(" ", "_") for p in parts if any(e.startswith(p) for e in errors)}


def _threshold(text: str) -> float:
    threshold = float(text)
    if not 0 <= threshold <= 1:
        raise ValueError
    return threshold


THRESHOLD_ERROR = "confidence threshold: a number from 0 to 1, such as 0.9"


@router.post("/playbooks/{playbook_id}", response_class=HTMLResponse, response_model=None)
async def playbook_edit_form(
    request: Request,
    playbook_id: uuid.UUID,
    user_id: CsrfProtected,
    session: SessionDep,
    trigger: Annotated[str, Form(max_length=_MAX_JSON_FIELD)] = "",
    conditions: Annotated[str, Form(max_length=_MAX_JSON_FIELD)] = "",
    actions: Annotated[str, Form(max_length=_MAX_JSON_FIELD)] = "",
    confidence_threshold: Annotated[str, Form(max_length=20)] = "",
    requires_approval: Annotated[str | None, Form(max_length=10)] = None,
) -> HTMLResponse | RedirectResponse:
    """The advanced view: the three documents as JSON."""
    # Ownership first: another merchant's id is 404 whatever the form holds.
    try:
        await get_playbook(session, user_id, playbook_id)
    except NotFound:
        return await _missing_playbook(request, session, user_id)
    form = {
        "trigger": trigger,
        "conditions": conditions,
        "actions": actions,
        "confidence_threshold": confidence_threshold,
        "requires_approval": requires_approval is not None,
    }
    errors: list[str] = []
    documents = {
        part: _read_json(part, form[part], errors) for part in ("trigger", "conditions", "actions")
    }
    threshold: float | None = None
    try:
        threshold = _threshold(confidence_threshold)
    except ValueError:
        errors.append(THRESHOLD_ERROR)
    if not errors:
        try:
            rules = PlaybookRulesIn(
                **documents,
                confidence_threshold=threshold,
                requires_approval=requires_approval is not None,
            )
            await update_playbook_rules(session, user_id, playbook_id, rules)
        except PlaybookRuleError as exc:
            errors.append(exc.message)
        except ValidationError as exc:
            errors.extend(e["msg"] for e in exc.errors())
    if errors:
        # Nothing was changed (the rules are parsed before any is assigned); the session
        # is rolled back. What the person typed stays in the form, beside what is wrong.
        await session.rollback()
        return await _playbook_page(
            request,
            session,
            user_id,
            playbook_id,
            status_code=422,
            form=form,
            errors=errors,
            invalid=_invalid_fields(errors),
            json_open=True,
        )
    await session.commit()
    return RedirectResponse(f"/playbooks/{playbook_id}?notice=saved", status_code=303)


def _read_flags(posted: rule_form.FormData, errors: dict[str, str]) -> dict[str, Any]:
    flags: dict[str, Any] = {
        "confidence_threshold": rule_form.first(posted, "confidence_threshold").strip(),
        "requires_approval": bool(posted.get("requires_approval")),
        "priority": rule_form.first(posted, "priority").strip(),
        "stop_processing": bool(posted.get("stop_processing")),
        "run_once_per_thread": bool(posted.get("run_once_per_thread")),
    }
    try:
        _threshold(flags["confidence_threshold"])
    except ValueError:
        errors["confidence_threshold"] = THRESHOLD_ERROR
    if not flags["priority"].isdigit() or not 0 <= int(flags["priority"]) <= 1_000:
        errors["priority"] = "priority: a whole number from 0 (runs first) to 1000"
    return flags


def _rules_in(built: rule_form.Built, flags: dict[str, Any]) -> PlaybookRulesIn:
    """The builder's documents and flags (read by _read_flags, without errors)."""
    return PlaybookRulesIn(
        trigger=built.trigger,
        conditions=built.conditions,
        actions=built.actions,
        confidence_threshold=float(flags["confidence_threshold"]),
        requires_approval=flags["requires_approval"],
        priority=int(flags["priority"]),
        stop_processing=flags["stop_processing"],
        run_once_per_thread=flags["run_once_per_thread"],
    )


@router.post("/playbooks/{playbook_id}/rules", response_class=HTMLResponse, response_model=None)
async def playbook_builder_form(
    request: Request, playbook_id: uuid.UUID, user_id: CsrfProtected, session: SessionDep
) -> HTMLResponse | RedirectResponse:
    """The rule builder: its controls become the version-2 documents (api.rule_form), which
    the domain validates; an error sits beside the block it names."""
    try:
        await get_playbook(session, user_id, playbook_id)
    except NotFound:
        return await _missing_playbook(request, session, user_id)
    posted_form = await request.form()
    posted = {name: [str(v) for v in posted_form.getlist(name)] for name in posted_form}
    builder = rule_form.read_form(posted)
    errors: dict[str, str] = {}
    flags = _read_flags(posted, errors)
    edit = rule_form.first(posted, "edit")
    if edit and edit != "save":
        # An add / remove button without JavaScript: the form again, changed, unsaved.
        return await _playbook_page(
            request,
            session,
            user_id,
            playbook_id,
            builder=rule_form.apply_edit(builder, edit),
            flags=flags,
        )
    built = rule_form.build(builder)
    errors.update(built.errors)
    if not errors:
        try:
            rules = _rules_in(built, flags)
            await update_playbook_rules(session, user_id, playbook_id, rules)
        except (PlaybookRuleError, ValidationError) as exc:
            _add_rule_errors(exc, built, errors)
    if errors:
        await session.rollback()
        return await _playbook_page(
            request,
            session,
            user_id,
            playbook_id,
            status_code=422,
            builder=builder,
            builder_errors=errors,
            flags=flags,
        )
    await session.commit()
    return RedirectResponse(f"/playbooks/{playbook_id}?notice=saved", status_code=303)


def _add_rule_errors(
    exc: PlaybookRuleError | ValidationError, built: rule_form.Built, errors: dict[str, str]
) -> None:
    """Why the rules the form built were refused, keyed by the form field to show it at."""
    if isinstance(exc, PlaybookRuleError):
        errors[built.error_key(exc.message)] = exc.message
        return
    for e in exc.errors():
        errors.setdefault(str(e["loc"][0]) if e["loc"] else "trigger", e["msg"])


@router.post("/playbooks/{playbook_id}/test", response_class=HTMLResponse, response_model=None)
async def playbook_test_form(
    request: Request,
    playbook_id: uuid.UUID,
    user_id: CsrfProtected,
    session: SessionDep,
    message_id: Annotated[str, Form(max_length=100)] = "",
    pasted_id: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """A dry run on one of the merchant's messages: what the playbook would do, and why."""
    try:
        await get_playbook(session, user_id, playbook_id)
    except NotFound:
        return await _missing_playbook(request, session, user_id)
    chosen = (pasted_id or message_id).strip()
    result: DryRunOut | None = None
    error: str | None = None
    try:
        parsed = uuid.UUID(chosen)
    except ValueError:
        error = "Pick a message, or paste a message id (a UUID, as in the message's address)."
    else:
        try:
            result = await dry_run(session, user_id, playbook_id, parsed)
        except NotFound:
            error = "That message was not found: it may belong to another account."
    return await _playbook_page(
        request,
        session,
        user_id,
        playbook_id,
        status_code=200 if error is None else 422,
        test=result,
        test_error=error,
        test_message_id=chosen,
    )


@router.post("/playbooks/{playbook_id}/backtest", response_class=HTMLResponse, response_model=None)
async def playbook_backtest_form(
    request: Request, playbook_id: uuid.UUID, user_id: CsrfProtected, session: SessionDep
) -> HTMLResponse:
    """The builder's Backtest button: the form's rules, unsaved, replayed over the merchant's
    messages of the last days (services.playbook_backtest); the form comes back as it was."""
    try:
        await get_playbook(session, user_id, playbook_id)
    except NotFound:
        return await _missing_playbook(request, session, user_id)
    posted_form = await request.form()
    posted = {name: [str(v) for v in posted_form.getlist(name)] for name in posted_form}
    builder = rule_form.read_form(posted)
    errors: dict[str, str] = {}
    flags = _read_flags(posted, errors)
    days = rule_form.first(posted, "backtest_days").strip() or str(DEFAULT_DAYS)
    if not days.isdigit() or not 1 <= int(days) <= MAX_DAYS:
        errors["backtest_days"] = f"days: a whole number from 1 to {MAX_DAYS}"
    built = rule_form.build(builder)
    errors.update(built.errors)
    result = None
    if not errors:
        try:
            draft = _rules_in(built, flags)
            result = await backtest(
                session, user_id, playbook_id, BacktestIn(days=int(days), draft=draft)
            )
        except (PlaybookRuleError, ValidationError) as exc:
            _add_rule_errors(exc, built, errors)
    if errors:
        await session.rollback()
    return await _playbook_page(
        request,
        session,
        user_id,
        playbook_id,
        status_code=422 if errors else 200,
        builder=builder,
        builder_errors=errors,
        flags=flags,
        backtest=result,
        backtest_lines=describe(result, result.days) if result else [],
        backtest_days=days,
    )

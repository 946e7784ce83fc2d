"""A merchant's automation settings as the API reads and changes them: the one switch that
stops all automation, the daily caps, the self-pause and store-local business hours."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import BaseModel, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.errors import Malformed
from models.automation import AutomationSettings, automation_settings
from models.event import log_event

# In the tz database's directory, but not zones a merchant means.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})

# The column is Numeric(19, 4); the Integer columns stop at 2**31 - 1.
RefundCap = Annotated[Decimal, Field(ge=0, max_digits=19, decimal_places=4)]
StartHour = Annotated[int, Field(ge=0, le=23)]
EndHour = Annotated[int, Field(ge=1, le=24)]
ExecutionCap = Annotated[int, Field(ge=0, le=1_000_000)]
FailuresInARow = Annotated[int, Field(ge=1, le=1_000)]
IsoWeekday = Annotated[int, Field(ge=1, le=7, description="ISO weekday, Monday = 1")]


class InvalidAutomationSettings(Malformed):
    """The settings as changed cannot be used; `details` name the field and why."""

    code = "invalid_settings"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", details={"field": field, "reason": reason})


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


class AutomationSettingsOut(BaseModel):
    enabled: bool = Field(description="off: no playbook approves or acts on its own")
    daily_refund_cap: Decimal = Field(description="money refunded automatically per store day")
    daily_execution_cap: int = Field(description="automatic executions per store day")
    pause_after_failures: int = Field(description="a playbook pauses after this many in a row")
    timezone: str = Field(description="IANA zone of the store's day and business hours")
    business_hours_start: int = Field(description="hour the business day starts, 0-23")
    business_hours_end: int = Field(
        description="hour it ends (exclusive), 1-24; before the start: spans midnight"
    )
    business_days: list[int] = Field(description="ISO weekdays, Monday = 1")
    updated_at: datetime


class AutomationSettingsPatch(BaseModel):
    """The fields to change; those left out keep their value."""

    enabled: bool | None = None
    daily_refund_cap: RefundCap | None = None
    daily_execution_cap: ExecutionCap | None = None
    pause_after_failures: FailuresInARow | None = None
    timezone: str | None = Field(
        default=None, min_length=1, max_length=64, description='IANA, e.g. "Europe/Berlin"'
    )
    business_hours_start: StartHour | None = None
    business_hours_end: EndHour | None = None
    business_days: list[IsoWeekday] | None = Field(default=None, min_length=1, max_length=7)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in _zones():
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)")
        return value

    @field_validator("business_days")
    @classmethod
    def _distinct_days(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each weekday at most once")
        return None if value is None else sorted(value)


def settings_out(row: AutomationSettings) -> AutomationSettingsOut:
    return AutomationSettingsOut.model_validate(row, from_attributes=True)


async def get_automation_settings(
    session: AsyncSession, user_id: uuid.UUID
) -> AutomationSettingsOut:
    """The merchant's settings; the first read stores the defaults (the caller commits)."""
    return settings_out(await automation_settings(session, user_id))


def _json(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


async def update_automation_settings(
    session: AsyncSession, user_id: uuid.UUID, patch: AutomationSettingsPatch
) -> AutomationSettingsOut:
    """Apply the given fields, each change in the audit log: the switch as
    automation.enabled / automation.disabled, anything else as automation.updated."""
    row = await automation_settings(session, user_id, lock=True)
    given = patch.model_dump(exclude_unset=True, exclude_none=True)
    start = given.get("business_hours_start", row.business_hours_start)
    end = given.get("business_hours_end", row.business_hours_end)
    if start == end:
        # An end before the start spans midnight (domain.business_hours); an equal one
        # would be an empty day, most likely a typing slip: 0 to 24 is open all day.
        field = "business_hours_end" if "business_hours_end" in given else "business_hours_start"
        raise InvalidAutomationSettings(
            field, f"the business day cannot start and end at the same hour ({start})"
        )
    changed = {
        name: value
        for name, value in given.items()
        if name != "enabled" and getattr(row, name) != value
    }
    for name, value in changed.items():
        setattr(row, name, value)
    if "enabled" in given and given["enabled"] != row.enabled:
        row.enabled = given["enabled"]
        await log_event(
            session,
            "automation.enabled" if row.enabled else "automation.disabled",
            user_id=user_id,
            entity="automation_settings",
            entity_id=user_id,
        )
    if changed:
        await log_event(
            session,
            "automation.updated",
            user_id=user_id,
            entity="automation_settings",
            entity_id=user_id,
            payload={name: _json(value) for name, value in changed.items()},
        )
    await session.flush()
    await session.refresh(row)
    return settings_out(row)

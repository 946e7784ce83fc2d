"""Whether a moment falls in a store's business hours, in the store's own time zone. Pure."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from zoneinfo import ZoneInfo


def within_business_hours(
    now: datetime, timezone: str, start_hour: int, end_hour: int, days: Collection[int]
) -> bool:
    """`days` are ISO weekdays (Monday = 1); hours run [start, end) in local time. An end
    before the start spans midnight (22 to 6 is a night shift), counted on its start day."""
    local = now.astimezone(ZoneInfo(timezone))
    hour = local.hour
    if start_hour <= end_hour:
        return local.isoweekday() in days and start_hour <= hour < end_hour
    if hour >= start_hour:
        return local.isoweekday() in days
    yesterday = (local.isoweekday() - 2) % 7 + 1
    return hour < end_hour and yesterday in days

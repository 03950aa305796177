"""The ISO week an issue covers, in the newsletter's time zone, with a configurable first day."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pulseletter.errors import ContentError

WEEK_KEY = re.compile(r"^(\d{4})-W(\d{2})$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Week:
    """An issue's window: ``start`` inclusive, ``end`` exclusive, both aware."""

    key: str
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        last = self.end - timedelta(seconds=1)
        return f"{self.start:%d %b} – {last:%d %b %Y}"


def week_from_key(key: str, tz: ZoneInfo, week_start: str = "mon") -> Week:
    """``2026-W48`` -> the window. With week_start='mon' this is exactly the ISO week; with
    another first day it is the 7-day window that covers most (4 or more days) of that ISO
    week, e.g. with 'sun' 2026-W48 is Sun 22 Nov - Sat 28 Nov."""
    m = WEEK_KEY.match(key.strip())
    if not m:
        raise ContentError(f"week {key!r} must look like 2026-W48")
    year, number = int(m.group(1)), int(m.group(2))
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ContentError(
            f"week {key!r} does not exist (year {year} has no week {number})"
        ) from None
    day = DAYS.index(week_start)
    first = monday + timedelta(days=day if day <= 3 else day - 7)
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(first + timedelta(days=7), time(0), tzinfo=tz)
    return Week(key, start, end)


def week_containing(moment: datetime, tz: ZoneInfo, week_start: str = "mon") -> Week:
    """The window containing ``moment`` (in ``tz``), keyed by the ISO week it mostly covers."""
    local = moment.astimezone(tz).date()
    day = DAYS.index(week_start)
    first = local - timedelta(days=(local.weekday() - day) % 7)
    monday = first - timedelta(days=day) if day <= 3 else first + timedelta(days=7 - day)
    iso = monday.isocalendar()
    return week_from_key(f"{iso.year}-W{iso.week:02d}", tz, week_start)


def last_complete_week(now: datetime, tz: ZoneInfo, week_start: str = "mon") -> Week:
    """The most recent window that has fully ended: what a Monday-morning send covers."""
    current = week_containing(now, tz, week_start)
    return week_containing(current.start - timedelta(days=1), tz, week_start)


def utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)

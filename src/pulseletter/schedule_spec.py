"""Parse ``"mon 08:00"`` style weekly times. Shared by config validation and the scheduler."""

from __future__ import annotations

from datetime import time
from typing import NamedTuple

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WeeklyTime(NamedTuple):
    weekday: int  # 0 = Monday, as datetime.weekday()
    at: time


def parse_send_spec(spec: str) -> WeeklyTime:
    """``"mon 08:00"`` -> WeeklyTime(0, 08:00). Raises ValueError with a readable reason."""
    parts = spec.strip().lower().split()
    if len(parts) != 2 or parts[0][:3] not in WEEKDAYS:
        raise ValueError(f"{spec!r} must look like 'mon 08:00' (a weekday and a 24-hour time)")
    try:
        hour, minute = (int(x) for x in parts[1].split(":"))
        at = time(hour, minute)
    except ValueError:
        raise ValueError(f"{spec!r}: {parts[1]!r} is not a time like 08:00") from None
    return WeeklyTime(WEEKDAYS.index(parts[0][:3]), at)

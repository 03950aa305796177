"""A shifted clock for trying the service out: ``PULSELETTER_FAKE_NOW``.

``PULSELETTER_FAKE_NOW=2026-11-23T07:59:55+01:00 pulseletter serve`` starts the service's clock
at that moment; it then runs at normal speed. Use it to watch a send happen a few seconds after
start, in tests or on a staging copy. Never set it in production.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime

from pulseletter.errors import ConfigError
from pulseletter.service.app import Clock, system_clock

FAKE_NOW = "PULSELETTER_FAKE_NOW"


class ShiftedClock:
    """The system clock plus a fixed offset, so time still passes."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - system_clock()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def clock_from_env(environ: Mapping[str, str] | None = None) -> Clock | None:
    """The clock ``PULSELETTER_FAKE_NOW`` asks for, or None when it is not set."""
    value = (os.environ if environ is None else environ).get(FAKE_NOW, "").strip()
    if not value:
        return None
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            [f"{FAKE_NOW}: {value!r} is not an ISO 8601 time"], "environment"
        ) from None
    if start.tzinfo is None:
        raise ConfigError([f"{FAKE_NOW}: {value!r} needs a UTC offset, e.g. +00:00"], "environment")
    return ShiftedClock(start)

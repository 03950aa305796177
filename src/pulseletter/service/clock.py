"""A shifted clock for trying the service out: ``PULSELETTER_FAKE_NOW`` or
``PULSELETTER_CLOCK_OFFSET``. Never set either in production.

- ``PULSELETTER_FAKE_NOW=2026-11-23T07:59:55+01:00 pulseletter serve`` starts the service's
  clock at that moment when the process starts; it then runs at normal speed. Handy by hand:
  watch a send happen a few seconds after start.
- ``PULSELETTER_CLOCK_OFFSET=<seconds>`` shifts the clock by a fixed amount (negative: the
  past). Several processes, or a restart, given the same offset agree exactly on the time,
  which the lease between two ``serve`` processes needs. The tests use this one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pulseletter.errors import ConfigError
from pulseletter.service.app import Clock, system_clock

FAKE_NOW = "PULSELETTER_FAKE_NOW"
CLOCK_OFFSET = "PULSELETTER_CLOCK_OFFSET"


class ShiftedClock:
    """The system clock plus a fixed offset, so time still passes."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def clock_from_env(environ: Mapping[str, str] | None = None) -> Clock | None:
    """The clock the environment asks for, or None when neither variable is set."""
    env = os.environ if environ is None else environ
    offset = env.get(CLOCK_OFFSET, "").strip()
    if offset:
        try:
            return ShiftedClock(timedelta(seconds=float(offset)))
        except (ValueError, OverflowError):
            problem = f"{CLOCK_OFFSET}: {offset!r} is not a number of seconds"
            raise ConfigError([problem], "environment") from None
    value = env.get(FAKE_NOW, "").strip()
    if not value:
        return None
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        problem = f"{FAKE_NOW}: {value!r} is not an ISO 8601 time"
        raise ConfigError([problem], "environment") from None
    if start.tzinfo is None:
        problem = f"{FAKE_NOW}: {value!r} needs a UTC offset, e.g. +00:00"
        raise ConfigError([problem], "environment")
    return ShiftedClock(start - system_clock())

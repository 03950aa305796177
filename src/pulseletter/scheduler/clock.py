"""Let APScheduler read the App's clock instead of the wall clock.

APScheduler 3.x asks ``datetime.now()`` in two modules (the scheduler loop and the executor's
misfire check) and offers no hook. Tests (a FixedClock) and ``PULSELETTER_FAKE_NOW`` need the
scheduler to agree with the rest of the service about what time it is, so while a scheduler runs
with a non-system clock, those two module globals point to a ``datetime`` whose ``now()`` asks
that clock. With the system clock nothing is touched.
"""

from __future__ import annotations

import threading
from datetime import datetime, tzinfo

import apscheduler.executors.base as executor_base
import apscheduler.schedulers.base as scheduler_base

from pulseletter.service.app import Clock

_MODULES = (scheduler_base, executor_base)
_ORIGINAL = datetime
_lock = threading.Lock()


def follow(clock: Clock) -> None:
    """Route APScheduler's ``datetime.now()`` through ``clock`` (one clock per process)."""

    class ClockDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            moment = clock()
            return moment.astimezone(tz) if tz is not None else moment

    with _lock:
        for module in _MODULES:
            module.datetime = ClockDatetime  # type: ignore[attr-defined]


def restore() -> None:
    with _lock:
        for module in _MODULES:
            module.datetime = _ORIGINAL  # type: ignore[attr-defined]

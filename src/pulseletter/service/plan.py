"""When the weekly jobs fire: cron triggers built from ``schedule.*``, and their fire times.

All arithmetic is done in UTC: adding a timedelta to a local time resets ``fold`` and would
turn the second 02:30 of a fall-back night into the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from pulseletter.config import Settings
from pulseletter.schedule_spec import WEEKDAYS, parse_send_spec

TICK = timedelta(microseconds=1)


def weekly_trigger(spec: str, tz: ZoneInfo) -> CronTrigger:
    """``"mon 08:00"`` in ``tz`` as an APScheduler cron trigger (wall-clock time across DST)."""
    weekly = parse_send_spec(spec)
    return CronTrigger(
        day_of_week=WEEKDAYS[weekly.weekday],
        hour=weekly.at.hour,
        minute=weekly.at.minute,
        timezone=tz,
    )


def fire_times(trigger: CronTrigger, after: datetime, until: datetime) -> list[datetime]:
    """Every fire time t with ``after < t <= until``, in UTC, each once."""
    out: list[datetime] = []
    previous: datetime | None = None
    now = after.astimezone(UTC) + TICK
    end = until.astimezone(UTC)
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            return out
        fire = fire.astimezone(UTC)
        if fire > end:
            return out
        if not out or fire > out[-1]:
            out.append(fire)
        previous, now = fire, fire + TICK


def last_fire(trigger: CronTrigger, at: datetime) -> datetime | None:
    """The latest fire time at or before ``at`` (a weekly trigger fires within 8 days)."""
    times = fire_times(trigger, at - timedelta(days=8), at)
    return times[-1] if times else None


def next_fires(trigger: CronTrigger, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``."""
    out: list[datetime] = []
    start = after
    while len(out) < count:
        batch = fire_times(trigger, start, start + timedelta(days=8 * count))
        if not batch:
            return out
        out.extend(batch[: count - len(out)])
        start = out[-1]
    return out


@dataclass(frozen=True)
class Plan:
    """The configured schedule: the send trigger, the optional prepare trigger, the grace."""

    tz: ZoneInfo
    send: CronTrigger
    prepare: CronTrigger | None
    grace: timedelta
    ingest_every: timedelta | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Plan:
        s = settings.schedule
        tz = settings.timezone
        return cls(
            tz=tz,
            send=weekly_trigger(s.send, tz),
            prepare=weekly_trigger(s.prepare, tz) if s.prepare else None,
            grace=timedelta(hours=s.grace_hours),
            ingest_every=(
                timedelta(minutes=s.ingest_interval_minutes) if s.ingest_interval_minutes else None
            ),
        )

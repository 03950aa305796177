"""When the weekly send fires: local wall-clock time across both DST changes, and the
fall-back night on which a cron slot inside the repeated hour fires twice."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pulseletter.content.week import last_complete_week
from pulseletter.service.plan import fire_times, last_fire, next_fires, weekly_trigger


@pytest.mark.parametrize(
    ("zone", "after", "expected_utc_hours"),
    [
        # Berlin: summer time starts Sun 29 Mar 2026, ends Sun 25 Oct 2026
        ("Europe/Berlin", datetime(2026, 3, 20, tzinfo=UTC), [7, 6, 6]),
        ("Europe/Berlin", datetime(2026, 10, 16, tzinfo=UTC), [6, 7, 7]),
        # New York: starts Sun 8 Mar 2026, ends Sun 1 Nov 2026
        ("America/New_York", datetime(2026, 2, 27, tzinfo=UTC), [13, 12, 12]),
        ("America/New_York", datetime(2026, 10, 23, tzinfo=UTC), [12, 13, 13]),
    ],
)
def test_monday_eight_stays_eight_local_across_dst(
    zone: str, after: datetime, expected_utc_hours: list[int]
) -> None:
    tz = ZoneInfo(zone)
    fires = next_fires(weekly_trigger("mon 08:00", tz), after, 3)
    assert [f.astimezone(tz).strftime("%a %H:%M") for f in fires] == ["Mon 08:00"] * 3
    assert [f.hour for f in fires] == expected_utc_hours
    assert all(f.tzinfo is UTC for f in fires)


def test_a_slot_in_the_repeated_hour_fires_twice_for_the_same_week() -> None:
    tz = ZoneInfo("Europe/Berlin")
    trigger = weekly_trigger("sun 02:30", tz)
    night = fire_times(
        trigger, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC)
    )
    assert night == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    ]
    # both fires cover the same week, so the issue key makes the second one a no-op
    keys = {last_complete_week(t, tz).key for t in night}
    assert keys == {"2026-W42"}


def test_a_slot_in_the_spring_gap_still_fires_once() -> None:
    tz = ZoneInfo("Europe/Berlin")
    trigger = weekly_trigger("sun 02:30", tz)  # 02:30 does not exist on 29 Mar 2026
    fires = fire_times(
        trigger, datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)
    )
    assert len(fires) == 1


def test_last_fire_is_the_latest_slot_at_or_before_a_moment() -> None:
    tz = ZoneInfo("Europe/Berlin")
    trigger = weekly_trigger("mon 08:00", tz)
    slot = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert last_fire(trigger, slot) == slot
    assert last_fire(trigger, datetime(2026, 11, 23, 6, 59, tzinfo=UTC)) == datetime(
        2026, 11, 16, 7, 0, tzinfo=UTC
    )

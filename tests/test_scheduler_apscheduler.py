"""The real APScheduler (BackgroundScheduler, SQLAlchemyJobStore on the test database) driven by
a fixed clock: tests move the clock and wake the scheduler; nothing waits for wall-clock time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent

from conftest import ConfigWriter, FixedClock
from pulseletter.db.migrate import upgrade
from pulseletter.mail.transports import MemoryTransport
from pulseletter.scheduler.runner import (
    INGEST_ID,
    PREPARE_ID,
    SEND_ID,
    TICK_ID,
    WeeklyScheduler,
)
from pulseletter.service import weekly
from pulseletter.service.app import App
from service_support import issue_state, job_runs, seed, wait_for


@pytest.fixture
def make_app(
    make_settings: ConfigWriter, clock: FixedClock, memory_transport: MemoryTransport
) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def make(**schedule: Any) -> App:
        app = App.open(
            make_settings(schedule=schedule),
            check_schema=False,
            clock=clock,
            transport_factory=lambda: memory_transport,
        )
        upgrade(app.db.engine)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def schedulers() -> Iterator[list[WeeklyScheduler]]:
    started: list[WeeklyScheduler] = []
    yield started
    for s in started:
        s.stop_gracefully(5)


def start(
    app: App, started: list[WeeklyScheduler], fired: list[datetime] | None = None
) -> WeeklyScheduler:
    """Start a scheduler; ``fired`` collects the scheduled times of each weekly-send execution."""
    s = WeeklyScheduler(app)
    if fired is not None:

        def on_executed(event: JobExecutionEvent) -> None:
            if event.job_id == SEND_ID:
                fired.append(event.scheduled_run_time.astimezone(UTC))

        s.scheduler.add_listener(on_executed, EVENT_JOB_EXECUTED)
    started.append(s)
    s.start()
    return s


def finished_runs(app: App, job: str, count: int) -> list[Any]:
    def check() -> list[Any] | None:
        runs = [r for r in job_runs(app, job) if r.finished_at is not None]
        return runs if len(runs) >= count else None

    return wait_for(check, 10, f"{count} finished {job} run(s)")


def mail_to_subscribers(transport: MemoryTransport) -> int:
    return sum(1 for _, rcpt, _ in transport.sent if rcpt.endswith("@example.com"))


@pytest.mark.parametrize(
    ("zone", "slot"),
    [
        ("Europe/Berlin", datetime(2026, 3, 30, 6, 0, tzinfo=UTC)),  # first Monday of CEST
        ("Europe/Berlin", datetime(2026, 10, 26, 7, 0, tzinfo=UTC)),  # first Monday of CET
        ("America/New_York", datetime(2026, 3, 9, 12, 0, tzinfo=UTC)),  # first Monday of EDT
        ("America/New_York", datetime(2026, 11, 2, 13, 0, tzinfo=UTC)),  # first Monday of EST
    ],
    ids=["berlin-spring", "berlin-fall", "newyork-spring", "newyork-fall"],
)
def test_the_send_fires_at_eight_local_on_both_sides_of_dst(
    make_app: Callable[..., App],
    clock: FixedClock,
    memory_transport: MemoryTransport,
    schedulers: list[WeeklyScheduler],
    zone: str,
    slot: datetime,
) -> None:
    app = make_app(timezone=zone, send="mon 08:00")
    seed(app, slot, subscribers=3)
    clock.now = slot - timedelta(days=3)  # the Friday before the change
    s = start(app, schedulers)
    job = s.scheduler.get_job(SEND_ID)
    assert job.next_run_time == slot
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 12 * 3600)
    clock.now = slot - timedelta(seconds=1)
    s.wakeup()
    time.sleep(0.3)
    assert job_runs(app, weekly.SEND_JOB) == []  # one second early: nothing
    clock.now = slot
    s.wakeup()
    runs = finished_runs(app, weekly.SEND_JOB, 1)
    assert runs[0].result == "sent" and runs[0].started_at == slot
    assert mail_to_subscribers(memory_transport) == 3
    following = s.scheduler.get_job(SEND_ID).next_run_time
    assert following.astimezone(UTC) == slot + timedelta(days=7)  # same offset the next week


def test_apscheduler_fires_the_fall_back_slot_twice_and_the_issue_goes_once(
    make_app: Callable[..., App],
    clock: FixedClock,
    memory_transport: MemoryTransport,
    schedulers: list[WeeklyScheduler],
) -> None:
    app = make_app(timezone="Europe/Berlin", send="sun 02:30")
    first_fire = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    seed(app, first_fire, subscribers=3)
    clock.now = first_fire - timedelta(hours=2)
    fired: list[datetime] = []
    s = start(app, schedulers, fired)
    clock.now = first_fire
    s.wakeup()
    wait_for(lambda: len(fired) == 1, 10, "the first fire")
    second_fire = first_fire + timedelta(hours=1)  # 02:30 again, now in CET
    # (PEP 495: a fold=1 time never equals a time in another zone, so compare in UTC)
    assert s.scheduler.get_job(SEND_ID).next_run_time.astimezone(UTC) == second_fire
    clock.now = second_fire
    s.wakeup()
    wait_for(lambda: len(fired) == 2, 10, "the second fire")
    assert fired == [first_fire, second_fire]  # the trap is real...
    results = [r.result for r in job_runs(app, weekly.SEND_JOB)]
    assert results.count("sent") == 1 and set(results) == {"sent", "already-sent"}
    assert mail_to_subscribers(memory_transport) == 3  # ...and the issue key defuses it


def test_a_restart_within_grace_sends_once_and_keeps_the_stored_jobs(
    make_app: Callable[..., App],
    clock: FixedClock,
    memory_transport: MemoryTransport,
    schedulers: list[WeeklyScheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slot = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    app = make_app(timezone="Europe/Berlin", send="mon 08:00")
    seed(app, slot, subscribers=3)
    clock.now = slot - timedelta(days=1)
    fired: list[datetime] = []
    with caplog.at_level(logging.INFO):
        first = start(app, schedulers)
        first.stop_gracefully(5)
        schedulers.remove(first)
        clock.now = slot + timedelta(hours=3)  # down across the send time, back within grace
        start(app, schedulers, fired)
        wait_for(lambda: fired == [slot], 10, "the misfired run, executed within grace")
    wait_for(lambda: issue_state(app, "2026-W47") == "sent", 10, "the issue sent")
    results = [r.result for r in job_runs(app, weekly.SEND_JOB)]
    assert results.count("sent") == 1  # the start-up tick and the cron run: one send
    assert mail_to_subscribers(memory_transport) == 3
    assert weekly.tick(app) == []
    added = [r for r in caplog.records if r.getMessage().startswith(f"added job {SEND_ID}")]
    assert len(added) == 1  # stored once, found again at restart, never replaced


def test_a_restart_beyond_grace_marks_missed_and_logs_the_missed_run(
    make_app: Callable[..., App],
    clock: FixedClock,
    memory_transport: MemoryTransport,
    schedulers: list[WeeklyScheduler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slot = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    app = make_app(timezone="Europe/Berlin", send="mon 08:00", grace_hours=2)
    seed(app, slot, subscribers=3)
    clock.now = slot - timedelta(days=1)
    with caplog.at_level(logging.INFO):
        first = start(app, schedulers)
        first.stop_gracefully(5)
        schedulers.remove(first)
        clock.now = slot + timedelta(hours=3)
        s = start(app, schedulers)
        wait_for(
            lambda: [r.result for r in job_runs(app, weekly.SEND_JOB)] == ["missed"],
            10,
            "the week marked missed",
        )
        wait_for(
            lambda: any(getattr(r, "event", "") == "job.missed" for r in caplog.records),
            10,
            "APScheduler's missed-run event in the log",
        )
    assert memory_transport.sent == []
    assert s.scheduler.get_job(TICK_ID) is not None


def test_a_changed_schedule_is_applied_to_the_stored_jobs_and_ingest_polls(
    make_app: Callable[..., App],
    clock: FixedClock,
    schedulers: list[WeeklyScheduler],
) -> None:
    clock.now = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday
    app = make_app(timezone="Europe/Berlin", send="mon 08:00", prepare="sun 18:00")
    first = start(app, schedulers)
    assert first.scheduler.get_job(PREPARE_ID) is not None
    first.stop_gracefully(5)
    schedulers.remove(first)
    # the operator edits config.toml: a Tuesday send, no prepare, feeds polled every 5 minutes
    changed = make_app(timezone="Europe/Berlin", send="tue 09:30", ingest_interval_minutes=5)
    s = start(changed, schedulers)
    assert s.scheduler.get_job(PREPARE_ID) is None
    send = s.scheduler.get_job(SEND_ID)
    assert send.next_run_time.astimezone(UTC) == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    assert s.scheduler.get_job(INGEST_ID) is not None
    clock.advance(minutes=5)
    s.wakeup()
    runs = finished_runs(changed, weekly.INGEST_JOB, 1)
    assert runs[0].result == "ok" and "added" in runs[0].detail

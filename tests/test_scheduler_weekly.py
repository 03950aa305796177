"""The weekly job's use cases with a fixed clock and an in-memory transport: exactly one send
per week through double fires, downtime, restarts, approval and empty weeks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conftest import ConfigWriter, FixedClock
from pulseletter.content.week import week_from_key
from pulseletter.db.migrate import upgrade
from pulseletter.db.models import Issue
from pulseletter.dispatch import ledger
from pulseletter.errors import IssueStateError, LintError
from pulseletter.mail.transports import MemoryTransport, Reply
from pulseletter.service import lease, weekly
from pulseletter.service.app import App
from pulseletter.service.health import health_report
from pulseletter.service.issues import prepare_issue
from pulseletter.service.sending import send_issue
from service_support import delivery_counts, issue_state, job_runs, scheduling, seed

# Monday 23 Nov 2026 08:00 in Berlin (CET, UTC+1)
SLOT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
KEY = "2026-W47"
BERLIN = {"timezone": "Europe/Berlin", "send": "mon 08:00", "grace_hours": 12}


@pytest.fixture(autouse=True)
def as_scheduler() -> Iterator[None]:
    """These tests read health as the scheduling process does."""
    with scheduling():
        yield


@pytest.fixture
def make_app(
    make_settings: ConfigWriter, clock: FixedClock, memory_transport: MemoryTransport
) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def make(**sections: dict[str, Any]) -> App:
        sections.setdefault("schedule", BERLIN)
        app = App.open(
            make_settings(**sections),
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


def subscriber_mail(transport: MemoryTransport) -> list[str]:
    return [rcpt for _, rcpt, _ in transport.sent if rcpt.endswith("@example.com")]


def test_the_send_job_sends_the_week_once(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=4)
    clock.now = SLOT
    first = weekly.run_send(app)
    assert (first.issue_key, first.result) == (KEY, "sent")
    assert len(subscriber_mail(memory_transport)) == 4
    clock.advance(minutes=1)
    second = weekly.run_send(app)  # a second trigger, a restart, a manual run: nothing more
    assert second.result == "already-sent"
    assert len(subscriber_mail(memory_transport)) == 4
    assert [r.result for r in job_runs(app, weekly.SEND_JOB)] == ["sent", "already-sent"]


def test_the_fall_back_double_fire_sends_once(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app(schedule={"timezone": "Europe/Berlin", "send": "sun 02:30"})
    first_fire = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second_fire = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, an hour later
    seed(app, first_fire, subscribers=3)
    clock.now = first_fire
    assert weekly.run_send(app).result == "sent"
    clock.now = second_fire
    again = weekly.run_send(app)
    assert (again.issue_key, again.result) == ("2026-W42", "already-sent")
    assert len(subscriber_mail(memory_transport)) == 3


def test_down_across_the_send_time_within_grace_sends_on_start(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=3)
    clock.now = SLOT - timedelta(days=2)
    weekly.record_start(app)  # the service ran before the slot...
    clock.now = SLOT + timedelta(hours=11, minutes=59)  # ...and came back 11h59 after it
    results = weekly.tick(app)
    assert [(r.issue_key, r.result) for r in results] == [(KEY, "sent")]
    assert len(subscriber_mail(memory_transport)) == 3
    assert weekly.tick(app) == []  # the next tick has nothing to do


def test_down_beyond_grace_marks_the_week_missed_and_sends_nothing(
    make_app: Callable[..., App],
    clock: FixedClock,
    memory_transport: MemoryTransport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=3)
    clock.now = SLOT - timedelta(days=2)
    weekly.record_start(app)
    clock.now = SLOT + timedelta(hours=12, minutes=1)
    with caplog.at_level(logging.INFO, logger="pulseletter.weekly"):
        results = weekly.tick(app)
    assert [(r.issue_key, r.result) for r in results] == [(KEY, "missed")]
    assert memory_transport.sent == []
    assert issue_state(app, KEY) is None  # never composed: it takes no issue number
    assert any("missed the send of 2026-W47" in r.getMessage() for r in caplog.records)
    ok, details = health_report(app)
    assert not ok and details["missed"][0]["issue"] == KEY
    assert "the send of 2026-W47 was missed" in details["problems"]
    assert weekly.tick(app) == []  # never sent stale later on
    with pytest.raises(IssueStateError, match="was missed"):
        weekly.approve_issue(app, KEY)
    # an operator may still send it, deliberately (what `pulseletter issue send --week` does)
    issue = prepare_issue(app, week_from_key(KEY, app.settings.timezone))
    assert issue.number == 1
    assert send_issue(app, KEY).state == "sent"
    assert health_report(app)[1]["missed"] == []


def test_a_fresh_install_does_not_act_on_slots_before_its_first_start(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=2)
    clock.now = SLOT + timedelta(hours=1)
    weekly.record_start(app)
    assert weekly.tick(app) == []
    assert issue_state(app, KEY) is None and memory_transport.sent == []


class StopAfter:
    """A transport that asks for a stop after ``n`` messages, like SIGTERM mid-send."""

    def __init__(self, inner: MemoryTransport, n: int, stop: threading.Event) -> None:
        self.inner, self.n, self.stop, self.name = inner, n, stop, "memory"

    def send(self, mail_from: str, rcpt: str, data: bytes, **options: Any) -> Reply:
        reply = self.inner.send(mail_from, rcpt, data, **options)
        if len(self.inner.sent) >= self.n:
            self.stop.set()
        return reply

    def close(self) -> None:
        pass


def test_a_restart_in_the_middle_of_a_send_resumes_without_duplicates(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=10)
    clock.now = SLOT
    weekly.record_start(app)
    stop = threading.Event()
    app.transport_factory = lambda: StopAfter(memory_transport, 4, stop)
    interrupted = weekly.run_send(app, stop=stop)
    assert interrupted.result == "interrupted"
    assert issue_state(app, KEY) == "sending"
    counts = delivery_counts(app, KEY)  # the messages in flight were finished and recorded
    assert counts["sent"] >= 4 and counts["sent"] + counts["queued"] == 10
    # "restart": a new process ticks at start and resumes the issue left in `sending`
    app.transport_factory = lambda: memory_transport
    clock.advance(minutes=3)
    results = weekly.tick(app)
    assert [(r.job, r.result) for r in results] == [(weekly.RESUME_JOB, "sent")]
    sent_to = subscriber_mail(memory_transport)
    assert len(sent_to) == 10 and len(set(sent_to)) == 10
    assert delivery_counts(app, KEY) == {"sent": 10}


def test_rows_a_crashed_process_held_are_sent_once_after_a_restart(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=10)
    clock.now = SLOT
    weekly.record_start(app)
    stop = threading.Event()
    app.transport_factory = lambda: StopAfter(memory_transport, 4, stop)
    assert weekly.run_send(app, stop=stop).result == "interrupted"
    # a process killed with -9 leaves rows it had claimed in `sending` under its lease
    issue = weekly.find_issue(app, KEY)
    assert issue is not None
    held = ledger.claim(
        app.db, issue.id, "crashed-host:999999", clock(), limit=3, lease=timedelta(minutes=10)
    )
    assert len(held) == 3
    app.transport_factory = lambda: memory_transport
    clock.advance(minutes=1)
    weekly.tick(app)  # the restart: what is free goes out at once
    clock.advance(minutes=10)
    weekly.tick(app)  # the dead process's lease has run out: its rows too
    assert issue_state(app, KEY) == "sent"
    sent_to = subscriber_mail(memory_transport)
    assert len(sent_to) == 10 and len(set(sent_to)) == 10


def test_approval_waits_notifies_editors_once_then_sends_when_approved(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app(issue={"require_approval": True, "editors": ["editor@newsroom.example.org"]})
    seed(app, SLOT, subscribers=3)
    clock.now = SLOT - timedelta(days=1)
    weekly.record_start(app)
    clock.now = SLOT
    assert weekly.run_send(app).result == "awaiting-approval"
    assert issue_state(app, KEY) == "ready"
    to_editor = [m for m in memory_transport.sent if m[1] == "editor@newsroom.example.org"]
    subjects = sorted(
        data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for _, _, data in to_editor
    )
    assert len(to_editor) == 2 and subjects[0].startswith(b"Ready for approval")
    assert subjects[1].startswith(b"[TEST] ")
    assert subscriber_mail(memory_transport) == []
    clock.advance(minutes=5)
    assert weekly.tick(app) == []  # waiting: no run, no second notice
    assert weekly.run_send(app).result == "awaiting-approval"
    assert len([m for m in memory_transport.sent if m[1] == "editor@newsroom.example.org"]) == 2
    clock.advance(hours=2)
    weekly.approve_issue(app, KEY)
    results = weekly.tick(app)
    assert [(r.issue_key, r.result) for r in results] == [(KEY, "sent")]
    assert len(subscriber_mail(memory_transport)) == 3


def test_an_issue_not_approved_within_grace_is_missed(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app(issue={"require_approval": True, "editors": ["editor@newsroom.example.org"]})
    seed(app, SLOT, subscribers=3)
    clock.now = SLOT - timedelta(days=1)
    weekly.record_start(app)
    clock.now = SLOT
    weekly.run_send(app)
    clock.now = SLOT + timedelta(hours=13)
    results = weekly.tick(app)
    assert [(r.result, r.detail) for r in results] == [
        ("missed", "not approved within grace (12 h)")
    ]
    assert issue_state(app, KEY) == "missed"
    assert subscriber_mail(memory_transport) == []
    ok, details = health_report(app)
    assert not ok
    assert details["missed"] == [{"issue": KEY, "reason": "not approved within grace (12 h)"}]
    with pytest.raises(IssueStateError, match="was missed"):
        weekly.approve_issue(app, KEY)


def test_a_cancelled_week_is_left_alone(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=2)
    clock.now = SLOT - timedelta(hours=14)
    weekly.record_start(app)
    with app.db.writing() as session:
        session.add(
            Issue(
                key=KEY,
                number=1,
                week_start=SLOT - timedelta(days=7),
                week_end=SLOT,
                state="cancelled",
            )
        )
    clock.now = SLOT
    assert weekly.run_send(app).result == "already-cancelled"
    assert weekly.tick(app) == []
    assert memory_transport.sent == []


def test_a_week_skipped_early_is_composed_again_at_send_time(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=2)
    clock.now = SLOT
    weekly.record_start(app)
    with app.db.writing() as session:  # as an early prepare leaves an empty week (skip policy)
        session.add(
            Issue(
                key=KEY,
                number=0,
                week_start=SLOT - timedelta(days=7),
                week_end=SLOT,
                state="skipped",
                state_reason="no articles this week (empty_week = skip)",
            )
        )
    assert weekly.tick(app) == []  # the tick does not keep retrying a skipped week...
    assert weekly.run_send(app).result == "sent"  # ...the send itself looks again
    assert len(subscriber_mail(memory_transport)) == 2


def test_an_empty_week_sends_nothing_and_the_failure_is_visible(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app(issue={"editors": ["editor@newsroom.example.org"]})
    seed(app, SLOT - timedelta(weeks=5), subscribers=2)  # content only for older weeks
    clock.now = SLOT
    weekly.record_start(app)
    try:
        result = weekly.run_send(app)
    except LintError:
        # the foundation's prepare_issue refuses an empty week: recorded, shown, retried later
        assert job_runs(app, weekly.SEND_JOB)[-1].result == "error"
        ok, details = health_report(app)
        assert not ok and "no articles" in details["problems"][-1]
        clock.advance(minutes=5)
        assert weekly.tick(app) == []  # not retried every minute...
        clock.advance(minutes=15)
        with pytest.raises(LintError):
            weekly.tick(app)  # ...but again after RETRY_AFTER, within grace
        # the editors heard about it once, not on every retry
        notices = [m for m in memory_transport.sent if m[1] == "editor@newsroom.example.org"]
        assert len(notices) == 1 and b"Subject: Problem with issue 2026-W47" in notices[0][2]
    else:
        # with the content.empty_week policy in prepare_issue, the week comes back skipped
        assert result.result == "skipped"
    assert subscriber_mail(memory_transport) == []


def test_prepare_composes_ahead_and_the_send_uses_that_issue(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app(schedule={**BERLIN, "prepare": "sun 18:00"})
    seed(app, SLOT, subscribers=2)
    clock.now = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # Sun 18:00 CET
    prepared = weekly.run_prepare(app)
    assert (prepared.issue_key, prepared.result) == (KEY, "ready")
    assert memory_transport.sent == []
    clock.now = SLOT
    assert weekly.run_send(app).result == "sent"
    with app.db.reading() as session:
        assert session.scalars(select(Issue.number).where(Issue.key == KEY)).one() == 1


def test_a_missed_prepare_is_caught_up_by_the_tick(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app(schedule={**BERLIN, "prepare": "sun 18:00"})
    seed(app, SLOT, subscribers=2)
    clock.now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    weekly.record_start(app)
    clock.now = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # down at 18:00, back at 21:00
    results = weekly.tick(app)
    assert [(r.job, r.result) for r in results] == [(weekly.PREPARE_JOB, "ready")]
    assert weekly.tick(app) == []


def test_the_lease_admits_one_holder_and_hands_over_when_it_expires(
    make_app: Callable[..., App], clock: FixedClock
) -> None:
    app = make_app()
    ttl = timedelta(seconds=60)
    first = lease.acquire(app, "a", ttl)
    second = lease.acquire(app, "b", ttl)
    assert first.mine and not second.mine and second.holder == "a"
    clock.advance(seconds=30)
    assert lease.acquire(app, "a", ttl).mine  # renewed
    clock.advance(seconds=61)
    taken = lease.acquire(app, "b", ttl)
    assert taken.mine and taken.holder == "b"
    assert not lease.acquire(app, "a", ttl).mine
    lease.release(app, "b")
    assert lease.read(app) is None


def test_health_reports_scheduler_next_and_last_run(
    make_app: Callable[..., App], clock: FixedClock
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=1)
    clock.now = SLOT
    ok, details = health_report(app)
    assert not ok and details["scheduler"]["running"] is False
    lease.acquire(app, "me", timedelta(seconds=60))
    weekly.run_send(app)
    ok, details = health_report(app)
    assert ok, details["problems"]
    assert details["scheduler"]["holder"] == "me"
    assert details["last_run"]["result"] == "sent" and details["last_run"]["issue"] == KEY
    assert details["next_run"]["at_local"] == "2026-11-30T08:00:00+01:00"
    assert details["next_run"]["week"] == "2026-W48"


def test_an_issue_whose_sender_died_after_its_last_result_is_finished_on_tick(
    make_app: Callable[..., App], clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    app = make_app()
    seed(app, SLOT, subscribers=3)
    clock.now = SLOT
    weekly.record_start(app)
    assert weekly.run_send(app).result == "sent"
    with app.db.writing() as session:  # as if it died before marking the issue sent
        issue = session.scalars(select(Issue).where(Issue.key == KEY)).one()
        issue.state, issue.sent_at = "sending", None
    clock.advance(minutes=1)
    results = weekly.tick(app)
    assert [(r.job, r.result) for r in results] == [(weekly.RESUME_JOB, "sent")]
    assert issue_state(app, KEY) == "sent"
    assert len(subscriber_mail(memory_transport)) == 3  # nobody mailed twice

"""The ledger and the engine's rules with the in-memory transport: frozen audience, skips,
Message-ID reuse, crash recovery accounting, rate limits, relay pool, classification."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from conftest import FixedClock
from dispatch_support import KEY, deliveries, make_issue, parse, statuses
from pulseletter.db.models import Delivery, Subscriber
from pulseletter.dispatch import ledger
from pulseletter.dispatch.policy import backoff, classify
from pulseletter.dispatch.pool import Relay, RelayPool
from pulseletter.dispatch.ratelimit import RateLimit, buckets
from pulseletter.mail.transports import MemoryTransport, Reply
from pulseletter.service.app import App
from pulseletter.service.sending import (
    failures_csv,
    send_issue,
    send_test,
    status_report,
)
from pulseletter.service.transactional import send_transactional
from pulseletter.subscribers.lifecycle import add_subscriber, set_status


def test_fan_out_freezes_active_unpaused_subscribers_once(app: App, clock: FixedClock) -> None:
    make_issue(app, 4)
    with app.db.writing() as session:
        subs = session.scalars(select(Subscriber).order_by(Subscriber.id)).all()
        subs[1].paused_until = clock() + timedelta(days=7)
        set_status(session, subs[2], "unsubscribed", source="test", now=clock())
        add_subscriber(session, "pending@example.com", status="pending", now=clock())
    issue = ledger.issue_by_key(app.db, KEY)
    assert issue is not None
    assert ledger.fan_out(app.db, issue.id, clock(), cutoff=clock(), batch=2) == 2
    assert ledger.fan_out(app.db, issue.id, clock(), cutoff=clock(), batch=2) == 0  # idempotent
    clock.advance(minutes=5)
    with app.db.writing() as session:  # joins after the send started: not in this issue
        add_subscriber(session, "late@example.com", status="active", now=clock())
    assert ledger.fan_out(app.db, issue.id, clock(), cutoff=clock() - timedelta(minutes=5)) == 0
    assert sorted(statuses(app)) == ["reader0000@example.com", "reader0003@example.com"]


def test_unsubscribed_after_fan_out_is_skipped_and_never_mailed(
    app: App, clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    make_issue(app, 3)
    issue = ledger.issue_by_key(app.db, KEY)
    assert issue is not None
    with app.db.writing() as session:
        issue_row = session.get(type(issue), issue.id)
        assert issue_row is not None
        issue_row.state, issue_row.send_started_at = "sending", clock()
    ledger.fan_out(app.db, issue.id, clock())
    with app.db.writing() as session:
        gone = session.scalars(
            select(Subscriber).where(Subscriber.email.startswith("reader0001"))
        ).one()
        set_status(session, gone, "unsubscribed", source="one-click", now=clock())
    outcome = send_issue(app, KEY)
    assert outcome.state == "sent" and outcome.counts == {"sent": 2, "skipped": 1}
    assert sorted(rcpt for _, rcpt, _ in memory_transport.sent) == [
        "reader0000@example.com",
        "reader0002@example.com",
    ]
    assert "unsubscribed since fan-out" in deliveries(app)["reader0001@example.com"].last_text


def test_message_id_is_generated_once_and_reused_on_retry(
    app: App, clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    make_issue(app, 1)
    rcpt = "reader0000@example.com"
    memory_transport.replies[rcpt] = Reply(451, "try later", "rcpt")
    send_issue(app, KEY)
    first = deliveries(app)[rcpt]
    assert first.status == "deferred" and first.message_id.startswith("<")
    del memory_transport.replies[rcpt]
    clock.advance(hours=2)
    send_issue(app, KEY)
    [(_, _, data)] = memory_transport.sent
    assert parse(data)["Message-ID"] == first.message_id == deliveries(app)[rcpt].message_id


def test_rows_in_flight_of_a_dead_sender_are_resent_and_counted_uncertain(
    app: App, clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    make_issue(app, 3, state="sending")
    issue = ledger.issue_by_key(app.db, KEY)
    assert issue is not None
    ledger.fan_out(app.db, issue.id, clock())
    with app.db.writing() as session:  # what kill -9 leaves: one row in flight, one claimed
        session.execute(
            update(Delivery)
            .where(Delivery.email == "reader0000@example.com")
            .values(
                status="sending",
                attempts=1,
                lease_owner=f"{ledger.owner_id().split(':')[0]}:999999999",
                lease_until=clock() + timedelta(hours=1),
            )
        )
        session.execute(
            update(Delivery)
            .where(Delivery.email == "reader0001@example.com")
            .values(lease_owner="elsewhere:1", lease_until=clock() - timedelta(seconds=1))
        )
    outcome = send_issue(app, KEY)
    assert outcome.report.recovered == 1
    assert outcome.state == "sent" and outcome.counts == {"sent": 3}
    assert sorted(r for _, r, _ in memory_transport.sent) == sorted(statuses(app))
    rows = deliveries(app)
    assert rows["reader0000@example.com"].last_text.startswith(ledger.UNCERTAIN)
    assert rows["reader0000@example.com"].attempts == 2
    assert not rows["reader0001@example.com"].last_text.startswith(ledger.UNCERTAIN)
    report = status_report(app, KEY)
    assert report.uncertain == 1 and report.counts == {"sent": 3}
    assert "reader0000@example.com" in failures_csv(app, KEY)  # possible duplicates listed


def test_status_report_has_rate_eta_and_top_failures(
    app: App, clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    make_issue(app, 5)
    memory_transport.replies["reader0001@example.com"] = Reply(550, "5.1.1 no such user", "rcpt")
    memory_transport.replies["reader0002@example.com"] = Reply(550, "5.1.1 no such user", "rcpt")
    send_issue(app, KEY)
    report = status_report(app, KEY)
    assert report.counts == {"sent": 3, "bounced": 2} and report.total == 5
    assert report.rate_per_minute == pytest.approx(3 / 5)  # 3 sent in the 5-minute window
    assert report.top_failures == [("bounced: 550 5.1.1 no such user", 2)]
    csv_text = failures_csv(app, KEY).splitlines()
    assert csv_text[0].startswith("email,status,attempts,last_code")
    assert len(csv_text) == 3 and all(",bounced,1,550," in line for line in csv_text[1:])


def test_test_copy_is_not_recorded(app: App, memory_transport: MemoryTransport) -> None:
    make_issue(app, 2)
    reply = send_test(app, KEY, "editor@bücher.example", "Editor")
    assert reply.ok
    [(_, rcpt, data)] = memory_transport.sent
    assert rcpt == "editor@xn--bcher-kva.example"  # punycode on the wire
    assert "/unsubscribe/TEST-COPY" in str(parse(data)["List-Unsubscribe"])
    assert deliveries(app) == {}


def test_transactional_mail_goes_through_the_same_builder(
    app: App, memory_transport: MemoryTransport
) -> None:
    reply = send_transactional(
        app,
        to_address="new@bücher.example",
        to_name="Zoë",
        subject="Confirm your subscription",
        text="Click to confirm\n",
        html="<p>Click to confirm</p>",
        unsubscribe_url="https://pulse.example.com/unsubscribe/abc",
    )
    assert reply.ok
    [(_, rcpt, data)] = memory_transport.sent
    msg = parse(data)
    assert rcpt == "new@xn--bcher-kva.example" and msg["To"].addresses[0].display_name == "Zoë"


def test_classification_by_code_and_stage() -> None:
    assert classify(Reply(250, "ok")).status == "sent"
    assert classify(Reply(550, "5.1.1", "rcpt")).status == "bounced"
    for code in (421, 450, 451, 452, 454):
        v = classify(Reply(code, "later", "rcpt"))
        assert v.status == "deferred" and v.throttle
    assert classify(Reply(554, "rejected", "data")).status == "failed"
    assert classify(Reply(0, "closed", "after-data")).status == "unknown"
    assert classify(Reply(0, "closed", "rcpt")).status == "deferred"
    assert classify(Reply(535, "bad auth", "auth")).breaker
    assert classify(Reply(553, "sender refused", "mail")).breaker
    assert classify(Reply(553, "no SMTPUTF8 here", "local")).status == "failed"  # not a bounce


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    waits = [backoff(n, 60, 3600, rng).total_seconds() for n in range(1, 10)]
    for n, wait in enumerate(waits, start=1):
        ceiling = min(3600, 60 * 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert len({round(w) for w in waits[:3]}) == 3


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_buckets_per_second_and_per_hour() -> None:
    t = FakeTime()
    limit = RateLimit(buckets(2.0, 3600, 0), clock=t)
    for b in limit.limits:
        b.stamp = t.now
    assert limit.try_take() == 0 and limit.try_take() == 0  # a burst of one second's worth
    wait = limit.try_take()
    assert wait == pytest.approx(0.5)  # then 2 per second
    t.now += 0.5
    assert limit.try_take() == 0


def test_throttle_halves_the_rate_and_pauses_for_a_while() -> None:
    t = FakeTime()
    limit = RateLimit(buckets(10.0, 0, 0), clock=t)
    limit.limits[0].stamp = t.now
    limit.limits[0].tokens = 0
    limit.throttle(20.0)
    assert limit.try_take() == pytest.approx(2.0)  # paused for a tenth of the throttle time
    t.now += 2.0
    limit.limits[0].tokens = 0
    limit.limits[0].stamp = t.now
    assert limit.try_take() == pytest.approx(0.2)  # 5/s instead of 10/s
    t.now += 30.0
    assert limit.try_take() == 0 and limit.factor == 1.0  # recovered


def test_relay_pool_honours_weights_and_connection_caps() -> None:
    heavy = Relay("heavy", MemoryTransport, weight=3)
    light = Relay("light", MemoryTransport, weight=1, max_connections=1)
    pool = RelayPool([heavy, light], rng=random.Random(1))
    picks = []
    for _ in range(400):
        relay = pool.acquire()
        assert relay is not None
        picks.append(relay.name)
        pool.release(relay)
    assert 0.65 < picks.count("heavy") / 400 < 0.85
    held = pool.acquire(), pool.acquire(), pool.acquire()
    assert [r.name for r in held if r is not None].count("light") <= 1

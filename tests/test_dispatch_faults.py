"""Fault injection against real aiosmtpd servers on 127.0.0.1: every reply class the sender
must survive, each checked against the final ledger and exactly what the server received."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ConfigWriter, FixedClock
from dispatch_support import (
    KEY,
    FaultHandler,
    FaultServer,
    deliveries,
    make_issue,
    parse,
    statuses,
    subscriber,
)
from pulseletter.db.migrate import upgrade
from pulseletter.service.app import App
from pulseletter.service.sending import send_issue

AppFactory = Callable[..., App]


@pytest.fixture
def smtp_app(make_settings: ConfigWriter, clock: FixedClock) -> Iterator[AppFactory]:
    """An app whose config sends over SMTP to the given fault server."""
    opened: list[App] = []

    def make(server: FaultServer, smtp: dict[str, Any] | None = None, **sending: Any) -> App:
        settings = make_settings(
            transport={"kind": "smtp"},
            smtp={
                "host": server.host,
                "port": server.port,
                "security": "none",
                "timeout": 5.0,
                **(smtp or {}),
            },
            sending={"connections": 1, "throttle_seconds": 0.05, **sending},
        )
        app = App.open(settings, check_schema=False, clock=clock)
        upgrade(app.db.engine)
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()


def emails(n: int) -> list[str]:
    return [f"reader{i:04d}@example.com" for i in range(n)]


def test_all_accepted_each_message_once_with_its_message_id(smtp_app: AppFactory) -> None:
    handler = FaultHandler()
    with FaultServer(handler) as server:
        app = smtp_app(server, connections=2, messages_per_connection=3)
        make_issue(app, 8)
        outcome = send_issue(app, KEY)
    assert outcome.state == "sent" and outcome.counts == {"sent": 8}
    assert handler.received() == emails(8)
    rows = deliveries(app)
    for rcpt, data in handler.accepted:
        assert parse(data)["Message-ID"] == rows[rcpt].message_id  # the stored ID went out
        assert rows[rcpt].attempts == 1 and rows[rcpt].sent_at is not None
    # 8 messages at most 3 per connection: the sender reconnected instead of reusing forever
    assert handler.commands.count("MAIL newsletter@pulse.example.com") == 8


@pytest.mark.parametrize("code", ["421 4.7.0 Try again later", "451 4.3.0 Local error"])
def test_4xx_at_rcpt_defers_with_backoff_then_delivers(
    smtp_app: AppFactory, clock: FixedClock, code: str
) -> None:
    victim = "reader0002@example.com"
    handler = FaultHandler(rcpt=lambda rcpt, n: code if rcpt == victim and n == 1 else None)
    with FaultServer(handler) as server:
        app = smtp_app(server, retry_base_seconds=60)
        make_issue(app, 4)
        first = send_issue(app, KEY)
        assert first.state == "sending"  # not finished: one delivery waits for its retry
        row = deliveries(app)[victim]
        assert row.status == "deferred" and row.last_code == int(code[:3])
        assert row.next_attempt_at is not None
        wait = (row.next_attempt_at - clock()).total_seconds()
        assert 30 <= wait <= 60  # exponential backoff with jitter: base/2 .. base
        assert handler.received() == sorted(set(emails(4)) - {victim})
        again = send_issue(app, KEY)  # not due yet: nothing happens
        assert again.report.attempted == 0
        clock.advance(seconds=61)
        final = send_issue(app, KEY)
    assert final.state == "sent" and final.counts == {"sent": 4}
    assert handler.received() == emails(4)  # the victim exactly once, the others not again
    assert deliveries(app)[victim].attempts == 2
    assert (
        deliveries(app)[victim].message_id
        == parse(next(d for r, d in handler.accepted if r == victim))["Message-ID"]
    )


def test_550_at_rcpt_bounces_and_suppresses_the_subscriber(smtp_app: AppFactory) -> None:
    victim = "reader0001@example.com"
    handler = FaultHandler(
        rcpt=lambda rcpt, n: "550 5.1.1 No such user" if rcpt == victim else None
    )
    with FaultServer(handler) as server:
        app = smtp_app(server, bounce_limit=1)
        make_issue(app, 3)
        outcome = send_issue(app, KEY)
    assert outcome.state == "sent"
    assert statuses(app) == {
        "reader0000@example.com": "sent",
        victim: "bounced",
        "reader0002@example.com": "sent",
    }
    assert deliveries(app)[victim].last_code == 550
    assert handler.received() == ["reader0000@example.com", "reader0002@example.com"]
    sub = subscriber(app, victim)
    assert sub.status == "bounced" and sub.bounce_count == 1


def test_bounce_limit_two_keeps_the_subscriber_after_one_bounce(smtp_app: AppFactory) -> None:
    victim = "reader0000@example.com"
    handler = FaultHandler(
        rcpt=lambda rcpt, n: "550 5.1.1 No such user" if rcpt == victim else None
    )
    with FaultServer(handler) as server:
        app = smtp_app(server, bounce_limit=2)
        make_issue(app, 1)
        send_issue(app, KEY)
    sub = subscriber(app, victim)
    assert sub.status == "active" and sub.bounce_count == 1


def test_554_at_data_fails_that_message_only(smtp_app: AppFactory) -> None:
    victim = "reader0001@example.com"
    handler = FaultHandler(
        data=lambda rcpt, n: "554 5.7.1 Message rejected" if rcpt == victim else None
    )
    with FaultServer(handler) as server:
        app = smtp_app(server)
        make_issue(app, 3)
        outcome = send_issue(app, KEY)
    assert outcome.state == "sent"
    assert outcome.counts == {"sent": 2, "failed": 1}
    assert statuses(app)[victim] == "failed" and deliveries(app)[victim].last_code == 554
    assert handler.received() == ["reader0000@example.com", "reader0002@example.com"]


def test_a_run_of_data_rejections_pauses_the_issue(smtp_app: AppFactory) -> None:
    handler = FaultHandler(data=lambda rcpt, n: "554 5.7.1 Spam detected")
    with FaultServer(handler) as server:
        app = smtp_app(server, breaker_data_failures=3)
        make_issue(app, 10)
        outcome = send_issue(app, KEY)
    assert outcome.state == "paused"
    assert "3 messages in a row were rejected after DATA" in outcome.reason
    assert "554 5.7.1 Spam detected" in outcome.reason
    assert outcome.counts == {"failed": 3, "queued": 7}  # the rest is not marked failed
    assert handler.accepted == []
    assert all(d.lease_owner == "" for d in deliveries(app).values())


def test_535_auth_failure_pauses_without_touching_recipients(
    smtp_app: AppFactory, tmp_path: Path
) -> None:
    (tmp_path / "smtp.pass").write_text("wrong\n", "utf-8")
    handler = FaultHandler()
    with FaultServer(handler, password="right") as server:
        app = smtp_app(server, smtp={"username": "pulse", "password_file": "smtp.pass"})
        make_issue(app, 5)
        outcome = send_issue(app, KEY)
    assert outcome.state == "paused"
    assert "refused our login: 535" in outcome.reason
    assert outcome.counts == {"queued": 5}
    assert all(d.attempts == 0 for d in deliveries(app).values())  # no attempt was spent
    assert handler.accepted == [] and not any(c.startswith("MAIL") for c in handler.commands)


def test_auth_with_the_right_password_sends(smtp_app: AppFactory, tmp_path: Path) -> None:
    (tmp_path / "smtp.pass").write_text("right\n", "utf-8")
    handler = FaultHandler()
    with FaultServer(handler, password="right") as server:
        app = smtp_app(server, smtp={"username": "pulse", "password_file": "smtp.pass"})
        make_issue(app, 2)
        outcome = send_issue(app, KEY)
    assert outcome.state == "sent" and handler.received() == emails(2)


def test_5xx_at_mail_from_pauses_the_issue(smtp_app: AppFactory) -> None:
    handler = FaultHandler()

    async def refuse(*args: Any) -> str:
        return "553 5.7.1 Sender address rejected"

    handler.handle_MAIL = refuse  # type: ignore[method-assign]
    with FaultServer(handler) as server:
        app = smtp_app(server)
        make_issue(app, 4)
        outcome = send_issue(app, KEY)
    assert outcome.state == "paused" and "refused our sender address: 553" in outcome.reason
    assert outcome.counts == {"queued": 4} and handler.accepted == []


def test_drop_before_the_final_dot_defers_and_retries(
    smtp_app: AppFactory, clock: FixedClock
) -> None:
    victim = "reader0001@example.com"
    handler = FaultHandler(drop_at_data={victim})
    with FaultServer(handler) as server:
        app = smtp_app(server)
        make_issue(app, 3)
        first = send_issue(app, KEY)
        assert statuses(app)[victim] == "deferred" and deliveries(app)[victim].last_code == 0
        assert first.counts == {"sent": 2, "deferred": 1}
        clock.advance(hours=1)
        final = send_issue(app, KEY)
    assert final.state == "sent" and handler.received() == emails(3)
    assert not deliveries(app)[victim].last_text.startswith("possible duplicate")


def test_drop_after_the_final_dot_is_unknown_and_not_resent(smtp_app: AppFactory) -> None:
    victim = "reader0000@example.com"
    handler = FaultHandler(drop_after_dot={victim})
    with FaultServer(handler) as server:
        app = smtp_app(server)
        make_issue(app, 3)
        outcome = send_issue(app, KEY)
    assert outcome.state == "sent"  # nothing left to do: the outcome is recorded as unknown
    assert outcome.counts == {"sent": 2, "unknown": 1}
    row = deliveries(app)[victim]
    assert row.status == "unknown" and row.last_text.startswith("possible duplicate")
    assert [r for r, _ in handler.unacked] == [victim]  # the server did get the whole message
    assert handler.received() == ["reader0001@example.com", "reader0002@example.com"]


def test_a_server_slower_than_the_final_dot_timeout_is_unknown(smtp_app: AppFactory) -> None:
    handler = FaultHandler(data_delay=0.8)
    with FaultServer(handler) as server:
        app = smtp_app(server, smtp={"timeout": 5.0, "data_timeout": 0.3})
        make_issue(app, 1)
        outcome = send_issue(app, KEY)
    assert outcome.counts == {"unknown": 1}
    assert "timed out" in deliveries(app)["reader0000@example.com"].last_text


def test_a_slow_server_within_the_long_final_dot_wait_is_sent(smtp_app: AppFactory) -> None:
    # each command must answer within 0.2 s, but after the dot we wait data_timeout (RFC 5321)
    handler = FaultHandler(data_delay=0.5)
    with FaultServer(handler) as server:
        app = smtp_app(server, smtp={"timeout": 0.2, "data_timeout": 5.0})
        make_issue(app, 1)
        outcome = send_issue(app, KEY)
    assert outcome.counts == {"sent": 1} and handler.received() == emails(1)


def test_454_throttling_relay_defers_slows_down_and_finishes_later(
    smtp_app: AppFactory, clock: FixedClock
) -> None:
    throttled = set(emails(6)[2:5])
    handler = FaultHandler(
        rcpt=lambda rcpt, n: (
            "454 4.7.0 Too many messages, slow down" if rcpt in throttled and n == 1 else None
        )
    )
    with FaultServer(handler) as server:
        app = smtp_app(server, retry_base_seconds=120)
        make_issue(app, 6)
        first = send_issue(app, KEY)
        assert first.counts == {"sent": 3, "deferred": 3}
        assert {e for e, s in statuses(app).items() if s == "deferred"} == throttled
        assert all(deliveries(app)[e].last_code == 454 for e in throttled)
        clock.advance(seconds=121)
        final = send_issue(app, KEY)
    assert final.state == "sent" and final.counts == {"sent": 6}
    assert handler.received() == emails(6)  # every subscriber exactly once


def test_max_attempts_turns_a_deferral_into_a_failure(
    smtp_app: AppFactory, clock: FixedClock
) -> None:
    handler = FaultHandler(rcpt=lambda rcpt, n: "451 4.3.0 Still broken")
    with FaultServer(handler) as server:
        app = smtp_app(server, max_attempts=2, retry_base_seconds=10)
        make_issue(app, 1)
        send_issue(app, KEY)
        clock.advance(seconds=30)
        outcome = send_issue(app, KEY)
    assert outcome.state == "sent" and outcome.counts == {"failed": 1}
    assert deliveries(app)["reader0000@example.com"].attempts == 2 and handler.accepted == []


def add_reader(app: App, email: str) -> None:
    from pulseletter.subscribers.lifecycle import add_subscriber

    with app.db.writing() as session:
        add_subscriber(session, email, name="Jürgen", status="active", now=app.clock())


@pytest.mark.parametrize("offered", [True, False])
def test_non_ascii_local_part_needs_smtputf8(smtp_app: AppFactory, offered: bool) -> None:
    handler = FaultHandler()
    with FaultServer(handler, smtputf8=offered) as server:
        app = smtp_app(server)
        make_issue(app, 1)
        add_reader(app, "jürgen@bücher.example")
        outcome = send_issue(app, KEY)
    row = deliveries(app)["jürgen@bücher.example"]
    if offered:
        assert outcome.counts == {"sent": 2}
        assert "jürgen@xn--bcher-kva.example" in handler.received()
        assert any("SMTPUTF8" in c for c in handler.commands if c.startswith("MAIL"))
        data = next(d for r, d in handler.accepted if r.startswith("jürgen"))
        # RFC 6532: the header carries the address as raw UTF-8
        from email import message_from_string, policy

        to = message_from_string(data.decode("utf-8"), policy=policy.default)["To"]
        assert to.addresses[0].addr_spec == "jürgen@xn--bcher-kva.example"
    else:  # the relay's shortcoming: failed with the reason, never a bounce
        assert row.status == "failed" and "SMTPUTF8" in row.last_text
        assert subscriber(app, "jürgen@bücher.example").status == "active"
        assert handler.received() == ["reader0000@example.com"]

"""Lifecycle, history, suppression, erasure, addresses, tokens and the subscribers CLI."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from conftest import ConfigWriter, FixedClock
from pulseletter.cli import cli
from pulseletter.db.models import Delivery, Issue, Subscriber, SubscriberEvent, Suppression
from pulseletter.errors import SubscriberError
from pulseletter.mail.message import wire_address
from pulseletter.mail.transports import MemoryTransport
from pulseletter.service import subscribers as svc
from pulseletter.service import web_actions
from pulseletter.service.app import App
from pulseletter.subscribers.addresses import (
    AddressChecker,
    address_hash,
    normalise_address,
)
from pulseletter.subscribers.lifecycle import new_token
from pulseletter.subscribers.tokens import TokenInvalid, make_confirm_token, read_confirm_token


def history(app: App, email: str) -> list[tuple[str, str]]:
    _, events = svc.history(app, email)
    return [(e.kind, e.source) for e in events]


def test_whole_lifecycle_records_when_and_why(app: App, clock: FixedClock) -> None:
    sub = svc.add(app, "life@example.com", source="cli")
    assert sub.status == "pending" and sub.status_reason == "cli"
    clock.advance(hours=1)
    token = make_confirm_token(app.settings.signing_secret, sub.token, clock.now, 72)
    assert web_actions.confirm(app, token) is not None
    active = svc.find(app, "life@example.com")
    assert active.status == "active" and active.status_changed_at == clock.now
    assert active.confirmed_at == clock.now
    clock.advance(days=7)
    assert svc.set_status(app, "life@example.com", "bounced", source="bounce", detail="550 5.1.1")
    assert not svc.unsubscribe(app, "life@example.com")  # bounced is the stronger reason
    assert svc.find(app, "life@example.com").status == "bounced"
    assert history(app, "life@example.com") == [
        ("pending", "cli"),
        ("active", "web"),
        ("bounced", "bounce"),
    ]
    _, events = svc.history(app, "life@example.com")
    assert events[-1].detail == "550 5.1.1"


def test_unsubscribe_is_idempotent_and_kept(app: App) -> None:
    svc.add(app, "u@example.com", status="active")
    assert svc.unsubscribe(app, "U@EXAMPLE.com", source="cli")
    assert not svc.unsubscribe(app, "u@example.com", source="cli")
    assert svc.find(app, "u@example.com").status == "unsubscribed"
    assert [k for k, _ in history(app, "u@example.com")] == ["active", "unsubscribed"]


def test_addresses_normalised_unique_ignoring_case_and_flagged(app: App) -> None:
    sub = svc.add(app, "  Mixed.Case@EXAMPLE.Org ")
    assert sub.email == "Mixed.Case@example.org" and sub.email_key == "mixed.case@example.org"
    with pytest.raises(SubscriberError, match="already a subscriber"):
        svc.add(app, "mixed.case@example.org")
    utf8 = svc.add(app, "zoë@bücher.de")
    assert utf8.needs_smtputf8 and utf8.email == "zoë@bücher.de"
    assert not svc.add(app, "joe@bücher.de").needs_smtputf8
    # one punycode rule (UTS 46) for every message: issues and confirmations alike
    assert wire_address("joe@bücher.de") == ("joe@xn--bcher-kva.de", False)
    assert wire_address("user@faß.de") == ("user@xn--fa-hia.de", False)
    assert wire_address("plain@example.com") == ("plain@example.com", False)
    for bad in ("no-at-sign", "a@b", "two@@example.com", "x@example.com\r\nBcc: y@z.com"):
        with pytest.raises(SubscriberError):
            svc.add(app, bad)
    with pytest.raises(SubscriberError, match="line breaks"):
        svc.add(app, "name@example.com", name="Eve\r\nBcc: all@example.com")


ATEXT = string.ascii_letters + string.digits + "._%+-!#$&'*/=?^`{|}~\"() ,;:<>[]@\\é"


@settings(max_examples=400, deadline=None)
@given(
    local=st.text(alphabet=ATEXT, min_size=0, max_size=70),
    domain=st.sampled_from(
        [
            "example.com",
            "EXAMPLE.com",
            "sub.example.co.uk",
            "localhost",
            "x.test",
            "-bad.com",
            "ex_ample.com",
            "exa--mple.com",
            "123.123.123.123",
            "bücher.de",
            "a.b",
            "example.c0m",
            "example..com",
            "x" * 64 + ".com",
        ]
    ),
)
def test_the_bulk_checker_answers_exactly_like_email_validator(local: str, domain: str) -> None:
    raw = f"{local}@{domain}"
    checker = AddressChecker()
    try:
        expected = normalise_address(raw)
    except SubscriberError:
        with pytest.raises(SubscriberError):
            checker.check(raw)
        return
    assert checker.check(raw) == expected
    assert checker.check(raw) == expected  # and again, from the domain cache


def test_tokens_are_long_random_and_confirmations_are_signed(clock: FixedClock) -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000 and all(len(t) == 32 for t in tokens)  # 24 bytes = 192 bits
    token = make_confirm_token("secret-1", "abc", clock.now, 72)
    assert read_confirm_token("secret-1", token, clock.now).subscriber_token == "abc"
    with pytest.raises(TokenInvalid):  # after a secret rotation, old confirmation links fail
        read_confirm_token("secret-2", token, clock.now)


def test_secret_rotation_keeps_unsubscribe_links_working(
    make_settings: ConfigWriter, clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    from pulseletter.db.migrate import upgrade
    from subscribers_support import client

    first = App.open(make_settings(), check_schema=False, clock=clock)
    upgrade(first.db.engine)
    sub = svc.add(first, "rot@example.com", status="active")
    first.close()
    rotated = App.open(
        make_settings(security={"secret": "a-brand-new-secret"}), check_schema=False, clock=clock
    )
    answer = client(rotated).post(
        f"/unsubscribe/{sub.token}", data={"List-Unsubscribe": "One-Click"}
    )
    assert answer.status_code == 200
    assert svc.find(rotated, "rot@example.com").status == "unsubscribed"
    rotated.close()


def test_plain_delete_refuses_the_suppression_list(app: App) -> None:
    svc.add(app, "typo@exmaple.com")
    assert svc.delete(app, "typo@exmaple.com") == "deleted"
    assert svc.list_subscribers(app) == []
    svc.add(app, "gone@example.com", status="active")
    svc.unsubscribe(app, "gone@example.com")
    with pytest.raises(SubscriberError, match="suppression list"):
        svc.delete(app, "gone@example.com")
    assert svc.find(app, "gone@example.com").status == "unsubscribed"


def test_erase_keeps_only_a_hash(app: App, clock: FixedClock) -> None:
    sub = svc.add(app, "Forget.Me@example.com", name="Forget", status="active")
    with app.db.writing() as session:
        issue = Issue(key="2026-W47", number=1, week_start=clock.now, week_end=clock.now)
        session.add(issue)
        session.flush()
        session.add(Delivery(issue_id=issue.id, subscriber_id=sub.id, email=sub.email))
    assert svc.delete(app, "forget.me@example.com", erase=True).startswith("erased")
    with app.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0
        assert session.scalar(select(Suppression.email_hash)) == address_hash(
            "forget.me@example.com"
        )
        assert [e.kind for e in session.scalars(select(SubscriberEvent))] == ["erased"]
        delivery = session.scalars(select(Delivery)).one()
        assert delivery.email == "(deleted)" and delivery.subscriber_id is None
        everything = json.dumps(
            [
                [str(v) for v in row]
                for table in ("subscribers", "subscriber_events", "deliveries", "suppressions")
                for row in session.execute(select(_table(table)))
            ]
        )
    assert "forget" not in everything.lower()  # no trace of the address or the name
    with pytest.raises(SubscriberError, match="erased on request"):
        svc.add(app, "FORGET.ME@example.com")


def _table(name: str):  # type: ignore[no-untyped-def]
    from pulseletter.db.models import Base

    return Base.metadata.tables[name]


def test_an_erased_person_can_opt_in_again_on_the_web(
    app: App, memory_transport: MemoryTransport
) -> None:
    from subscribers_support import client, confirm_path, subscribe_form

    svc.add(app, "again@example.com", status="active")
    svc.delete(app, "again@example.com", erase=True)
    c = client(app)
    subscribe_form(c, "again@example.com")
    assert c.get(confirm_path(memory_transport, "again@example.com")).status_code == 200
    assert svc.find(app, "again@example.com").status == "active"
    with app.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_stats_counts_and_weekly_growth(app: App, clock: FixedClock) -> None:
    svc.add(app, "w1@example.com", status="active")
    clock.advance(weeks=1)
    svc.add(app, "w2@example.com")
    svc.add(app, "w3@example.com", status="active")
    svc.unsubscribe(app, "w1@example.com")
    result = svc.stats(app, weeks=2)
    assert result.by_status["active"] == 1 and result.by_status["pending"] == 1
    assert result.by_status["unsubscribed"] == 1
    assert result.weeks == [
        {"week": "2026-W48", "joined": 1, "confirmed": 1, "left": 0},
        {"week": "2026-W49", "joined": 2, "confirmed": 1, "left": 1},
    ]
    clock.advance(weeks=-3)  # a clock set back (or rows from the future) breaks nothing
    assert [w["joined"] for w in svc.stats(app, weeks=2).weeks] == [0, 0]


@pytest.fixture
def site(tmp_path: Path, runner: CliRunner) -> list[str]:
    assert runner.invoke(cli, ["init", str(tmp_path / "site")]).exit_code == 0
    return ["--config", str(tmp_path / "site" / "config.toml")]


def test_cli_add_list_show_unsubscribe_delete_stats(runner: CliRunner, site: list[str]) -> None:
    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(cli, [*site, "subscribers", *args])
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    run("add", "ada@example.com", "--name", "Ada", "--consented")
    run("add", "bob@example.org")
    assert "already a subscriber" in run("add", "ADA@example.com", ok=False)
    table = run("list")
    assert "ada@example.com" in table and "2 subscriber(s)" in table
    assert json.loads(run("list", "--status", "active", "--format", "json"))[0]["name"] == "Ada"
    rows = run("list", "--search", "example.org", "--format", "csv").splitlines()
    assert rows[0].startswith("email,name,status") and rows[1].startswith("bob@example.org")
    assert run("list", "--source", "web").strip() == "0 subscriber(s)"
    assert "history:" in run("show", "ada@example.com")
    assert "unsubscribed" in run("unsubscribe", "ada@example.com", "--reason", "phone call")
    assert "phone call" in run("show", "ada@example.com")
    assert "suppression list" in run("delete", "ada@example.com", "--yes", ok=False)
    assert "erased" in run("delete", "ada@example.com", "--erase", "--yes")
    assert "deleted" in run("delete", "bob@example.org", "--yes")
    assert "not a subscriber" in run("show", "bob@example.org", ok=False)
    stats = json.loads(run("stats", "--format", "json"))
    assert stats["erased"] == 1 and stats["by_status"]["active"] == 0
    assert "week" in run("stats")
    assert "deleted 0 unconfirmed" in run("purge-pending", "--older-than", "30", "--yes")


def test_purge_pending_removes_only_old_unconfirmed_sign_ups(app: App, clock: FixedClock) -> None:
    svc.add(app, "old@example.com")
    svc.add(app, "oldactive@example.com", status="active")
    svc.add(app, "oldleft@example.com", status="active")
    svc.unsubscribe(app, "oldleft@example.com")
    clock.advance(days=40)
    svc.add(app, "new@example.com")
    assert svc.purge_pending(app, 30) == 1
    assert sorted(s.email for s in svc.list_subscribers(app)) == [
        "new@example.com",
        "oldactive@example.com",
        "oldleft@example.com",
    ]
    with pytest.raises(SubscriberError):
        svc.purge_pending(app, 0)

"""Every public endpoint through Starlette's TestClient: double opt-in, enumeration, CSRF,
honeypot, rate limits, one-click unsubscribe, preferences, archive, health, error pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import func, select, text

from compose_support import hostile_content
from conftest import ConfigWriter, FixedClock
from pulseletter.db.migrate import upgrade
from pulseletter.db.models import Issue, Subscriber, SubscriberEvent
from pulseletter.dispatch import ledger
from pulseletter.mail.transports import MemoryTransport
from pulseletter.service import subscribers as subscriber_service
from pulseletter.service import web_actions
from pulseletter.service.app import App
from pulseletter.service.issues import compose_content
from pulseletter.web.security import SECURITY_HEADERS
from subscribers_support import (
    client,
    confirm_path,
    form_token,
    parse,
    subscribe_form,
    text_body,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def row(app: App, address: str) -> Subscriber | None:
    with app.db.reading() as session:
        return session.scalars(select(Subscriber).where(Subscriber.email_key == address)).first()


def events(app: App, subscriber_id: int, kind: str) -> int:
    with app.db.reading() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    SubscriberEvent.subscriber_id == subscriber_id, SubscriberEvent.kind == kind
                )
            )
            or 0
        )


@pytest.fixture
def tuned(
    make_settings: ConfigWriter, clock: FixedClock, memory_transport: MemoryTransport
) -> Iterator[App]:
    """An app with small limits, so the limits can be reached in a test."""
    a = App.open(
        make_settings(
            web={"subscribe_per_ip_per_hour": 3},
            subscribers={"confirmations_per_address_per_day": 2},
        ),
        check_schema=False,
        clock=clock,
        transport_factory=lambda: memory_transport,
    )
    upgrade(a.db.engine)
    yield a
    a.close()


def test_double_opt_in_from_form_to_active_and_a_second_visit_is_harmless(
    app: App, memory_transport: MemoryTransport
) -> None:
    c = client(app)
    response = subscribe_form(c, "Ada.Lovelace@Example.COM", "Ada")
    assert response.status_code == 200 and "Check your inbox" in response.text
    sub = row(app, "ada.lovelace@example.com")
    assert sub is not None and sub.status == "pending" and sub.source == "web"
    assert sub.email == "Ada.Lovelace@example.com"  # normalised: the domain is lower-cased

    assert len(memory_transport.sent) == 1
    msg = parse(memory_transport.sent[0][2])
    assert msg["Subject"].startswith("Confirm your subscription")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/confirm/" in str(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]
    path = confirm_path(memory_transport, "Ada.Lovelace@example.com")

    first = c.get(path)
    assert first.status_code == 200 and "You are subscribed" in first.text
    second = c.get(path)
    assert second.status_code == 200 and "already confirmed" in second.text
    sub = row(app, "ada.lovelace@example.com")
    assert sub is not None and sub.status == "active" and sub.confirmed_at is not None
    assert events(app, sub.id, "active") == 1


def test_json_sign_up_and_its_errors(app: App, memory_transport: MemoryTransport) -> None:
    c = client(app)
    ok = c.post("/subscribe", json={"email": "grace@example.org", "name": "Grace"})
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    assert [to for _, to, _ in memory_transport.sent] == ["grace@example.org"]
    bad = c.post("/subscribe", json={"email": "not an address"})
    assert bad.status_code == 400 and "not a valid address" in bad.json()["error"]
    broken = c.post("/subscribe", content=b"{nope", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "email" in broken.json()["error"]
    injected = c.post("/subscribe", json={"email": "x@example.org", "name": "A\r\nBcc: y"})
    assert injected.status_code == 400 and row(app, "x@example.org") is None


def test_the_answer_is_the_same_for_known_and_unknown_addresses(
    app: App, memory_transport: MemoryTransport
) -> None:
    subscriber_service.add(app, "known@example.com", status="active")
    subscriber_service.add(app, "left@example.com", status="active")
    subscriber_service.unsubscribe(app, "left@example.com")
    c = client(app)
    answers = [
        subscribe_form(c, a) for a in ("known@example.com", "left@example.com", "new@example.com")
    ]
    assert len({(r.status_code, r.text) for r in answers}) == 1
    json_answers = [
        c.post("/subscribe", json={"email": a}) for a in ("known@example.com", "new2@example.com")
    ]
    assert len({(r.status_code, r.text) for r in json_answers}) == 1
    # nobody's status changed because a stranger typed their address
    assert row(app, "left@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    assert row(app, "known@example.com").status == "active"  # type: ignore[union-attr]
    # the active subscriber got no mail; the unsubscribed one may opt in again by mail
    assert "known@example.com" not in [to for _, to, _ in memory_transport.sent]


def test_a_previously_unsubscribed_address_comes_back_only_through_opt_in(
    app: App, memory_transport: MemoryTransport
) -> None:
    subscriber_service.add(app, "back@example.com", status="active")
    subscriber_service.unsubscribe(app, "back@example.com")
    c = client(app)
    subscribe_form(c, "back@example.com")
    assert row(app, "back@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    assert c.get(confirm_path(memory_transport, "back@example.com")).status_code == 200
    assert row(app, "back@example.com").status == "active"  # type: ignore[union-attr]


def test_csrf_is_required_for_the_html_form(app: App, clock: FixedClock) -> None:
    c = client(app)
    no_token = c.post("/subscribe", data={"email": "a@example.com"})
    assert no_token.status_code == 403
    token = form_token(c)
    other = client(app)  # a cross-site post: the token but not the victim's cookie
    assert (
        other.post("/subscribe", data={"email": "a@example.com", "csrf_token": token}).status_code
        == 403
    )
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (
        c.post("/subscribe", data={"email": "a@example.com", "csrf_token": forged}).status_code
        == 403
    )
    clock.advance(hours=3)  # past security.csrf_token_minutes (120)
    assert (
        c.post("/subscribe", data={"email": "a@example.com", "csrf_token": token}).status_code
        == 403
    )
    assert row(app, "a@example.com") is None
    fresh = subscribe_form(c, "a@example.com")
    assert fresh.status_code == 200 and row(app, "a@example.com") is not None
    cookie = fresh.request.headers.get("cookie", "")
    assert "pl_csrf=" in cookie


def test_the_honeypot_answers_like_success_but_does_nothing(
    app: App, memory_transport: MemoryTransport
) -> None:
    c = client(app)
    bot = subscribe_form(c, "bot@example.com", website="http://spam.example")
    human = subscribe_form(c, "human@example.com")
    assert (bot.status_code, bot.text) == (human.status_code, human.text)
    assert row(app, "bot@example.com") is None
    assert [to for _, to, _ in memory_transport.sent] == ["human@example.com"]


def test_sign_ups_are_limited_per_ip(tuned: App, clock: FixedClock) -> None:
    c = client(tuned)
    for n in range(3):
        assert c.post("/subscribe", json={"email": f"p{n}@example.com"}).status_code == 200
    limited = c.post("/subscribe", json={"email": "p9@example.com"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert row(tuned, "p9@example.com") is None
    assert subscribe_form(c, "p9@example.com").status_code == 429  # the form too
    clock.advance(hours=1, seconds=1)
    assert c.post("/subscribe", json={"email": "p9@example.com"}).status_code == 200


def test_confirmation_mails_are_limited_per_address(
    tuned: App, clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    c = client(tuned)
    for hop in range(4):  # four sign-ups from four networks for one victim
        clock.advance(minutes=1)
        answer = c.post(
            "/subscribe", json={"email": "victim@example.com"}, headers={"x-test-hop": str(hop)}
        )
        assert answer.status_code in (200, 429)
        clock.advance(hours=1)  # the per-IP window passes; the per-address one does not
    sent = [to for _, to, _ in memory_transport.sent]
    assert sent.count("victim@example.com") == 2  # subscribers.confirmations_per_address_per_day
    clock.advance(days=1)
    c.post("/subscribe", json={"email": "victim@example.com"})
    assert [to for _, to, _ in memory_transport.sent].count("victim@example.com") == 3


def test_confirmation_links_expire_and_cannot_be_forged(
    app: App, clock: FixedClock, memory_transport: MemoryTransport
) -> None:
    c = client(app)
    subscribe_form(c, "late@example.com")
    path = confirm_path(memory_transport, "late@example.com")
    clock.advance(hours=73)  # security.confirm_token_hours = 72
    expired = c.get(path)
    assert expired.status_code == 410 and "expired" in expired.text
    assert row(app, "late@example.com").status == "pending"  # type: ignore[union-attr]
    token = path.rsplit("/", 1)[1]
    sub_token, expires, signature = token.split(".")
    longer = f"{sub_token}.{int(expires) + 10**6}.{signature}"  # extend the expiry by hand
    assert c.get(f"/confirm/{longer}").status_code == 404
    assert c.get("/confirm/nonsense").status_code == 404
    assert row(app, "late@example.com").status == "pending"  # type: ignore[union-attr]


def test_unsubscribe_get_shows_a_button_and_changes_nothing(app: App) -> None:
    sub = subscriber_service.add(app, "stay@example.com", status="active")
    c = client(app)
    page = c.get(f"/unsubscribe/{sub.token}")
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert row(app, "stay@example.com").status == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_rfc8058(app: App, encoding: str) -> None:
    sub = subscriber_service.add(app, "leave@example.com", status="active")
    c = client(app)
    c.cookies.clear()
    kwargs: dict[str, object] = (
        {"data": {"List-Unsubscribe": "One-Click"}}
        if encoding == "urlencoded"
        else {"files": {"List-Unsubscribe": (None, "One-Click")}}
    )
    for _ in range(2):  # idempotent
        answer = c.post(f"/unsubscribe/{sub.token}", follow_redirects=False, **kwargs)  # type: ignore[arg-type]
        assert answer.status_code == 200
        assert "set-cookie" not in answer.headers and "location" not in answer.headers
    after = row(app, "leave@example.com")
    assert after is not None and after.status == "unsubscribed"
    assert after.status_reason == "one-click"
    assert events(app, sub.id, "unsubscribed") == 1


def test_unknown_tokens_get_a_useful_404_and_reveal_nothing(app: App) -> None:
    c = client(app)
    for method, path in (
        ("GET", "/unsubscribe/abc"),
        ("POST", "/unsubscribe/abc"),
        ("GET", "/preferences/" + "x" * 32),
        ("POST", "/preferences/" + "x" * 300),
    ):
        answer = c.request(method, path)
        assert answer.status_code == 404 and "not valid" in answer.text


def test_preferences_rename_pause_and_unsubscribe(app: App, clock: FixedClock) -> None:
    sub = subscriber_service.add(app, "pref@example.com", name="Old", status="active")
    other = subscriber_service.add(app, "other@example.com", status="active")
    c = client(app)
    page = c.get(f"/preferences/{sub.token}")
    assert page.status_code == 200 and 'value="Old"' in page.text
    saved = c.post(f"/preferences/{sub.token}", data={"name": "New Name", "pause_weeks": "2"})
    assert saved.status_code == 200 and "paused until" in saved.text
    after = row(app, "pref@example.com")
    assert after is not None and after.name == "New Name"
    assert after.paused_until == clock.now + timedelta(weeks=2)

    issue = Issue(
        key="2026-W48", number=1, week_start=clock.now, week_end=clock.now, state="sending"
    )
    with app.db.writing() as session:
        session.add(issue)
        session.flush()
        issue_id = issue.id
    ledger.fan_out(app.db, issue_id, clock.now)
    with app.db.reading() as session:
        audience = set(session.scalars(text("SELECT email FROM deliveries")))
    assert audience == {other.email}  # the paused subscriber is left out

    bad = c.post(f"/preferences/{sub.token}", data={"name": "A\nB", "pause_weeks": "-1"})
    assert bad.status_code == 400 and "line break" in bad.text
    nonsense = c.post(f"/preferences/{sub.token}", data={"name": "X", "pause_weeks": "99"})
    assert nonsense.status_code == 400
    gone = c.post(f"/preferences/{sub.token}", data={"name": "X", "unsubscribe": "1"})
    assert gone.status_code == 200 and "unsubscribed" in gone.text
    assert row(app, "pref@example.com").status == "unsubscribed"  # type: ignore[union-attr]


def add_issue(app: App, key: str, state: str, number: int, when: datetime) -> None:
    """A composed issue (real templates) whose web page is rendered from its frozen content."""
    content = hostile_content(f"Issue {number}", image=False)
    compiled = compose_content(app, content, number)
    with app.db.writing() as session:
        session.add(
            Issue(
                key=key,
                number=number,
                week_start=when,
                week_end=when,
                state=state,
                subject=f"Subject {number} <&>",
                preheader="pre",
                html=compiled.html,
                text=compiled.text,
                content=content.to_json(),
                sent_at=when if state == "sent" else None,
            )
        )


def test_archive_pages_and_atom_feed(app: App) -> None:
    c = client(app)
    empty = c.get("/archive")
    assert empty.status_code == 200 and "No issue has been sent yet" in empty.text
    when = datetime(2026, 11, 16, 8, tzinfo=UTC)
    add_issue(app, "2026-W46", "sent", 1, when)
    add_issue(app, "2026-W47", "sent", 2, when + timedelta(weeks=1))
    add_issue(app, "2026-W48", "ready", 3, when + timedelta(weeks=2))
    add_issue(app, "2026-W45", "cancelled", 4, when - timedelta(weeks=1))
    index = c.get("/archive")
    assert index.status_code == 200
    assert index.text.index("/archive/2026-W47") < index.text.index("/archive/2026-W46")
    assert "2026-W48" not in index.text and "2026-W45" not in index.text
    assert "Subject 1 &lt;&amp;&gt;" in index.text

    page = c.get("/archive/2026-W46")
    assert page.status_code == 200 and "Issue 1" in page.text
    assert "%%PL_" not in page.text and "/unsubscribe/" not in page.text  # no personal links
    assert c.get("/archive/2026-W48").status_code == 404  # not sent yet
    assert c.get("/archive/2099-W01").status_code == 404
    withdrawn = c.get("/archive/2026-W45")
    assert withdrawn.status_code == 410 and "withdrawn" in withdrawn.text

    feed = c.get("/archive/feed.xml")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith(
        "application/atom+xml"
    )
    root = ET.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert [e.findtext("a:title", namespaces=ns) for e in entries] == [
        "#2: Subject 2 <&>",
        "#1: Subject 1 <&>",
    ]
    assert entries[0].find("a:link", ns).get("href") == "http://127.0.0.1:8025/archive/2026-W47"  # type: ignore[union-attr]
    assert root.findtext("a:updated", namespaces=ns) == "2026-11-23T08:00:00Z"


def test_healthz_reports_200_then_503(app: App) -> None:
    c = client(app)
    ok = c.get("/healthz")
    assert ok.status_code == 200 and ok.json()["ok"] is True
    with app.db.writing() as session:
        session.execute(text("DROP TABLE job_runs"))
    broken = c.get("/healthz")
    assert broken.status_code == 503 and broken.json()["ok"] is False


def test_security_headers_everywhere_and_errors_without_traces(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = client(app)
    for path in ("/subscribe", "/archive", "/nowhere", "/healthz", "/archive/feed.xml"):
        answer = c.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (path, name)
    assert "frame-ancestors 'none'" in SECURITY_HEADERS["content-security-policy"]
    assert SECURITY_HEADERS["referrer-policy"] == "no-referrer"
    missing = c.get("/nowhere")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert c.delete("/subscribe").status_code == 405

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(web_actions, "subscriber_for_token", explode)
    quiet = client(app)
    quiet = type(quiet)(quiet.app, raise_server_exceptions=False)
    failed = quiet.get("/unsubscribe/whatever")
    assert failed.status_code == 500
    assert "hunter2" not in failed.text and "Traceback" not in failed.text
    assert "Something went wrong" in failed.text
    assert failed.headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]


def test_confirmation_mail_text_names_the_lifetime(
    app: App, memory_transport: MemoryTransport
) -> None:
    subscribe_form(client(app), "read@example.com", "Reader")
    body = text_body(parse(memory_transport.sent[0][2]))
    assert "Hello Reader" in body and "72 hours" in body and "/unsubscribe/" in body

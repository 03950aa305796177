"""Sending use cases: fan the issue out to its frozen audience and work through the ledger."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import select

from pulseletter.compose.render import Recipient, personalise
from pulseletter.db.models import Issue, Subscriber
from pulseletter.dispatch import ledger
from pulseletter.dispatch.ledger import Claimed
from pulseletter.dispatch.sender import SendReport, run_sender
from pulseletter.errors import IssueStateError
from pulseletter.mail.message import build_message, headers_from_settings, new_message_id
from pulseletter.service.app import App
from pulseletter.service.issues import check_sendable, compiled_from
from pulseletter.subscribers.links import personal_links


@dataclass(frozen=True)
class SendOutcome:
    issue_key: str
    state: str
    report: SendReport
    counts: dict[str, int]
    queued_now: int


def send_issue(app: App, key: str, *, stop: threading.Event | None = None) -> SendOutcome:
    """Check, fan out (once) and send every due delivery; safe to call again to resume."""
    with app.db.writing() as session:
        issue = session.scalars(select(Issue).where(Issue.key == key)).first()
        if issue is None:
            raise IssueStateError(f"there is no issue {key}; prepare it first")
        if issue.state not in ("ready", "sending"):
            raise IssueStateError(f"issue {key} is {issue.state}; it cannot be sent")
        check_sendable(app, issue)
        if issue.state == "ready":
            issue.state = "sending"
            issue.send_started_at = app.clock()
        issue_id, compiled = issue.id, compiled_from(issue)
    queued = ledger.fan_out(app.db, issue_id, app.clock())
    s = app.settings
    headers = headers_from_settings(s, compiled.subject)

    def build(row: Claimed) -> bytes | None:
        with app.db.reading() as session:
            subscriber = session.get(Subscriber, row.subscriber_id) if row.subscriber_id else None
        if subscriber is None or subscriber.status != "active":
            return None  # unsubscribed or erased after fan-out: never mailed
        message_id = row.message_id or new_message_id(s.newsletter.from_address)
        if not row.message_id:
            ledger.set_message_id(app.db, row.delivery_id, message_id)
        links = personal_links(s.web.base_url, subscriber, key)
        html, text = personalise(compiled, Recipient(**links, name=subscriber.name))
        return build_message(
            headers,
            to_address=subscriber.email,
            to_name=subscriber.name,
            text=text,
            html=html,
            message_id=message_id,
            date=app.clock(),
            unsubscribe_url=links["unsubscribe_url"],
        )

    report = run_sender(
        app.db,
        issue_id,
        app.transport(),
        s.newsletter.from_address,
        build,
        clock=app.clock,
        max_attempts=s.sending.max_attempts,
        stop=stop,
    )
    state = _finish_if_done(app, issue_id)
    return SendOutcome(key, state, report, ledger.counts(app.db, issue_id), queued)


def _finish_if_done(app: App, issue_id: int) -> str:
    remaining = ledger.outstanding(app.db, issue_id)
    with app.db.writing() as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        if remaining == 0 and issue.state == "sending":
            issue.state = "sent"
            issue.sent_at = app.clock()
        return issue.state

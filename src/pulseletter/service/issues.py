"""Issue use cases: compose the week's issue under its unique key, and send or resume it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from pulseletter.compose.render import CompiledIssue, Recipient, compile_issue, personalise
from pulseletter.content.selection import IssueContent
from pulseletter.content.week import Week, last_complete_week, week_from_key
from pulseletter.db.models import Issue, Subscriber
from pulseletter.dispatch import ledger
from pulseletter.dispatch.ledger import Claimed
from pulseletter.dispatch.sender import SendReport, run_sender
from pulseletter.errors import IssueStateError, LintError
from pulseletter.mail.message import MessageHeaders, build_message, new_message_id
from pulseletter.service.app import App
from pulseletter.service.content import week_content
from pulseletter.subscribers.links import personal_links

log = logging.getLogger(__name__)
FROZEN_STATES = ("sending", "paused", "sent", "cancelled")


def resolve_week(app: App, key: str | None) -> Week:
    """``--week`` if given, else the last complete week in the newsletter's time zone."""
    s = app.settings
    if key:
        return week_from_key(key, s.timezone, s.content.week_start)
    return last_complete_week(app.clock(), s.timezone, s.content.week_start)


def make_subject(app: App, content: IssueContent, number: int) -> str:
    lead = content.lead.title if content.lead else "A quiet week"
    return app.settings.issue.subject.format(
        newsletter=app.settings.newsletter.name,
        number=number,
        lead_title=lead,
        week=content.week_key,
    )


def make_preheader(app: App, content: IssueContent, limit: int = 110) -> str:
    text = app.settings.issue.preheader or (content.lead.tldr if content.lead else "")
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def compose(app: App, week: Week, number: int) -> tuple[IssueContent, CompiledIssue]:
    content = week_content(app, week)
    compiled = compile_issue(
        app.settings,
        content,
        number=number,
        subject=make_subject(app, content, number),
        preheader=make_preheader(app, content),
    )
    return content, compiled


def prepare_issue(app: App, week: Week) -> Issue:
    """Create or refresh the week's issue; an issue already sending or sent stays frozen."""
    with app.db.writing() as session:
        issue = session.scalars(select(Issue).where(Issue.key == week.key)).first()
        if issue is not None and issue.state in FROZEN_STATES:
            return issue
        if issue is None:
            number = (session.scalar(select(func.max(Issue.number))) or 0) + 1
            issue = Issue(
                key=week.key,
                number=number,
                week_start=week.start,
                week_end=week.end,
                state="draft",
                created_at=app.clock(),
            )
            session.add(issue)
            session.flush()
        content, compiled = compose(app, week, issue.number)
        if content.is_empty:
            raise LintError([f"{week.key} has no articles: nothing to send"])
        issue.subject, issue.preheader = compiled.subject, compiled.preheader
        issue.html, issue.text = compiled.html, compiled.text
        issue.content = content.to_json()
        issue.state = "ready"
        issue.updated_at = app.clock()
        return issue


def compiled_from(issue: Issue) -> CompiledIssue:
    return CompiledIssue(issue.subject, issue.preheader, issue.html, issue.text)


@dataclass(frozen=True)
class SendOutcome:
    issue_key: str
    state: str
    report: SendReport
    counts: dict[str, int]
    queued_now: int


def send_issue(app: App, key: str) -> SendOutcome:
    """Fan out (once) and send every due delivery; safe to call again to resume."""
    with app.db.writing() as session:
        issue = session.scalars(select(Issue).where(Issue.key == key)).first()
        if issue is None:
            raise IssueStateError(f"there is no issue {key}; prepare it first")
        if issue.state not in ("ready", "sending"):
            raise IssueStateError(f"issue {key} is {issue.state}; it cannot be sent")
        if issue.state == "ready":
            issue.state = "sending"
            issue.send_started_at = app.clock()
        issue_id, compiled = issue.id, compiled_from(issue)
    queued = ledger.fan_out(app.db, issue_id, app.clock())
    s = app.settings
    headers = message_headers(app, compiled.subject)

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


def message_headers(app: App, subject: str) -> MessageHeaders:
    """Headers shared by every recipient of an issue (and by previews and test sends)."""
    s = app.settings
    domain = s.newsletter.from_address.rpartition("@")[2] or "localhost"
    slug = "".join(c if c.isalnum() else "-" for c in s.newsletter.name.lower()).strip("-")
    return MessageHeaders(
        from_name=s.newsletter.from_name,
        from_address=s.newsletter.from_address,
        subject=subject,
        reply_to=s.newsletter.reply_to,
        list_id=s.sending.list_id or f"{s.newsletter.name} <{slug}.{domain}>",
        feedback_id=s.sending.feedback_id,
        unsubscribe_mailto=s.sending.unsubscribe_mailto,
    )


def issue_status(app: App, key: str) -> tuple[Issue, dict[str, int]]:
    issue = ledger.issue_by_key(app.db, key)
    if issue is None:
        raise IssueStateError(f"there is no issue {key}")
    return issue, ledger.counts(app.db, issue.id)

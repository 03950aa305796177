"""Sending use cases: lint, fan out to the frozen audience, work through the ledger; and the
operator's controls (pause, resume, cancel, retry, status, failures, a test copy)."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from pulseletter.db.models import Issue, Subscriber
from pulseletter.dispatch import ledger
from pulseletter.dispatch.ledger import Claimed
from pulseletter.dispatch.policy import Breaker
from pulseletter.dispatch.ratelimit import RateLimit, buckets
from pulseletter.dispatch.sender import SenderConfig, SendReport, run_sender
from pulseletter.errors import IssueStateError
from pulseletter.mail.dkim import signer_from_settings
from pulseletter.mail.fastpath import MessageTemplate
from pulseletter.mail.message import (
    headers_from_settings,
    new_message_id,
    wire_address,
)
from pulseletter.mail.transports import Reply
from pulseletter.service.app import App
from pulseletter.service.issues import check_sendable, compiled_from
from pulseletter.service.relays import one_transport, relay_pool
from pulseletter.subscribers.links import personal_links

TOKEN_MARK = "\x00token\x00"
Progress = Callable[[SendReport, int], None]


@dataclass(frozen=True)
class SendOutcome:
    issue_key: str
    state: str
    report: SendReport
    counts: dict[str, int]
    queued_now: int
    reason: str = ""
    next_attempt_at: datetime | None = None


def sender_config(app: App) -> SenderConfig:
    s = app.settings.sending
    return SenderConfig(
        connections=s.connections,
        messages_per_connection=s.messages_per_connection,
        batch=s.batch_size,
        lease=timedelta(seconds=s.lease_seconds),
        max_attempts=s.max_attempts,
        retry_base=s.retry_base_seconds,
        retry_max=s.retry_max_seconds,
        throttle_seconds=s.throttle_seconds,
        bounce_limit=s.bounce_limit,
        resend_unknown=s.resend_unknown,
    )


def message_builder(app: App, issue: Issue) -> Callable[[Claimed, str], bytes]:
    """Compile the issue's MIME bytes once; the returned function personalises per row."""
    s = app.settings
    compiled = compiled_from(issue)
    template = MessageTemplate(
        headers_from_settings(s, compiled.subject), compiled.text, compiled.html
    )
    links = personal_links(s.web.base_url, Subscriber(token=TOKEN_MARK), issue.key)
    signer = signer_from_settings(s)
    clock = app.clock

    def build(row: Claimed, message_id: str) -> bytes:
        values = {k: v.replace(TOKEN_MARK, row.token) for k, v in links.items()}
        values["name"] = row.name
        data = template.render(
            to_address=row.email,
            to_name=row.name,
            message_id=message_id,
            date=clock(),
            unsubscribe_url=values["unsubscribe_url"],
            values=values,
        )
        return signer.sign(data) if signer is not None else data

    return build


def send_issue_until_settled(
    app: App,
    key: str,
    *,
    stop: threading.Event,
    progress: Progress | None = None,
    wait: bool = False,
) -> SendOutcome:
    """``send_issue``; with ``wait``, sleep until deferred messages are due (on the app's
    clock) and send again, until nothing is left to retry or ``stop`` is set."""
    while True:
        outcome = send_issue(app, key, stop=stop, progress=progress)
        due = outcome.next_attempt_at
        if not wait or outcome.state != "sending" or due is None or stop.is_set():
            return outcome
        if stop.wait(max(0.0, (due - app.clock()).total_seconds()) + 0.5):
            return outcome


def _load(app: App, key: str) -> Issue:
    issue = ledger.issue_by_key(app.db, key)
    if issue is None:
        raise IssueStateError(f"there is no issue {key}; prepare it first")
    return issue


def send_issue(
    app: App,
    key: str,
    *,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> SendOutcome:
    """Lint, fan out (once) and send every due delivery; safe to call again to resume.

    ``stop`` ends the run gracefully: no new claims, in-flight messages finish and are
    recorded. A breaker (auth refused, sender refused, a run of rejections) pauses the issue.
    """
    with app.db.writing() as session:
        issue = session.scalars(select(Issue).where(Issue.key == key)).first()
        if issue is None:
            raise IssueStateError(f"there is no issue {key}; prepare it first")
        if issue.state == "paused":
            why = f" ({issue.state_reason})" if issue.state_reason else ""
            raise IssueStateError(
                f"issue {key} is paused{why}; run `pulseletter issue resume --week {key}`"
            )
        if issue.state not in ("ready", "sending"):
            raise IssueStateError(f"issue {key} is {issue.state}; it cannot be sent")
        if issue.state == "ready" and app.settings.issue.require_approval and not issue.approved_at:
            raise IssueStateError(
                f"issue {key} waits for an editor's approval (issue.require_approval); "
                f"run `pulseletter issue approve --week {key}` first"
            )
        check_sendable(app, issue)
        if issue.state == "ready":
            issue.state = "sending"
            issue.state_reason = ""
            issue.send_started_at = app.clock()
        issue_id = issue.id
        cutoff = issue.send_started_at
    s = app.settings
    build = message_builder(app, issue)
    queued = ledger.fan_out(
        app.db, issue_id, app.clock(), cutoff=cutoff, batch=max(s.sending.batch_size, 1000)
    )
    total = ledger.outstanding(app.db, issue_id)
    report_box: list[SendReport] = []

    def tick(_: str) -> None:
        if progress is not None and report_box:
            progress(report_box[0], total)

    breaker = Breaker(s.sending.breaker_data_failures, s.sending.breaker_connect_failures)
    report = SendReport()
    report_box.append(report)
    sender_report = run_sender(
        app.db,
        issue_id,
        relay_pool(app),
        s.newsletter.from_address,
        build,
        lambda: new_message_id(s.newsletter.from_address),
        clock=app.clock,
        config=sender_config(app),
        global_limit=RateLimit(
            buckets(s.sending.rate_per_second, s.sending.rate_per_hour, s.sending.rate_per_day)
        ),
        breaker=breaker,
        stop=stop,
        progress=tick if progress is not None else None,
        report=report,
    )
    if sender_report.paused_reason:
        _set_state(app, issue_id, "paused", sender_report.paused_reason, only_from=("sending",))
    state = _finish_if_done(app, issue_id)
    fresh = _load(app, key)
    return SendOutcome(
        key,
        state,
        sender_report,
        ledger.counts(app.db, issue_id),
        queued,
        fresh.state_reason,
        ledger.next_due(app.db, issue_id),
    )


def _finish_if_done(app: App, issue_id: int) -> str:
    remaining = ledger.outstanding(app.db, issue_id)
    with app.db.writing() as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        if remaining == 0 and issue.state == "sending":
            issue.state = "sent"
            issue.sent_at = app.clock()
        return issue.state


def _set_state(
    app: App, issue_id: int, state: str, reason: str, *, only_from: tuple[str, ...]
) -> Issue:
    with app.db.writing() as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        if issue.state not in only_from:
            raise IssueStateError(
                f"issue {issue.key} is {issue.state}; it can only be {state} from "
                + " or ".join(only_from)
            )
        issue.state, issue.state_reason, issue.updated_at = state, reason, app.clock()
        return issue


def pause_issue(app: App, key: str, reason: str = "paused by the operator") -> Issue:
    """A running sender notices at its next claim, finishes what is in flight, and stops."""
    return _set_state(app, _load(app, key).id, "paused", reason, only_from=("sending",))


def resume_issue(app: App, key: str) -> Issue:
    """Back to ``sending``; the caller then runs ``send_issue`` again."""
    return _set_state(app, _load(app, key).id, "sending", "", only_from=("paused",))


def cancel_issue(app: App, key: str) -> tuple[Issue, int]:
    """Stop for good: rows not yet sent become ``skipped`` (in-flight ones still finish)."""
    issue = _set_state(
        app,
        _load(app, key).id,
        "cancelled",
        "cancelled by the operator",
        only_from=("draft", "ready", "sending", "paused"),
    )
    skipped = ledger.skip_outstanding(app.db, issue.id, app.clock(), "issue cancelled")
    return issue, skipped


def retry_failed(app: App, key: str, *, include_unknown: bool = False) -> tuple[Issue, int]:
    """Put failed (and optionally unknown) deliveries back in the queue and reopen the issue.

    Bounced and skipped rows are not retried: those subscribers must not be mailed."""
    issue = _load(app, key)
    if issue.state not in ("sending", "paused", "sent"):
        raise IssueStateError(f"issue {key} is {issue.state}; nothing to retry")
    statuses = ["failed"] + (["unknown"] if include_unknown else [])
    n = ledger.requeue(app.db, issue.id, statuses, app.clock())
    if n and issue.state == "sent":
        issue = _set_state(app, issue.id, "sending", "", only_from=("sent",))
    return issue, n


@dataclass(frozen=True)
class StatusReport:
    key: str
    number: int
    state: str
    reason: str
    subject: str
    counts: dict[str, int]
    total: int
    uncertain: int
    rate_per_minute: float
    eta_seconds: float | None
    next_attempt_at: datetime | None
    top_failures: list[tuple[str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "number": self.number,
            "state": self.state,
            "reason": self.reason,
            "subject": self.subject,
            "deliveries": self.counts,
            "total": self.total,
            "uncertain": self.uncertain,
            "rate_per_minute": round(self.rate_per_minute, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "next_attempt_at": self.next_attempt_at,
            "top_failures": [{"reason": r, "count": n} for r, n in self.top_failures],
        }


def status_report(app: App, key: str, window: timedelta = timedelta(minutes=5)) -> StatusReport:
    """Counts per status, the send rate over the last few minutes, ETA and top failures."""
    issue = _load(app, key)
    counts = ledger.counts(app.db, issue.id)
    now = app.clock()
    recent = ledger.sent_between(app.db, issue.id, now - window)
    rate = recent / window.total_seconds() * 60
    left = ledger.outstanding(app.db, issue.id)
    eta = left / (rate / 60) if rate > 0 and issue.state == "sending" else None
    return StatusReport(
        issue.key,
        issue.number,
        issue.state,
        issue.state_reason,
        issue.subject,
        counts,
        sum(counts.values()),
        ledger.uncertain(app.db, issue.id),
        rate,
        eta,
        ledger.next_due(app.db, issue.id),
        ledger.top_failures(app.db, issue.id),
    )


FAILURE_COLUMNS = (
    "email",
    "status",
    "attempts",
    "last_code",
    "last_text",
    "relay",
    "message_id",
    "uncertain",
    "updated_at",
)


def failures_csv(app: App, key: str) -> str:
    """Every delivery that did not end as sent, one CSV row each (header first)."""
    issue = _load(app, key)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FAILURE_COLUMNS)
    for d in ledger.failures(app.db, issue.id):
        writer.writerow(
            [
                d.email,
                d.status,
                d.attempts,
                "" if d.last_code is None else d.last_code,
                d.last_text,
                d.relay,
                d.message_id,
                int(d.last_text.startswith(ledger.UNCERTAIN)),
                d.updated_at.isoformat() if d.updated_at else "",
            ]
        )
    return out.getvalue()


def send_test(app: App, key: str, to_address: str, to_name: str = "") -> Reply:
    """A test copy to ``to_address``: the production builder and transport, no ledger row.

    Its personal links carry a placeholder token, so clicking them touches no subscriber."""
    issue = _load(app, key)
    check_sendable(app, issue)
    build = message_builder(app, issue)
    row = Claimed(0, None, to_address, "", 0, to_name, "TEST-COPY")
    data = build(row, new_message_id(app.settings.newsletter.from_address))
    rcpt, smtputf8 = wire_address(to_address)
    transport = one_transport(app)
    try:
        return transport.send(app.settings.newsletter.from_address, rcpt, data, smtputf8=smtputf8)
    finally:
        transport.close()

"""The weekly job as use cases: what runs at send time, at prepare time, and on every tick.

Every function here is safe to run twice for the same week: the issue key (``2026-W47``) is the
anchor, not the scheduler's job store. A DST fall-back double fire, two triggers, or a restart
find the issue already ``sending``/``sent`` and do nothing more than resume or report it.

Policy, in one place:
- a send slot's week is ``last_complete_week(slot)``, so a late run covers the same week;
- automatic sends happen only within ``[slot, slot + schedule.grace_hours]``; after that the
  week is marked ``missed`` (logged, shown by /healthz), never sent stale unasked;
- an issue left in ``sending`` always resumes (its audience is frozen in the ledger);
- slots before the scheduler's first ever start are ignored: a fresh install does not send, or
  mark missed, a week it was never asked to handle;
- with ``issue.require_approval`` the issue is composed once, the editors get a test copy and a
  notice, and it waits in ``ready`` until ``pulseletter issue approve``; it is never recomposed
  behind the editor's back.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import and_, exists, func, or_, select

from pulseletter.compose.render import personalise
from pulseletter.content.week import Week, last_complete_week
from pulseletter.db.models import Delivery, Issue, JobRun
from pulseletter.errors import IssueStateError, PulseletterError
from pulseletter.service.app import App
from pulseletter.service.content import ingest_feeds
from pulseletter.service.issues import check_sendable, compiled_from, prepare_issue
from pulseletter.service.plan import Plan, last_fire, next_fires
from pulseletter.service.preview import sample_recipient
from pulseletter.service.sending import send_issue
from pulseletter.service.transactional import send_transactional

log = logging.getLogger("pulseletter.weekly")
T = TypeVar("T")

DONE_STATES = ("sent", "skipped", "missed", "cancelled")
RETRY_AFTER = timedelta(minutes=15)  # a failed automatic run is retried this often within grace
SEND_JOB, PREPARE_JOB, RESUME_JOB, INGEST_JOB = "weekly-send", "weekly-prepare", "resume", "ingest"
NOTICE_JOB, START_JOB = "approval-notice", "scheduler-start"


@dataclass(frozen=True)
class RunResult:
    job: str
    issue_key: str
    result: str  # sent, sending, awaiting-approval, skipped, missed, already-<state>, error, ...
    detail: str = ""


@dataclass
class _Run:
    job: str
    issue_key: str
    run_id: int
    started: float = field(default_factory=time.monotonic)
    result: str = "ok"
    detail: str = ""

    def done(self, result: str, detail: str = "") -> RunResult:
        self.result, self.detail = result, detail
        return RunResult(self.job, self.issue_key, result, detail)


@contextmanager
def job_run(app: App, job: str, issue_key: str = "") -> Iterator[_Run]:
    """A JobRun row and one log line at the start, the end, or the error (with traceback)."""
    with app.db.writing() as session:
        row = JobRun(job=job, issue_key=issue_key, started_at=app.clock(), result="running")
        session.add(row)
        session.flush()
        run = _Run(job, issue_key, row.id)
    extra = {"event": "job.start", "job": job, "issue": issue_key}
    log.info("job %s started%s", job, f" for {issue_key}" if issue_key else "", extra=extra)
    try:
        yield run
    except BaseException as exc:
        _finish(app, run, "error", f"{type(exc).__name__}: {exc}")
        extra = {"event": "job.error", "job": job, "issue": issue_key}
        log.error("job %s failed: %s", job, exc, exc_info=True, extra=extra)
        with contextlib.suppress(AttributeError, TypeError):
            exc.logged = True  # type: ignore[attr-defined]  # the scheduler's listener skips it
        raise
    _finish(app, run, run.result, run.detail)
    seconds = round(time.monotonic() - run.started, 3)
    extra = {"event": "job.end", "job": job, "issue": issue_key, "result": run.result}
    log.info(
        "job %s finished in %.3fs: %s%s",
        job,
        seconds,
        run.result,
        f" ({run.detail})" if run.detail else "",
        extra={**extra, "seconds": seconds},
    )


def _finish(app: App, run: _Run, result: str, detail: str) -> None:
    with app.db.writing() as session:
        row = session.get(JobRun, run.run_id)
        if row is not None:
            row.finished_at, row.result, row.detail = app.clock(), result[:20], detail[:4000]


def _state_change(key: str, before: str, after: str, why: str = "") -> None:
    if before != after:
        log.info(
            "issue %s: %s -> %s%s",
            key,
            before or "(new)",
            after,
            f" ({why})" if why else "",
            extra={"event": "issue.state", "issue": key, "from": before, "to": after},
        )


def find_issue(app: App, key: str) -> Issue | None:
    with app.db.reading() as session:
        return session.scalars(select(Issue).where(Issue.key == key)).first()


def week_for_slot(app: App, slot: datetime) -> Week:
    """The week a send at ``slot`` covers: the last one complete at that moment."""
    return last_complete_week(slot, app.settings.timezone, app.settings.content.week_start)


def record_start(app: App) -> None:
    """Remember that a scheduler ran from now on (for ``first_start``)."""
    now = app.clock()
    with app.db.writing() as session:
        session.add(JobRun(job=START_JOB, started_at=now, finished_at=now, result="ok"))


def first_start(app: App) -> datetime | None:
    with app.db.reading() as session:
        return session.scalar(select(func.min(JobRun.started_at)).where(JobRun.job == START_JOB))


# -- the send -------------------------------------------------------------------------------


def run_send(
    app: App, *, slot: datetime | None = None, stop: threading.Event | None = None
) -> RunResult:
    """The send-time pipeline for the week of ``slot`` (default: the latest send slot).

    Ingest the feeds, compose and lint the week's issue under its key, then send it; or resume
    it, wait for approval, or mark it missed, depending on what the database already says.
    """
    plan = Plan.from_settings(app.settings)
    slot = slot or last_fire(plan.send, app.clock())
    if slot is None:  # pragma: no cover - a weekly trigger always has a previous fire
        raise PulseletterError("the send schedule has no previous run")
    week = week_for_slot(app, slot)
    with job_run(app, SEND_JOB, week.key) as run:
        issue = find_issue(app, week.key)
        state = issue.state if issue else ""
        if state in DONE_STATES and state != "skipped":
            return run.done(f"already-{state}")
        # "skipped" (an empty week under content.empty_week = skip) is composed again: content
        # may have arrived since an early prepare; the tick does not retry it.
        if state == "paused":
            return run.done("paused", "paused by an operator; resume with `issue send`")
        if state == "sending":
            return run.done(*_send(app, week.key, stop))
        late = app.clock() - slot
        if late > plan.grace:
            reason = f"not sent within grace ({_hours(plan.grace)}) of {slot.isoformat()}"
            if state == "ready" and app.settings.issue.require_approval:
                reason = f"not approved within grace ({_hours(plan.grace)})"
            mark_missed(app, week, reason)
            return run.done("missed", reason)
        if app.settings.issue.require_approval:
            if issue is not None and state == "ready":
                if issue.approved_at is None:
                    _checked(app, SEND_JOB, week.key, lambda: check_sendable(app, issue))
                    _notify_once(app, issue, slot, plan)
                    return run.done("awaiting-approval", "run `pulseletter issue approve`")
                return run.done(*_send(app, week.key, stop))
            issue = _checked(app, SEND_JOB, week.key, lambda: _compose(app, week))
            if issue.state != "ready":
                return run.done(issue.state, issue.state_reason)
            _notify_once(app, issue, slot, plan)
            return run.done("awaiting-approval", "run `pulseletter issue approve`")
        issue = _checked(app, SEND_JOB, week.key, lambda: _compose(app, week))
        if issue.state != "ready":
            return run.done(issue.state, issue.state_reason)
        return run.done(*_send(app, week.key, stop))


def _compose(app: App, week: Week) -> Issue:
    """Ingest the configured feeds, then create or refresh the issue and lint it."""
    report = ingest_feeds(app)
    log.info("ingested feeds: %s", _summary(report), extra={"event": "content.ingest"})
    before = find_issue(app, week.key)
    issue = prepare_issue(app, week)
    _state_change(week.key, before.state if before else "", issue.state, "composed")
    if issue.state == "ready":
        check_sendable(app, issue)
    return issue


def _summary(report: object) -> str:
    summary = getattr(report, "summary", None)
    return str(summary() if callable(summary) else report)


def _send(app: App, key: str, stop: threading.Event | None) -> tuple[str, str]:
    before = find_issue(app, key)
    state = before.state if before else ""
    if state == "ready":
        _state_change(key, state, "sending", "send started")
        state = "sending"
    outcome = send_issue(app, key, stop=stop)
    _state_change(key, state, outcome.state, "send finished")
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.counts.items()))
    if stop is not None and stop.is_set() and outcome.state == "sending":
        return "interrupted", f"stopped by shutdown; resumes on start ({counts})"
    return outcome.state, counts


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def mark_missed(app: App, week: Week, reason: str) -> Issue | None:
    """Record that the week's automatic send did not happen; it will not be sent stale.

    A composed issue (draft/ready) becomes ``missed``. A week never composed gets no issue row
    (so it takes no issue number); the ``weekly-send`` job run with result ``missed`` is the
    record, and what /healthz lists."""
    with app.db.writing() as session:
        issue = session.scalars(select(Issue).where(Issue.key == week.key)).first()
        before = issue.state if issue else ""
        if issue is not None and issue.state in ("draft", "ready"):
            issue.state, issue.state_reason, issue.updated_at = "missed", reason, app.clock()
    log.warning(
        "missed the send of %s: %s",
        week.key,
        reason,
        extra={"event": "issue.missed", "issue": week.key},
    )
    if issue is not None:
        _state_change(week.key, before, issue.state, reason)
    return issue


# -- prepare, approval, notices --------------------------------------------------------------


def run_prepare(app: App, *, slot: datetime | None = None) -> RunResult:
    """Compose the issue of the next send ahead of time, so problems surface before it."""
    plan = Plan.from_settings(app.settings)
    if plan.prepare is None:
        raise PulseletterError("schedule.prepare is not set")
    slot = slot or last_fire(plan.prepare, app.clock())
    assert slot is not None
    send_at = next_fires(plan.send, slot, 1)[0]
    week = week_for_slot(app, send_at)
    with job_run(app, PREPARE_JOB, week.key) as run:
        issue = find_issue(app, week.key)
        if issue is not None and issue.state not in ("draft", "ready", "skipped"):
            return run.done(f"already-{issue.state}")
        if issue is not None and issue.approved_at is not None:
            return run.done("already-approved")
        if issue is not None and app.settings.issue.require_approval and issue.state == "ready":
            return run.done("awaiting-approval", "composed before; not recomposed")
        issue = _checked(app, PREPARE_JOB, week.key, lambda: _compose(app, week))
        if issue.state == "ready" and app.settings.issue.require_approval:
            _notify_once(app, issue, send_at, plan)
            return run.done("awaiting-approval", f"sends at {send_at.isoformat()} once approved")
        return run.done(issue.state, f"sends at {send_at.isoformat()}")


def awaiting_approval(app: App) -> str:
    """The key of the newest issue that is ready and not yet approved (what an editor means
    by ``issue approve`` without ``--week``: prepare may have composed the coming week)."""
    with app.db.reading() as session:
        key = session.scalars(
            select(Issue.key)
            .where(Issue.state == "ready", Issue.approved_at.is_(None))
            .order_by(Issue.week_start.desc())
            .limit(1)
        ).first()
    if key is None:
        raise IssueStateError("no issue is waiting for approval")
    return key


def approve_issue(app: App, key: str) -> Issue:
    """An editor's go-ahead: the scheduler sends an approved ``ready`` issue within grace."""
    with app.db.writing() as session:
        issue = session.scalars(select(Issue).where(Issue.key == key)).first()
        if issue is None:
            missed = _last_run(app, SEND_JOB, key)
            if missed is not None and missed.result == "missed":
                raise IssueStateError(
                    f"{key} was missed ({missed.detail}); to send it anyway, deliberately: "
                    f"`pulseletter issue send --week {key}`"
                )
            raise IssueStateError(f"there is no issue {key}; it is composed at prepare/send time")
        if issue.state == "missed":
            raise IssueStateError(
                f"{key} was missed ({issue.state_reason}); to send it anyway, deliberately: "
                f"`pulseletter issue send --week {key}`"
            )
        if issue.state != "ready":
            raise IssueStateError(f"{key} is {issue.state}; only a ready issue can be approved")
        if issue.approved_at is None:
            issue.approved_at = app.clock()
    log.info("issue %s approved", key, extra={"event": "issue.approved", "issue": key})
    return issue


def _notify_once(app: App, issue: Issue, send_at: datetime, plan: Plan) -> None:
    """A test copy and an approval notice to each editor, once per issue."""
    editors = app.settings.issue.editors
    if not editors:
        log.warning(
            "%s awaits approval but issue.editors is empty: nobody was told",
            issue.key,
            extra={"event": "notice.none", "issue": issue.key},
        )
        return
    with app.db.reading() as session:
        done = session.scalar(
            select(func.count())
            .select_from(JobRun)
            .where(JobRun.job == NOTICE_JOB, JobRun.issue_key == issue.key, JobRun.result == "ok")
        )
    if done:
        return
    with job_run(app, NOTICE_JOB, issue.key) as run:
        local = send_at.astimezone(plan.tz)
        deadline = (send_at + plan.grace).astimezone(plan.tz)
        lines = [
            f"Issue {issue.key} (#{issue.number}) is composed and waits for approval.",
            "",
            f"Subject: {issue.subject}",
            f"Send time: {local:%a %d %b %Y %H:%M %Z}; if approved later, it goes out within "
            f"a minute of approval, until {deadline:%a %d %b %H:%M %Z}.",
            "",
            "A test copy, exactly as subscribers will see it, was sent to this address.",
            "To approve it:",
            "",
            f"    pulseletter issue approve --week {issue.key}",
        ]
        failures = []
        for editor in editors:
            failures += _send_test_copy(app, issue, editor)
            failures += _send_notice(app, editor, f"Ready for approval: {issue.subject}", lines)
        if failures:
            run.done("error", "; ".join(failures))
        else:
            run.done("ok", f"{len(editors)} editor(s)")


def _checked(app: App, job: str, key: str, step: Callable[[], T]) -> T:
    """Run a compose or lint step; on its first failure for this week, tell the editors."""
    try:
        return step()
    except PulseletterError as exc:
        with app.db.reading() as session:
            failed_before = session.scalar(
                select(func.count())
                .select_from(JobRun)
                .where(JobRun.job == job, JobRun.issue_key == key, JobRun.result == "error")
            )
        if not failed_before:
            _notify_problem(app, key, str(exc))
        raise


def _notify_problem(app: App, key: str, problem: str) -> None:
    lines = [
        f"The automatic compose of {key} failed, so it will not go out until this is fixed:",
        "",
        problem,
        "",
        f"Check it with `pulseletter preview --week {key}`.",
    ]
    for editor in app.settings.issue.editors:
        _send_notice(app, editor, f"Problem with issue {key}", lines)


def _send_test_copy(app: App, issue: Issue, editor: str) -> list[str]:
    recipient = sample_recipient(app, issue.key)
    body_html, body_text = personalise(compiled_from(issue), recipient)
    reply = send_transactional(
        app,
        to_address=editor,
        to_name="",
        subject=f"[TEST] {issue.subject}",
        text=body_text,
        html=body_html,
        unsubscribe_url=recipient.unsubscribe_url,
    )
    return [] if reply.ok else [f"test copy to {editor}: {reply.code} {reply.text}"]


def _send_notice(app: App, editor: str, subject: str, lines: list[str]) -> list[str]:
    recipient = sample_recipient(app, "notice")
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "" for line in lines)
    reply = send_transactional(
        app,
        to_address=editor,
        to_name="",
        subject=subject,
        text="\n".join(lines) + "\n",
        html=f"<html><body>{body}</body></html>",
        unsubscribe_url=recipient.preferences_url,
    )
    if not reply.ok:
        log.error("notice to %s failed: %s %s", editor, reply.code, reply.text)
        return [f"notice to {editor}: {reply.code} {reply.text}"]
    return []


# -- ingest and the tick ---------------------------------------------------------------------


def run_ingest(app: App) -> RunResult:
    with job_run(app, INGEST_JOB) as run:
        return run.done("ok", _summary(ingest_feeds(app)))


def resume_sending(app: App, stop: threading.Event | None = None) -> list[RunResult]:
    """Resume every issue left in ``sending`` (interrupted, or with deferred retries due)."""
    now = app.clock()
    due = or_(
        Delivery.status == "queued",
        and_(Delivery.status == "deferred", Delivery.next_attempt_at <= now),
        and_(Delivery.status == "sending", Delivery.lease_until < now),
        Delivery.id.is_(None),  # not fanned out yet
    )
    with app.db.reading() as session:
        keys = session.scalars(
            select(Issue.key)
            .outerjoin(Delivery, Delivery.issue_id == Issue.id)
            .where(Issue.state == "sending", due)
            .group_by(Issue.key)
        ).all()
        # a sender that died after its last result but before marking the issue sent
        outstanding = exists().where(
            Delivery.issue_id == Issue.id,
            Delivery.status.in_(("queued", "deferred", "sending")),
        )
        settled = session.scalars(
            select(Issue.key).where(Issue.state == "sending", ~outstanding)
        ).all()
    keys = sorted(set(keys) | set(settled))
    results = []
    for key in keys:
        if stop is not None and stop.is_set():
            break
        with job_run(app, RESUME_JOB, key) as run:
            results.append(run.done(*_send(app, key, stop)))
    return results


def _last_run(app: App, job: str, key: str) -> JobRun | None:
    with app.db.reading() as session:
        return session.scalars(
            select(JobRun)
            .where(JobRun.job == job, JobRun.issue_key == key)
            .order_by(JobRun.id.desc())
            .limit(1)
        ).first()


def tick(app: App, stop: threading.Event | None = None) -> list[RunResult]:
    """Whatever is due now: resume sends, catch up a missed send or prepare, mark missed weeks.

    Runs at start and every minute, so nothing depends on the job store having fired."""
    results = resume_sending(app, stop)
    plan = Plan.from_settings(app.settings)
    now = app.clock()
    since = first_start(app) or now
    slot = last_fire(plan.send, now)
    if slot is not None and slot >= since and not (stop and stop.is_set()):
        key = week_for_slot(app, slot).key
        issue = find_issue(app, key)
        waiting = (
            issue is not None
            and issue.state == "ready"
            and issue.approved_at is None
            and app.settings.issue.require_approval
            and now - slot <= plan.grace
        )
        settled = issue is not None and issue.state in (*DONE_STATES, "paused", "sending")
        if not waiting and not settled and _may_retry(app, key, now):
            results.append(run_send(app, slot=slot, stop=stop))
    if plan.prepare is not None:
        prepared_at = last_fire(plan.prepare, now)
        ahead = prepared_at is not None and (slot is None or prepared_at > slot)
        if prepared_at is not None and ahead and prepared_at >= since:
            key = week_for_slot(app, next_fires(plan.send, prepared_at, 1)[0]).key
            if find_issue(app, key) is None and _may_retry_prepare(app, key, now):
                results.append(run_prepare(app, slot=prepared_at))
    return results


def _may_retry(app: App, key: str, now: datetime) -> bool:
    last = _last_run(app, SEND_JOB, key)
    if last is not None and last.result == "missed":
        return False  # decided: never sent stale unless an operator asks
    return last is None or last.result != "error" or now - last.started_at >= RETRY_AFTER


def _may_retry_prepare(app: App, key: str, now: datetime) -> bool:
    last = _last_run(app, PREPARE_JOB, key)
    return last is None or (last.result == "error" and now - last.started_at >= RETRY_AFTER)


# -- what the operator sees -------------------------------------------------------------------


@dataclass(frozen=True)
class Upcoming:
    job: str
    at: datetime  # UTC
    week: str


def upcoming(app: App, count: int = 3) -> list[Upcoming]:
    """The next sends (and prepares), with the week each one covers."""
    plan = Plan.from_settings(app.settings)
    now = app.clock()
    sends = next_fires(plan.send, now, count)
    out = [Upcoming(SEND_JOB, t, week_for_slot(app, t).key) for t in sends]
    if plan.prepare is not None:
        for t in next_fires(plan.prepare, now, count):
            send_at = next_fires(plan.send, t, 1)[0]
            out.append(Upcoming(PREPARE_JOB, t, week_for_slot(app, send_at).key))
    return sorted(out, key=lambda u: u.at)

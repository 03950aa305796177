"""Health: what ``GET /healthz`` reports, read from the database so any process can answer
(a ``--web-only`` process as well as the one that schedules).

Healthy means the database answers, and, in a process that runs the scheduler (``serve``
without ``--web-only``): a scheduler holds a live lease, the last weekly run did not fail, and
the latest send slot's week was not missed. In a web-only process those scheduler conditions
are reported under ``warnings`` without failing the check, so a load balancer never takes web
nodes out of service because the scheduler elsewhere has a problem.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from pulseletter.db.models import Issue, JobRun, ServiceLease
from pulseletter.service.app import App
from pulseletter.service.plan import Plan, last_fire, next_fires

WEEKLY_JOBS = ("weekly-send", "weekly-prepare", "resume")

# Set while this process runs the scheduler role (pulseletter.runtime); read by health_report.
SCHEDULING = threading.Event()


def _exists(run: JobRun, app: App) -> bool:
    """Whether the missed week has an issue row now (e.g. sent deliberately afterwards)."""
    with app.db.reading() as session:
        return session.scalar(select(Issue.id).where(Issue.key == run.issue_key)) is not None


def health_report(app: App) -> tuple[bool, dict[str, Any]]:
    """(healthy, details): database, scheduler lease, next run, last run, missed weeks."""
    details: dict[str, Any] = {"database": "ok"}
    now = app.clock()
    plan = Plan.from_settings(app.settings)
    slot = last_fire(plan.send, now)
    from pulseletter.service.weekly import week_for_slot

    current_key = week_for_slot(app, slot).key if slot else ""
    try:
        with app.db.reading() as session:
            session.execute(text("SELECT 1"))
            lease = session.get(ServiceLease, "scheduler")
            last = session.scalars(
                select(JobRun)
                .where(JobRun.job.in_(WEEKLY_JOBS))
                .order_by(JobRun.id.desc())
                .limit(1)
            ).first()
            missed_runs = session.scalars(
                select(JobRun)
                .where(JobRun.job == "weekly-send", JobRun.result == "missed")
                .order_by(JobRun.id.desc())
                .limit(20)
            ).all()
            missed_states = {
                key: reason
                for key, reason in session.execute(
                    select(Issue.key, Issue.state_reason).where(Issue.state == "missed")
                )
            }
    except SQLAlchemyError as exc:
        details["database"] = f"unreachable: {type(exc).__name__}"
        details["problems"] = ["the database is unreachable"]
        return False, details
    problems: list[str] = []
    running = lease is not None and lease.expires_at > now
    details["scheduler"] = {
        "running": running,
        "holder": lease.holder if lease else None,
        "lease_expires_at": lease.expires_at.isoformat() if lease else None,
    }
    details["scheduler_lease"] = (
        {"holder": lease.holder, "expires_at": lease.expires_at.isoformat()} if lease else None
    )
    if not running:
        problems.append("no scheduler holds a live lease: is `pulseletter serve` running?")
    upcoming = next_fires(plan.send, now, 1)
    details["next_run"] = (
        {
            "job": "weekly-send",
            "at_utc": upcoming[0].isoformat(),
            "at_local": upcoming[0].astimezone(plan.tz).isoformat(),
            "timezone": app.settings.schedule.timezone,
            "week": week_for_slot(app, upcoming[0]).key,
        }
        if upcoming
        else None
    )
    details["last_run"] = (
        {
            "job": last.job,
            "issue": last.issue_key,
            "result": last.result,
            "detail": last.detail,
            "started_at": last.started_at.isoformat(),
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
        }
        if last
        else None
    )
    if last is not None and last.result == "error":
        problems.append(f"the last {last.job} run failed: {last.detail}")
    missed: dict[str, str] = {}
    for run in missed_runs:  # newest first; a week still missed (not sent deliberately since)
        state_reason = missed_states.get(run.issue_key)
        if run.issue_key not in missed and (state_reason is not None or not _exists(run, app)):
            missed[run.issue_key] = state_reason or run.detail
    details["missed"] = [{"issue": k, "reason": v} for k, v in list(missed.items())[:5]]
    if current_key in missed:
        problems.append(f"the send of {current_key} was missed")
    details["role"] = "scheduler" if SCHEDULING.is_set() else "web"
    if SCHEDULING.is_set():
        details["problems"], details["warnings"] = problems, []
    else:
        details["problems"], details["warnings"] = [], problems
    return not details["problems"], details

"""Health: what ``GET /healthz`` reports, read from the database so any process can answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from pulseletter.db.models import JobRun, ServiceLease
from pulseletter.service.app import App


def health_report(app: App) -> tuple[bool, dict[str, Any]]:
    """(healthy, details): the database answers; the scheduler lease and the last job run."""
    details: dict[str, Any] = {"database": "ok"}
    try:
        with app.db.reading() as session:
            session.execute(text("SELECT 1"))
            lease = session.get(ServiceLease, "scheduler")
            last = session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(1)).first()
    except SQLAlchemyError as exc:
        details["database"] = f"unreachable: {type(exc).__name__}"
        return False, details
    details["scheduler_lease"] = (
        {"holder": lease.holder, "expires_at": lease.expires_at.isoformat()} if lease else None
    )
    details["last_run"] = (
        {
            "job": last.job,
            "issue": last.issue_key,
            "result": last.result,
            "started_at": last.started_at.isoformat(),
        }
        if last
        else None
    )
    return True, details

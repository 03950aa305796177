"""The public archive: sent issues only, each as its web version (no personal links)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from pulseletter.db.models import Issue
from pulseletter.service.app import App
from pulseletter.service.issues import web_version

PUBLIC_STATES = ("sent",)
WITHDRAWN_STATES = ("cancelled",)


@dataclass(frozen=True)
class ArchivedIssue:
    key: str
    number: int
    subject: str
    preheader: str
    sent_at: datetime


def sent_issues(app: App, limit: int | None = None) -> list[ArchivedIssue]:
    """Newest first."""
    with app.db.reading() as session:
        query = (
            select(Issue)
            .where(Issue.state.in_(PUBLIC_STATES))
            .order_by(Issue.sent_at.desc(), Issue.id.desc())
        )
        if limit:
            query = query.limit(limit)
        return [
            ArchivedIssue(i.key, i.number, i.subject, i.preheader, i.sent_at or i.updated_at)
            for i in session.scalars(query)
        ]


def archived_page(app: App, key: str) -> tuple[str, str | None]:
    """("ok", html), ("gone", None) for a withdrawn issue, or ("missing", None)."""
    with app.db.reading() as session:
        issue = session.scalars(select(Issue).where(Issue.key == key)).first()
        if issue is None:
            return "missing", None
        if issue.state in WITHDRAWN_STATES:
            return "gone", None
        if issue.state not in PUBLIC_STATES:
            return "missing", None
        return "ok", web_version(app, issue)

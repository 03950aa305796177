"""Issue use cases: compose the week's issue under its unique key, check it, show its state.

Sending lives in ``service.sending``."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from pulseletter.compose.render import CompiledIssue, Recipient, compile_issue, personalise
from pulseletter.content.selection import IssueContent
from pulseletter.content.week import Week, last_complete_week, week_from_key
from pulseletter.db.models import Issue
from pulseletter.dispatch import ledger
from pulseletter.errors import IssueStateError, LintError
from pulseletter.service.app import App
from pulseletter.service.content import week_content

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


def check_sendable(app: App, issue: Issue) -> None:
    """The gate every send passes: raise LintError if the frozen issue must not go out."""
    problems = []
    if not issue.content.get("stories"):
        problems.append("the issue has no stories")
    for marker in ("{{", "{%", "<mj-"):
        if marker in issue.html:
            problems.append(f"leftover template or MJML tag {marker!r} in the HTML")
    if "%%PL_UNSUBSCRIBE_URL%%" not in issue.html or "%%PL_UNSUBSCRIBE_URL%%" not in issue.text:
        problems.append("no unsubscribe link in the body")
    if problems:
        raise LintError(problems)


def web_version(app: App, issue: Issue) -> str:
    """The issue as a public web page: no personal links (for the archive)."""
    if issue.web_html:
        return issue.web_html
    base = app.settings.web.base_url.rstrip("/")
    archive = Recipient(
        unsubscribe_url=f"{base}/subscribe",
        preferences_url=f"{base}/subscribe",
        web_url=f"{base}/archive/{issue.key}",
        name="",
    )
    return personalise(compiled_from(issue), archive)[0]


def issue_status(app: App, key: str) -> tuple[Issue, dict[str, int]]:
    issue = ledger.issue_by_key(app.db, key)
    if issue is None:
        raise IssueStateError(f"there is no issue {key}")
    return issue, ledger.counts(app.db, issue.id)

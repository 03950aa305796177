"""Issue use cases: compose the week's issue under its unique key, check it, show its state.

Sending lives in ``service.sending``; it calls ``check_sendable`` (the lint gate) first."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pulseletter.compose.lint import LintReport, lint_compiled
from pulseletter.compose.render import (
    CompiledIssue,
    compile_issue,
    compile_web_page,
)
from pulseletter.compose.subject import make_preheader, make_subject
from pulseletter.content.selection import IssueContent
from pulseletter.content.week import Week, last_complete_week, week_from_key
from pulseletter.db.models import Issue
from pulseletter.errors import IssueStateError, LintError
from pulseletter.service.app import App
from pulseletter.service.content import week_content

log = logging.getLogger(__name__)
FROZEN_STATES = ("sending", "paused", "sent", "cancelled")
SKIPPED = "skipped"


@dataclass(frozen=True)
class Composed:
    """A composed issue that is not stored (yet): what preview and lint look at."""

    key: str
    number: int
    content: IssueContent
    compiled: CompiledIssue
    quiet: bool


def resolve_week(app: App, key: str | None) -> Week:
    """``--week`` if given, else the last complete week in the newsletter's time zone."""
    s = app.settings
    if key:
        return week_from_key(key, s.timezone, s.content.week_start)
    return last_complete_week(app.clock(), s.timezone, s.content.week_start)


def compose_content(app: App, content: IssueContent, number: int) -> CompiledIssue:
    """Subject, preheader and the compiled issue for this content (no database access)."""
    s = app.settings
    return compile_issue(
        s,
        content,
        number=number,
        subject=make_subject(
            s.issue.subject, newsletter=s.newsletter.name, number=number, content=content
        ),
        preheader=make_preheader(s.issue.preheader, content, s.issue.preheader_max),
    )


def compose(app: App, week: Week, number: int) -> tuple[IssueContent, CompiledIssue]:
    content = week_content(app, week)
    return content, compose_content(app, content, number)


def _next_number(session: Session) -> int:
    """Skipped weeks do not use up an issue number."""
    top = session.scalar(select(func.max(Issue.number)).where(Issue.state != SKIPPED))
    return (top or 0) + 1


def compose_week(app: App, week: Week) -> Composed:
    """Compose the week's issue in memory, as ``prepare_issue`` would, without storing it.

    A frozen issue (sending or sent) is returned as stored: that is what subscribers get."""
    with app.db.reading() as session:
        issue = session.scalars(select(Issue).where(Issue.key == week.key)).first()
        if issue is not None and issue.state in FROZEN_STATES:
            content = IssueContent.from_json(issue.content)
            quiet = bool(issue.content.get("quiet"))
            return Composed(issue.key, issue.number, content, compiled_from(issue), quiet)
        number = issue.number if issue and issue.state != SKIPPED else _next_number(session)
    content, compiled = compose(app, week, number)
    quiet = content.is_empty and app.settings.content.empty_week == "quiet"
    return Composed(week.key, number, content, compiled, quiet)


def _is_settled(issue: Issue | None) -> bool:
    """Frozen (sending or later) or approved by an editor: never recomposed."""
    return issue is not None and (
        issue.state in FROZEN_STATES or (issue.state == "ready" and issue.approved_at is not None)
    )


def prepare_issue(app: App, week: Week) -> Issue:
    """Create or refresh the week's issue; an issue already approved, sending or sent stays.

    An empty week follows ``content.empty_week``: "skip" records the issue as skipped (never
    sent), "quiet" composes the short quiet-week issue, which can be sent.

    Rendering happens outside the write transaction (it takes milliseconds to seconds and the
    sender, the web app and sign-ups need the write lock meanwhile); the write re-checks the
    issue and recomposes only if its number changed under us."""
    for _attempt in range(3):
        with app.db.reading() as session:
            issue = session.scalars(select(Issue).where(Issue.key == week.key)).first()
            if _is_settled(issue):
                assert issue is not None
                return issue
            number = issue.number if issue and issue.state != SKIPPED else _next_number(session)
        content = week_content(app, week)
        skip = content.is_empty and app.settings.content.empty_week == "skip"
        compiled = None if skip else compose_content(app, content, number)
        web_html = "" if compiled is None else _web_page(app, week.key, number, content, compiled)
        try:
            return _store_prepared(app, week, number, content, compiled, web_html)
        except _NumberTaken:
            continue  # another issue took that number meanwhile: compose again
    raise IssueStateError(f"{week.key}: issue numbers kept changing while composing; try again")


class _NumberTaken(Exception):
    """Rolls the write back: the composed issue carries a number another issue now has."""


def _store_prepared(
    app: App,
    week: Week,
    number: int,
    content: IssueContent,
    compiled: CompiledIssue | None,
    web_html: str,
) -> Issue:
    """One short write: store what was composed, unless the issue settled meanwhile."""
    skip = compiled is None
    with app.db.writing() as session:
        issue = session.scalars(select(Issue).where(Issue.key == week.key)).first()
        if _is_settled(issue):
            assert issue is not None
            return issue
        if issue is None:
            issue = Issue(
                key=week.key,
                number=0,
                week_start=week.start,
                week_end=week.end,
                state="draft",
                created_at=app.clock(),
            )
            session.add(issue)
        if not skip and (issue.number == 0 or issue.state == SKIPPED):
            issue.number = _next_number(session)
        if not skip and issue.number != number:
            raise _NumberTaken
        issue.content = {**content.to_json(), "quiet": content.is_empty and not skip}
        issue.updated_at = app.clock()
        if compiled is None:
            issue.state = SKIPPED
            issue.state_reason = "no articles this week (empty_week = skip)"
            issue.subject = issue.preheader = issue.html = issue.text = issue.web_html = ""
            log.info("%s has no articles: skipped", week.key)
            return issue
        issue.subject, issue.preheader = compiled.subject, compiled.preheader
        issue.html, issue.text, issue.web_html = compiled.html, compiled.text, web_html
        issue.state, issue.state_reason = "ready", ""
        return issue


def _web_page(
    app: App, key: str, number: int, content: IssueContent, compiled: CompiledIssue
) -> str:
    return compile_web_page(
        app.settings,
        content,
        number=number,
        subject=compiled.subject,
        preheader=compiled.preheader,
        web_url=archive_url(app, key),
    )


def archive_url(app: App, key: str) -> str:
    return f"{app.settings.web.base_url.rstrip('/')}/archive/{key}"


def compiled_from(issue: Issue) -> CompiledIssue:
    return CompiledIssue(issue.subject, issue.preheader, issue.html, issue.text)


def lint_report(app: App, compiled: CompiledIssue, content: dict[str, object]) -> LintReport:
    """The lint gate's findings for a compiled issue and its content snapshot."""
    empty = not content.get("stories") and not content.get("quiet")
    return lint_compiled(
        compiled, empty=empty, subject_warn_length=app.settings.issue.subject_warn_length
    )


def lint_composed(app: App, composed: Composed) -> LintReport:
    data = {**composed.content.to_json(), "quiet": composed.quiet}
    return lint_report(app, composed.compiled, data)


def lint_issue(app: App, issue: Issue) -> LintReport:
    return lint_report(app, compiled_from(issue), issue.content)


def check_sendable(app: App, issue: Issue) -> None:
    """The gate every send passes: raise LintError if the frozen issue must not go out."""
    if issue.state == SKIPPED:
        raise LintError([f"{issue.key} was skipped: {issue.state_reason or 'no articles'}"])
    report = lint_issue(app, issue)
    if not report.ok:
        raise LintError([f"[{f.code}] {f.message}" for f in report.errors])


def web_version(app: App, issue: Issue) -> str:
    """The issue as a public web page (the "view in browser" link): no personal links."""
    if issue.web_html:
        return issue.web_html
    content = IssueContent.from_json(issue.content)
    return _web_page(app, issue.key, issue.number, content, compiled_from(issue))

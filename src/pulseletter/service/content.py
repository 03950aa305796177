"""Content use cases: ingest sources, and show what a week's issue would contain."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pulseletter.content.markdown_folder import read_folder
from pulseletter.content.selection import IssueContent, build_issue_content
from pulseletter.content.store import IngestReport, store_items
from pulseletter.content.week import Week
from pulseletter.errors import ContentError
from pulseletter.service.app import App


def ingest(app: App, sources: Sequence[str | Path]) -> IngestReport:
    """Ingest each source; a bad source is reported and the others still go in."""
    report = IngestReport()
    for source in sources:
        path = Path(source)
        if path.is_dir():
            report.merge(store_items(app.db, read_folder(path)))
        else:
            report.rejected.append(str(ContentError(f"{source}: not a folder of Markdown files")))
    return report


def ingest_feeds(app: App) -> IngestReport:
    """Ingest every source listed in ``content.feeds`` (what the scheduler polls)."""
    return ingest(app, app.settings.content.feeds)


def week_content(app: App, week: Week) -> IssueContent:
    s = app.settings.issue
    with app.db.reading() as session:
        return build_issue_content(
            session,
            week,
            max_articles=s.max_articles,
            per_article=s.insights_per_article,
            min_score=s.min_related_score,
        )

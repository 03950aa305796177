"""Content use cases: ingest sources, export, editor controls, and what a week's issue would
contain and why."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pulseletter.content.feeds import FeedOutput
from pulseletter.content.jsonl import article_json, insight_json, write_jsonl
from pulseletter.content.related import Relatedness, Scored, choose, mark
from pulseletter.content.selection import (
    ORDER,
    Candidate,
    IssueContent,
    build_issue_content,
    plan_articles,
    week_insights,
)
from pulseletter.content.sources import read_source
from pulseletter.content.store import IngestReport, store_items
from pulseletter.content.week import Week, week_containing
from pulseletter.db.models import Article, Insight
from pulseletter.errors import ContentError
from pulseletter.service.app import App


def ingest(app: App, sources: Sequence[str | Path]) -> IngestReport:
    """Ingest each source; a bad source or item is reported and the others still go in."""
    report = IngestReport()
    c = app.settings.content
    for source in sources:
        items = read_source(
            _resolve(app, source),
            now=app.clock(),
            timeout=c.fetch_timeout,
            tldr_limit=c.tldr_max_chars,
        )
        report.merge(store_items(app.db, _guarded(items)))
    return report


def _resolve(app: App, source: str | Path) -> str:
    text = str(source)
    if text.startswith(("http://", "https://")):
        return text
    return str(app.settings.path(text)) if not Path(text).is_absolute() else text


def _guarded(items: Iterator[FeedOutput]) -> Iterator[FeedOutput]:
    """A source that fails as a whole becomes one rejected line, not an aborted batch."""
    try:
        yield from items
    except ContentError as exc:
        yield exc


def configured_sources(app: App) -> list[str]:
    """``content.dir`` (when the folder exists) and every ``content.feeds`` entry."""
    c = app.settings.content
    folder = app.settings.path(c.dir) if c.dir else None
    return ([str(folder)] if folder is not None and folder.is_dir() else []) + list(c.feeds)


def ingest_feeds(app: App) -> IngestReport:
    """Ingest the configured sources: what the scheduler polls before each issue."""
    return ingest(app, configured_sources(app))


def export(app: App, out: TextIO, *, kind: str = "all") -> int:
    """Write every article and/or insight as JSON Lines; returns the number of lines."""
    with app.db.reading() as session:
        rows = []
        if kind in ("all", "articles"):
            articles = session.scalars(select(Article).order_by(Article.published_at, Article.id))
            rows.extend(article_json(a) for a in articles)
        if kind in ("all", "insights"):
            insights = session.scalars(select(Insight).order_by(Insight.published_at, Insight.id))
            rows.extend(insight_json(i) for i in insights)
    return write_jsonl(rows, out)


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


@dataclass(frozen=True)
class WeekPlan:
    """What the issue for a week would contain, and why: for ``content week``."""

    week: Week
    content: IssueContent
    candidates: list[Candidate]  # every article of the week, in or out, with the reason
    order: str
    empty_week: str  # the configured policy: skip | quiet
    min_score: float

    @property
    def decision(self) -> str:
        if not self.content.is_empty:
            return "send"
        return "skip" if self.empty_week == "skip" else "quiet"


def week_plan(app: App, week: Week) -> WeekPlan:
    s = app.settings
    with app.db.reading() as session:
        candidates = plan_articles(session, week, s.issue.max_articles)
        content = build_issue_content(
            session,
            week,
            max_articles=s.issue.max_articles,
            per_article=s.issue.insights_per_article,
            min_score=s.issue.min_related_score,
        )
    return WeekPlan(
        week, content, candidates, ORDER, s.content.empty_week, s.issue.min_related_score
    )


@dataclass(frozen=True)
class Explanation:
    article: Article
    week: Week
    scored: list[Scored]  # every candidate, best first, with its status
    min_score: float
    limit: int


def explain_related(app: App, ref: str) -> Explanation:
    """Every candidate insight for one article, scored as its issue would score it (same
    candidate set: insights published before the end of the article's week)."""
    s = app.settings
    with app.db.reading() as session:
        article = find_article(session, ref)
        week = week_containing(article.published_at, s.timezone, s.content.week_start)
        model = Relatedness(week_insights(session, week))
        scored = model.score_all(article)
        chosen = choose(
            scored, limit=s.issue.insights_per_article, min_score=s.issue.min_related_score
        )
        session.expunge_all()
    return Explanation(
        article,
        week,
        mark(scored, chosen, s.issue.min_related_score),
        s.issue.min_related_score,
        s.issue.insights_per_article,
    )


def find_article(session: Session, ref: str) -> Article:
    """An article by id, URL or GUID."""
    conditions = [Article.url == ref, Article.guid == ref]
    if ref.isdigit():
        conditions.append(Article.id == int(ref))
    article = session.scalars(
        select(Article).where(or_(*conditions)).order_by(Article.id).limit(1)
    ).first()
    if article is None:
        raise ContentError(f"no article with id, URL or GUID {ref!r}")
    return article


def find_insight(session: Session, ref: str) -> Insight:
    conditions = [Insight.key == ref, Insight.source_url == ref]
    if ref.isdigit():
        conditions.append(Insight.id == int(ref))
    insight = session.scalars(
        select(Insight).where(or_(*conditions)).order_by(Insight.id).limit(1)
    ).first()
    if insight is None:
        raise ContentError(f"no insight with id, key or source URL {ref!r}")
    return insight


def set_article_flag(
    app: App, ref: str, *, pinned: bool | None = None, excluded: bool | None = None
) -> Article:
    """Pin/unpin an article as lead, or exclude/include it. Returns the article."""
    with app.db.writing() as session:
        article = find_article(session, ref)
        if pinned is not None:
            article.pinned = pinned
        if excluded is not None:
            article.excluded = excluded
        session.flush()
        session.expunge(article)
    return article


def set_insight_control(app: App, article_ref: str, insight_ref: str, action: str) -> Article:
    """``pin``, ``exclude`` or ``clear`` one insight for one article (stored by insight key,
    which stays valid across databases and exports)."""
    if action not in ("pin", "exclude", "clear"):
        raise ContentError(f"unknown insight action {action!r}")
    with app.db.writing() as session:
        article = find_article(session, article_ref)
        insight = find_insight(session, insight_ref)
        refs = {str(insight.id), insight.key}
        pinned = [r for r in article.pinned_insight_ids if str(r) not in refs]
        excluded = [r for r in article.excluded_insight_ids if str(r) not in refs]
        if action == "pin":
            pinned.append(insight.key)
        elif action == "exclude":
            excluded.append(insight.key)
        article.pinned_insight_ids = pinned
        article.excluded_insight_ids = excluded
        session.flush()
        session.expunge(article)
    return article

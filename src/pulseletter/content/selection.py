"""Choose the week's stories, attach related insights, and gather the glossary.

The result (``IssueContent``) is plain data: it is frozen into the issue row as JSON, so a
later edit of an article never changes an issue that is already being sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulseletter.content.related import rank_related
from pulseletter.content.week import Week
from pulseletter.db.models import Article, Insight


@dataclass(frozen=True)
class StoryInsight:
    id: int
    text: str
    source_title: str
    source_url: str
    score: float = 0.0


@dataclass(frozen=True)
class Story:
    id: int
    url: str
    title: str
    section: str
    published: str  # ISO 8601, UTC
    author: str
    tldr: str
    body_html: str
    impact_text: str
    impact_areas: list[str]
    image_url: str
    image_alt: str
    image_width: int | None
    image_height: int | None
    tags: list[str]
    pinned: bool
    insights: list[StoryInsight] = field(default_factory=list)


@dataclass(frozen=True)
class GlossaryEntry:
    term: str
    definition: str
    article_title: str
    article_url: str


@dataclass(frozen=True)
class IssueContent:
    week_key: str
    week_label: str
    stories: list[Story]
    glossary: list[GlossaryEntry]

    @property
    def lead(self) -> Story | None:
        return self.stories[0] if self.stories else None

    @property
    def is_empty(self) -> bool:
        return not self.stories

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IssueContent:
        stories = [
            Story(**{**s, "insights": [StoryInsight(**i) for i in s["insights"]]})
            for s in data["stories"]
        ]
        glossary = [GlossaryEntry(**g) for g in data["glossary"]]
        return cls(data["week_key"], data["week_label"], stories, glossary)


def select_articles(session: Session, week: Week, limit: int) -> list[Article]:
    """Published, not excluded articles in the window: the pinned lead first, then newest first."""
    rows = session.scalars(
        select(Article)
        .where(Article.published_at >= week.start, Article.published_at < week.end)
        .where(Article.excluded.is_(False))
        .order_by(Article.pinned.desc(), Article.published_at.desc(), Article.id)
    ).all()
    return list(rows[:limit])


def build_issue_content(
    session: Session, week: Week, *, max_articles: int, per_article: int, min_score: float
) -> IssueContent:
    articles = select_articles(session, week, max_articles)
    candidates = session.scalars(
        select(Insight).where(Insight.published_at < week.end).order_by(Insight.id)
    ).all()
    used: set[int] = set()
    stories = []
    for article in articles:
        ranked = rank_related(article, candidates, exclude=used, min_score=min_score)
        chosen = ranked[:per_article]
        used.update(r.insight.id for r in chosen)
        stories.append(_story(article, [_insight(r.insight, r.score) for r in chosen]))
    return IssueContent(week.key, week.label, stories, gather_glossary(articles))


def gather_glossary(articles: list[Article]) -> list[GlossaryEntry]:
    """Technical Briefing terms of the chosen articles, deduplicated case-insensitively."""
    seen: set[str] = set()
    out = []
    for article in articles:
        for entry in article.briefing:
            key = entry["term"].casefold().strip()
            if key in seen:
                continue
            seen.add(key)
            out.append(
                GlossaryEntry(entry["term"], entry["definition"], article.title, article.url)
            )
    return out


def _story(a: Article, insights: list[StoryInsight]) -> Story:
    return Story(
        id=a.id,
        url=a.url,
        title=a.title,
        section=a.section,
        published=a.published_at.isoformat(),
        author=a.author,
        tldr=a.tldr,
        body_html=a.body_html,
        impact_text=a.impact_text,
        impact_areas=list(a.impact_areas),
        image_url=a.image_url,
        image_alt=a.image_alt,
        image_width=a.image_width,
        image_height=a.image_height,
        tags=list(a.tags),
        pinned=a.pinned,
        insights=insights,
    )


def _insight(i: Insight, score: float) -> StoryInsight:
    return StoryInsight(i.id, i.text, i.source_title, i.source_url, round(score, 4))

"""Choose the week's stories, attach related insights, and gather the glossary.

The result (``IssueContent``) is plain data: it is frozen into the issue row as JSON, so a
later edit of an article never changes an issue that is already being sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulseletter.content.related import Relatedness, Scored, choose
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


ORDER = "pinned lead first, then newest first (ties: title, then id)"


@dataclass(frozen=True)
class Candidate:
    """An article published in the week, and whether and why it is in the issue."""

    article: Article
    included: bool
    reason: str


def week_articles(session: Session, week: Week) -> list[Article]:
    """Every article published in the window, in the documented order (see ORDER)."""
    rows = session.scalars(
        select(Article).where(Article.published_at >= week.start, Article.published_at < week.end)
    ).all()
    return sorted(rows, key=lambda a: (not a.pinned, -a.published_at.timestamp(), a.title, a.id))


def plan_articles(session: Session, week: Week, limit: int) -> list[Candidate]:
    """Each of the week's articles with the reason it is in the issue or left out."""
    out = []
    position = 0
    for article in week_articles(session, week):
        if article.excluded:
            out.append(Candidate(article, False, "excluded by the editor"))
            continue
        position += 1
        if position > limit:
            out.append(Candidate(article, False, f"beyond issue.max_articles ({limit})"))
        elif article.pinned and position == 1:
            out.append(Candidate(article, True, "pinned as the lead"))
        elif article.pinned:
            out.append(Candidate(article, True, f"#{position}: pinned (another pin leads)"))
        else:
            out.append(Candidate(article, True, f"#{position}: published {_local(article, week)}"))
    return out


def select_articles(session: Session, week: Week, limit: int) -> list[Article]:
    """Published, not excluded articles in the window: the pinned lead first, then newest first."""
    return [c.article for c in plan_articles(session, week, limit) if c.included]


def week_insights(session: Session, week: Week) -> list[Insight]:
    """Candidate insights for a week's stories: everything published before the week ends."""
    return list(
        session.scalars(
            select(Insight).where(Insight.published_at < week.end).order_by(Insight.id)
        ).all()
    )


def relate_stories(
    articles: list[Article], model: Relatedness, *, per_article: int, min_score: float
) -> list[list[Scored]]:
    """Chosen insights per article. Editors' pins are reserved first (a pin wins over the
    no-repeat rule); then each story, in issue order, takes its best unused candidates."""
    owner: dict[int, Article] = {}  # insight id -> the story that shows it
    for article in articles:
        for insight in pinned_insights(article, model.candidates):
            owner.setdefault(insight.id, article)
    out = []
    for article in articles:
        used = {i: a.title for i, a in owner.items() if a.id != article.id}
        scored = model.score_all(article, used=used)
        chosen = choose(scored, limit=per_article, min_score=min_score)
        owner.update((s.insight.id, article) for s in chosen)
        out.append(chosen)
    return out


def pinned_insights(article: Article, candidates: list[Insight]) -> list[Insight]:
    """The insights an editor pinned to the article (by key, or by id), that exist."""
    refs = {str(r) for r in article.pinned_insight_ids or []}
    return [i for i in candidates if i.key in refs or str(i.id) in refs]


def build_issue_content(
    session: Session, week: Week, *, max_articles: int, per_article: int, min_score: float
) -> IssueContent:
    articles = select_articles(session, week, max_articles)
    model = Relatedness(week_insights(session, week))
    related = relate_stories(articles, model, per_article=per_article, min_score=min_score)
    stories = [
        _story(a, [_insight(s.insight, s.score) for s in chosen])
        for a, chosen in zip(articles, related, strict=True)
    ]
    return IssueContent(week.key, week.label, stories, gather_glossary(articles))


def _local(article: Article, week: Week) -> str:
    return article.published_at.astimezone(week.start.tzinfo).strftime("%a %d %b %H:%M")


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

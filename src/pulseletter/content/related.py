"""Rank insights by how well they relate to an article, and say why.

score = (0.8 x lexical + 0.2 x tags) x (0.75 + 0.25 x recency)

- lexical: cosine similarity of TF-IDF vectors (sublinear term frequency; IDF over the
  candidate insights) between the article (title counted twice, TL;DR, body, Real-World
  Impact, section, tags) and the insight (text, source title, tags). Words are lower-cased,
  stop words dropped and plurals folded (batteries -> battery), so the score is in 0..1;
- tags: the share of the insight's tags the article also has (case-insensitive), 0..1;
- recency: 0.5 ** (days between the two / 30): an insight from the same week keeps its full
  score, one from three months away keeps about 78 % of it.

Pinned insights come first whatever their score; excluded ones never appear. Everything is
computed from the text alone and ties are broken by insight id: the same input always gives
the same ranking.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pulseletter.content.sanitize import html_to_text
from pulseletter.db.models import Article, Insight

LEXICAL_WEIGHT = 0.8
TAG_WEIGHT = 0.2
RECENCY_FLOOR = 0.75
HALF_LIFE_DAYS = 30.0

WORD = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")
STOPWORDS = frozenset(
    """the a an and or of to in on for with by is are was were be been being as at from that
    this it its their they them than then into over more most less not but can will would
    could should has have had which who what when where how why while also such these those
    there here about after before between during through under up down out new now one two
    many much very our we you your i he she his her do does did so if no any all some other
    only just may might must own same each few both too s t don yet per via across still even
    because since until unless whether though although get gets got make makes made use used
    using like within without against among first last next year years week weeks day days
    time way ways lot lots thing things say says said""".split()  # noqa: SIM905
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Fold plain English plurals so 'batteries' meets 'battery'. Deliberately tiny."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ys")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    words = WORD.findall(text.lower().replace("’", "'"))
    return [stem(w) for w in words if w not in STOPWORDS and len(w) > 1 and not w.isdigit()]


def terms(text: str) -> set[str]:
    return set(tokens(text))


def article_text(article: Article) -> str:
    body = html_to_text(article.body_html) if article.body_html else article.body_source
    return " ".join(
        [
            article.title,
            article.title,
            article.tldr,
            body,
            article.impact_text,
            article.section,
            " ".join(article.tags),
        ]
    )


def insight_text(insight: Insight) -> str:
    return " ".join([insight.text, insight.source_title, " ".join(insight.tags)])


@dataclass(frozen=True)
class Scored:
    """One candidate with every part of its score and what became of it."""

    insight: Insight
    score: float
    lexical: float
    tags: float
    recency: float
    matched: tuple[str, ...]  # shared terms, strongest first
    status: str  # "pinned", "related", "below minimum", "excluded by editor", "used by ..."

    @property
    def chosen(self) -> bool:
        return self.status in ("pinned", "related")


# Kept for callers of the first version: a ranked, chosen candidate.
Ranked = Scored


class Relatedness:
    """TF-IDF model over a fixed candidate set, so every article is scored the same way."""

    def __init__(self, candidates: Sequence[Insight]) -> None:
        self.candidates = sorted(candidates, key=lambda i: i.id)
        docs = [Counter(tokens(insight_text(i))) for i in self.candidates]
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(doc.keys())
        n = len(docs)
        self.idf = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}
        self.default_idf = math.log(n + 1) + 1.0
        self.vectors = {
            i.id: self._vector(doc) for i, doc in zip(self.candidates, docs, strict=True)
        }

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        vec = {
            t: (1.0 + math.log(c)) * self.idf.get(t, self.default_idf) for t, c in counts.items()
        }
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    def score_all(self, article: Article, *, used: dict[int, str] | None = None) -> list[Scored]:
        """Every candidate, best first, with its status (``used``: insight id -> the story
        that already shows it)."""
        used = used or {}
        pinned = {str(x) for x in article.pinned_insight_ids or []}
        banned = {str(x) for x in article.excluded_insight_ids or []}
        avec = self._vector(Counter(tokens(article_text(article))))
        atags = {t.casefold() for t in article.tags}
        out = []
        for insight in self.candidates:
            ivec = self.vectors[insight.id]
            shared = {t: avec[t] * ivec[t] for t in ivec.keys() & avec.keys()}
            lexical = sum(shared.values())
            itags = {t.casefold() for t in insight.tags}
            tag_share = len(atags & itags) / len(itags) if itags else 0.0
            days = abs((insight.published_at - article.published_at).total_seconds()) / 86400
            recency = 0.5 ** (days / HALF_LIFE_DAYS)
            score = (LEXICAL_WEIGHT * lexical + TAG_WEIGHT * tag_share) * (
                RECENCY_FLOOR + (1 - RECENCY_FLOOR) * recency
            )
            matched = tuple(t for t, _ in sorted(shared.items(), key=lambda kv: (-kv[1], kv[0])))
            ids = {str(insight.id), insight.key}
            if insight.id in used:  # no insight twice in one issue: the first story keeps it
                status = f"already under {used[insight.id]!r}"
            elif ids & pinned:
                status = "pinned"
            elif ids & banned:
                status = "excluded by editor"
            else:
                status = "related"
            out.append(Scored(insight, score, lexical, tag_share, recency, matched, status))
        out.sort(key=lambda s: (s.status != "pinned", -s.score, s.insight.id))
        return out


def choose(scored: Iterable[Scored], *, limit: int, min_score: float) -> list[Scored]:
    """Pinned first (they do not count against ``min_score``), then related ones above it."""
    out = []
    for s in scored:
        if s.status == "pinned" or (
            s.status == "related" and s.score >= min_score and s.score > 0 and len(out) < limit
        ):
            out.append(s)
    return out


def mark(scored: list[Scored], chosen: list[Scored], min_score: float) -> list[Scored]:
    """Statuses for display: why each candidate is in or out."""
    chosen_ids = {s.insight.id for s in chosen}
    out = []
    for s in scored:
        status = s.status
        if s.status == "related" and s.insight.id not in chosen_ids:
            status = "below minimum" if s.score < min_score or s.score <= 0 else "over the limit"
        out.append(Scored(s.insight, s.score, s.lexical, s.tags, s.recency, s.matched, status))
    return out

"""Rank insights by how well they relate to an article.

First version: the share of an insight's distinct content words that occur in the article's
title, TL;DR and tags, plus a tag-overlap bonus. Deterministic (ties broken by id).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pulseletter.db.models import Article, Insight

WORD = re.compile(r"[a-z0-9][a-z0-9\-]+")
STOPWORDS = frozenset(
    """the a an and or of to in on for with by is are was were be been as at from that this it
    its their they them than then into over more most less not but can will would could should
    has have had which who what when where how why while also such these those there here about
    after before between during through under up down out new now one two many much very""".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Ranked:
    insight: Insight
    score: float
    matched: tuple[str, ...]


def terms(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS}


def rank_related(
    article: Article,
    candidates: Iterable[Insight],
    *,
    exclude: set[int] | frozenset[int] = frozenset(),
    min_score: float = 0.0,
) -> list[Ranked]:
    """Insights scoring at least ``min_score``, best first; pins first, excludes never."""
    pinned = set(article.pinned_insight_ids or [])
    banned = set(article.excluded_insight_ids or []) | set(exclude)
    vocabulary = terms(" ".join([article.title, article.tldr, " ".join(article.tags)]))
    tags = {t.lower() for t in article.tags}
    out = []
    for insight in candidates:
        if insight.id in banned and insight.id not in pinned:
            continue
        words = terms(insight.text)
        matched = tuple(sorted(words & vocabulary))
        score = len(matched) / (len(words) ** 0.5 or 1.0)
        score += 0.5 * len(tags & {t.lower() for t in insight.tags})
        if insight.id in pinned:
            score = max(score, 1e6)
        if score >= min_score and score > 0:
            out.append(Ranked(insight, score, matched))
    out.sort(key=lambda r: (-r.score, r.insight.id))
    return out

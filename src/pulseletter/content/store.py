"""Upsert articles and insights: by URL or GUID, one item per transaction, with counts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pulseletter.content.items import ArticleItem, InsightItem
from pulseletter.db import Database
from pulseletter.db.models import Article, Insight, utcnow
from pulseletter.errors import ContentError


class SourceWarning(str):
    """Not an item and not an error: something the user should know (e.g. a feed's XML was
    broken but its entries could still be read). Sources may yield these between items."""


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected.extend(other.rejected)
        self.warnings.extend(other.warnings)

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.rejected)} rejected"
        )


def store_items(
    db: Database, items: Iterable[ArticleItem | InsightItem | ContentError | SourceWarning]
) -> IngestReport:
    """Store each item in its own transaction so a bad one never leaves a half-written row."""
    report = IngestReport()
    for item in items:
        if isinstance(item, ContentError):
            report.rejected.append(str(item))
            continue
        if isinstance(item, SourceWarning):
            report.warnings.append(str(item))
            continue
        try:
            with db.reading() as session:  # most re-polls change nothing: no write lock
                unchanged = _find(session, item, check_only=True) == "unchanged"
            if unchanged:
                report.unchanged += 1
                continue
            with db.writing() as session:
                outcome = _upsert(session, item)
        except (IntegrityError, ValueError) as exc:
            reason = str(getattr(exc, "orig", exc)).splitlines()[0]
            report.rejected.append(f"{item.origin}: could not be stored ({reason})")
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _existing(session: Session, item: ArticleItem | InsightItem) -> Article | Insight | None:
    if isinstance(item, ArticleItem):
        match = [Article.url == item.url] + ([Article.guid == item.guid] if item.guid else [])
        return session.scalars(
            select(Article).where(or_(*match)).order_by(Article.id).limit(1)
        ).first()
    return session.scalars(select(Insight).where(Insight.key == item.key)).first()


def _find(session: Session, item: ArticleItem | InsightItem, *, check_only: bool = False) -> str:
    """``added``, ``updated`` or ``unchanged``; writes the change unless ``check_only``."""
    existing = _existing(session, item)
    if existing is None:
        if not check_only:
            if isinstance(item, ArticleItem):
                row: Article | Insight = Article(
                    **item.fields(), **item.controls(), content_hash=_digest(item)
                )
            else:
                row = Insight(**item.fields(), content_hash=_digest(item))
            session.add(row)
        return "added"
    if item.date_guessed:  # the source has no date: keep the one we stored first
        item = dataclasses.replace(item, published_at=existing.published_at)
    digest = _digest(item)
    controls = item.controls()
    same_controls = all(getattr(existing, k) == v for k, v in controls.items())
    if existing.content_hash == digest and same_controls:
        return "unchanged"
    if not check_only:
        for key, value in {**item.fields(), **controls}.items():
            setattr(existing, key, value)
        existing.content_hash = digest
        existing.updated_at = utcnow()
    return "updated"


def _upsert(session: Session, item: ArticleItem | InsightItem) -> str:
    return _find(session, item)


def _digest(item: ArticleItem | InsightItem) -> str:
    return item.content_hash()

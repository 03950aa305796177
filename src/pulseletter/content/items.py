"""Source-independent article and insight records: what every source produces, before storage.

Editor controls (``pin``, ``exclude``, pinned/excluded insights) are ``None`` when a source
says nothing about them: storing such an item leaves the database's controls as they are.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

CONTROL_FIELDS = ("pinned", "excluded", "pinned_insight_ids", "excluded_insight_ids")


@dataclass(frozen=True)
class BriefingTerm:
    term: str
    definition: str


@dataclass(frozen=True)
class ArticleItem:
    url: str
    title: str
    published_at: datetime
    guid: str = ""
    section: str = ""
    author: str = ""
    tldr: str = ""
    body_source: str = ""
    body_html: str = ""
    impact_text: str = ""
    impact_areas: tuple[str, ...] = ()
    briefing: tuple[BriefingTerm, ...] = ()
    image_url: str = ""
    image_alt: str = ""
    image_width: int | None = None
    image_height: int | None = None
    source_name: str = ""
    tags: tuple[str, ...] = ()
    origin: str = ""  # where it came from (file:line, feed entry) for messages; not stored
    # Editor controls; None: the source does not state them (the database keeps its value).
    pin: bool | None = None
    exclude: bool | None = None
    pinned_insights: tuple[str, ...] | None = None  # insight keys (or ids)
    excluded_insights: tuple[str, ...] | None = None
    # True when the source had no date and published_at is a fallback (the fetch time):
    # an article already stored keeps its stored date.
    date_guessed: bool = field(default=False, compare=False)

    def fields(self) -> dict[str, Any]:
        """Content column values for the Article model (controls excluded)."""
        data = asdict(self)
        for key in (
            "origin",
            "pin",
            "exclude",
            "pinned_insights",
            "excluded_insights",
            "date_guessed",
        ):
            data.pop(key)
        data["published_at"] = self.published_at.astimezone(UTC)
        data["impact_areas"] = list(self.impact_areas)
        data["tags"] = list(self.tags)
        data["briefing"] = [asdict(t) for t in self.briefing]
        return data

    def controls(self) -> dict[str, Any]:
        """The editor controls this source states, as Article column values."""
        out: dict[str, Any] = {}
        if self.pin is not None:
            out["pinned"] = self.pin
        if self.exclude is not None:
            out["excluded"] = self.exclude
        if self.pinned_insights is not None:
            out["pinned_insight_ids"] = list(self.pinned_insights)
        if self.excluded_insights is not None:
            out["excluded_insight_ids"] = list(self.excluded_insights)
        return out

    def content_hash(self) -> str:
        return _hash(self.fields())


@dataclass(frozen=True)
class InsightItem:
    key: str
    text: str
    published_at: datetime
    source_title: str = ""
    source_url: str = ""
    tags: tuple[str, ...] = ()
    labels: tuple[str, ...] = field(default=(), compare=False)  # evaluation labels; not stored
    origin: str = ""
    date_guessed: bool = field(default=False, compare=False)

    def fields(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "text": self.text,
            "published_at": self.published_at.astimezone(UTC),
            "source_title": self.source_title,
            "source_url": self.source_url,
            "tags": list(self.tags),
        }

    def controls(self) -> dict[str, Any]:
        return {}

    def content_hash(self) -> str:
        return _hash(self.fields())


def _hash(fields: dict[str, Any]) -> str:
    blob = json.dumps(fields, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()

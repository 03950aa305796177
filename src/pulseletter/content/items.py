"""Source-independent article and insight records: what every source produces, before storage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


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

    def fields(self) -> dict[str, Any]:
        """Column values for the Article model."""
        data = asdict(self)
        data.pop("origin")
        data["impact_areas"] = list(self.impact_areas)
        data["tags"] = list(self.tags)
        data["briefing"] = [asdict(t) for t in self.briefing]
        return data

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

    def fields(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "text": self.text,
            "published_at": self.published_at,
            "source_title": self.source_title,
            "source_url": self.source_url,
            "tags": list(self.tags),
        }

    def content_hash(self) -> str:
        return _hash(self.fields())


def _hash(fields: dict[str, Any]) -> str:
    blob = json.dumps(fields, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()

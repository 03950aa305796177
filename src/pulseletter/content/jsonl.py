"""JSON Lines: one article or insight per line, for bulk import and ``content export``.

Article line::

    {"type": "article", "url": "...", "title": "...", "published": "2026-11-03T08:30:00+00:00",
     "guid": "", "section": "", "author": "", "tldr": "", "body": "Markdown or HTML",
     "body_html": "optional; sanitised again on import", "impact": {"text": "", "areas": []},
     "briefing": [{"term": "", "definition": ""}],
     "image": {"url": "", "alt": "", "width": null, "height": null}, "source": "", "tags": [],
     "pin": false, "exclude": false, "pinned_insights": [], "excluded_insights": []}

Insight line::

    {"type": "insight", "key": "...", "text": "...", "published": "...", "source_title": "",
     "source_url": "", "tags": []}

Only ``type``, ``title``/``url``/``published`` (articles) and ``text``/``published`` plus a
``key`` or ``source_url`` (insights) are required. Editor controls are applied only when the
line states them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import markdown

from pulseletter.content.items import ArticleItem, BriefingTerm, InsightItem
from pulseletter.content.markdown_folder import parse_time
from pulseletter.content.sanitize import clean_html
from pulseletter.db.models import Article, Insight
from pulseletter.errors import ContentError

Item = ArticleItem | InsightItem


def read_jsonl(path: Path) -> Iterator[Item | ContentError]:
    """One item or ContentError per non-blank line; a bad line never stops the others."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ContentError(f"{path}: cannot read ({exc.strerror})") from None
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield item_from_json(_decode(line, where), where)
        except ContentError as exc:
            yield exc


def _decode(line: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ContentError(f"{where}: not UTF-8 (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ContentError(f"{where}: broken JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ContentError(f"{where}: each line must be a JSON object")
    return data


def item_from_json(data: dict[str, Any], where: str) -> Item:
    kind = data.get("type")
    if kind == "article":
        return _article(data, where)
    if kind == "insight":
        return _insight(data, where)
    raise ContentError(f"{where}: type must be 'article' or 'insight', got {kind!r}")


def _text(data: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ContentError(f"{where}: missing {key}")
        return ""
    if not isinstance(value, str):
        raise ContentError(f"{where}: {key} must be a string")
    return value.strip()


def _list(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ContentError(f"{where}: {key} must be a list")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _optional_list(data: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    return _list(data, key, where) if key in data else None


def _optional_bool(data: dict[str, Any], key: str, where: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise ContentError(f"{where}: {key} must be true or false")
    return value


def _article(data: dict[str, Any], where: str) -> ArticleItem:
    impact = data.get("impact") or {}
    image = data.get("image") or {}
    if not isinstance(impact, dict) or not isinstance(image, dict):
        raise ContentError(f"{where}: impact and image must be objects")
    briefing = []
    for n, entry in enumerate(data.get("briefing") or [], 1):
        if not isinstance(entry, dict) or not entry.get("term") or not entry.get("definition"):
            raise ContentError(f"{where}: briefing entry {n} needs a term and a definition")
        briefing.append(BriefingTerm(str(entry["term"]).strip(), str(entry["definition"]).strip()))
    url = _text(data, "url", where, required=True)
    body = data.get("body") or ""
    given_html = data.get("body_html")
    body_html = (
        clean_html(given_html, url) if given_html else clean_html(markdown.markdown(body), url)
    )
    return ArticleItem(
        url=url,
        title=_text(data, "title", where, required=True),
        published_at=parse_time(data.get("published"), f"{where}: published"),
        guid=_text(data, "guid", where),
        section=_text(data, "section", where),
        author=_text(data, "author", where),
        tldr=_text(data, "tldr", where),
        body_source=str(body),
        body_html=body_html,
        impact_text=str(impact.get("text") or "").strip(),
        impact_areas=_list(impact, "areas", where),
        briefing=tuple(briefing),
        image_url=str(image.get("url") or ""),
        image_alt=str(image.get("alt") or ""),
        image_width=image.get("width"),
        image_height=image.get("height"),
        source_name=_text(data, "source", where),
        tags=_list(data, "tags", where),
        origin=where,
        pin=_optional_bool(data, "pin", where),
        exclude=_optional_bool(data, "exclude", where),
        pinned_insights=_optional_list(data, "pinned_insights", where),
        excluded_insights=_optional_list(data, "excluded_insights", where),
    )


def _insight(data: dict[str, Any], where: str) -> InsightItem:
    source_url = _text(data, "source_url", where)
    key = _text(data, "key", where) or source_url
    if not key:
        raise ContentError(f"{where}: an insight needs a key or a source_url")
    return InsightItem(
        key=key,
        text=" ".join(_text(data, "text", where, required=True).split()),
        published_at=parse_time(data.get("published"), f"{where}: published"),
        source_title=_text(data, "source_title", where),
        source_url=source_url,
        tags=_list(data, "tags", where),
        origin=where,
    )


def article_json(a: Article) -> dict[str, Any]:
    return {
        "type": "article",
        "url": a.url,
        "guid": a.guid,
        "title": a.title,
        "section": a.section,
        "published": a.published_at.isoformat(),
        "author": a.author,
        "tldr": a.tldr,
        "body": a.body_source,
        "body_html": a.body_html,
        "impact": {"text": a.impact_text, "areas": list(a.impact_areas)},
        "briefing": list(a.briefing),
        "image": {
            "url": a.image_url,
            "alt": a.image_alt,
            "width": a.image_width,
            "height": a.image_height,
        },
        "source": a.source_name,
        "tags": list(a.tags),
        "pin": a.pinned,
        "exclude": a.excluded,
        "pinned_insights": [str(i) for i in a.pinned_insight_ids],
        "excluded_insights": [str(i) for i in a.excluded_insight_ids],
    }


def insight_json(i: Insight) -> dict[str, Any]:
    return {
        "type": "insight",
        "key": i.key,
        "text": i.text,
        "published": i.published_at.isoformat(),
        "source_title": i.source_title,
        "source_url": i.source_url,
        "tags": list(i.tags),
    }


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count

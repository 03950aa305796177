"""Read a folder of Markdown files with YAML front matter (``type: article`` or ``insight``).

Each file is parsed on its own: a broken file is reported with its path (and line, where YAML
says) and the rest of the folder still loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import markdown
import yaml

from pulseletter.content.items import ArticleItem, BriefingTerm, InsightItem
from pulseletter.content.sanitize import clean_html
from pulseletter.errors import ContentError

Item = ArticleItem | InsightItem


def read_folder(folder: Path, shift: timedelta = timedelta(0)) -> Iterator[Item | ContentError]:
    """Yield an item or a ContentError per ``*.md`` file, in a stable (sorted) order."""
    if not folder.is_dir():
        raise ContentError(f"{folder}: not a folder")
    for path in sorted(folder.rglob("*.md")):
        try:
            yield read_file(path, shift)
        except ContentError as exc:
            yield exc


def read_file(path: Path, shift: timedelta = timedelta(0)) -> Item:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ContentError(f"{path}:{line}: not UTF-8 (byte {exc.start}: {exc.reason})") from None
    meta, body = split_front_matter(text, path)
    kind = meta.get("type") or ("insight" if "insights" in path.parts else "article")
    if kind == "article":
        return _article(meta, body, path, shift)
    if kind == "insight":
        return _insight(meta, body, path, shift)
    raise ContentError(f"{path}:2: type must be 'article' or 'insight', got {kind!r}")


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    text = text.lstrip("\ufeff")
    if not text.startswith("---"):
        raise ContentError(f"{path}:1: missing YAML front matter (the file must start with ---)")
    lines = text.splitlines(keepends=True)
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.rstrip() == "---")
    except StopIteration:
        raise ContentError(f"{path}: front matter is not closed by a --- line") from None
    try:
        meta = yaml.safe_load("".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 2}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(f"{path}{line}: broken YAML front matter ({problem})") from None
    if not isinstance(meta, dict):
        raise ContentError(f"{path}:2: front matter must be a mapping of keys to values")
    return meta, "".join(lines[end + 1 :]).strip()


def parse_time(value: Any, where: str) -> datetime:
    """Accept YAML timestamps, dates and ISO strings; naive times are taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ContentError(f"{where}: unparseable date {value!r}") from None
    else:
        raise ContentError(f"{where}: missing or unparseable date {value!r}")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _required(meta: dict[str, Any], key: str, path: Path) -> str:
    value = meta.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ContentError(f"{path}: missing {key} in the front matter")
    return value.strip()


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v).strip() for v in value if str(v).strip())


def _article(meta: dict[str, Any], body: str, path: Path, shift: timedelta) -> ArticleItem:
    impact = meta.get("impact") or {}
    image = meta.get("image") or {}
    if not isinstance(impact, dict) or not isinstance(image, dict):
        raise ContentError(f"{path}: impact and image must be mappings")
    briefing = []
    for n, entry in enumerate(meta.get("briefing") or [], 1):
        if not isinstance(entry, dict) or not entry.get("term") or not entry.get("definition"):
            raise ContentError(f"{path}: briefing entry {n} needs a term and a definition")
        briefing.append(BriefingTerm(str(entry["term"]).strip(), str(entry["definition"]).strip()))
    url = _required(meta, "url", path)
    return ArticleItem(
        url=url,
        title=_required(meta, "title", path),
        published_at=parse_time(meta.get("published"), f"{path}: published") + shift,
        guid=str(meta.get("guid") or ""),
        section=str(meta.get("section") or ""),
        author=str(meta.get("author") or ""),
        tldr=str(meta.get("tldr") or "").strip(),
        body_source=body,
        body_html=clean_html(markdown.markdown(body), url),
        impact_text=str(impact.get("text") or "").strip(),
        impact_areas=_strings(impact.get("areas")),
        briefing=tuple(briefing),
        image_url=str(image.get("url") or ""),
        image_alt=str(image.get("alt") or ""),
        image_width=image.get("width"),
        image_height=image.get("height"),
        source_name=str(meta.get("source") or ""),
        tags=_strings(meta.get("tags")),
        origin=str(path),
        pin=_flag(meta, "pin", path),
        exclude=_flag(meta, "exclude", path),
        pinned_insights=_strings(meta["pinned_insights"]) if "pinned_insights" in meta else None,
        excluded_insights=(
            _strings(meta["excluded_insights"]) if "excluded_insights" in meta else None
        ),
    )


def _flag(meta: dict[str, Any], key: str, path: Path) -> bool | None:
    value = meta.get(key)
    if value is not None and not isinstance(value, bool):
        raise ContentError(f"{path}: {key} must be true or false, got {value!r}")
    return value


def _insight(meta: dict[str, Any], body: str, path: Path, shift: timedelta) -> InsightItem:
    if not body:
        raise ContentError(f"{path}: the insight has no text")
    source_url = str(meta.get("source_url") or "")
    return InsightItem(
        key=str(meta.get("guid") or source_url or path.stem),
        text=" ".join(body.split()),
        published_at=parse_time(meta.get("published"), f"{path}: published") + shift,
        source_title=str(meta.get("source_title") or ""),
        source_url=source_url,
        tags=_strings(meta.get("tags")),
        labels=_strings(meta.get("related")),
        origin=str(path),
    )

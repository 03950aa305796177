"""Read RSS 2.0, RSS 1.0 and Atom feeds (feedparser) into articles and insights.

Mapping, per entry:

- ``title`` (tags stripped, entities decoded) is required;
- ``link``, resolved against the feed's URL (or its ``<link>`` when read from a file); without
  a link a permalink GUID is used; an entry with neither is rejected;
- ``guid``/``id`` is kept and used to match on later polls; a GUID seen earlier in the same
  feed makes the later entry a rejected duplicate;
- published time: ``pubDate``/``published``, else ``updated``; a date that is present but
  cannot be parsed rejects the entry; with no date at all the fetch time is used, and an
  article already stored keeps the date it got first (so polling is idempotent);
- body: the full ``content`` if present, else ``summary``/``description``; kept as received
  (``body_source``) and sanitised (``body_html``);
- TL;DR: ``pulse:tldr``, else derived from the summary (whole sentences up to the limit);
- section: ``pulse:section``, else the first category; tags: every category;
- image: the first image enclosure, ``media:content`` or ``media:thumbnail``;
- ``pulse:impact`` and ``pulse:term`` give Real-World Impact and the Technical Briefing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx

from pulseletter.content.feed_extensions import Extensions, read_extensions
from pulseletter.content.items import ArticleItem, BriefingTerm, InsightItem
from pulseletter.content.sanitize import clean_html, derive_tldr, html_to_text
from pulseletter.content.store import SourceWarning
from pulseletter.errors import ContentError

FeedOutput = ArticleItem | InsightItem | ContentError | SourceWarning
USER_AGENT = "pulseletter feed reader (+https://github.com/pulseletter)"


MAX_FEED_BYTES = 20 * 1024 * 1024  # a feed bigger than this is refused, not read into memory


def fetch_feed(url: str, timeout: float = 20.0) -> tuple[bytes, str]:
    """GET a feed; returns the body and the final URL (after redirects)."""
    try:
        with httpx.stream(
            "GET", url, timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}
        ) as response:
            if response.status_code >= 400:
                raise ContentError(f"{url}: could not fetch the feed (HTTP {response.status_code})")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise ContentError(f"{url}: the feed is larger than {MAX_FEED_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks), str(response.url)
    except httpx.HTTPError as exc:
        raise ContentError(f"{url}: could not fetch the feed ({exc})") from None


def read_feed(
    data: bytes,
    source: str,
    *,
    base_url: str = "",
    fetched_at: datetime,
    tldr_limit: int = 280,
) -> Iterator[FeedOutput]:
    """Yield an item, a ContentError (a rejected entry) or a SourceWarning per entry."""
    parsed = feedparser.parse(
        data,
        response_headers={"content-location": base_url} if base_url else None,
        sanitize_html=False,  # nh3 sanitises; feedparser's pass would double-escape
        resolve_relative_uris=False,  # we resolve against the right base ourselves
    )
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception") or "no RSS or Atom elements found"
        raise ContentError(f"{source}: not an RSS or Atom feed ({problem})")
    try:
        feed_kind, extensions = read_extensions(data)
    except ET.ParseError as exc:
        yield SourceWarning(
            f"{source}: the XML is not well-formed ({exc}); entries were read leniently "
            "and pulse: extension fields were ignored"
        )
        feed_kind, extensions = "", []
    if extensions and len(extensions) != len(parsed.entries):
        yield SourceWarning(f"{source}: could not line up pulse: extension fields; ignored")
        extensions = []
    feed = parsed.feed
    base = base_url or feed.get("link", "")
    source_name = html_to_text(feed.get("title", ""))
    seen: dict[str, int] = {}
    for n, entry in enumerate(parsed.entries, 1):
        ext = extensions[n - 1] if extensions else Extensions()
        where = f"{source}: entry {n}"
        try:
            item = _item(entry, ext, feed_kind, base, source_name, fetched_at, tldr_limit, where)
        except ContentError as exc:
            yield exc
            continue
        key = item.guid if isinstance(item, ArticleItem) and item.guid else _key(item)
        if key in seen:
            yield ContentError(f"{where}: duplicate GUID/link {key!r} (first in entry {seen[key]})")
            continue
        seen[key] = n
        yield item


def _key(item: ArticleItem | InsightItem) -> str:
    return item.url if isinstance(item, ArticleItem) else item.key


def _item(
    entry: Any,
    ext: Extensions,
    feed_kind: str,
    base: str,
    source_name: str,
    fetched_at: datetime,
    tldr_limit: int,
    where: str,
) -> ArticleItem | InsightItem:
    title = html_to_text(entry.get("title", ""))
    guid = str(entry.get("id", "") or "").strip()
    if not title:
        named = guid or entry.get("link", "")
        raise ContentError(f"{where}{f' ({named})' if named else ''}: missing title")
    where = f"{where} ({title[:60]!r})"
    link = _link(entry, guid, base)
    if not link:
        raise ContentError(f"{where}: no link, and the GUID is not a URL")
    published, guessed = _published(entry, fetched_at, where)
    summary = entry.get("summary", "") or ""
    contents = entry.get("content") or []
    body = next((c.get("value", "") for c in contents if "html" in c.get("type", "")), "")
    body = body or (contents[0].get("value", "") if contents else "") or summary
    categories = _categories(entry)
    kind = ext.kind or feed_kind or "article"
    if kind == "insight":
        text = html_to_text(body or summary)
        if not text:
            raise ContentError(f"{where}: the insight has no text")
        return InsightItem(
            key=guid or link,
            text=text,
            published_at=published,
            source_title=title,
            source_url=link,
            tags=categories,
            origin=where,
            date_guessed=guessed,
        )
    if kind != "article":
        raise ContentError(f"{where}: pulse:type must be article or insight, got {kind!r}")
    image = _image(entry, base)
    return ArticleItem(
        url=link,
        guid=guid,
        title=title,
        published_at=published,
        section=ext.section or (categories[0] if categories else ""),
        author=html_to_text(entry.get("author", "")),
        tldr=ext.tldr or derive_tldr(html_to_text(summary or body), tldr_limit),
        body_source=body,
        body_html=clean_html(body, base_url=link),
        impact_text=ext.impact_text,
        impact_areas=ext.impact_areas,
        briefing=tuple(BriefingTerm(t, d) for t, d in ext.terms),
        image_url=image.get("url", ""),
        image_alt=image.get("alt", "") or title,
        image_width=image.get("width"),
        image_height=image.get("height"),
        source_name=source_name,
        tags=categories,
        origin=where,
        date_guessed=guessed,
    )


def _link(entry: Any, guid: str, base: str) -> str:
    link = (entry.get("link") or "").strip()
    if not link:
        for candidate in entry.get("links", []):
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                link = candidate["href"].strip()
                break
    if not link and urlsplit(guid).scheme in ("http", "https"):
        link = guid
    if not link:
        return ""
    resolved = urljoin(base, link) if base else link
    return resolved if urlsplit(resolved).scheme in ("http", "https") else ""


def _published(entry: Any, fetched_at: datetime, where: str) -> tuple[datetime, bool]:
    for name in ("published", "updated", "created"):
        raw = entry.get(name)
        if not raw:
            continue
        parsed = entry.get(f"{name}_parsed")
        if parsed is None:
            raise ContentError(f"{where}: unparseable date {raw!r}")
        return datetime(*parsed[:6], tzinfo=UTC), False
    return fetched_at.astimezone(UTC), True


def _categories(entry: Any) -> tuple[str, ...]:
    out: list[str] = []
    for tag in entry.get("tags") or []:
        term = html_to_text(tag.get("label") or tag.get("term") or "")
        if term and term.casefold() not in {t.casefold() for t in out}:
            out.append(term)
    return tuple(out)


def _image(entry: Any, base: str) -> dict[str, Any]:
    candidates: list[dict[str, Any]] = []
    for enclosure in entry.get("enclosures") or []:
        if str(enclosure.get("type", "")).startswith("image/"):
            candidates.append({"url": enclosure.get("href", "")})
    for media in entry.get("media_content") or []:
        if media.get("medium") == "image" or str(media.get("type", "")).startswith("image/"):
            candidates.append(media)
    candidates.extend(entry.get("media_thumbnail") or [])
    for c in candidates:
        url = urljoin(base, c.get("url", "") or c.get("href", "")) if base else c.get("url", "")
        if urlsplit(url).scheme in ("http", "https"):
            return {
                "url": url,
                "alt": html_to_text(entry.get("media_description", "") or ""),
                "width": _int(c.get("width")),
                "height": _int(c.get("height")),
            }
    return {}


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None

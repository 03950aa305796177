"""Sanitise untrusted HTML (feeds, Markdown) with nh3, and derive plain text from it.

What survives: a small set of formatting tags, ``href``/``src`` with http(s)/mailto only
(relative ones resolved against the source's URL), no scripts, no event handlers, no styles,
and no tracking pixels (images of 1x1 or smaller, or served by a known tracker).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import nh3

ALLOWED_TAGS = {
    "a",
    "p",
    "br",
    "em",
    "strong",
    "b",
    "i",
    "ul",
    "ol",
    "li",
    "blockquote",
    "code",
    "pre",
    "h2",
    "h3",
    "h4",
    "img",
    "figure",
    "figcaption",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}
URL_ATTRIBUTES = {("a", "href"), ("img", "src")}

# Hosts and path pieces of well-known open-tracking and analytics images.
TRACKER_HOSTS = (
    "feeds.feedburner.com",
    "feeds.feedblitz.com",
    "pixel.wp.com",
    "stats.wordpress.com",
    "www.google-analytics.com",
    "google-analytics.com",
    "doubleclick.net",
    "pixel.quantserve.com",
    "sb.scorecardresearch.com",
    "www.facebook.com",
    "pixel.mathtag.com",
    "ct.pinterest.com",
)
TRACKER_PATHS = re.compile(r"/(?:~r/|~ff/|pixel|track(?:ing)?/|beacon|open\.gif|1x1|spacer\.gif)")
IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
ATTR = re.compile(r'(\w+)="([^"]*)"')
TAG = re.compile(r"<[^>]+>")
BLOCK_END = re.compile(
    r"</?(?:p|div|li|ul|ol|h[1-6]|blockquote|pre|figure|figcaption|tr|td|th)\b[^>]*>|<br\s*/?>",
    re.IGNORECASE,
)


def clean_html(source: str, base_url: str = "") -> str:
    """Safe HTML for email and the web: see the module docstring for what is kept."""

    def resolve(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) in URL_ATTRIBUTES:
            value = value.strip()
            return urljoin(base_url, value) if base_url else value
        return value

    cleaned = nh3.clean(
        source,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        attribute_filter=resolve,
    )
    return IMG_TAG.sub(lambda m: "" if is_tracking_pixel(m.group(0)) else m.group(0), cleaned)


def is_tracking_pixel(img_tag: str) -> bool:
    """An <img> tag (as nh3 serialises it) that only exists to report an open."""
    attrs = {k.lower(): html.unescape(v) for k, v in ATTR.findall(img_tag)}
    src = attrs.get("src", "")
    if not src:
        return True  # nothing to show: nh3 dropped a javascript:/data: source
    for dim in ("width", "height"):
        value = attrs.get(dim, "").strip().removesuffix("px")
        if value.isdigit() and int(value) <= 1:
            return True
    parts = urlsplit(src)
    host = (parts.hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in TRACKER_HOSTS):
        return True
    return bool(TRACKER_PATHS.search(parts.path.lower()))


def html_to_text(source: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    spaced = BLOCK_END.sub(" ", source)
    return " ".join(html.unescape(TAG.sub("", spaced)).split())


SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def derive_tldr(text: str, limit: int = 280) -> str:
    """A TL;DR from a summary: whole sentences up to ``limit`` characters, else cut on a word
    boundary with an ellipsis. Never cuts inside a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    out = ""
    for sentence in SENTENCE_END.split(text):
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > limit:
            break
        out = candidate
    if out:
        return out
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-–—")
    return cut + "…"

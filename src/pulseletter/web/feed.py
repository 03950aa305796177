"""The archive as an Atom feed (RFC 4287), built with ElementTree so every value is escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from pulseletter.service.archive import ArchivedIssue

ATOM = "http://www.w3.org/2005/Atom"


def atom_feed(
    *, title: str, base_url: str, issues: list[ArchivedIssue], author: str, now: datetime
) -> bytes:
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM}}}feed")
    sub(feed, "title", title)
    sub(feed, "id", f"{base_url}/archive")
    sub(feed, "link", href=f"{base_url}/archive/feed.xml", rel="self", type="application/atom+xml")
    sub(feed, "link", href=f"{base_url}/archive", rel="alternate", type="text/html")
    updated = max((i.sent_at for i in issues), default=now)
    sub(feed, "updated", _iso(updated))
    sub(sub(feed, "author"), "name", author)
    for issue in issues:
        entry = sub(feed, "entry")
        url = f"{base_url}/archive/{issue.key}"
        sub(entry, "title", f"#{issue.number}: {issue.subject}")
        sub(entry, "id", url)
        sub(entry, "link", href=url, rel="alternate", type="text/html")
        sub(entry, "updated", _iso(issue.sent_at))
        sub(entry, "published", _iso(issue.sent_at))
        if issue.preheader:
            sub(entry, "summary", issue.preheader)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        feed, encoding="unicode"
    ).encode("utf-8")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

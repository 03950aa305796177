"""The ``pulse:`` feed extension: TL;DR, section, impact and briefing terms per entry.

feedparser flattens unknown namespaces (attributes and repeated elements are lost), so these
few elements are read from the XML directly, by namespace URI (any prefix works)::

    <rss version="2.0" xmlns:pulse="urn:pulseletter:feed:1"> ...
      <item>
        <pulse:type>article</pulse:type>          <!-- or insight; default article -->
        <pulse:section>Energy</pulse:section>
        <pulse:tldr>One or two sentences.</pulse:tldr>
        <pulse:impact areas="Market, Society">What changes for whom.</pulse:impact>
        <pulse:term name="Duration">Hours a battery can discharge at full power.</pulse:term>
      </item>

``pulse:type`` on the channel (or Atom feed) sets the default for every entry.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

NS = "urn:pulseletter:feed:1"
ENTRY_NAMES = {"item", "entry"}


@dataclass(frozen=True)
class Extensions:
    kind: str = ""
    section: str = ""
    tldr: str = ""
    impact_text: str = ""
    impact_areas: tuple[str, ...] = ()
    terms: tuple[tuple[str, str], ...] = ()


def read_extensions(data: bytes) -> tuple[str, list[Extensions]]:
    """The feed-level ``pulse:type`` and one Extensions per entry, in document order.

    Raises ``ET.ParseError`` when the document is not well-formed XML.
    """
    root = ET.fromstring(data)  # expat: no external entities, bounded entity expansion
    feed_kind = ""
    entries: list[Extensions] = []
    for element in root.iter():
        local = _local(element.tag)
        if local in ENTRY_NAMES:
            entries.append(_entry(element))
        elif element.tag == f"{{{NS}}}type" and not _inside_entry(root, element):
            feed_kind = (element.text or "").strip().lower()
    return feed_kind, entries


def _entry(element: ET.Element) -> Extensions:
    fields: dict[str, str] = {}
    areas: tuple[str, ...] = ()
    terms: list[tuple[str, str]] = []
    for child in element:
        if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{NS}}}"):
            continue
        name = _local(child.tag)
        text = " ".join("".join(child.itertext()).split())
        if name == "term":
            term = (child.get("name") or "").strip()
            if term and text:
                terms.append((term, text))
        elif name == "impact":
            fields["impact"] = text
            areas = tuple(a.strip() for a in (child.get("areas") or "").split(",") if a.strip())
        elif name in ("type", "section", "tldr"):
            fields[name] = text
    return Extensions(
        kind=fields.get("type", "").lower(),
        section=fields.get("section", ""),
        tldr=fields.get("tldr", ""),
        impact_text=fields.get("impact", ""),
        impact_areas=areas,
        terms=tuple(terms),
    )


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _inside_entry(root: ET.Element, target: ET.Element) -> bool:
    for entry in root.iter():
        if _local(entry.tag) in ENTRY_NAMES and any(c is target for c in entry):
            return True
    return False

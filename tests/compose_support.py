"""Helpers for the compose tests: an app with the sample content ingested, hostile content."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pulseletter.config import Settings
from pulseletter.content.selection import GlossaryEntry, IssueContent, Story, StoryInsight
from pulseletter.db.migrate import upgrade
from pulseletter.mail.transports import MemoryTransport
from pulseletter.service.app import App, Clock
from pulseletter.service.content import ingest
from pulseletter.service.demo import copy_sample_content

HOSTILE = '<script>alert("x")</script> & "quoted" {{ 7*7 }} {% if %} 🎉 שלום עולם مرحبا'


@contextmanager
def sample_app(
    make_settings: Callable[..., Settings], clock: Clock, **sections: dict[str, Any]
) -> Iterator[App]:
    """A migrated database with the sample content (its newest week = last week) ingested."""
    settings = make_settings(**sections)
    app = App.open(settings, check_schema=False, clock=clock, transport_factory=MemoryTransport)
    upgrade(app.db.engine)
    folder = settings.path(settings.content.dir)
    copy_sample_content(folder, clock(), settings.schedule.timezone)
    ingest(app, [folder])
    try:
        yield app
    finally:
        app.close()


def hostile_content(text: str = HOSTILE, *, image: bool = True) -> IssueContent:
    """Every field of the content model carries ``text`` (URLs carry it in their query)."""
    url = "https://news.example.com/a?x=1&y=" + '"q"'
    insight = StoryInsight(1, text, text, url, 0.9)
    story = Story(
        id=1,
        url=url,
        title=text,
        section=text,
        published="2026-11-17T08:00:00+00:00",
        author=text,
        tldr=text,
        body_html="",
        impact_text=text,
        impact_areas=[text, text],
        image_url="https://img.example.com/p.png?a=1&b=2" if image else "",
        image_alt=text,
        image_width=1200,
        image_height=630,
        tags=[text],
        pinned=False,
        insights=[insight, insight],
    )
    second = Story(**{**story.__dict__, "id": 2, "image_url": ""})
    glossary = [GlossaryEntry(text, text, text, url)]
    return IssueContent("2026-W47", text, [story, second], glossary)

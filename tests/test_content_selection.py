"""The week's selection: time-zone-aware windows, the documented order, editor controls, the
empty-week policy, the glossary, and the frozen JSON snapshot."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from content_support import cli_config
from pulseletter.cli import cli
from pulseletter.content.items import ArticleItem, BriefingTerm
from pulseletter.content.selection import IssueContent, gather_glossary
from pulseletter.content.store import store_items
from pulseletter.content.week import last_complete_week, week_containing, week_from_key
from pulseletter.errors import ContentError
from pulseletter.service.app import App
from pulseletter.service.content import ingest, set_article_flag, week_content, week_plan
from pulseletter.service.demo import SAMPLE_CONTENT

NY = ZoneInfo("America/New_York")


def article(slug: str, when: str, **kw: object) -> ArticleItem:
    return ArticleItem(
        url=f"https://news.example.com/{slug}",
        title=kw.pop("title", slug.replace("-", " ").title()),  # type: ignore[arg-type]
        published_at=datetime.fromisoformat(when),
        origin=slug,
        **kw,  # type: ignore[arg-type]
    )


def test_week_windows_follow_the_time_zone_and_the_boundary_day() -> None:
    w = week_from_key("2026-W48", NY)
    assert w.start == datetime(2026, 11, 23, 0, 0, tzinfo=NY)
    assert w.end == datetime(2026, 11, 30, 0, 0, tzinfo=NY)
    assert w.start.astimezone(UTC).hour == 5  # EST is UTC-5
    sunday = week_from_key("2026-W48", NY, "sun")  # the window covering most of ISO week 48
    assert sunday.start == datetime(2026, 11, 22, 0, 0, tzinfo=NY)
    assert week_from_key("2026-W48", NY, "thu").start == datetime(2026, 11, 26, tzinfo=NY)
    assert week_from_key("2026-W48", NY, "fri").start == datetime(2026, 11, 20, tzinfo=NY)
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):  # the two functions agree
        for hours in range(0, 24 * 14, 7):
            moment = datetime(2026, 11, 16, tzinfo=NY) + timedelta(hours=hours)
            window = week_containing(moment, NY, day)
            assert window.start <= moment < window.end
            assert week_from_key(window.key, NY, day) == window
    # Monday 03:00 UTC is still Sunday evening in New York: last week's window
    moment = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    assert week_containing(moment, NY).key == "2026-W48"
    assert week_containing(moment, ZoneInfo("UTC")).key == "2026-W49"
    assert last_complete_week(datetime(2026, 11, 30, 13, 0, tzinfo=UTC), NY).key == "2026-W48"
    assert week_from_key("2020-W53", NY).key == "2020-W53"  # a year with 53 weeks
    with pytest.raises(ContentError, match="does not exist"):
        week_from_key("2025-W53", NY)
    with pytest.raises(ContentError, match="must look like 2026-W48"):
        week_from_key("48/2026", NY)


def test_selection_order_pins_excludes_and_the_limit(app: App) -> None:
    store_items(
        app.db,
        [
            article("old", "2026-11-16T09:00:00+00:00"),
            article("newest", "2026-11-21T09:00:00+00:00"),
            article("middle", "2026-11-18T09:00:00+00:00"),
            article("lead", "2026-11-17T09:00:00+00:00", pin=True),
            article("hidden", "2026-11-20T09:00:00+00:00", exclude=True),
            article("next-week", "2026-11-23T00:00:00+00:00"),
            article("prev-week", "2026-11-15T23:59:59+00:00"),
        ],
    )
    week = week_from_key("2026-W47", app.settings.timezone)
    content = week_content(app, week)
    assert [s.url.rsplit("/", 1)[1] for s in content.stories] == ["lead", "newest", "middle", "old"]
    assert content.lead is not None and content.lead.pinned
    plan = week_plan(app, week)
    reasons = {c.article.url.rsplit("/", 1)[1]: c.reason for c in plan.candidates}
    assert reasons["lead"] == "pinned as the lead"
    assert reasons["hidden"] == "excluded by the editor"
    assert reasons["newest"].startswith("#2: published Sat 21 Nov")
    set_article_flag(app, "https://news.example.com/hidden", excluded=False)
    set_article_flag(app, "https://news.example.com/lead", pinned=False)
    settings = replace(app.settings, issue=replace(app.settings.issue, max_articles=2))
    limited = App(settings, app.db, app.clock)
    plan = week_plan(limited, week)
    assert [c.article.url.rsplit("/", 1)[1] for c in plan.candidates if c.included] == [
        "newest",
        "hidden",
    ]
    cut = [c.reason for c in plan.candidates if not c.included]
    assert cut == ["beyond issue.max_articles (2)"] * 3


def test_front_matter_pin_and_the_cli_controls(tmp_path: Path) -> None:
    config = cli_config(tmp_path)
    runner = CliRunner()
    content = tmp_path / "content"
    content.mkdir()
    base = (SAMPLE_CONTENT / "articles" / "08-heat-pumps-cold-climate-adoption.md").read_text()
    (content / "pinned.md").write_text(
        base.replace("section: Energy", "section: Energy\npin: true")
    )
    other = (SAMPLE_CONTENT / "articles" / "09-browser-blocks-third-party-cookies.md").read_text()
    (content / "other.md").write_text(other)
    assert runner.invoke(cli, [*config, "content", "ingest", str(content)]).exit_code == 0
    week = runner.invoke(cli, [*config, "content", "week", "--week", "2026-W47"])
    assert week.exit_code == 0, week.output
    lines = week.output.splitlines()
    assert lines[0].startswith("2026-W47 (") and "2 stories" in lines[0]
    assert "pinned lead first, then newest first" in lines[1]
    assert lines[2].startswith("+ Heat Pumps Win") and "(pinned as the lead)" in lines[2]
    cookies = "https://pulse.example.com/articles/browser-blocks-third-party-cookies"
    runner.invoke(cli, [*config, "content", "exclude", cookies])
    week = runner.invoke(cli, [*config, "content", "week", "--week", "2026-W47"])
    assert "- A Major Browser Blocks" in week.output and "excluded by the editor" in week.output
    runner.invoke(cli, [*config, "content", "include", cookies])
    runner.invoke(cli, [*config, "content", "unpin", "pulse-2026-11-19-heat-pumps"])
    week = runner.invoke(cli, [*config, "content", "week", "--week", "2026-W47"])
    assert week.output.splitlines()[2].startswith("+ A Major Browser Blocks")


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ("skip", "no issue is sent (content.empty_week = skip)"),
        ("quiet", "a short quiet-week issue is sent (content.empty_week = quiet)"),
    ],
)
def test_an_empty_week_follows_the_policy(tmp_path: Path, policy: str, says: str) -> None:
    config = cli_config(tmp_path, content={"empty_week": policy})
    result = CliRunner().invoke(cli, [*config, "content", "week", "--week", "2026-W10"])
    assert result.exit_code == 0, result.output
    assert "2026-W10" in result.output and "0 stories" in result.output
    assert f"no articles to send for 2026-W10: {says}" in result.output


def test_week_plan_exposes_the_decision(app: App) -> None:
    plan = week_plan(app, week_from_key("2026-W10", app.settings.timezone))
    assert plan.content.is_empty and plan.decision == app.settings.content.empty_week
    ingest(app, [SAMPLE_CONTENT])
    assert week_plan(app, week_from_key("2026-W47", app.settings.timezone)).decision == "send"


def test_glossary_is_deduplicated_case_insensitively_and_keeps_its_source(app: App) -> None:
    store_items(
        app.db,
        [
            article(
                "first",
                "2026-11-21T09:00:00+00:00",
                briefing=(BriefingTerm("Heat Pump", "Moves heat from outside in."),),
            ),
            article(
                "second",
                "2026-11-20T09:00:00+00:00",
                briefing=(
                    BriefingTerm("heat pump", "A different definition that must not win."),
                    BriefingTerm("COP", "Heat delivered per unit of electricity."),
                ),
            ),
        ],
    )
    content = week_content(app, week_from_key("2026-W47", app.settings.timezone))
    glossary = [(g.term, g.definition, g.article_url.rsplit("/", 1)[1]) for g in content.glossary]
    assert glossary == [
        ("Heat Pump", "Moves heat from outside in.", "first"),
        ("COP", "Heat delivered per unit of electricity.", "second"),
    ]
    assert gather_glossary([]) == []


def test_issue_content_round_trips_through_json(app: App) -> None:
    ingest(app, [SAMPLE_CONTENT])
    content = week_content(app, week_from_key("2026-W46", app.settings.timezone))
    assert len(content.stories) == 3 and content.glossary
    assert IssueContent.from_json(content.to_json()) == content

"""RSS and Atom feeds: mapping, sanitising, bad entries, and polling over real HTTP."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from content_support import DATA, serve_folder
from pulseletter.db.models import Article, Insight
from pulseletter.service.app import App
from pulseletter.service.content import ingest, ingest_feeds

FEEDS = DATA / "feeds"


def articles(app: App) -> dict[str, Article]:
    with app.db.reading() as session:
        return {a.url: a for a in session.scalars(select(Article))}


def test_rss_file_maps_every_field_and_names_the_bad_entries(app: App) -> None:
    report = ingest(app, [str(FEEDS / "pulse.rss")])
    assert (report.added, report.updated, report.unchanged) == (3, 0, 0)
    assert len(report.rejected) == 2
    duplicate, broken = report.rejected
    assert "pulse.rss: entry 4" in duplicate and "duplicate GUID" in duplicate
    assert "fieldwire-1001" in duplicate and "first in entry 1" in duplicate
    assert "pulse.rss: entry 5" in broken and "'Broken Date Entry'" in broken
    assert "unparseable date 'the Tuesday after next'" in broken

    stored = articles(app)
    sensors = stored["https://fieldwire.example.org/2026/11/substation-sensors"]  # relative link
    assert sensors.title == "Substations Get Smarter: Sensors – and Fewer Truck Rolls"  # entity
    assert sensors.guid == "fieldwire-1001"
    assert sensors.published_at.isoformat() == "2026-11-17T08:15:00+00:00"  # +0100 -> UTC
    assert sensors.author == "Rosa Mendel" and sensors.section == "Energy"
    assert sensors.tags == ["Grid", "Sensors"]
    assert sensors.tldr.startswith("Cheap wireless sensors")  # pulse:tldr wins
    assert sensors.impact_areas == ["Industry", "Market"]
    assert sensors.impact_text.startswith("Fewer scheduled inspections")
    assert [b["term"] for b in sensors.briefing] == ["Dissolved gas analysis", "Truck roll"]
    assert sensors.image_url == "https://fieldwire.example.org/images/substation-wide.jpg"
    assert (sensors.image_width, sensors.image_height) == (1200, 630)
    assert sensors.source_name == "Field & Wire"
    assert "<script" in sensors.body_source  # the source is kept as received ...
    html = sensors.body_html  # ... and only the sanitised copy is ever rendered
    for banned in ("<script", "onclick", "javascript:", "pixel/open.gif", "feedburner"):
        assert banned not in html, banned
    assert 'href="https://fieldwire.example.org/data/sensor-survey"' in html
    assert 'src="https://fieldwire.example.org/2026/11/images/substation.jpg"' in html

    fibre = stored["https://fieldwire.example.org/2026/11/rural-fibre"]
    assert fibre.title == "Fibre to the Farm: Why Rural Broadband Still Lags"  # CDATA + tags
    assert fibre.image_url == "https://fieldwire.example.org/images/fibre-reel.jpg"  # enclosure
    # derived TL;DR: whole sentences, stopping before the one that would pass the limit
    assert fibre.tldr.endswith("the cost per home is not.")
    assert "This sentence" not in fibre.tldr and "<b>" not in fibre.tldr
    assert fibre.section == "Networks"  # first category without pulse:section


def test_a_feed_without_dates_uses_the_fetch_time_once_and_polling_stays_a_no_op(
    app: App, clock: object
) -> None:
    source = str(FEEDS / "pulse.rss")
    ingest(app, [source])
    first = articles(app)["https://fieldwire.example.org/2026/11/heat-maps"].published_at
    assert first == app.clock()
    clock.advance(days=3)  # type: ignore[attr-defined]
    again = ingest(app, [source])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert articles(app)["https://fieldwire.example.org/2026/11/heat-maps"].published_at == first


def test_atom_file_resolves_links_reads_updated_only_dates_and_insights(app: App) -> None:
    report = ingest(app, [str(FEEDS / "pulse.atom")])
    assert (report.added, len(report.rejected)) == (3, 1)
    assert "pulse.atom: entry 3" in report.rejected[0] and "missing title" in report.rejected[0]
    assert "tag:orbit.example.com,2026:untitled" in report.rejected[0]
    stored = articles(app)
    ground = stored["https://orbit.example.com/posts/ground-stations"]
    assert ground.title == "Ground Stations <as a Service> Go Mainstream"
    assert ground.published_at.isoformat() == "2026-11-18T11:30:00+00:00"
    assert ground.section == "Space" and ground.author == "Kit Obasi"
    assert ground.image_url == "https://orbit.example.com/img/dish.png"
    assert 'href="https://orbit.example.com/pricing"' in ground.body_html
    assert "onmouseover" not in ground.body_html
    cadence = stored["https://orbit.example.com/posts/launch-cadence"]
    assert cadence.published_at.isoformat() == "2026-11-17T10:00:00+00:00"  # from <updated>
    assert cadence.tldr == "Launches per week, charted."
    with app.db.reading() as session:
        insight = session.scalars(select(Insight)).one()
    assert insight.source_url == "https://orbit.example.com/insights/antenna-sharing"
    assert insight.source_title == "Antenna sharing cuts mission costs"
    assert insight.text.startswith("Small satellite teams")


def test_feeds_over_real_http_resolve_against_the_feed_url(app: App, tmp_path: Path) -> None:
    shutil.copy(FEEDS / "pulse.atom", tmp_path / "feed.atom")
    # a feed without its own <link>: relative links must resolve against the URL it came from
    text = (FEEDS / "pulse.atom").read_text("utf-8")
    text = text.replace('<link rel="alternate" href="https://orbit.example.com/"/>', "")
    (tmp_path / "bare.atom").write_text(text, "utf-8")
    with serve_folder(tmp_path) as base:
        report = ingest(app, [f"{base}/bare.atom"])
        assert report.added == 3 and len(report.rejected) == 1
        assert f"{base}/posts/ground-stations" in articles(app)
        missing = ingest(app, [f"{base}/nowhere.xml"])
    assert missing.rejected == [f"{base}/nowhere.xml: could not fetch the feed (HTTP 404)"]


def test_content_feeds_config_is_polled_by_ingest_feeds(
    make_settings: object, tmp_path: Path, clock: object
) -> None:
    from pulseletter.db.migrate import upgrade

    with serve_folder(FEEDS) as base:
        settings = make_settings(  # type: ignore[operator]
            content={"feeds": [f"{base}/pulse.rss", str(FEEDS / "pulse.atom")]}
        )
        app = App.open(settings, check_schema=False, clock=clock)
        try:
            upgrade(app.db.engine)
            first = ingest_feeds(app)
            second = ingest_feeds(app)
        finally:
            app.close()
    assert (first.added, len(first.rejected)) == (6, 3)  # 5 articles, 1 insight
    assert (second.added, second.updated, second.unchanged) == (0, 0, 6)


def test_a_file_that_is_not_a_feed_is_rejected_and_the_batch_goes_on(app: App) -> None:
    report = ingest(app, [str(FEEDS / "not-a-feed.xml"), str(FEEDS / "pulse.atom")])
    assert report.added == 3
    assert any(
        r.startswith(f"{FEEDS / 'not-a-feed.xml'}: not an RSS or Atom feed")
        for r in report.rejected
    )


def test_malformed_xml_is_read_leniently_with_a_warning(app: App, tmp_path: Path) -> None:
    broken = tmp_path / "broken.rss"
    text = (FEEDS / "pulse.rss").read_text("utf-8")
    broken.write_text(text.replace("</channel>", "<unclosed></channel>"), "utf-8")
    report = ingest(app, [str(broken)])
    assert report.added >= 1
    assert report.warnings and "not well-formed" in report.warnings[0]


@pytest.mark.parametrize(
    ("html", "kept"),
    [
        ('<img src="https://a.example/x.png" width="1" height="1">', False),
        ('<img src="https://pixel.wp.com/g.gif?x=1">', False),
        ('<img src="https://a.example/track/open.gif">', False),
        ('<img src="javascript:alert(1)">', False),
        ('<img src="https://a.example/chart.png" width="600" alt="chart">', True),
    ],
)
def test_tracking_pixels_are_dropped(html: str, kept: bool) -> None:
    from pulseletter.content.sanitize import clean_html

    assert ("<img" in clean_html(html)) is kept


def test_cli_ingest_without_sources_uses_content_dir_and_feeds(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from content_support import cli_config
    from pulseletter.cli import cli
    from pulseletter.service.demo import SAMPLE_CONTENT

    shutil.copytree(SAMPLE_CONTENT, tmp_path / "content")
    with serve_folder(FEEDS) as base:
        config = cli_config(tmp_path, content={"feeds": [f"{base}/pulse.atom"]})
        result = CliRunner().invoke(cli, [*config, "content", "ingest"])
    assert result.exit_code == 1  # the Atom fixture has one broken entry
    assert "48 added, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert f"rejected: {base}/pulse.atom: entry 3" in result.output


def test_an_oversized_feed_is_refused(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pulseletter.content import feeds

    monkeypatch.setattr(feeds, "MAX_FEED_BYTES", 1000)
    with serve_folder(FEEDS) as base:
        report = ingest(app, [f"{base}/pulse.rss"])
    assert report.rejected == [f"{base}/pulse.rss: the feed is larger than 1000 bytes"]

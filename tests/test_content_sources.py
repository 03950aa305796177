"""Markdown folders and files, JSON Lines import/export, upserts and bad input."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from pulseletter.cli import cli
from pulseletter.db.models import Article, Insight
from pulseletter.service.app import App
from pulseletter.service.content import export, ingest
from pulseletter.service.demo import SAMPLE_CONTENT

ARTICLE = """---
type: article
title: "Tide Gauges Go Online"
url: https://news.example.com/tide-gauges
guid: tide-1
section: Oceans
published: 2026-11-10T09:00:00Z
tags: [oceans, sensors]
tldr: Coastal tide gauges now report every minute.
impact:
  areas: [Society]
  text: Earlier flood warnings.
briefing:
  - term: Tide gauge
    definition: An instrument that records the height of the sea.
---
Tide gauges along the coast now report sea level every minute. See [the map](/map).
"""


def counts(app: App) -> tuple[int, int]:
    with app.db.reading() as session:
        return (
            session.scalar(select(func.count()).select_from(Article)) or 0,
            session.scalar(select(func.count()).select_from(Insight)) or 0,
        )


def test_sample_content_ingests_twice_and_the_second_time_changes_nothing(app: App) -> None:
    first = ingest(app, [SAMPLE_CONTENT])
    assert (first.added, first.updated, first.rejected) == (45, 0, [])
    second = ingest(app, [SAMPLE_CONTENT])
    assert (second.added, second.updated, second.unchanged, second.rejected) == (0, 0, 45, [])


def test_sample_content_meets_the_issue(app: App) -> None:
    ingest(app, [SAMPLE_CONTENT])
    with app.db.reading() as session:
        arts = list(session.scalars(select(Article)))
        insights = list(session.scalars(select(Insight)))
    weeks = {a.published_at.isocalendar()[:2] for a in arts}
    assert len(arts) >= 8 and len(weeks) >= 3 and len({a.section for a in arts}) >= 3
    assert len(insights) >= 30
    for a in arts:  # the seeds' shape: every part of an article page is there
        assert a.tldr and a.body_html and a.impact_text and a.impact_areas, a.url
        assert len(a.briefing) >= 2 and a.image_url and a.image_alt, a.url


def test_an_edited_article_updates_in_place(app: App, tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(ARTICLE, "utf-8")
    assert ingest(app, [path]).added == 1
    path.write_text(ARTICLE.replace("Go Online", "Go Live"), "utf-8")
    report = ingest(app, [path])
    assert (report.added, report.updated) == (0, 1)
    with app.db.reading() as session:
        article = session.scalars(select(Article)).one()
    assert article.title == "Tide Gauges Go Live"
    assert 'href="https://news.example.com/map"' in article.body_html  # resolved against url


def test_an_article_is_matched_by_guid_when_its_url_changes(app: App, tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(ARTICLE, "utf-8")
    ingest(app, [path])
    path.write_text(ARTICLE.replace("/tide-gauges", "/tide-gauges-2026"), "utf-8")
    assert ingest(app, [path]).updated == 1
    assert counts(app) == (1, 0)


def test_bad_markdown_files_are_rejected_with_file_line_and_reason(
    app: App, tmp_path: Path
) -> None:
    folder = tmp_path / "content"
    (folder / "articles").mkdir(parents=True)
    good = folder / "articles" / "good.md"
    good.write_text(ARTICLE, "utf-8")
    broken_yaml = folder / "articles" / "broken.md"
    broken_yaml.write_text(ARTICLE.replace("section: Oceans", "section: [Oceans"), "utf-8")
    no_title = folder / "articles" / "untitled.md"
    no_title.write_text(ARTICLE.replace('title: "Tide Gauges Go Online"\n', ""), "utf-8")
    bad_date = folder / "articles" / "baddate.md"
    bad_date.write_text(ARTICLE.replace("2026-11-10T09:00:00Z", "soon-ish"), "utf-8")
    latin1 = folder / "articles" / "latin1.md"
    latin1.write_bytes(ARTICLE.replace("Tide", "Marée").encode("latin-1"))
    report = ingest(app, [folder])
    assert report.added == 1
    rejected = "\n".join(report.rejected)
    assert len(report.rejected) == 4, rejected
    assert f"{broken_yaml}:7: broken YAML front matter" in rejected
    assert f"{no_title}: missing title" in rejected
    assert f"{bad_date}: published: unparseable date 'soon-ish'" in rejected
    assert f"{latin1}:3: not UTF-8" in rejected
    assert counts(app) == (1, 0)


def test_a_single_markdown_file_and_a_missing_source(app: App, tmp_path: Path) -> None:
    path = tmp_path / "one.md"
    path.write_text(ARTICLE, "utf-8")
    report = ingest(app, [path, tmp_path / "nope"])
    assert report.added == 1
    assert report.rejected == [f"{tmp_path / 'nope'}: no such file or folder"]


def test_jsonl_import_rejects_bad_lines_and_keeps_the_rest(app: App, tmp_path: Path) -> None:
    good = {
        "type": "insight",
        "key": "k1",
        "text": "Sea level data every minute.",
        "published": "2026-11-10T10:00:00Z",
    }
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "key": "k2", "published": "last week"}),
        json.dumps({"type": "article", "url": "https://x.example/a", "published": "2026-11-10"}),
        "",
        json.dumps({**good, "key": "k3", "type": "podcast"}),
    ]
    path = tmp_path / "bulk.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    report = ingest(app, [path])
    assert report.added == 1
    rejected = "\n".join(report.rejected)
    assert f"{path}:2: broken JSON" in rejected
    assert f"{path}:3: published: unparseable date 'last week'" in rejected
    assert f"{path}:4: missing title" in rejected
    assert f"{path}:6: type must be 'article' or 'insight'" in rejected


def test_export_round_trips_through_ingest_as_unchanged(app: App, tmp_path: Path) -> None:
    ingest(app, [SAMPLE_CONTENT])
    feeds = Path(__file__).parent / "data" / "feeds"
    ingest(app, [feeds / "pulse.rss", feeds / "pulse.atom"])
    buffer = io.StringIO()
    lines = export(app, buffer)
    assert lines == 45 + 6
    path = tmp_path / "export.jsonl"
    path.write_text(buffer.getvalue(), "utf-8")
    report = ingest(app, [path])
    assert (report.added, report.updated, report.unchanged, report.rejected) == (0, 0, lines, [])


def test_cli_ingest_prints_counts_and_exits_1_on_rejections(tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "config.toml"
    config.write_text("", "utf-8")
    assert runner.invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    content = tmp_path / "content"
    shutil.copytree(SAMPLE_CONTENT, content)
    (content / "articles" / "zz-broken.md").write_text("---\ntitle: [\n---\n", "utf-8")
    result = runner.invoke(cli, ["--config", str(config), "content", "ingest", str(content)])
    assert result.exit_code == 1
    assert "45 added, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert "zz-broken.md:3: broken YAML" in result.output

"""Related insights: measured quality on the labelled set, determinism, explanations, and the
rules (minimum score, no repeats, editor pins and excludes)."""

from __future__ import annotations

import random
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from content_support import cli_config, evaluate
from pulseletter.cli import cli
from pulseletter.content.related import Relatedness
from pulseletter.content.selection import build_issue_content
from pulseletter.content.week import week_from_key
from pulseletter.db.models import Article, Insight
from pulseletter.service.app import App
from pulseletter.service.content import ingest, set_insight_control, week_content
from pulseletter.service.demo import SAMPLE_CONTENT


def test_labelled_set_precision_and_recall_at_3(app: App) -> None:
    result = evaluate(app.db, app.settings.issue.min_related_score)
    print(f"\nrelatedness: precision@3={result.precision:.3f} recall@3={result.recall:.3f}")
    assert result.precision >= 0.8, result.per_article
    assert result.recall >= 0.7, result.per_article
    assert result.near_misses_returned == []


def test_the_labelled_set_is_big_and_honest_enough() -> None:
    import yaml

    from content_support import EVAL_SET

    data = yaml.safe_load(EVAL_SET.read_text("utf-8"))
    keys = {a["key"] for a in data["articles"]}
    assert len(keys) >= 8 and len(data["insights"]) >= 40
    near_misses = [i for i in data["insights"] if not i["related"]]
    assert len(near_misses) >= 10
    for insight in data["insights"]:
        assert set(insight["related"]) <= keys, insight["key"]
    for key in keys:  # every article has at least three insights that belong to it
        assert sum(key in i["related"] for i in data["insights"]) >= 3, key


def test_ranking_is_deterministic_whatever_the_candidate_order(app: App) -> None:
    evaluate(app.db, 0.2)  # loads the set
    with app.db.reading() as session:
        insights = list(session.scalars(select(Insight)))
        article = session.scalars(select(Article).order_by(Article.id)).first()
        assert article is not None
        first = [(s.insight.id, s.score) for s in Relatedness(insights).score_all(article)]
        random.Random(7).shuffle(insights)
        second = [(s.insight.id, s.score) for s in Relatedness(insights).score_all(article)]
    assert first == second


def test_content_related_explains_the_ranking(tmp_path: Path) -> None:
    config = cli_config(tmp_path)
    runner = CliRunner()
    runner.invoke(cli, [*config, "content", "ingest", str(SAMPLE_CONTENT)])
    url = "https://pulse.example.com/articles/grid-batteries-outgrow-pilot"
    result = runner.invoke(cli, [*config, "content", "related", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Grid Batteries Outgrow Their Pilot Phase")
    chosen = [line for line in lines if line.startswith("* ")]
    assert len(chosen) == 3
    assert all(" related: lexical " in line for line in chosen)
    first_matched = lines[lines.index(chosen[0]) + 2]
    assert first_matched.strip().startswith("matched: ") and "storage" in first_matched
    # the phone battery review shares a word but not the meaning: listed, scored low, not shown
    phone = next(line for line in lines if "below minimum" in line)
    assert float(phone.split()[0]) < 0.2
    assert "#3 below minimum" in result.output  # insights/003-phone-battery-review.md
    missing = runner.invoke(cli, [*config, "content", "related", "https://nope.example"])
    assert missing.exit_code == 1 and "no article with id, URL or GUID" in missing.output


def test_no_insight_appears_twice_and_weak_matches_are_left_out(app: App) -> None:
    ingest(app, [SAMPLE_CONTENT])
    for key in ("2026-W45", "2026-W46", "2026-W47"):
        content = week_content(app, week_from_key(key, app.settings.timezone))
        ids = [i.id for s in content.stories for i in s.insights]
        assert len(ids) == len(set(ids)), key
        for story in content.stories:
            assert all(i.score >= app.settings.issue.min_related_score for i in story.insights)
    texts = " ".join(
        i.text
        for key in ("2026-W45", "2026-W46", "2026-W47")
        for s in week_content(app, week_from_key(key, app.settings.timezone)).stories
        for i in s.insights
    )
    for off_topic in ("model railway", "sourdough", "CSV export"):
        assert off_topic not in texts


def test_two_stories_on_one_topic_share_out_the_insights(app: App, tmp_path: Path) -> None:
    ingest(app, [SAMPLE_CONTENT])
    twin = (SAMPLE_CONTENT / "articles" / "01-grid-batteries-outgrow-pilot.md").read_text()
    twin = twin.replace("grid-batteries-outgrow-pilot", "grid-batteries-twin")
    twin = twin.replace("pulse-2026-11-03-grid-batteries", "twin-guid")
    (tmp_path / "twin.md").write_text(twin, "utf-8")
    ingest(app, [tmp_path / "twin.md"])
    week = week_from_key("2026-W45", app.settings.timezone)
    with app.db.reading() as session:
        content = build_issue_content(session, week, max_articles=6, per_article=3, min_score=0.2)
    by_url = {s.url.rsplit("/", 1)[-1]: [i.id for i in s.insights] for s in content.stories}
    first, second = by_url["grid-batteries-outgrow-pilot"], by_url["grid-batteries-twin"]
    assert len(first) == 3 and not set(first) & set(second)


def test_editor_pins_and_excludes_win(app: App) -> None:
    ingest(app, [SAMPLE_CONTENT])
    url = "https://pulse.example.com/articles/grid-batteries-outgrow-pilot"
    week = week_from_key("2026-W45", app.settings.timezone)

    def insights_of_lead() -> list[str]:
        story = next(s for s in week_content(app, week).stories if s.url == url)
        return [i.source_url for i in story.insights]

    before = insights_of_lead()
    phone = "https://gadgetnotes.example.com/reviews/midrange-phone"
    assert phone not in before
    set_insight_control(app, url, phone, "pin")
    set_insight_control(app, url, before[0], "exclude")
    after = insights_of_lead()
    assert after[0] == phone  # pinned comes first, whatever its score
    assert before[0] not in after
    set_insight_control(app, url, phone, "clear")
    set_insight_control(app, url, before[0], "clear")
    assert insights_of_lead() == before


def test_the_sample_contents_own_labels_also_meet_the_thresholds(app: App) -> None:
    """A second, independent set: the sample insights carry `related:` labels too."""
    from pulseletter.content.items import InsightItem
    from pulseletter.content.markdown_folder import read_folder
    from pulseletter.content.related import choose

    items = list(read_folder(SAMPLE_CONTENT))
    ingest(app, [SAMPLE_CONTENT])
    labels = {i.key: set(i.labels) for i in items if isinstance(i, InsightItem)}
    returned = hits = 0
    recalls = []
    with app.db.reading() as session:
        model = Relatedness(list(session.scalars(select(Insight))))
        for a in session.scalars(select(Article)):
            slug = a.url.rsplit("/", 1)[1]
            relevant = {k for k, arts in labels.items() if slug in arts}
            top = [s.insight.key for s in choose(model.score_all(a), limit=3, min_score=0.2)]
            returned += len(top)
            hits += sum(k in relevant for k in top)
            recalls.append(sum(k in relevant for k in top) / len(relevant))
    precision, recall = hits / returned, sum(recalls) / len(recalls)
    print(f"\nsample content: precision@3={precision:.3f} recall@3={recall:.3f}")
    assert precision >= 0.8 and recall >= 0.7

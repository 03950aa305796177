"""Content speed: reading a big feed, re-polling it, and ranking related insights.

Each figure is printed with a ratio against a baseline measured in the same run (machines are
noisy; ratios hold):

- feed read: our full mapping (feedparser + pulse: extensions + nh3 + TL;DR) vs
  feedparser.parse alone on the same bytes with the same options;
- re-poll: ingesting the same feed a second time (all unchanged) vs the first time;
- relatedness: TF-IDF model + scoring every candidate for each story vs only tokenising the
  same texts once.

Run: .venv/bin/python bench/content_bench.py [ENTRIES] [INSIGHTS]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import feedparser

from pulseletter.config import load_settings
from pulseletter.content.feeds import read_feed
from pulseletter.content.related import Relatedness, article_text, insight_text, tokens
from pulseletter.content.store import store_items
from pulseletter.db import open_database
from pulseletter.db.migrate import upgrade

WORDS = [
    "grid",
    "battery",
    "storage",
    "solar",
    "price",
    "policy",
    "chip",
    "export",
    "satellite",
    "orbit",
    "launch",
    "model",
    "weights",
    "gene",
    "therapy",
    "muscle",
    "vector",
    "quantum",
    "error",
    "cookie",
    "browser",
    "privacy",
    "heat",
    "pump",
    "winter",
    "efficiency",
    "network",
    "fibre",
    "rural",
    "sensor",
    "transformer",
    "market",
    "demand",
    "supply",
]


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_feed(entries: int, rng: random.Random) -> bytes:
    items = []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(entries):
        when = (start + timedelta(minutes=i)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        body = "".join(f"<p>{text(rng, 40)} <a href='/r/{i}'>more</a></p>" for _ in range(4))
        body += '<img src="https://t.example/pixel.gif" width="1" height="1">'
        items.append(
            f"<item><title>{text(rng, 6)}</title><link>/posts/{i}</link><guid>g{i}</guid>"
            f"<pubDate>{when}</pubDate><category>{rng.choice(WORDS)}</category>"
            f"<description>{text(rng, 30)}</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        "<channel><title>Bench</title><link>https://bench.example/</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def timed(fn: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return time.perf_counter() - t0, result


def main() -> None:
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_insights = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    rng = random.Random(48)
    data = make_feed(entries, rng)
    now = datetime(2026, 11, 23, tzinfo=UTC)

    default, _ = timed(lambda: feedparser.parse(data))
    base, _ = timed(
        lambda: feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    )
    ours, items = timed(lambda: list(read_feed(data, "bench", fetched_at=now)))
    print(f"feed read, {entries} entries ({len(data) // 1024} KiB):")
    print(f"  feedparser, defaults    {default * 1000:8.1f} ms   (its own sanitiser; not used)")
    print(f"  feedparser, as we call  {base * 1000:8.1f} ms   baseline")
    print(f"  read_feed (full map)    {ours * 1000:8.1f} ms   ratio {ours / base:.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text('[database]\nurl = "sqlite:///bench.db"\n', "utf-8")
        db = open_database(load_settings(cfg, environ={}), check_schema=False)
        upgrade(db.engine)
        first, r1 = timed(lambda: store_items(db, items))
        second, r2 = timed(lambda: store_items(db, items))
        db.dispose()
    print(f"store in SQLite, {entries} articles:")
    print(f"  first ingest            {first * 1000:8.1f} ms   ({r1.summary()})")  # type: ignore[attr-defined]
    print(
        f"  re-poll (unchanged)     {second * 1000:8.1f} ms   ({r2.summary()})"  # type: ignore[attr-defined]
        f"   ratio {second / first:.2f}x"
    )

    insights = [
        SimpleNamespace(
            id=i,
            key=f"k{i}",
            text=text(rng, 45),
            source_title=text(rng, 5),
            tags=[rng.choice(WORDS)],
            published_at=now - timedelta(hours=i),
        )
        for i in range(n_insights)
    ]
    articles = [
        SimpleNamespace(
            title=text(rng, 8),
            tldr=text(rng, 40),
            body_html="",
            body_source=text(rng, 600),
            impact_text=text(rng, 60),
            section="Energy",
            tags=["grid", "storage"],
            published_at=now,
            pinned_insight_ids=[],
            excluded_insight_ids=[],
        )
        for _ in range(6)
    ]
    base, _ = timed(
        lambda: (
            [tokens(insight_text(i)) for i in insights]  # type: ignore[arg-type]
            + [tokens(article_text(a)) for a in articles]
        )  # type: ignore[arg-type]
    )

    def rank() -> int:
        model = Relatedness(insights)  # type: ignore[arg-type]
        return sum(len(model.score_all(a)) for a in articles)  # type: ignore[arg-type]

    ours, scored = timed(rank)
    print(f"relatedness, 6 stories x {n_insights} candidate insights ({scored} scores):")
    print(f"  tokenising only         {base * 1000:8.1f} ms")
    print(f"  model + score_all       {ours * 1000:8.1f} ms   ratio {ours / base:.2f}x")


if __name__ == "__main__":
    main()

"""Helpers for the content tests: the labelled relatedness evaluation, and a real HTTP server
on 127.0.0.1 that serves feed fixtures.

Run ``python tests/content_support.py`` to print the evaluation figures.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from pulseletter.content.jsonl import item_from_json
from pulseletter.content.related import Relatedness, choose
from pulseletter.content.store import store_items
from pulseletter.db import Database
from pulseletter.db.models import Article, Insight

DATA = Path(__file__).resolve().parent / "data"
EVAL_SET = DATA / "relatedness_eval.yaml"
K = 3


@dataclass(frozen=True)
class Evaluation:
    precision: float  # relevant among everything returned in the top K, all articles pooled
    recall: float  # mean over articles of (relevant in top K) / (all relevant)
    per_article: dict[str, tuple[list[str], set[str]]]  # key -> (returned keys, relevant keys)
    near_misses_returned: list[tuple[str, str]]


def load_eval_set(db: Database) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Store the evaluation set through the JSON Lines item builder; return article url -> key
    and insight key -> the article keys it is labelled with."""
    data = yaml.safe_load(EVAL_SET.read_text("utf-8"))
    items: list[Any] = []
    urls = {}
    labels: dict[str, set[str]] = {}
    for a in data["articles"]:
        urls[a["url"]] = a["key"]
        row = {k: v for k, v in a.items() if k != "key"}
        items.append(item_from_json({"type": "article", **_iso(row)}, f"article {a['key']}"))
    for i in data["insights"]:
        labels[i["key"]] = set(i["related"])
        row = {k: v for k, v in i.items() if k != "related"}
        items.append(item_from_json({"type": "insight", **_iso(row)}, f"insight {i['key']}"))
    report = store_items(db, items)
    assert not report.rejected, report.rejected
    return urls, labels


def _iso(row: dict[str, Any]) -> dict[str, Any]:
    value = row.get("published")
    return {**row, "published": value.isoformat() if isinstance(value, datetime) else value}


def evaluate(db: Database, min_score: float) -> Evaluation:
    urls, labels = load_eval_set(db)
    with db.reading() as session:
        insights = list(session.scalars(select(Insight)))
        articles = list(session.scalars(select(Article).order_by(Article.id)))
        model = Relatedness(insights)
        per_article = {}
        returned_total = hits_total = 0
        recalls = []
        near = []
        for article in articles:
            key = urls[article.url]
            relevant = {k for k, arts in labels.items() if key in arts}
            top = choose(model.score_all(article), limit=K, min_score=min_score)
            returned = [s.insight.key for s in top]
            hits = sum(1 for k in returned if k in relevant)
            returned_total += len(returned)
            hits_total += hits
            recalls.append(hits / len(relevant))
            per_article[key] = (returned, relevant)
            near.extend((key, k) for k in returned if not labels[k])
    precision = hits_total / returned_total if returned_total else 0.0
    return Evaluation(precision, sum(recalls) / len(recalls), per_article, near)


def cli_config(tmp_path: Path, **sections: dict[str, Any]) -> list[str]:
    """A config.toml with a migrated SQLite database in tmp_path: ``--config PATH`` args."""
    from click.testing import CliRunner

    from pulseletter.cli import cli

    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in values.items())
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    return ["--config", str(path)]


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012
        **SimpleHTTPRequestHandler.extensions_map,
        ".rss": "application/rss+xml",
        ".atom": "application/atom+xml",
        ".xml": "application/xml",
    }

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (free port) serving ``folder``; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


if __name__ == "__main__":
    import sys
    import tempfile

    from pulseletter.config import Settings, load_settings
    from pulseletter.db import open_database
    from pulseletter.db.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text('[database]\nurl = "sqlite:///eval.db"\n', "utf-8")
        settings: Settings = load_settings(cfg, environ={})
        database = open_database(settings, check_schema=False)
        upgrade(database.engine)
        min_score = float(sys.argv[1]) if len(sys.argv) > 1 else settings.issue.min_related_score
        result = evaluate(database, min_score)
        for key, (returned, relevant) in result.per_article.items():
            marks = " ".join(("+" if k in relevant else "-") + k for k in returned)
            print(f"{key:22} {marks}")
        print(f"near misses returned: {result.near_misses_returned or 'none'}")
        figures = f"precision@{K}={result.precision:.3f} recall@{K}={result.recall:.3f}"
        print(f"min_score={min_score} {figures}")
        database.dispose()

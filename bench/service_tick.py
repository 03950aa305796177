"""What the always-on service costs when idle: the minute tick and a /healthz report, on a
database with a year of history (52 sent issues, 35,000 job runs from a 15-minute ingest).

Baseline, in the same run: one read transaction doing ``SELECT 1`` (the floor of any query).
Run: .venv/bin/python bench/service_tick.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from pulseletter.config import load_settings
from pulseletter.content.week import week_containing
from pulseletter.db.migrate import upgrade
from pulseletter.db.models import Issue, JobRun
from pulseletter.service import weekly
from pulseletter.service.app import App
from pulseletter.service.health import health_report

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday: nothing is due


def timed(fn: Callable[[], object], rounds: int = 300) -> float:
    """Median milliseconds per call."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def build(folder: Path) -> App:
    config = folder / "config.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///subscribers.db"\n'
        '[schedule]\ntimezone = "Europe/Berlin"\nsend = "mon 08:00"\nprepare = "sun 18:00"\n',
        "utf-8",
    )
    app = App.open(load_settings(config, environ={}), check_schema=False, clock=lambda: NOW)
    upgrade(app.db.engine)
    tz = app.settings.timezone
    issues, runs = [], []
    for n in range(52):
        week = week_containing(NOW - timedelta(weeks=n + 1), tz)
        issues.append(
            {
                "key": week.key,
                "number": 52 - n,
                "week_start": week.start,
                "week_end": week.end,
                "state": "sent",
            }
        )
        runs.append({"job": "weekly-send", "issue_key": week.key, "result": "sent"})
    start = NOW - timedelta(days=365)
    runs += [
        {
            "job": "ingest",
            "issue_key": "",
            "result": "ok",
            "started_at": start + timedelta(minutes=15 * i),
        }
        for i in range(35_000)
    ]
    runs.append({"job": "scheduler-start", "issue_key": "", "result": "ok", "started_at": start})
    with app.db.writing() as session:
        session.execute(insert(Issue), issues)
        session.execute(insert(JobRun), runs)
    return app


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp))

        def baseline() -> None:
            with app.db.reading() as session:
                session.execute(text("SELECT 1"))

        assert weekly.tick(app) == []  # idle: nothing due on a Wednesday
        base = timed(baseline)
        tick = timed(lambda: weekly.tick(app))
        health = timed(lambda: health_report(app))
        app.close()
    print(f"baseline SELECT 1 read transaction: {base:.3f} ms")
    print(f"idle tick (every minute):            {tick:.3f} ms  ({tick / base:.1f}x baseline)")
    print(f"health_report (/healthz):            {health:.3f} ms  ({health / base:.1f}x baseline)")


if __name__ == "__main__":
    main()

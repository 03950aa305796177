"""Logging: one JSON object per line with --log-json, plain lines otherwise; errors carry their
traceback; an exception APScheduler's executor catches is still logged by our listener."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from conftest import ConfigWriter, FixedClock
from pulseletter.db.migrate import upgrade
from pulseletter.logs import JsonFormatter, setup_logging
from pulseletter.scheduler.runner import WeeklyScheduler
from pulseletter.service.app import App
from service_support import wait_for


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_event_fields_and_the_traceback(restore_root: None) -> None:
    stream = io.StringIO()
    setup_logging(json_lines=True, stream=stream)
    log = logging.getLogger("pulseletter.weekly")
    log.info("job weekly-send started", extra={"event": "job.start", "issue": "2026-W47"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.error("job weekly-send failed", exc_info=True, extra={"event": "job.error"})
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "job.start" and first["issue"] == "2026-W47"
    assert first["level"] == "info" and first["logger"] == "pulseletter.weekly"
    assert second["event"] == "job.error" and "ValueError: boom" in second["traceback"]


def test_plain_lines_show_the_fields_after_the_message(restore_root: None) -> None:
    stream = io.StringIO()
    setup_logging(json_lines=False, stream=stream)
    logging.getLogger("pulseletter.weekly").warning(
        "missed the send of 2026-W47", extra={"event": "issue.missed", "issue": "2026-W47"}
    )
    line = stream.getvalue().strip()
    assert line.endswith("WARNING pulseletter.weekly: missed the send of 2026-W47 [issue=2026-W47]")
    assert not line.startswith("{")


def explode() -> None:
    raise RuntimeError("a job that fails outside the weekly use cases")


def test_an_error_inside_apschedulers_executor_is_logged_with_its_traceback(
    make_settings: ConfigWriter, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = App.open(make_settings(), check_schema=False, clock=clock)
    upgrade(app.db.engine)
    clock.advance(days=-3)  # a Friday: nothing weekly is due
    s = WeeklyScheduler(app)
    try:
        with caplog.at_level(logging.INFO):
            s.start()
            s.scheduler.add_job(
                "test_service_logs:explode", "date", run_date=clock() + timedelta(seconds=1)
            )
            clock.advance(seconds=2)
            s.wakeup()
            record = wait_for(
                lambda: next(
                    (r for r in caplog.records if getattr(r, "event", "") == "job.error"), None
                ),
                10,
                "the listener's error line",
            )
        assert "RuntimeError: a job that fails outside" in record.getMessage()
        as_json = json.loads(JsonFormatter().format(record))
        assert "in explode" in as_json["traceback"]  # the traceback travels with the line
    finally:
        s.stop_gracefully(5)
        app.close()

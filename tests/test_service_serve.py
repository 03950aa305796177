"""`pulseletter serve` as a real subprocess against a real SMTP server on 127.0.0.1, with the
service clock shifted by PULSELETTER_FAKE_NOW so the send time is seconds away.

- the done-when scenario: start a few seconds before the send, the issue goes to every
  subscriber once, kill -9, restart, nothing is sent again and health reports the last run;
- SIGTERM in the middle of a slow send exits 0 with every accepted message recorded, and a
  restart completes the issue without duplicates;
- two serve processes on one database: only one schedules; the other takes over after kill -9.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from conftest import write_config
from pulseletter.cli import cli
from pulseletter.config import load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.mail.sink import SmtpSink, free_port
from pulseletter.service import weekly
from pulseletter.service.app import App
from pulseletter.service.health import health_report
from service_support import (
    OffsetTime,
    ServeProcess,
    SlowSink,
    delivery_counts,
    issue_state,
    recipients,
    scheduling,
    seed,
    service_config,
    wait_for,
)

pytestmark = pytest.mark.slow

SLOT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
KEY = "2026-W47"


def make_site(
    tmp_path: Path, sink: SmtpSink, subscribers: int, **extra: dict[str, Any]
) -> tuple[Path, App]:
    """A config sending over SMTP to the sink, a migrated SQLite file, content and subscribers."""
    sections = service_config(
        f"sqlite:///{tmp_path / 'subscribers.db'}",
        transport={"kind": "smtp"},
        smtp={"host": sink.host, "port": sink.port, "security": "none", "timeout": 10.0},
        schedule={
            "timezone": "Europe/Berlin",
            "send": "mon 08:00",
            "lease_seconds": 2.0,
            "shutdown_timeout": 10.0,
        },
        web={"host": "127.0.0.1", "port": free_port()},
        **extra,
    )
    config = write_config(tmp_path / "config.toml", sections)
    app = App.open(load_settings(config, environ={}), check_schema=False)
    upgrade(app.db.engine)
    seed(app, SLOT, subscribers=subscribers)
    return config, app


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for p in started:
        p.kill()


def serve(
    started: list[ServeProcess], config: Path, log: Path, offset: timedelta, *args: str
) -> ServeProcess:
    p = ServeProcess(config, log, offset, *args)
    started.append(p)
    return p


def check_done_when(tmp_path: Path, processes: list[ServeProcess], web: bool) -> None:
    with SmtpSink(tmp_path / "received") as sink:
        config, app = make_site(tmp_path, sink, subscribers=6)
        mode = () if web else ("--scheduler-only",)
        # a fresh install, the send 5 seconds away (enough for the process to start on a
        # loaded machine: slots before the first ever start are deliberately ignored)
        time = OffsetTime(SLOT - timedelta(seconds=5))
        try:
            first = serve(processes, config, tmp_path / "first.log", time.offset, *mode)
            first.wait_event("scheduler.start")
            wait_for(lambda: len(sink.messages) >= 6, 20, "six messages at the sink")
            ended = first.wait_event("job.end")
            assert ended[-1]["result"] == "sent" and ended[-1]["issue"] == KEY
            first.kill()  # kill -9: no goodbye, the lease is left to expire

            second = serve(processes, config, tmp_path / "second.log", time.offset, *mode)
            second.wait_event("lease.acquired", timeout=15)
            second.wait_event("scheduler.start")
            app.clock = time.now
            with scheduling():  # the strict checks of a scheduling process
                wait_for(lambda: health_report(app)[0], 10, "a healthy report")
                _, details = health_report(app)
            assert details["last_run"]["result"] == "sent" and details["last_run"]["issue"] == KEY
            assert details["scheduler"]["holder"] == second.events("lease.acquired")[0]["holder"]
            if web:
                port = load_settings(config, environ={}).web.port
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                assert response.status_code == 200, response.text
                assert KEY in response.text and "sent" in response.text
            assert second.stop(signal.SIGTERM) == 0
            assert sorted(recipients(sink)) == sorted(set(recipients(sink)))
            assert len(sink.messages) == 6  # once, across the kill and the restart
            assert issue_state(app, KEY) == "sent"
        finally:
            app.close()


def test_serve_sends_the_issue_once_survives_kill_and_restart(
    tmp_path: Path, processes: list[ServeProcess]
) -> None:
    check_done_when(tmp_path, processes, web=False)


def test_serve_with_the_web_app_reports_the_last_run_on_healthz(
    tmp_path: Path, processes: list[ServeProcess]
) -> None:
    check_done_when(tmp_path, processes, web=True)


def test_sigterm_during_a_send_exits_0_and_a_restart_completes_the_issue(
    tmp_path: Path, processes: list[ServeProcess]
) -> None:
    with SlowSink(tmp_path / "received", delay=0.25) as sink:
        config, app = make_site(tmp_path, sink, subscribers=12)
        app.clock = lambda: SLOT - timedelta(days=7)
        weekly.record_start(app)  # a service that has run for a while (no fresh-install rule)
        time = OffsetTime(SLOT - timedelta(seconds=1))
        try:
            first = serve(
                processes, config, tmp_path / "first.log", time.offset, "--scheduler-only"
            )
            wait_for(lambda: len(sink.messages) >= 3, 20, "the send to be under way")
            status = CliRunner().invoke(  # while the service writes (SQLite WAL)
                cli, ["--config", str(config), "issue", "status", "--week", KEY, "--json"]
            )
            assert status.exit_code == 0, status.output
            assert json.loads(status.output)["state"] == "sending"
            assert first.stop(signal.SIGTERM) == 0
            counts = delivery_counts(app, KEY)
            assert issue_state(app, KEY) == "sending"
            assert counts.get("sent", 0) == len(sink.messages)  # in flight: finished, recorded
            assert counts.get("sending", 0) == 0 and counts.get("queued", 0) > 0
            assert first.events("job.end")[-1]["result"] == "interrupted"

            second = serve(
                processes, config, tmp_path / "second.log", time.offset, "--scheduler-only"
            )
            wait_for(lambda: issue_state(app, KEY) == "sent", 20, "the issue completed")
            assert second.stop(signal.SIGTERM) == 0
            assert delivery_counts(app, KEY) == {"sent": 12}
            assert len(sink.messages) == 12 and len(set(recipients(sink))) == 12
        finally:
            app.close()


def test_two_serve_processes_only_one_schedules(
    tmp_path: Path, processes: list[ServeProcess]
) -> None:
    with SmtpSink(None) as sink:
        config, app = make_site(tmp_path, sink, subscribers=0)
        app.close()
        at = OffsetTime(datetime(2026, 11, 20, 12, 0, tzinfo=UTC)).offset  # Friday: no send
        first = serve(processes, config, tmp_path / "a.log", at, "--scheduler-only")
        holder = first.wait_event("lease.acquired")[0]["holder"]
        first.wait_event("scheduler.start")
        second = serve(processes, config, tmp_path / "b.log", at, "--scheduler-only")
        standby = second.wait_event("lease.standby")
        assert standby[0]["holder"] == holder and holder in standby[0]["message"]
        assert second.events("scheduler.start") == []
        first.kill()
        taken = second.wait_event("lease.acquired", timeout=15)
        assert taken[0]["holder"] != holder
        second.wait_event("scheduler.start")
        assert second.stop(signal.SIGTERM) == 0

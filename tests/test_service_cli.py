"""The operator's and editor's commands: schedule show, issue approve, serve's checks; and the
rule that no CLI command starts a scheduler."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, select

from conftest import write_config
from pulseletter.cli import cli
from pulseletter.config import load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.db.models import ServiceLease
from pulseletter.service import weekly
from pulseletter.service.app import App
from service_support import seed

SLOT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def site(tmp_path: Path, **schedule: object) -> tuple[list[str], App]:
    config = write_config(
        tmp_path / "config.toml",
        {
            "database": {"url": f"sqlite:///{tmp_path / 'subscribers.db'}"},
            "security": {"secret": "test-secret-not-for-production"},
            "schedule": {"timezone": "Europe/Berlin", "send": "mon 08:00", **schedule},
            "issue": {"require_approval": True},
        },
    )
    app = App.open(load_settings(config, environ={}), check_schema=False)
    upgrade(app.db.engine)
    return ["--config", str(config)], app


def offset_env(at: datetime) -> dict[str, str]:
    return {"PULSELETTER_CLOCK_OFFSET": str((at - datetime.now(UTC)).total_seconds())}


def test_schedule_show_lists_the_next_sends_in_local_time_and_utc(
    runner: CliRunner, tmp_path: Path
) -> None:
    config, app = site(tmp_path, prepare="sun 18:00")
    app.close()
    env = offset_env(datetime(2026, 10, 20, 12, 0, tzinfo=UTC))
    result = runner.invoke(cli, [*config, "schedule", "show", "--count", "2"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "send 'mon 08:00' in Europe/Berlin; grace 12 h" in lines[0]
    assert "scheduler: not running (no live lease)" in result.output
    sends = [line for line in lines if line.startswith("weekly-send")]
    assert "Mon 2026-10-26 08:00 CET" in sends[0] and "2026-10-26 07:00Z" in sends[0]
    assert "Mon 2026-11-02 08:00 CET" in sends[1]
    prepares = [line for line in lines if line.startswith("weekly-prepare")]
    assert "Sun 2026-10-25 18:00 CET" in prepares[0] and "2026-W43" in prepares[0]

    as_json = runner.invoke(cli, [*config, "schedule", "show", "--json"], env=env)
    data = json.loads(as_json.output)
    first = next(r for r in data["runs"] if r["job"] == "weekly-send")
    assert first == {
        "job": "weekly-send",
        "week": "2026-W43",
        "local": "2026-10-26T08:00:00+01:00",
        "utc": "2026-10-26T07:00:00+00:00",
    }


def test_issue_approve_lets_the_scheduler_send(runner: CliRunner, tmp_path: Path) -> None:
    config, app = site(tmp_path)
    try:
        seed(app, SLOT, subscribers=2)
        app.clock = lambda: SLOT
        assert weekly.run_send(app).result == "awaiting-approval"
        env = offset_env(SLOT + timedelta(minutes=10))
        result = runner.invoke(cli, [*config, "issue", "approve", "--week", "2026-W47"], env=env)
        assert result.exit_code == 0, result.output
        assert "2026-W47 #1 approved" in result.output
        assert "no scheduler is running" in result.output
        again = runner.invoke(cli, [*config, "issue", "approve", "--week", "2026-W48"], env=env)
        assert again.exit_code == 1 and "there is no issue 2026-W48" in again.output
    finally:
        app.close()


def test_cli_commands_never_start_a_scheduler(runner: CliRunner, tmp_path: Path) -> None:
    config, app = site(tmp_path)
    try:
        seed(app, SLOT, subscribers=2)
        for args in (
            ["issue", "prepare", "--week", "2026-W47"],
            ["issue", "status", "--week", "2026-W47"],
            ["schedule", "show"],
            ["issue", "approve", "--week", "2026-W47"],
        ):
            result = runner.invoke(cli, [*config, *args])
            assert result.exit_code == 0, (args, result.output)
        with app.db.reading() as session:
            assert session.scalars(select(ServiceLease)).all() == []
        assert "apscheduler_jobs" not in inspect(app.db.engine).get_table_names()
    finally:
        app.close()


def test_serve_refuses_contradicting_flags(runner: CliRunner, tmp_path: Path) -> None:
    config, app = site(tmp_path)
    app.close()
    result = runner.invoke(cli, [*config, "serve", "--web-only", "--scheduler-only"])
    assert result.exit_code == 1 and "exclude each other" in result.output


def test_a_bad_fake_clock_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    config, app = site(tmp_path)
    app.close()
    env = {"PULSELETTER_FAKE_NOW": "next monday"}
    result = runner.invoke(cli, [*config, "schedule", "show"], env=env)
    assert result.exit_code == 2 and "PULSELETTER_FAKE_NOW" in result.output


def test_the_clock_can_be_shifted_by_a_start_time_or_an_offset() -> None:
    from pulseletter.errors import ConfigError
    from pulseletter.service.clock import clock_from_env

    assert clock_from_env({}) is None
    started = clock_from_env({"PULSELETTER_FAKE_NOW": "2026-11-23T07:59:50+01:00"})
    assert started is not None
    assert abs(started() - datetime(2026, 11, 23, 6, 59, 50, tzinfo=UTC)) < timedelta(seconds=5)
    shifted = clock_from_env({"PULSELETTER_CLOCK_OFFSET": "-86400"})
    assert shifted is not None
    assert abs(shifted() - (datetime.now(UTC) - timedelta(days=1))) < timedelta(seconds=5)
    with pytest.raises(ConfigError, match="needs a UTC offset"):
        clock_from_env({"PULSELETTER_FAKE_NOW": "2026-11-23T07:59:50"})
    with pytest.raises(ConfigError, match="not a number of seconds"):
        clock_from_env({"PULSELETTER_CLOCK_OFFSET": "soon"})


def test_editors_must_be_addresses(tmp_path: Path) -> None:
    from pulseletter.errors import ConfigError

    (tmp_path / "config.toml").write_text('[issue]\neditors = ["ed@example.org", "ed"]\n')
    with pytest.raises(ConfigError, match=r"issue\.editors: 'ed' is not an email address"):
        load_settings(tmp_path / "config.toml", environ={})

"""The operator's controls end to end through the CLI, against a real aiosmtpd relay:
send, status, failures --csv, pause, resume, retry-failed, cancel; and [[relays]] config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import ConfigWriter
from dispatch_support import KEY, FaultHandler, FaultServer, make_issue, statuses
from pulseletter.cli import cli
from pulseletter.config import load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.dispatch import ledger
from pulseletter.errors import ConfigError
from pulseletter.service.app import App
from pulseletter.service.relays import relay_pool
from pulseletter.service.sending import pause_issue


@pytest.fixture
def site(make_settings: ConfigWriter, tmp_path: Path) -> Iterator[Any]:
    """A config.toml in tmp_path sending to a FaultServer, and a sending issue of 6 readers."""
    handler = FaultHandler()
    with FaultServer(handler) as server:
        settings = make_settings(
            transport={"kind": "smtp"},
            smtp={"host": server.host, "port": server.port, "security": "none"},
            sending={"connections": 1, "throttle_seconds": 0.01},
        )
        app = App.open(settings, check_schema=False)
        upgrade(app.db.engine)
        make_issue(app, 6, state="sending")
        yield app, handler, ["--config", str(tmp_path / "config.toml")]
        app.close()


def run(args: list[str], code: int = 0) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == code, result.output
    return result.output


def test_send_status_failures_retry(site: Any) -> None:
    app, handler, config = site
    bad = "reader0004@example.com"
    handler.data = lambda rcpt, n: "554 5.7.1 rejected" if rcpt == bad and n == 1 else None
    out = run([*config, "issue", "send", "--week", KEY])
    assert f"{KEY} is sent (failed: 1, sent: 5)" in out
    status = json.loads(run([*config, "issue", "status", "--week", KEY, "--json"]))
    assert status["deliveries"] == {"failed": 1, "sent": 5} and status["state"] == "sent"
    assert status["top_failures"] == [{"reason": "failed: 554 5.7.1 rejected", "count": 1}]
    text = run([*config, "issue", "status", "--week", KEY])
    assert "top failure reasons" in text and "rate:" in text
    csv_out = run([*config, "issue", "failures", "--week", KEY, "--csv"]).splitlines()
    assert csv_out[0].split(",")[:3] == ["email", "status", "attempts"]
    assert csv_out[1].startswith(f"{bad},failed,1,554,")
    out = run([*config, "issue", "retry-failed", "--week", KEY])
    assert "1 deliveries of 2026-W47 queued again" in out and f"{KEY} is sent (sent: 6)" in out
    assert sorted(r for r, _ in handler.accepted) == sorted(statuses(app))  # each exactly once


def test_pause_blocks_send_until_resume(site: Any) -> None:
    _, handler, config = site
    run([*config, "issue", "pause", "--week", KEY])
    out = run([*config, "issue", "send", "--week", KEY], code=1)
    assert "paused" in out and "issue resume" in out
    assert handler.accepted == []
    out = run([*config, "issue", "resume", "--week", KEY])
    assert f"{KEY} is sent (sent: 6)" in out
    assert len(handler.accepted) == 6


def test_breaker_pause_exits_1_with_the_reason(site: Any) -> None:
    _, handler, config = site

    async def refuse(*args: Any) -> str:
        return "550 5.7.1 sender not allowed"

    handler.handle_MAIL = refuse
    result = CliRunner().invoke(cli, [*config, "issue", "send", "--week", KEY])
    assert result.exit_code == 1
    assert "sending paused" in result.output and "550 5.7.1 sender not allowed" in result.output
    status = json.loads(run([*config, "issue", "status", "--week", KEY, "--json"]))
    assert status["state"] == "paused" and status["deliveries"] == {"queued": 6}


def test_cancel_skips_what_was_not_sent(site: Any) -> None:
    app, handler, config = site
    issue = ledger.issue_by_key(app.db, KEY)
    assert issue is not None
    ledger.fan_out(app.db, issue.id, app.clock())
    pause_issue(app, KEY)
    out = run([*config, "issue", "cancel", "--week", KEY, "--yes"])
    assert "cancelled; 6 unsent deliveries skipped" in out
    assert set(statuses(app).values()) == {"skipped"}
    run([*config, "issue", "send", "--week", KEY], code=1)
    assert handler.accepted == []


def test_test_copy_via_cli_is_not_a_delivery(site: Any) -> None:
    app, handler, config = site
    out = run([*config, "issue", "send", "--week", KEY, "--test-to", "me@example.org"])
    assert "test copy of 2026-W47 to me@example.org: 250" in out
    assert [r for r, _ in handler.accepted] == ["me@example.org"]
    assert statuses(app) == {}


def test_relays_config_builds_a_weighted_pool(tmp_path: Path) -> None:
    (tmp_path / "b.pass").write_text("secret\n", "utf-8")
    (tmp_path / "config.toml").write_text(
        """
[transport]
kind = "smtp"
[[relays]]
name = "a"
host = "smtp-a.example.net"
port = 587
weight = 3
rate_per_second = 5.0
[[relays]]
name = "b"
host = "smtp-b.example.net"
password_file = "b.pass"
connections = 1
rate_per_hour = 1000
""",
        "utf-8",
    )
    settings = load_settings(tmp_path / "config.toml", environ={})
    assert [r.name for r in settings.relays] == ["a", "b"]
    assert settings.relay_password(settings.relays[1]) == "secret"
    app = App(settings, db=None)  # type: ignore[arg-type]
    pool = relay_pool(app)
    assert [(r.name, r.weight, r.max_connections) for r in pool.relays] == [
        ("a", 3.0, 0),
        ("b", 1.0, 1),
    ]
    assert pool.relays[0].limit.limits[0].rate == 5.0
    assert pool.relays[1].limit.limits[0].rate == pytest.approx(1000 / 3600)
    assert pool.relays[0].factory().name == "a"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[relays]]\nname = "x"\n[[relays]]\nname = "x"\n', "the name 'x' is used more than once"),
        ('[[relays]]\nport = "25"\n', "relays[0].port: expected an integer"),
        ("[relays]\nhost = 'a'\n", "relays: must be an array of tables"),
    ],
)
def test_bad_relays_config_names_the_key(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "config.toml").write_text(text, "utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "config.toml", environ={})
    assert problem in str(err.value)


def test_progress_is_a_log_line_off_a_terminal_and_a_bar_on_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pulseletter.cli.sending import ProgressView
    from pulseletter.dispatch.sender import SendReport

    report = SendReport(sent=5, deferred=1, bounced=1)
    with caplog.at_level("INFO", logger="pulseletter.send"), ProgressView(0.0, tty=False) as view:
        view(report, 10)
    assert "sent 5/10" in caplog.text and "msg/s" in caplog.text and "ETA" in caplog.text
    with ProgressView(10.0, tty=True) as bar:
        bar(report, 10)
        assert bar.bar is not None and bar.task is not None
        task = bar.bar.tasks[0]
        assert task.completed == 7 and task.total == 10 and task.fields["rate"] > 0

"""`pulseletter demo` end to end: a real MJML compile, a real SMTP conversation, real rows."""

from __future__ import annotations

import email
import sqlite3
from email import policy
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner

from pulseletter.cli import cli


def parse(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_demo_sends_one_parseable_message_per_subscriber(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(cli, ["demo", "--out", str(out), "--subscribers", "25"])
    assert result.exit_code == 0, result.output
    assert "delivered: 25" in result.output and "failed: 0" in result.output

    received = sorted((out / "received").glob("*.eml"))
    assert len(received) == 25
    recipients = set()
    for path in received:
        raw = path.read_bytes()
        assert b"\r\n" in raw and all(len(line) <= 998 for line in raw.split(b"\r\n"))
        msg = parse(path)
        for header in ("To", "From", "Subject", "Message-ID", "Date", "List-Unsubscribe"):
            assert msg[header], f"{path.name} has no {header}"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in msg.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "<mj-" not in html and "%%PL_" not in html and "%%PL_" not in text
        assert "/unsubscribe/" in html and "/unsubscribe/" in text
        recipients.add(msg["To"].addresses[0].addr_spec)
    assert len(recipients) == 25  # exactly one message per subscriber

    db = sqlite3.connect(out / "subscribers.db")
    assert db.execute("SELECT count(*) FROM deliveries WHERE status='sent'").fetchone() == (25,)
    assert db.execute("SELECT state FROM issues").fetchall() == [("sent",)]
    db.close()
    for name in ("issue.html", "issue.txt", "issue.eml", "config.toml"):
        assert (out / name).stat().st_size > 0


def test_demo_config_works_for_other_commands_and_rerun_starts_clean(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    assert runner.invoke(cli, ["demo", "--out", str(out), "--subscribers", "3"]).exit_code == 0
    config = ["--config", str(out / "config.toml")]
    listed = runner.invoke(cli, [*config, "subscribers", "list"])
    assert listed.exit_code == 0 and "3 subscriber(s)" in listed.output
    status = runner.invoke(cli, [*config, "issue", "status", "--json"])
    assert '"state": "sent"' in status.output

    again = runner.invoke(cli, ["demo", "--out", str(out), "--subscribers", "4"])
    assert again.exit_code == 0, again.output
    assert len(list((out / "received").glob("*.eml"))) == 4

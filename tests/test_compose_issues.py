"""Preparing issues: empty weeks (skip / quiet), the preview command, and clear template errors."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from compose_support import sample_app
from pulseletter.cli import cli
from pulseletter.errors import IssueStateError
from pulseletter.mail.transports import MemoryTransport
from pulseletter.service.issues import (
    check_sendable,
    lint_issue,
    prepare_issue,
    resolve_week,
)
from pulseletter.service.sending import send_issue
from pulseletter.service.subscribers import add_demo_subscribers

EMPTY_WEEK = "2026-W30"  # the sample content has nothing this early


def test_an_empty_week_is_skipped_and_never_sent(make_settings, clock) -> None:
    transport = MemoryTransport()
    with sample_app(make_settings, clock, content={"empty_week": "skip"}) as app:
        app.transport_factory = lambda: transport
        add_demo_subscribers(app, 2)
        skipped = prepare_issue(app, resolve_week(app, EMPTY_WEEK))
        assert skipped.state == "skipped" and "no articles" in skipped.state_reason
        with pytest.raises(IssueStateError, match="skipped"):
            send_issue(app, EMPTY_WEEK)
        assert transport.sent == []
        assert prepare_issue(app, resolve_week(app, EMPTY_WEEK)).state == "skipped"  # idempotent
        real = prepare_issue(app, resolve_week(app, None))
        assert real.number == 1  # a skipped week does not use up an issue number


def test_an_empty_week_gets_a_quiet_issue_that_can_be_sent(make_settings, clock) -> None:
    transport = MemoryTransport()
    sections = {"content": {"empty_week": "quiet"}, "issue": {"quiet_message": "Nothing new."}}
    with sample_app(make_settings, clock, **sections) as app:
        app.transport_factory = lambda: transport
        add_demo_subscribers(app, 2)
        quiet = prepare_issue(app, resolve_week(app, EMPTY_WEEK))
        assert quiet.state == "ready" and "A quiet week" in quiet.subject
        assert "Nothing new." in quiet.html and "Nothing new." in quiet.text
        assert "LEAD STORY" not in quiet.html
        assert lint_issue(app, quiet).ok
        check_sendable(app, quiet)
        outcome = send_issue(app, EMPTY_WEEK)
        assert outcome.state == "sent" and len(transport.sent) == 2
        msg = email.message_from_bytes(transport.sent[0][2], policy=policy.default)
        assert "Nothing new." in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_preview_writes_the_four_files_and_a_clean_lint_report(
    runner: CliRunner, make_settings, clock, tmp_path: Path
) -> None:
    with sample_app(make_settings, clock) as app:
        config = ["--config", app.settings.source]
    out = tmp_path / "p"
    result = runner.invoke(cli, [*config, "preview", "--week", "2026-W47", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("issue.html", "issue.txt", "issue.eml", "lint.txt", "lint.json"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "lint.json").read_text("utf-8"))
    assert report["ok"] is True and report["errors"] == []
    assert "0 error(s)" in (out / "lint.txt").read_text("utf-8")
    msg = email.message_from_bytes((out / "issue.eml").read_bytes(), policy=policy.default)
    assert msg["To"] == "Preview Reader <preview@example.com>"
    assert msg["List-Unsubscribe"] == "<http://127.0.0.1:8025/unsubscribe/PREVIEW-TOKEN>"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert html.replace("\r\n", "\n").strip() == (out / "issue.html").read_text("utf-8").strip()
    assert "%%PL_" not in html and "/unsubscribe/PREVIEW-TOKEN" in html
    # preview stores nothing: the week's issue is still not prepared
    status = runner.invoke(cli, [*config, "issue", "status", "--week", "2026-W47"])
    assert status.exit_code == 1 and "there is no issue" in status.output


def test_a_broken_template_is_a_clear_cli_error(
    runner: CliRunner, make_settings, clock, tmp_path: Path
) -> None:
    override = tmp_path / "mine" / "email" / "partials"
    override.mkdir(parents=True)
    broken = override / "header.mjml.j2"
    broken.write_text("<mj-section>\n  <mj-column>\n    {% for x in %}\n", "utf-8")
    with sample_app(make_settings, clock, templates={"dir": str(tmp_path / "mine")}) as app:
        config = ["--config", app.settings.source]
    for command in (["preview", "--out", str(tmp_path / "p")], ["issue", "prepare"]):
        result = runner.invoke(cli, [*config, *command])
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: {broken}:3: ")
        assert "Traceback" not in result.output


def test_prepare_reports_a_skipped_week(runner: CliRunner, make_settings, clock) -> None:
    with sample_app(make_settings, clock) as app:
        config = ["--config", app.settings.source]
    result = runner.invoke(cli, [*config, "issue", "prepare", "--week", EMPTY_WEEK])
    assert result.exit_code == 0 and f"{EMPTY_WEEK} is skipped" in result.output


def test_lint_of_an_empty_week_follows_empty_week(
    runner: CliRunner, make_settings, clock, tmp_path: Path
) -> None:
    with sample_app(make_settings, clock) as app:
        config = ["--config", app.settings.source]
    skipped = runner.invoke(cli, [*config, "issue", "lint", "--week", EMPTY_WEEK])
    assert skipped.exit_code == 1 and "[empty-issue]" in skipped.output
    with open(app.settings.source, "a", encoding="utf-8") as f:
        f.write('\n[content]\nempty_week = "quiet"\n')
    quiet = runner.invoke(cli, [*config, "issue", "lint", "--week", EMPTY_WEEK])
    assert quiet.exit_code == 0 and "OK to send" in quiet.output

"""The lint gate: each error blocks, each warning does not; the send path runs the same checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from compose_support import hostile_content, sample_app
from pulseletter.cli import cli
from pulseletter.compose.lint import lint_compiled
from pulseletter.compose.render import CompiledIssue, compile_issue
from pulseletter.errors import LintError
from pulseletter.mail.transports import MemoryTransport
from pulseletter.service.issues import prepare_issue, resolve_week
from pulseletter.service.sending import send_issue
from pulseletter.service.subscribers import add_demo_subscribers


@pytest.fixture
def clean(make_settings) -> CompiledIssue:
    content = hostile_content("Plain words for a plain story.")
    return compile_issue(make_settings(), content, number=1, subject="Subject", preheader="Pre")


def codes(compiled: CompiledIssue, empty: bool = False) -> tuple[set[str], set[str]]:
    report = lint_compiled(compiled, empty=empty)
    return {f.code for f in report.errors}, {f.code for f in report.warnings}


def with_html(compiled: CompiledIssue, old: str, new: str) -> CompiledIssue:
    assert old in compiled.html
    return replace(compiled, html=compiled.html.replace(old, new, 1))


def test_a_clean_issue_passes(clean: CompiledIssue) -> None:
    report = lint_compiled(clean, empty=False)
    assert report.ok and not report.findings, report.render()
    assert "OK to send" in report.render()


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (
            lambda c: with_html(c, "</body>", "<!--" + "x" * 110_000 + "--></body>"),
            "html-too-large",
        ),
        (
            lambda c: replace(
                c, html=c.html.replace("%%PL_UNSUBSCRIBE_URL%%", "https://x.example/")
            ),
            "no-unsubscribe",
        ),
        (
            lambda c: replace(c, text=c.text.replace("%%PL_UNSUBSCRIBE_URL%%", "")),
            "no-unsubscribe-text",
        ),
        (lambda c: with_html(c, "</body>", '<a href="/relative">x</a></body>'), "bad-link"),
        (
            lambda c: with_html(c, "</body>", '<a href="javascript:alert(1)">x</a></body>'),
            "bad-link",
        ),
        (lambda c: with_html(c, "</body>", '<a href="www.example.com">x</a></body>'), "bad-link"),
        (lambda c: with_html(c, "</body>", "<mj-section></mj-section></body>"), "leftover-markup"),
        (lambda c: with_html(c, "</body>", "{{ story.title }}</body>"), "leftover-markup"),
        (lambda c: with_html(c, "</body>", "{% endif %}</body>"), "leftover-markup"),
        (
            lambda c: with_html(
                c, "</body>", '<img src="https://i.example/a.png" width="1" height="1"></body>'
            ),
            "image-alt",
        ),
        (lambda c: replace(c, subject=""), "no-subject"),
    ],
)
def test_each_error_blocks(clean: CompiledIssue, mutate, code: str) -> None:  # type: ignore[no-untyped-def]
    errors, _ = codes(mutate(clean))
    assert code in errors


def test_an_unsubscribe_link_must_be_visible(clean: CompiledIssue) -> None:
    hidden = clean.html.replace('">Unsubscribe</a>', '"></a>')
    assert hidden != clean.html
    assert "no-unsubscribe" in codes(replace(clean, html=hidden))[0]


def test_an_empty_issue_is_an_error(clean: CompiledIssue) -> None:
    assert "empty-issue" in codes(clean, empty=True)[0]


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda c: replace(c, subject="S" * 90), "long-subject"),
        (lambda c: replace(c, preheader=""), "no-preheader"),
        (lambda c: replace(c, preheader="p" * 200), "long-preheader"),
        (lambda c: replace(c, text=c.text + " word" * 3100), "long-issue"),
        (
            lambda c: with_html(c, "</body>", '<img src="https://i.example/a.png" alt="A"></body>'),
            "image-size",
        ),
        (lambda c: replace(c, text=c.text + "\n" + "long words " * 10), "text-width"),
    ],
)
def test_warnings_do_not_block(clean: CompiledIssue, mutate, code: str) -> None:  # type: ignore[no-untyped-def]
    report = lint_compiled(mutate(clean), empty=False)
    assert code in {f.code for f in report.warnings} and report.ok


def test_the_report_is_readable_and_has_json(clean: CompiledIssue) -> None:
    broken = with_html(clean, "</body>", '<a href="/x">x</a></body>')
    report = lint_compiled(replace(broken, preheader=""), empty=False)
    text = report.render()
    assert text.startswith("Lint: NOT sendable: 1 error(s), 1 warning(s)")
    assert (
        "Errors (block the send):\n  [bad-link]" in text and "Warnings:\n  [no-preheader]" in text
    )
    data = json.loads(report.dumps())
    assert data["ok"] is False and data["errors"][0]["code"] == "bad-link"


def test_the_send_path_refuses_an_issue_with_lint_errors(make_settings, clock) -> None:
    transport = MemoryTransport()
    with sample_app(make_settings, clock) as app:
        app.transport_factory = lambda: transport
        add_demo_subscribers(app, 2)
        issue = prepare_issue(app, resolve_week(app, None))
        with app.db.writing() as session:
            stored = session.get(type(issue), issue.id)
            stored.html = stored.html.replace("%%PL_UNSUBSCRIBE_URL%%", "#")  # type: ignore[union-attr]
        with pytest.raises(LintError, match=r"no-unsubscribe.*\n.*bad-link|bad-link"):
            send_issue(app, issue.key)
        assert transport.sent == []


def test_cli_lint_reports_and_exits_by_verdict(
    runner: CliRunner, make_settings, clock, tmp_path: Path
) -> None:
    with sample_app(make_settings, clock) as app:
        config = ["--config", app.settings.source]
    result = runner.invoke(cli, [*config, "issue", "lint", "--week", "2026-W47"])
    assert result.exit_code == 0, result.output
    assert "Issue 2026-W47" in result.output and "OK to send" in result.output
    as_json = runner.invoke(cli, [*config, "issue", "lint", "--week", "2026-W47", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.output)["ok"] is True

    override = tmp_path / "broken" / "email" / "partials"
    override.mkdir(parents=True)
    (override / "footer.mjml.j2").write_text(
        '<mj-section><mj-column><mj-text><a href="/prefs">Settings</a></mj-text></mj-column>'
        "</mj-section>\n",
        "utf-8",
    )
    with open(app.settings.source, "a", encoding="utf-8") as f:
        f.write(f'\n[templates]\ndir = "{tmp_path / "broken"}"\n')
    failed = runner.invoke(cli, [*config, "issue", "lint", "--week", "2026-W47"])
    assert failed.exit_code == 1
    assert "NOT sendable" in failed.output and "[no-unsubscribe]" in failed.output
    assert "[bad-link] link '/prefs'" in failed.output

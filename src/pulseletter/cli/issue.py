"""``pulseletter issue`` (the group, prepare, lint) and ``preview``. Sending: cli/sending.py."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from pulseletter.cli.common import CliState, echo_json, pass_state
from pulseletter.service import issues as issue_service
from pulseletter.service.preview import preview_week, write_bundle

WEEK_HELP = "ISO week such as 2026-W48 (default: last week)."


@click.group()
def issue() -> None:
    """Compose, inspect and send weekly issues."""


@issue.command("prepare")
@click.option("--week", "week_key", help=WEEK_HELP)
@pass_state
def prepare(state: CliState, week_key: str | None) -> None:
    """Compose the week's issue and store it, ready to send.

    A week without articles follows content.empty_week: "skip" records the
    issue as skipped, "quiet" composes a short quiet-week issue.

    \b
    Example:
      pulseletter issue prepare --week 2026-W47
    """
    app = state.app()
    result = issue_service.prepare_issue(app, issue_service.resolve_week(app, week_key))
    if result.state == issue_service.SKIPPED:
        click.echo(f"{result.key} is skipped: {result.state_reason}")
        return
    click.echo(f"{result.key} #{result.number} is {result.state}: {result.subject}")


@issue.command("lint")
@click.option("--week", "week_key", help=WEEK_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def lint(state: CliState, week_key: str | None, as_json: bool) -> None:
    """Check the week's issue with the checks that gate every send.

    Errors (exit code 1) block a send: HTML over 102 KB, no unsubscribe link,
    a link that is not absolute http(s) or mailto:, leftover {{ {% <mj- in the
    output, an image without alt, an empty issue. Warnings do not block.

    \b
    Example:
      pulseletter issue lint --week 2026-W47
      pulseletter issue lint --json
    """
    app = state.app()
    bundle = preview_week(app, issue_service.resolve_week(app, week_key))
    if as_json:
        echo_json({"issue": bundle.key, **bundle.lint.to_json()})
    else:
        click.echo(f"Issue {bundle.key}")
        click.echo(bundle.lint.render(), nl=False)
    if not bundle.lint.ok:
        raise SystemExit(1)


@click.command()
@click.option("--week", "week_key", help=WEEK_HELP)
@click.option("--out", default="preview", show_default=True, type=click.Path(file_okay=False))
@click.option("--open", "open_browser", is_flag=True, help="Open issue.html in the browser.")
@click.option("--serve", is_flag=True, help="Run the live preview server instead.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for --serve.")
@click.option("--port", default=8026, show_default=True, type=int, help="Port for --serve.")
@pass_state
def preview(
    state: CliState,
    week_key: str | None,
    out: str,
    open_browser: bool,
    serve: bool,
    host: str,
    port: int,
) -> None:
    """Write the week's issue as a subscriber would receive it, or serve a live preview.

    Writes issue.html, issue.txt, issue.eml (for a sample recipient), lint.txt
    and lint.json to --out. Nothing is stored: the issue is composed fresh.
    With --serve, a page on 127.0.0.1 shows the issue at 600 and 375 px, in
    dark mode, as plain text, its headers and its lint report, and reloads
    when a template, the config or the content changes.

    \b
    Example:
      pulseletter preview --week 2026-W47 --out /tmp/p
      pulseletter preview --serve --port 8026 --open
    """
    app = state.app()
    if serve:
        from pulseletter.web.preview_server import PreviewServer

        server = PreviewServer(app, week_key, host, port).start()
        click.echo(
            f"Preview of {server.state.bundle.key if server.state.bundle else '?'} at "
            f"{server.url}  (Ctrl-C to stop)"
        )
        if server.state.error:
            click.echo(f"Error: {server.state.error}", err=True)
        if open_browser:
            webbrowser.open(server.url)
        server.wait()
        return
    bundle = preview_week(app, issue_service.resolve_week(app, week_key))
    for path in write_bundle(bundle, Path(out), json_report=True):
        click.echo(f"wrote {path}")
    click.echo(bundle.lint.render(), nl=False)
    if open_browser:
        webbrowser.open((Path(out) / "issue.html").resolve().as_uri())


COMMANDS = [issue, preview]

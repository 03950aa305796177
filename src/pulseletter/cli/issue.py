"""``pulseletter issue`` and ``preview``: compose, inspect and send the week's issue."""

from __future__ import annotations

from pathlib import Path

import click

from pulseletter.cli.common import CliState, echo_json, pass_state
from pulseletter.service import issues as issue_service
from pulseletter.service.preview import sample_recipient, write_preview_files


@click.group()
def issue() -> None:
    """Compose, inspect and send weekly issues."""


@issue.command("prepare")
@click.option("--week", "week_key", help="ISO week such as 2026-W48 (default: last week).")
@pass_state
def prepare(state: CliState, week_key: str | None) -> None:
    """Compose the week's issue and store it, ready to send.

    \b
    Example:
      pulseletter issue prepare --week 2026-W47
    """
    app = state.app()
    result = issue_service.prepare_issue(app, issue_service.resolve_week(app, week_key))
    click.echo(f"{result.key} #{result.number} is {result.state}: {result.subject}")


@issue.command("send")
@click.option("--week", "week_key", help="ISO week such as 2026-W48 (default: last week).")
@pass_state
def send(state: CliState, week_key: str | None) -> None:
    """Compose (if needed) and send the week's issue, or resume an interrupted send.

    \b
    Example:
      pulseletter issue send --week 2026-W47
    """
    app = state.app()
    prepared = issue_service.prepare_issue(app, issue_service.resolve_week(app, week_key))
    outcome = issue_service.send_issue(app, prepared.key)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.counts.items()))
    click.echo(f"{outcome.issue_key} is {outcome.state} ({counts})")


@issue.command("status")
@click.option("--week", "week_key", help="ISO week such as 2026-W48 (default: last week).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def status(state: CliState, week_key: str | None, as_json: bool) -> None:
    """Show the issue's state and its deliveries per status.

    \b
    Example:
      pulseletter issue status --week 2026-W47
    """
    app = state.app()
    found, counts = issue_service.issue_status(app, issue_service.resolve_week(app, week_key).key)
    if as_json:
        echo_json(
            {"key": found.key, "state": found.state, "subject": found.subject, "deliveries": counts}
        )
        return
    click.echo(f"{found.key} #{found.number} {found.state}: {found.subject}")
    for name, n in sorted(counts.items()):
        click.echo(f"  {name:<10} {n}")


@click.command()
@click.option("--week", "week_key", help="ISO week such as 2026-W48 (default: last week).")
@click.option("--out", default="preview", show_default=True, type=click.Path(file_okay=False))
@pass_state
def preview(state: CliState, week_key: str | None, out: str) -> None:
    """Write issue.html, issue.txt and issue.eml as a subscriber would receive them.

    \b
    Example:
      pulseletter preview --week 2026-W47 --out /tmp/p
    """
    app = state.app()
    prepared = issue_service.prepare_issue(app, issue_service.resolve_week(app, week_key))
    for path in write_preview_files(app, prepared, Path(out), sample_recipient(app, prepared.key)):
        click.echo(f"wrote {path}")


COMMANDS = [issue, preview]

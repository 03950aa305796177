"""``pulseletter issue`` (the group, prepare) and ``preview``. Sending commands: cli/sending.py."""

from __future__ import annotations

from pathlib import Path

import click

from pulseletter.cli.common import CliState, pass_state
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

"""Sending commands, attached to the ``pulseletter issue`` group: send and status."""

from __future__ import annotations

import click

from pulseletter.cli.common import CliState, echo_json, pass_state
from pulseletter.cli.issue import issue
from pulseletter.service import issues as issue_service
from pulseletter.service import sending as sending_service


@click.command("send")
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
    outcome = sending_service.send_issue(app, prepared.key)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.counts.items()))
    click.echo(f"{outcome.issue_key} is {outcome.state} ({counts})")


@click.command("status")
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


issue.add_command(send)
issue.add_command(status)
COMMANDS: list[click.Command] = []

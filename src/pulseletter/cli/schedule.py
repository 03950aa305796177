"""``pulseletter schedule show`` and ``pulseletter issue approve``: the operator's and the
editor's side of the weekly schedule. Neither starts a scheduler."""

from __future__ import annotations

import click

from pulseletter.cli.common import CliState, echo_json, pass_state
from pulseletter.cli.issue import issue
from pulseletter.service import issues as issue_service
from pulseletter.service import lease as lease_service
from pulseletter.service import weekly


@click.group()
def schedule() -> None:
    """Inspect the weekly schedule."""


@schedule.command("show")
@click.option("--count", default=3, show_default=True, help="How many of each run to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def show(state: CliState, count: int, as_json: bool) -> None:
    """Print the next sends (and prepares) in local time and UTC, and who schedules them.

    \b
    Example:
      pulseletter schedule show --count 5
    """
    app = state.app()
    s = app.settings.schedule
    tz = app.settings.timezone
    runs = weekly.upcoming(app, count)
    holder = lease_service.read(app)
    live = holder is not None and holder.live(app.clock())
    if as_json:
        echo_json(
            {
                "timezone": s.timezone,
                "send": s.send,
                "prepare": s.prepare or None,
                "grace_hours": s.grace_hours,
                "scheduler": holder.holder if live and holder else None,
                "runs": [
                    {
                        "job": r.job,
                        "week": r.week,
                        "local": r.at.astimezone(tz).isoformat(),
                        "utc": r.at.isoformat(),
                    }
                    for r in runs
                ],
            }
        )
        return
    click.echo(f"send {s.send!r} in {s.timezone}; grace {s.grace_hours:g} h")
    if s.prepare:
        click.echo(f"prepare {s.prepare!r}")
    if s.ingest_interval_minutes:
        click.echo(f"ingest feeds every {s.ingest_interval_minutes} min")
    click.echo(f"scheduler: {holder.holder if live and holder else 'not running (no live lease)'}")
    click.echo("")
    click.echo(f"{'job':<15} {'week':<9} {'local':<26} utc")
    for r in runs:
        local = r.at.astimezone(tz)
        click.echo(
            f"{r.job:<15} {r.week:<9} {local:%a %Y-%m-%d %H:%M %Z}".ljust(52)
            + f" {r.at:%Y-%m-%d %H:%M}Z"
        )


@click.command("approve")
@click.option(
    "--week", "week_key", help="ISO week such as 2026-W48 (default: the issue awaiting approval)."
)
@pass_state
def approve(state: CliState, week_key: str | None) -> None:
    """Approve the week's ready issue: the scheduler sends it (at once if its time has come).

    Needed when issue.require_approval is true. The editors named in issue.editors get a test
    copy and a notice when an issue is ready.

    \b
    Example:
      pulseletter issue approve --week 2026-W47
    """
    app = state.app()
    key = week_key and issue_service.resolve_week(app, week_key).key
    approved = weekly.approve_issue(app, key or weekly.awaiting_approval(app))
    click.echo(f"{approved.key} #{approved.number} approved: {approved.subject}")
    holder = lease_service.read(app)
    if holder is None or not holder.live(app.clock()):
        click.echo("note: no scheduler is running; start `pulseletter serve` to send it")


issue.add_command(approve)
COMMANDS = [schedule]

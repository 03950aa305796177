"""``pulseletter subscribers``: add and list subscribers."""

from __future__ import annotations

import click

from pulseletter.cli.common import CliState, echo_json, pass_state
from pulseletter.db.models import SUBSCRIBER_STATUSES
from pulseletter.service import subscribers as subscriber_service


@click.group()
def subscribers() -> None:
    """Manage subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option(
    "--consented",
    is_flag=True,
    help="The person already confirmed: add as active, without a confirmation mail.",
)
@pass_state
def add(state: CliState, email: str, name: str, consented: bool) -> None:
    """Add a subscriber (pending confirmation unless --consented).

    \b
    Example:
      pulseletter subscribers add ada@example.com --name Ada --consented
    """
    status = "active" if consented else "pending"
    sub = subscriber_service.add(state.app(), email, name=name, status=status, source="cli")
    click.echo(f"added {sub.email} ({sub.status})")


@subscribers.command("list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_state
def list_(state: CliState, status: str | None, fmt: str) -> None:
    """List subscribers.

    \b
    Example:
      pulseletter subscribers list --status active
    """
    rows = subscriber_service.list_subscribers(state.app(), status)
    if fmt == "json":
        echo_json(
            [
                {"email": r.email, "name": r.name, "status": r.status, "since": r.status_changed_at}
                for r in rows
            ]
        )
        return
    for r in rows:
        click.echo(f"{r.email:<40} {r.status:<12} {r.name}")
    click.echo(f"{len(rows)} subscriber(s)")


COMMANDS = [subscribers]

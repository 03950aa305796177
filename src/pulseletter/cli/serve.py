"""``pulseletter serve``: the long-running service (scheduler and public web pages)."""

from __future__ import annotations

import click

from pulseletter.cli.common import CliState, pass_state
from pulseletter.errors import PulseletterError


@click.command()
@click.option("--host", help="Address to bind (default: web.host).")
@click.option("--port", type=int, help="Port to bind (default: web.port).")
@click.option("--web-only", is_flag=True, help="Serve the public web pages without scheduling.")
@click.option("--scheduler-only", is_flag=True, help="Schedule and send without web pages.")
@pass_state
def serve(
    state: CliState, host: str | None, port: int | None, web_only: bool, scheduler_only: bool
) -> None:
    """Run the weekly scheduler and the public web app in one process.

    \b
    Example:
      pulseletter --config /etc/pulseletter/config.toml serve
    """
    state.settings()
    raise PulseletterError("serve is not available in this version yet")


COMMANDS = [serve]

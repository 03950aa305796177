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
      pulseletter serve --web-only --port 8080
    """
    from pulseletter.service.runtime import run_service

    if web_only and scheduler_only:
        raise PulseletterError("--web-only and --scheduler-only exclude each other")
    run_service(state.app(), host=host, port=port, web=not scheduler_only, scheduler=not web_only)


COMMANDS = [serve]

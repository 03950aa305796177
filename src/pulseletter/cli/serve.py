"""``pulseletter serve``: the long-running service (scheduler and public web pages)."""

from __future__ import annotations

import logging
import os
import sys

import click

from pulseletter.cli.common import CliState, pass_state
from pulseletter.errors import PulseletterError


@click.command()
@click.option("--host", help="Address to bind (default: web.host).")
@click.option("--port", type=int, help="Port to bind (default: web.port).")
@click.option("--web-only", is_flag=True, help="Serve the public web pages without scheduling.")
@click.option("--scheduler-only", is_flag=True, help="Schedule and send without web pages.")
@click.option("--log-json", is_flag=True, help="Log one JSON object per line (for journald etc.).")
@pass_state
def serve(
    state: CliState,
    host: str | None,
    port: int | None,
    web_only: bool,
    scheduler_only: bool,
    log_json: bool,
) -> None:
    """Run the weekly scheduler and the public web app in one process.

    Only one process per database schedules (it holds a lease in the database); a second
    `serve` waits and takes over if the first one stops. SIGTERM finishes the message in
    flight, records it and exits 0. PULSELETTER_FAKE_NOW=<ISO time> starts the service's
    clock at that moment, PULSELETTER_CLOCK_OFFSET=<seconds> shifts it (for trying a send
    out and for tests; never in production).

    \b
    Example:
      pulseletter --config /etc/pulseletter/config.toml serve --log-json
      pulseletter serve --web-only --port 8080
    """
    from pulseletter.logs import setup_logging
    from pulseletter.runtime import run_service
    from pulseletter.service.clock import clock_from_env

    if web_only and scheduler_only:
        raise PulseletterError("--web-only and --scheduler-only exclude each other")
    setup_logging(json_lines=log_json, verbose=state.verbose)
    app = state.app()
    if clock_from_env() is not None:
        logging.getLogger("pulseletter.service").warning(
            "the service clock is shifted (PULSELETTER_FAKE_NOW/CLOCK_OFFSET): it is now %s",
            app.clock().isoformat(),
        )
    code = run_service(app, host=host, port=port, web=not scheduler_only, scheduler=not web_only)
    if code:
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)  # a job thread may still be stuck in a network call: do not join it


COMMANDS = [serve]

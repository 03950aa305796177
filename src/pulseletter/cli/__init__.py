"""The ``pulseletter`` command: a thin shell that parses input, calls a use case, shows the result.

A ``PulseletterError`` becomes one readable message and its exit code (2 for configuration);
anything else is a bug and prints its traceback.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from pulseletter import __version__
from pulseletter.cli.common import CliState
from pulseletter.errors import PulseletterError


class PulseletterGroup(click.Group):
    """Turns library errors into clean exits for every subcommand."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (PulseletterError, OperationalError, OSError) as exc:
            state = ctx.obj if isinstance(ctx.obj, CliState) else None
            if state is not None and state.verbose:
                traceback.print_exc()
            click.echo(f"Error: {_user_message(exc)}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))


def _user_message(exc: Exception) -> str:
    """The environment's errors (a locked or unreachable database, a folder that cannot be
    written) are the user's to fix, not bugs: one sentence, no traceback."""
    if isinstance(exc, OperationalError):
        return f"the database failed: {exc.orig} (is another process holding it, or is it gone?)"
    if isinstance(exc, OSError) and not isinstance(exc, PulseletterError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror or exc}"
    return str(exc)


@click.group(cls=PulseletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pulseletter")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="PULSELETTER_CONFIG",
    help="config.toml to use (default: $PULSELETTER_CONFIG, then ./config.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """pulseletter: compose and send a weekly email newsletter.

    \b
    Examples:
      pulseletter demo                      # the whole path on sample data
      pulseletter --config site/config.toml issue send
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)
    ctx.obj = CliState(config_path=config_path, verbose=verbose)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    """Every module of this package lists its top-level commands in ``COMMANDS``; a module may
    also attach commands to another module's group (cli/sending.py adds to ``issue``)."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="pulseletter")

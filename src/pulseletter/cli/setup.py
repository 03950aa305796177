"""Commands to get started: init, config check, db upgrade, demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from pulseletter.cli.common import CliState, echo_json, pass_state
from pulseletter.config import effective_config, load_settings
from pulseletter.db.engine import make_engine
from pulseletter.db.migrate import current_revision, head_revision, upgrade
from pulseletter.errors import PulseletterError

STARTER_CONFIG = Path(__file__).resolve().parent.parent / "starter_config.toml"


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing config.toml.")
def init(directory: str, force: bool) -> None:
    """Write a starter DIRECTORY/config.toml and create the database next to it.

    \b
    Example:
      pulseletter init mynewsletter
      pulseletter --config mynewsletter/config.toml config check
    """
    target = Path(directory)
    config = target / "config.toml"
    if config.exists() and not force:
        raise PulseletterError(f"{config} already exists (use --force to overwrite it)")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(STARTER_CONFIG, config)
    settings = load_settings(config)
    engine = make_engine(settings.database_url, settings.database.busy_timeout_ms)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    click.echo(f"Wrote {config} and created {settings.database_url}")
    click.echo(f"Next: pulseletter --config {config} config check")


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML-like text.")
@pass_state
def config_check(state: CliState, as_json: bool) -> None:
    """Validate the configuration and print the effective values (secrets masked).

    \b
    Example:
      pulseletter --config site/config.toml config check
    """
    settings = state.settings()
    data = effective_config(settings)
    if as_json:
        echo_json({"source": settings.source, **data})
        return
    click.echo(f"# configuration OK: {settings.source}")
    for section, values in data.items():
        tables = values if isinstance(values, list) else [values]
        header = f"[[{section}]]" if isinstance(values, list) else f"[{section}]"
        for table in tables:
            click.echo(f"\n{header}")
            for key, value in table.items():
                click.echo(f"{key} = {_toml_value(value)}")


def _toml_value(value: object) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: CliState) -> None:
    """Apply pending migrations (back up first on a live install).

    \b
    Example:
      pulseletter --config site/config.toml db upgrade
    """
    settings = state.settings()
    engine = make_engine(settings.database_url, settings.database.busy_timeout_ms)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"Database is up to date (revision {after}).")
    else:
        click.echo(f"Upgraded the database from {before or 'empty'} to {after}.")


@db.command("current")
@pass_state
def db_current(state: CliState) -> None:
    """Show the schema revision of the database and of this version.

    \b
    Example:
      pulseletter db current
    """
    settings = state.settings()
    engine = make_engine(settings.database_url, settings.database.busy_timeout_ms)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"database: {current or 'empty'}; this version: {head_revision()}")


@click.command()
@click.option(
    "--out",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the database, the rendered issue and the received mail.",
)
@click.option(
    "--subscribers",
    "count",
    default=25,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="How many sample subscribers to add.",
)
def demo(out: str, count: int) -> None:
    """Run the whole job on sample data: ingest, compose, and send to an embedded SMTP server.

    Nothing leaves the machine: the SMTP server listens on 127.0.0.1 and saves every message
    it receives in OUT/received/.

    \b
    Example:
      pulseletter demo --out /tmp/demo --subscribers 25
      pulseletter --config /tmp/demo/config.toml subscribers list
    """
    from pulseletter.service.demo import run_demo

    result = run_demo(Path(out), count)
    o = result.outcome
    failed = sum(n for status, n in o.counts.items() if status != "sent")
    click.echo(f"Issue {result.issue_key}: {result.title}")
    click.echo(
        f"Recipients: {result.recipients}  delivered: {o.counts.get('sent', 0)}  "
        f"failed: {failed}  SMTP server received: {result.received}"
    )
    click.echo(f"Time taken: {result.seconds:.2f} s")
    click.echo(f"Files in {result.out}:")
    for name in ("issue.html", "issue.txt", "issue.eml", "received/", "config.toml"):
        click.echo(f"  {result.out / name}")
    click.echo(f"Try: pulseletter --config {result.out / 'config.toml'} subscribers list")


COMMANDS = [init, config, db, demo]

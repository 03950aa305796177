"""``pulseletter subscribers``: add, list, show, unsubscribe, delete, stats, import, export."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from pulseletter.cli.common import CliState, echo_json, pass_state
from pulseletter.db.models import SUBSCRIBER_STATUSES, Subscriber
from pulseletter.service import subscriber_csv
from pulseletter.service import subscribers as subscriber_service
from pulseletter.service.subscribers import SubscriberFilter
from pulseletter.subscribers.csv_format import Rejected

LIST_COLUMNS = ("email", "name", "status", "source", "created_at", "status_changed_at")


@click.group()
def subscribers() -> None:
    """Manage subscribers: add, list, import, export, unsubscribe, erase."""


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


def _filter_options(fn: Any) -> Any:
    options = [
        click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status."),
        click.option("--source", help="Only this source (web, import, cli, demo)."),
        click.option("--search", help="Address or name contains this text."),
        click.option(
            "--since",
            type=click.DateTime(["%Y-%m-%d"]),
            help="Joined on or after this date (YYYY-MM-DD).",
        ),
        click.option("--paused/--not-paused", default=None, help="Only paused / unpaused."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _where(
    status: str | None,
    source: str | None,
    search: str | None,
    since: datetime | None,
    paused: bool | None,
    limit: int | None = None,
) -> SubscriberFilter:
    return SubscriberFilter(
        status=status,
        source=source,
        search=search,
        since=since.replace(tzinfo=UTC) if since else None,
        paused=paused,
        limit=limit,
    )


@subscribers.command("list")
@_filter_options
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@pass_state
def list_(
    state: CliState,
    status: str | None,
    source: str | None,
    search: str | None,
    since: datetime | None,
    paused: bool | None,
    limit: int | None,
    fmt: str,
) -> None:
    """List subscribers, oldest first.

    \b
    Examples:
      pulseletter subscribers list --status active
      pulseletter subscribers list --search example.org --format csv > some.csv
      pulseletter subscribers list --since 2026-11-01 --format json
    """
    where = _where(status, source, search, since, paused, limit)
    rows = subscriber_service.iter_subscribers(state.app(), where)
    if fmt == "json":
        echo_json([_row(r) for r in rows])
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(LIST_COLUMNS)
        for r in rows:
            writer.writerow(_row(r).values())
        return
    n = 0
    for r in rows:
        click.echo(f"{r.email:<40} {r.status:<12} {r.source:<8} {r.name}")
        n += 1
    click.echo(f"{n} subscriber(s)")


def _row(r: Subscriber) -> dict[str, Any]:
    return {
        "email": r.email,
        "name": r.name,
        "status": r.status,
        "source": r.source,
        "created_at": r.created_at.isoformat(),
        "status_changed_at": r.status_changed_at.isoformat(),
    }


@subscribers.command("show")
@click.argument("email")
@pass_state
def show(state: CliState, email: str) -> None:
    """Show one subscriber and its whole history.

    \b
    Example:
      pulseletter subscribers show ada@example.com
    """
    sub, events = subscriber_service.history(state.app(), email)
    paused = sub.paused_until.isoformat() if sub.paused_until else "no"
    for label, value in (
        ("email", sub.email),
        ("name", sub.name),
        ("status", f"{sub.status} since {sub.status_changed_at.isoformat()} ({sub.status_reason})"),
        ("source", sub.source),
        ("joined", sub.created_at.isoformat()),
        ("confirmed", sub.confirmed_at.isoformat() if sub.confirmed_at else "no"),
        ("paused until", paused),
        ("needs SMTPUTF8", "yes" if sub.needs_smtputf8 else "no"),
        ("bounces", sub.bounce_count),
    ):
        click.echo(f"{label:<15} {value}")
    click.echo("history:")
    for e in events:
        detail = f" {e.detail}" if e.detail else ""
        click.echo(f"  {e.created_at.isoformat()}  {e.kind:<20} {e.source}{detail}")


@subscribers.command("unsubscribe")
@click.argument("email")
@click.option("--reason", default="", help="Why, kept in the history.")
@pass_state
def unsubscribe(state: CliState, email: str, reason: str) -> None:
    """Unsubscribe at once (kept as a suppression: never mailed again, never re-imported).

    \b
    Example:
      pulseletter subscribers unsubscribe ada@example.com --reason "asked by phone"
    """
    changed = subscriber_service.unsubscribe(state.app(), email, source="cli", detail=reason)
    click.echo(f"{email}: {'unsubscribed' if changed else 'nothing to do (already suppressed)'}")


@subscribers.command("delete")
@click.argument("email")
@click.option(
    "--erase",
    is_flag=True,
    help="Right to be forgotten: remove the address everywhere, keep only its hash.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def delete(state: CliState, email: str, erase: bool, yes: bool) -> None:
    """Delete a pending or active subscriber, or erase any subscriber with --erase.

    A plain delete refuses unsubscribed, bounced and complained addresses: they are the
    suppression list. --erase removes the row, its history and the address in the delivery
    ledger, and keeps a SHA-256 of the address so it is never mailed or imported again.

    \b
    Examples:
      pulseletter subscribers delete typo@exmaple.com
      pulseletter subscribers delete ada@example.com --erase --yes
    """
    if not yes:
        what = "erase every trace of" if erase else "delete"
        click.confirm(f"Really {what} {email}?", abort=True)
    click.echo(f"{email}: {subscriber_service.delete(state.app(), email, erase=erase)}")


@subscribers.command("purge-pending")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    required=True,
    help="Delete pending subscribers who joined more than this many days ago.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def purge_pending(state: CliState, days: int, yes: bool) -> None:
    """Delete sign-ups that were never confirmed (suppressed addresses are never touched).

    \b
    Example:
      pulseletter subscribers purge-pending --older-than 30 --yes
    """
    if not yes:
        click.confirm(f"Delete every pending subscriber older than {days} days?", abort=True)
    removed = subscriber_service.purge_pending(state.app(), days)
    click.echo(f"deleted {removed} unconfirmed subscriber(s)")


@subscribers.command("stats")
@click.option("--weeks", type=click.IntRange(1, 520), default=8, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_state
def stats(state: CliState, weeks: int, fmt: str) -> None:
    """Counts per status and growth per week (joined, confirmed, left).

    \b
    Example:
      pulseletter subscribers stats --weeks 12
    """
    result = subscriber_service.stats(state.app(), weeks)
    if fmt == "json":
        echo_json(
            {
                "by_status": result.by_status,
                "paused": result.paused,
                "needs_smtputf8": result.needs_smtputf8,
                "erased": result.erased,
                "weeks": result.weeks,
            }
        )
        return
    for status, n in result.by_status.items():
        click.echo(f"{status:<14} {n:>9}")
    click.echo(f"{'paused':<14} {result.paused:>9}  (active, left out until their pause ends)")
    click.echo(f"{'erased':<14} {result.erased:>9}  (hashes kept for suppression)")
    click.echo(f"\n{'week':<10} {'joined':>8} {'confirmed':>10} {'left':>6}")
    for w in result.weeks:
        click.echo(f"{w['week']:<10} {w['joined']:>8} {w['confirmed']:>10} {w['left']:>6}")


@contextmanager
def _progress(label: str, total: int | None, unit: str) -> Iterator[Any]:
    console = Console(stderr=True)
    bar = Progress(
        TextColumn(f"{label}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(f"{{task.completed:,.0f}} {unit}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--consented",
    is_flag=True,
    help="Everyone in the file already opted in: import as active, send no confirmation.",
)
@click.option(
    "--no-confirmations",
    is_flag=True,
    help="Import as pending but send no confirmation now (later: send-confirmations).",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write rejected rows (default: FILE.rejects.csv).",
)
@click.option("--encoding", default="utf-8", show_default=True, help="The file's encoding.")
@click.option("--quiet", is_flag=True, help="Do not print each rejected row (the file has them).")
@pass_state
def import_(
    state: CliState,
    file: Path,
    consented: bool,
    no_confirmations: bool,
    rejects: Path | None,
    encoding: str,
    quiet: bool,
) -> None:
    """Import subscribers from a CSV file (ours, Mailchimp's, listmonk's or address,name).

    The delimiter and header are detected. Existing addresses are never changed, so
    unsubscribed, bounced and erased addresses stay suppressed and a re-run adds nothing
    twice. Every row not imported is printed with its line number and reason and written to
    the rejects file. New rows are pending and get a confirmation mail (paced by
    subscribers.confirmation_rate_per_second) unless --consented.

    \b
    Examples:
      pulseletter subscribers import mailchimp_export.csv
      pulseletter subscribers import old-list.csv --consented --rejects /tmp/bad.csv
    """
    app = state.app()

    def show(rejected: Rejected) -> None:
        if not quiet:
            click.echo(f"{file}:{rejected.line}: {rejected.reason}", err=True)

    with _progress("importing", file.stat().st_size, "bytes") as progress:
        report = subscriber_csv.import_csv(
            app,
            file,
            consented=consented,
            rejects_path=rejects,
            encoding=encoding,
            on_reject=show,
            progress=progress,
        )
    layout = report.layout
    click.echo(
        f"{file}: {layout.kind} layout, delimiter {layout.delimiter!r}, "
        f"{'with' if layout.has_header else 'no'} header"
        + (f"; ignored columns: {', '.join(layout.ignored)}" if layout.ignored else "")
    )
    click.echo(f"rows {report.rows}, imported {report.imported}, not imported {report.rejected}")
    for reason, n in sorted(report.reasons.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {n:>8}  {reason}")
    if report.rejects_path:
        click.echo(f"rejected rows written to {report.rejects_path}")
    if consented or no_confirmations or report.imported == 0:
        return
    with _progress("confirmations", report.imported, "mails") as progress:
        sent = subscriber_csv.send_pending_confirmations(app, report.run, progress=progress)
    click.echo(f"confirmation mails sent: {sent}")


@subscribers.command("send-confirmations")
@pass_state
def send_confirmations(state: CliState) -> None:
    """Mail a confirmation to every pending subscriber who has never been sent one (paced).

    \b
    Example:
      pulseletter subscribers send-confirmations
    """
    with _progress("confirmations", None, "mails") as progress:
        sent = subscriber_csv.send_pending_confirmations(state.app(), progress=progress)
    click.echo(f"confirmation mails sent: {sent}")


@subscribers.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), default="-")
@_filter_options
@pass_state
def export(
    state: CliState,
    file: Path,
    status: str | None,
    source: str | None,
    search: str | None,
    since: datetime | None,
    paused: bool | None,
) -> None:
    """Export subscribers as CSV (status, timestamps, preferences, source); FILE or - for stdout.

    The file can be imported again (here or into another pulseletter) and carries the
    suppression list with it.

    \b
    Examples:
      pulseletter subscribers export all.csv
      pulseletter subscribers export --status unsubscribed - > suppressed.csv
    """
    app = state.app()
    where = _where(status, source, search, since, paused)
    total = subscriber_service.count_subscribers(app, where)
    out: IO[str]
    with _progress("exporting", total, "rows") as progress:
        if str(file) == "-":
            n = subscriber_csv.export_csv(app, sys.stdout, where, progress)
        else:
            with file.open("w", encoding="utf-8", newline="") as out:
                n = subscriber_csv.export_csv(app, out, where, progress)
    if str(file) != "-":
        click.echo(f"exported {n} subscriber(s) to {file}")


COMMANDS = [subscribers]

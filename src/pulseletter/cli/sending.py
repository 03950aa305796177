"""Sending commands, attached to the ``pulseletter issue`` group: send, status, pause, resume,
cancel, retry-failed and failures. Each parses input, calls one use case, shows the result."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from pulseletter.cli.common import CliState, echo_json, pass_state
from pulseletter.cli.issue import issue
from pulseletter.dispatch.sender import SendReport
from pulseletter.service import issues as issue_service
from pulseletter.service import sending as sending_service

log = logging.getLogger("pulseletter.send")
WEEK = click.option("--week", "week_key", help="ISO week such as 2026-W48 (default: last week).")


@contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """SIGTERM / SIGINT set the event: no new claims, in-flight messages finish, exit 0."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the operator really means it
        log.warning("%s: finishing messages in flight, then stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class ProgressView:
    """A rich progress bar (rate, ETA) on a terminal; a log line every N seconds otherwise."""

    def __init__(self, every: float, tty: bool) -> None:
        self.every, self.tty = every, tty
        self.last = 0.0
        self.started = time.monotonic()
        self.bar = None
        self.task = None
        if tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("sending"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.0f} msg/s"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[detail]}"),
                transient=False,
            )

    def __enter__(self) -> ProgressView:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, report: SendReport, total: int) -> None:
        now = time.monotonic()
        done = report.attempted + report.skipped
        rate = done / max(now - self.started, 1e-6)
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("send", total=total, rate=0.0, detail="")
            detail = f"deferred {report.deferred} failed {report.failed + report.bounced}"
            self.bar.update(self.task, completed=done, rate=rate, detail=detail)
            return
        if now - self.last >= self.every:
            self.last = now
            eta = (total - done) / rate if rate > 0 else float("nan")
            log.info(
                "sent %d/%d (%.0f msg/s, ETA %.0fs); deferred %d, bounced %d, failed %d, "
                "unknown %d, skipped %d",
                report.sent,
                total,
                rate,
                eta,
                report.deferred,
                report.bounced,
                report.failed,
                report.unknown,
                report.skipped,
            )


def _show_outcome(outcome: sending_service.SendOutcome) -> None:
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.counts.items()))
    click.echo(f"{outcome.issue_key} is {outcome.state} ({counts})")
    if outcome.report.recovered:
        click.echo(
            f"  {outcome.report.recovered} message(s) were in flight when a previous run "
            "stopped; re-sent and counted as possible duplicates"
        )
    if outcome.state == "sending" and outcome.next_attempt_at is not None:
        click.echo(
            f"  deferred messages are due from {outcome.next_attempt_at:%Y-%m-%d %H:%M %Z}; "
            "run `issue send` again then (the scheduler does), or use --wait"
        )


@click.command("send")
@WEEK
@click.option("--test-to", "test_to", metavar="ADDR", help="Send one test copy to ADDR only.")
@click.option("--wait", is_flag=True, help="Stay until deferred messages are retried too.")
@pass_state
def send(state: CliState, week_key: str | None, test_to: str | None, wait: bool) -> None:
    """Lint, then send the week's issue (composing it if needed), or resume it.

    Sending is safe to interrupt: SIGTERM or Ctrl-C finish the messages in flight and exit 0;
    after a crash, run it again: nobody is missed. A refused login or sender address, or a run
    of rejected messages, pauses the issue (exit 1) with the reason.

    \b
    Examples:
      pulseletter issue send --week 2026-W47
      pulseletter issue send --test-to me@example.com
    """
    app = state.app()
    prepared = issue_service.prepare_issue(app, issue_service.resolve_week(app, week_key))
    if test_to:
        reply = sending_service.send_test(app, prepared.key, test_to)
        click.echo(f"test copy of {prepared.key} to {test_to}: {reply.code} {reply.text}")
        if not reply.ok:
            sys.exit(1)
        return
    tty = sys.stderr.isatty()
    with graceful_stop() as stop, ProgressView(app.settings.sending.progress_seconds, tty) as view:
        outcome = sending_service.send_issue_until_settled(
            app, prepared.key, stop=stop, progress=view, wait=wait
        )
    _show_outcome(outcome)
    if outcome.state == "paused" and outcome.reason:
        click.echo(f"Error: sending paused: {outcome.reason}", err=True)
        click.echo(f"  fix it, then: pulseletter issue resume --week {prepared.key}", err=True)
        sys.exit(1)


@click.command("status")
@WEEK
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def status(state: CliState, week_key: str | None, as_json: bool) -> None:
    """Show the issue's state, deliveries per status, rate, ETA and top failure reasons.

    \b
    Example:
      pulseletter issue status --week 2026-W47
    """
    app = state.app()
    report = sending_service.status_report(app, issue_service.resolve_week(app, week_key).key)
    if as_json:
        echo_json(report.to_json())
        return
    reason = f" ({report.reason})" if report.reason else ""
    click.echo(f"{report.key} #{report.number} {report.state}{reason}: {report.subject}")
    for name, n in sorted(report.counts.items()):
        click.echo(f"  {name:<10} {n}")
    click.echo(f"  {'total':<10} {report.total}")
    if report.uncertain:
        click.echo(f"  possible duplicates (outcome unknown): {report.uncertain}")
    click.echo(f"  rate: {report.rate_per_minute:.1f}/min over the last 5 minutes")
    if report.eta_seconds is not None:
        click.echo(f"  ETA: {report.eta_seconds / 60:.1f} min")
    if report.next_attempt_at is not None:
        click.echo(f"  next retry: {report.next_attempt_at:%Y-%m-%d %H:%M %Z}")
    if report.top_failures:
        click.echo("  top failure reasons:")
        for why, n in report.top_failures:
            click.echo(f"    {n:>6}  {why}")


@click.command("pause")
@WEEK
@pass_state
def pause(state: CliState, week_key: str | None) -> None:
    """Pause a send: a running sender finishes its messages in flight and stops.

    \b
    Example:
      pulseletter issue pause --week 2026-W47
    """
    app = state.app()
    found = sending_service.pause_issue(app, issue_service.resolve_week(app, week_key).key)
    click.echo(f"{found.key} is paused; continue with `pulseletter issue resume`")


@click.command("resume")
@WEEK
@pass_state
@click.pass_context
def resume(ctx: click.Context, state: CliState, week_key: str | None) -> None:
    """Resume a paused send (after fixing what paused it) and send the rest.

    \b
    Example:
      pulseletter issue resume --week 2026-W47
    """
    app = state.app()
    key = issue_service.resolve_week(app, week_key).key
    sending_service.resume_issue(app, key)
    click.echo(f"{key} resumed")
    ctx.invoke(send, week_key=key, test_to=None, wait=False)


@click.command("cancel")
@WEEK
@click.confirmation_option(prompt="Cancel this issue for good?")
@pass_state
def cancel(state: CliState, week_key: str | None) -> None:
    """Cancel an issue: nobody else gets it; what was sent stays recorded.

    \b
    Example:
      pulseletter issue cancel --week 2026-W47 --yes
    """
    app = state.app()
    found, skipped = sending_service.cancel_issue(
        app, issue_service.resolve_week(app, week_key).key
    )
    click.echo(f"{found.key} is cancelled; {skipped} unsent deliveries skipped")


@click.command("retry-failed")
@WEEK
@click.option("--unknown", "include_unknown", is_flag=True, help="Also re-send unknown outcomes.")
@pass_state
@click.pass_context
def retry_failed(
    ctx: click.Context, state: CliState, week_key: str | None, include_unknown: bool
) -> None:
    """Queue failed deliveries again and send them (bounced addresses are never retried).

    \b
    Example:
      pulseletter issue retry-failed --week 2026-W47
    """
    app = state.app()
    key = issue_service.resolve_week(app, week_key).key
    found, n = sending_service.retry_failed(app, key, include_unknown=include_unknown)
    click.echo(f"{n} deliveries of {found.key} queued again")
    if n and found.state == "sending":
        ctx.invoke(send, week_key=key, test_to=None, wait=False)


@click.command("failures")
@WEEK
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row (default: a table).")
@pass_state
def failures(state: CliState, week_key: str | None, as_csv: bool) -> None:
    """List deliveries that failed, bounced, were skipped or have an unknown outcome.

    \b
    Examples:
      pulseletter issue failures --week 2026-W47
      pulseletter issue failures --week 2026-W47 --csv > failures.csv
    """
    app = state.app()
    text = sending_service.failures_csv(app, issue_service.resolve_week(app, week_key).key)
    if as_csv:
        click.echo(text, nl=False)
        return
    import csv

    rows = list(csv.reader(text.splitlines()))
    for row in rows[1:]:
        click.echo(f"{row[1]:<9} {row[3]:>4} {row[0]:<40} {row[4][:70]}")
    click.echo(f"{len(rows) - 1} deliveries")


for _command in (send, status, pause, resume, cancel, retry_failed, failures):
    issue.add_command(_command)
COMMANDS: list[click.Command] = []

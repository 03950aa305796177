"""Helpers for the service and scheduler tests: seeded apps, a slow SMTP sink, subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from pulseletter.config import Settings
from pulseletter.db.models import Delivery, Issue, JobRun, Subscriber
from pulseletter.mail.sink import SavingHandler, SmtpSink
from pulseletter.service.app import App
from pulseletter.service.content import ingest
from pulseletter.service.demo import copy_sample_content
from pulseletter.service.health import SCHEDULING
from pulseletter.service.subscribers import add_demo_subscribers


@contextmanager
def scheduling() -> Iterator[None]:
    """health_report as a process that runs the scheduler sees it (strict checks)."""
    SCHEDULING.set()
    try:
        yield
    finally:
        SCHEDULING.clear()


def seed(app: App, content_for: datetime, subscribers: int = 5) -> None:
    """Sample content whose newest week is the one a send at ``content_for`` covers."""
    folder = app.settings.path("content")
    copy_sample_content(folder, content_for, app.settings.schedule.timezone)
    report = ingest(app, [folder])
    assert not report.rejected, report.rejected
    if subscribers:
        add_demo_subscribers(app, subscribers)
        # subscribed well before the send, whatever clock the test uses (a send freezes the
        # audience to subscribers whose status dates from before the send started)
        with app.db.writing() as session:
            session.execute(
                update(Subscriber).values(status_changed_at=content_for - timedelta(days=30))
            )


def issue_state(app: App, key: str) -> str | None:
    with app.db.reading() as session:
        return session.scalar(select(Issue.state).where(Issue.key == key))


def job_runs(app: App, job: str | None = None) -> list[JobRun]:
    with app.db.reading() as session:
        query = select(JobRun).order_by(JobRun.id)
        if job:
            query = query.where(JobRun.job == job)
        return list(session.scalars(query).all())


def delivery_counts(app: App, key: str) -> dict[str, int]:
    with app.db.reading() as session:
        rows = session.execute(
            select(Delivery.status)
            .join(Issue, Issue.id == Delivery.issue_id)
            .where(Issue.key == key)
        ).all()
    out: dict[str, int] = {}
    for (status,) in rows:
        out[status] = out.get(status, 0) + 1
    return out


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (real time, short intervals)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(0.02)


class SlowHandler(SavingHandler):
    """Takes ``delay`` seconds per message, so a send is reliably in progress."""

    def __init__(self, folder: Path | None, delay: float) -> None:
        super().__init__(folder)
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


class SlowSink(SmtpSink):
    def __init__(self, folder: Path | None, delay: float) -> None:
        super().__init__(folder)
        self.handler = SlowHandler(folder, delay)
        self._controller = Controller(
            self.handler, hostname=self.host, port=self.port, ready_timeout=10
        )


def recipients(sink: SmtpSink) -> list[str]:
    return [rcpt for _, rcpts, _ in sink.messages for rcpt in rcpts]


# -- subprocesses -------------------------------------------------------------------------------


class ServeProcess:
    """``python -m pulseletter serve`` in a subprocess, logging JSON lines to a file."""

    def __init__(self, config: Path, log: Path, offset: timedelta, *args: str) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSELETTER_")}
        env["PULSELETTER_CLOCK_OFFSET"] = str(offset.total_seconds())
        self.handle = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pulseletter",
                "--config",
                str(config),
                "serve",
                "--log-json",
                *args,
            ],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text("utf-8", "replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]

    def wait_event(self, event: str, timeout: float = 15.0, count: int = 1) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            if self.proc.poll() is not None and len(self.events(event)) < count:
                raise AssertionError(
                    f"serve exited {self.proc.returncode}:\n{self.log.read_text()}"
                )
            found = self.events(event)
            return found if len(found) >= count else None

        return wait_for(check, timeout, f"log event {event}")

    def stop(self, sig: int, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.handle.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.handle.close()


class OffsetTime:
    """The test's shifted time, shared with every serve process through CLOCK_OFFSET."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def service_config(database_url: str, **sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        "security": {"secret": "test-secret-not-for-production"},
        "content": {"dir": "content"},
    }
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return merged


def settings_path(settings: Settings) -> Path:
    return Path(settings.source)

"""One scheduler per database: a named row in ``service_leases`` that its holder keeps renewing.

Two processes sharing an APScheduler job store would both run every job, so ``serve`` only
schedules while it holds the lease. A holder that stops renewing (crash, kill -9, a frozen VM)
loses it when ``expires_at`` passes, and a waiting instance takes over. Times come from the
App's clock; writers serialise on the row (BEGIN IMMEDIATE on SQLite, FOR UPDATE elsewhere).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from pulseletter.db.models import ServiceLease
from pulseletter.service.app import App

SCHEDULER = "scheduler"


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    mine: bool

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


def make_holder() -> str:
    """``host:pid:random``: readable in logs, unique even when a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def acquire(app: App, holder: str, ttl: timedelta, name: str = SCHEDULER) -> Lease:
    """Take the lease if it is free or expired, renew it if ours; report who holds it."""
    now = app.clock()
    try:
        with app.db.writing() as session:
            row = session.get(ServiceLease, name, with_for_update=not app.db.is_sqlite)
            if row is None:
                row = ServiceLease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
                session.add(row)
            elif row.holder == holder:
                row.expires_at = now + ttl
            elif row.expires_at <= now:
                row.holder, row.acquired_at, row.expires_at = holder, now, now + ttl
            return Lease(name, row.holder, row.acquired_at, row.expires_at, row.holder == holder)
    except IntegrityError:  # another process inserted the row first (PostgreSQL)
        current = read(app, name)
        assert current is not None
        return Lease(name, current.holder, current.acquired_at, current.expires_at, False)


def release(app: App, holder: str, name: str = SCHEDULER) -> None:
    """Give the lease up at a clean shutdown so a standby takes over at once."""
    with app.db.writing() as session:
        session.execute(
            delete(ServiceLease).where(ServiceLease.name == name, ServiceLease.holder == holder)
        )


def read(app: App, name: str = SCHEDULER) -> Lease | None:
    with app.db.reading() as session:
        row = session.get(ServiceLease, name)
        if row is None:
            return None
        return Lease(name, row.holder, row.acquired_at, row.expires_at, False)

"""Work through an issue's ledger: claim a batch, send each message, record each result.

The sender knows nothing about subscribers or templates: the caller gives it a function that
turns a claimed row into message bytes (or None to skip it, e.g. unsubscribed since fan-out).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pulseletter.db import Database
from pulseletter.dispatch import ledger
from pulseletter.dispatch.ledger import Claimed
from pulseletter.mail.transports import Reply, Transport

log = logging.getLogger(__name__)

BuildMessage = Callable[[Claimed], bytes | None]
Clock = Callable[[], datetime]


@dataclass
class SendReport:
    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    by_code: dict[str, int] = field(default_factory=dict)

    def add(self, status: str, reply: Reply | None) -> None:
        setattr(self, status, getattr(self, status) + 1)
        if reply is not None and not reply.ok:
            key = f"{reply.code} {reply.text[:60]}"
            self.by_code[key] = self.by_code.get(key, 0) + 1


def classify(reply: Reply) -> str:
    """Map an SMTP reply to a ledger status by code and stage, never by exception type."""
    if reply.ok:
        return "sent"
    if reply.code == 0:
        return "unknown" if reply.stage == "after-data" else "deferred"
    if 400 <= reply.code < 500:
        return "deferred"
    if reply.stage == "rcpt":
        return "bounced"
    return "failed"


def backoff(attempts: int, base: float = 60.0, cap: float = 6 * 3600.0) -> timedelta:
    """Exponential backoff with full jitter, persisted in next_attempt_at."""
    return timedelta(seconds=random.uniform(base / 2, min(cap, base * 2 ** (attempts - 1))))


def run_sender(
    db: Database,
    issue_id: int,
    transport: Transport,
    mail_from: str,
    build: BuildMessage,
    *,
    clock: Clock,
    batch: int = 100,
    max_attempts: int = 5,
    lease: timedelta = timedelta(minutes=10),
    stop: threading.Event | None = None,
) -> SendReport:
    """Send every due delivery once; each result is committed before the next message.

    Setting ``stop`` (SIGTERM, shutdown) ends the run after the message in flight is recorded;
    rows claimed but not yet attempted go back to the queue.
    """
    owner = f"{socket.gethostname()}:{os.getpid()}"
    report = SendReport()
    try:
        while True:
            claimed = ledger.claim(db, issue_id, owner, clock(), limit=batch, lease=lease)
            if not claimed:
                return report
            for n, row in enumerate(claimed):
                if stop is not None and stop.is_set():
                    ledger.release(db, [r.delivery_id for r in claimed[n:]], clock())
                    return report
                data = build(row)
                if data is None:
                    ledger.record(db, row.delivery_id, "skipped", clock(), text="not active")
                    report.add("skipped", None)
                    continue
                reply = transport.send(mail_from, row.email, data)
                status = classify(reply)
                retry_at = None
                if status == "deferred":
                    if row.attempts >= max_attempts:
                        status = "failed"
                    else:
                        retry_at = clock() + backoff(row.attempts)
                ledger.record(
                    db,
                    row.delivery_id,
                    status,
                    clock(),
                    code=reply.code,
                    text=reply.text,
                    next_attempt_at=retry_at,
                    relay=transport.name,
                )
                report.add(status, reply)
    finally:
        transport.close()

"""Insert checked CSV rows in batches, one transaction per batch, never touching existing rows.

An existing address is left exactly as it is (that is what makes suppression hold and a re-run
harmless): it is reported, with its status, and skipped. Each batch commits on its own, so an
interrupted import keeps what it finished and a re-run skips those rows as existing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from pulseletter.db import Database
from pulseletter.db.models import Subscriber, SubscriberEvent, Suppression
from pulseletter.subscribers.addresses import address_hash
from pulseletter.subscribers.csv_format import ImportRow, Rejected
from pulseletter.subscribers.lifecycle import SUPPRESSING


@dataclass(frozen=True)
class BatchResult:
    inserted: int
    rejected: list[Rejected]


class BatchImporter:
    """``add(rows)`` one batch at a time; ``consented`` makes new rows active, else pending."""

    def __init__(
        self, db: Database, *, now: datetime, consented: bool, source: str, detail: str
    ) -> None:
        self.db, self.now, self.consented = db, now, consented
        self.source, self.detail = source, detail[:500]
        self.run = f"{source}:{secrets.token_hex(4)}"  # status_reason marks this run's rows
        with db.reading() as session:
            self.check_erased = bool(session.scalar(select(func.count(Suppression.id))))

    def add(self, rows: list[ImportRow]) -> BatchResult:
        rejected: list[Rejected] = []
        first_line: dict[str, int] = {}
        unique: list[ImportRow] = []
        for row in rows:
            if row.key in first_line:
                rejected.append(_reject(row, f"duplicate of line {first_line[row.key]}"))
            else:
                first_line[row.key] = row.line
                unique.append(row)
        with self.db.writing() as session:
            existing = self._existing(session, [r.key for r in unique])
            erased = self._erased(session, [r.key for r in unique]) if self.check_erased else set()
            values: list[dict[str, Any]] = []
            for row in unique:
                found = existing.get(row.key)
                if found is not None:
                    rejected.append(_reject(row, self._why_existing(*found)))
                elif row.key in erased:
                    rejected.append(_reject(row, "erased on request: the address is suppressed"))
                else:
                    values.append(self._values(row))
            if values:
                before = session.scalar(select(func.max(Subscriber.id))) or 0
                session.execute(insert(Subscriber), values)
                self._events(session, before)
        rejected.sort(key=lambda r: r.line)
        return BatchResult(len(values), rejected)

    def _existing(self, session: Session, keys: list[str]) -> dict[str, tuple[str, str]]:
        if not keys:
            return {}
        query = select(Subscriber.email_key, Subscriber.status, Subscriber.status_reason).where(
            Subscriber.email_key.in_(keys)
        )
        return {k: (status, reason) for k, status, reason in session.execute(query)}

    def _erased(self, session: Session, keys: list[str]) -> set[str]:
        hashes = {address_hash(k): k for k in keys}
        query = select(Suppression.email_hash).where(Suppression.email_hash.in_(list(hashes)))
        return {hashes[h] for h in session.scalars(query)}

    def _why_existing(self, status: str, reason: str) -> str:
        if reason == self.run:
            return "duplicate of an earlier line of this file"
        if status in SUPPRESSING:
            return f"suppressed ({status}): left unchanged"
        return f"already a subscriber ({status}): left unchanged"

    def _values(self, row: ImportRow) -> dict[str, Any]:
        status = row.status if row.status in SUPPRESSING else "pending"
        if self.consented and row.status in ("", "active", "pending"):
            status = "active"
        return {
            "email": row.email,
            "email_key": row.key,
            "name": row.name,
            "status": status,
            "status_changed_at": self.now,
            "status_reason": self.run,
            "source": self.source,
            "token": secrets.token_urlsafe(24),
            "needs_smtputf8": row.needs_smtputf8,
            "paused_until": None,
            "bounce_count": 0,
            "attributes": row.attributes,
            "created_at": self.now,
            "confirmed_at": self.now if status == "active" else None,
        }

    def _events(self, session: Session, before: int) -> None:
        """One history event per new row, written by the database in one statement."""
        rows = select(
            Subscriber.id,
            Subscriber.status,
            literal(self.source),
            literal(self.detail),
            Subscriber.created_at,
        ).where(
            Subscriber.id > before,
            Subscriber.status_reason == self.run,
        )
        session.execute(
            insert(SubscriberEvent).from_select(
                ["subscriber_id", "kind", "source", "detail", "created_at"], rows
            )
        )


def _reject(row: ImportRow, reason: str) -> Rejected:
    return Rejected(row.line, reason, [row.email, row.name])


def batched(
    items: Iterable[ImportRow | Rejected], size: int
) -> Iterable[list[ImportRow | Rejected]]:
    batch: list[ImportRow | Rejected] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

"""Insert checked CSV rows in batches, one transaction per batch, never touching existing rows.

An existing address is left exactly as it is (that is what makes suppression hold and a re-run
harmless): it is reported, with its status, and skipped. Each batch commits on its own, so an
interrupted import keeps what it finished and a re-run skips those rows as existing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from pulseletter.db import Database
from pulseletter.db.models import Subscriber, SubscriberEvent, Suppression
from pulseletter.subscribers.addresses import address_hash
from pulseletter.subscribers.csv_format import ImportRow, Rejected
from pulseletter.subscribers.lifecycle import SUPPRESSING

INSERT_COLUMNS = (
    "email",
    "email_key",
    "name",
    "status",
    "status_changed_at",
    "status_reason",
    "source",
    "token",
    "needs_smtputf8",
    "paused_until",
    "bounce_count",
    "attributes",
    "created_at",
    "confirmed_at",
)


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
            erased = self._erased(session, [r.key for r in unique]) if self.check_erased else set()
            candidates = []
            for row in unique:
                if row.key in erased:
                    rejected.append(_reject(row, "erased on request: the address is suppressed"))
                else:
                    candidates.append(row)
            inserted, skipped = self._insert(session, candidates)
        rejected.extend(skipped)
        rejected.sort(key=lambda r: r.line)
        return BatchResult(inserted, rejected)

    def _insert(self, session: Session, rows: list[ImportRow]) -> tuple[int, list[Rejected]]:
        """Insert what is new; existing addresses are skipped by the database and reported."""
        if not rows:
            return 0, []
        before = session.scalar(select(func.max(Subscriber.id))) or 0
        conn = session.connection()
        sqlite = conn.dialect.name == "sqlite"
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO subscribers ({', '.join(INSERT_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(INSERT_COLUMNS))}) "
            "ON CONFLICT (email_key) DO NOTHING"
        )
        now: Any = self.now.astimezone(UTC).replace(tzinfo=None)
        if sqlite:
            now = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite storage format
        conn.exec_driver_sql(sql, [self._values(row, now) for row in rows])
        new_keys = set(
            session.scalars(
                select(Subscriber.email_key).where(
                    Subscriber.id > before, Subscriber.status_reason == self.run
                )
            )
        )
        skipped: list[Rejected] = []
        if len(new_keys) < len(rows):
            old = [r for r in rows if r.key not in new_keys]
            existing = self._existing(session, [r.key for r in old])
            for row in old:
                status, reason = existing.get(row.key, ("", ""))
                skipped.append(_reject(row, self._why_existing(status, reason)))
        if new_keys:
            self._events(session, before)
        return len(new_keys), skipped

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

    def _values(self, row: ImportRow, now: Any) -> tuple[Any, ...]:
        """One row in INSERT_COLUMNS order."""
        status = row.status if row.status in SUPPRESSING else "pending"
        if self.consented and row.status in ("", "active", "pending"):
            status = "active"
        attributes = json.dumps(row.attributes, ensure_ascii=False) if row.attributes else "{}"
        return (
            row.email,
            row.key,
            row.name,
            status,
            now,
            self.run,
            self.source,
            secrets.token_urlsafe(24),
            row.needs_smtputf8,
            None,
            0,
            attributes,
            now,
            now if status == "active" else None,
        )

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

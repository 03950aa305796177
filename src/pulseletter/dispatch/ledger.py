"""The delivery ledger: fan-out, claiming and recording, each in short transactions.

A result is committed the moment it is known; no transaction is open during an SMTP call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, insert, literal, or_, select, update

from pulseletter.db import Database
from pulseletter.db.models import Delivery, Issue, Subscriber


def fan_out(db: Database, issue_id: int, now: datetime) -> int:
    """Freeze the audience: one queued row per active, unpaused subscriber. Idempotent."""
    already = exists().where(
        and_(Delivery.issue_id == issue_id, Delivery.subscriber_id == Subscriber.id)
    )
    audience = (
        select(
            literal(issue_id),
            Subscriber.id,
            Subscriber.email,
            literal("queued"),
            literal(0),
            literal(now),
            literal(now),
        )
        .where(Subscriber.status == "active")
        .where(or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now))
        .where(~already)
        .order_by(Subscriber.id)
    )
    columns = [
        "issue_id",
        "subscriber_id",
        "email",
        "status",
        "attempts",
        "next_attempt_at",
        "updated_at",
    ]
    with db.writing() as session:
        result = session.execute(insert(Delivery).from_select(columns, audience))
        return int(result.rowcount or 0)


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    subscriber_id: int | None
    email: str
    message_id: str
    attempts: int


def claim(
    db: Database, issue_id: int, owner: str, now: datetime, *, limit: int, lease: timedelta
) -> list[Claimed]:
    """Take up to ``limit`` due rows (queued, deferred and due, or an expired lease)."""
    due = or_(
        Delivery.status == "queued",
        and_(Delivery.status == "deferred", Delivery.next_attempt_at <= now),
        and_(Delivery.status == "sending", Delivery.lease_until < now),
    )
    with db.writing() as session:
        query = (
            select(Delivery)
            .where(Delivery.issue_id == issue_id, due)
            .order_by(Delivery.id)
            .limit(limit)
        )
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = session.scalars(query).all()
        for row in rows:
            row.status = "sending"
            row.lease_owner = owner
            row.lease_until = now + lease
            row.attempts += 1
            row.updated_at = now
        return [Claimed(r.id, r.subscriber_id, r.email, r.message_id, r.attempts) for r in rows]


def release(db: Database, delivery_ids: list[int], now: datetime) -> None:
    """Give claimed-but-unattempted rows back to the queue (a graceful stop)."""
    if not delivery_ids:
        return
    with db.writing() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == "sending")
            .values(
                status="queued",
                attempts=Delivery.attempts - 1,
                lease_owner="",
                lease_until=None,
                updated_at=now,
            )
        )


def set_message_id(db: Database, delivery_id: int, message_id: str) -> None:
    """Stored before the first attempt so every retry reuses the same Message-ID."""
    with db.writing() as session:
        session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(message_id=message_id)
        )


def record(
    db: Database,
    delivery_id: int,
    status: str,
    now: datetime,
    *,
    code: int | None = None,
    text: str = "",
    next_attempt_at: datetime | None = None,
    relay: str = "",
) -> None:
    values: dict[str, object] = {
        "status": status,
        "last_code": code,
        "last_text": text[:1000],
        "lease_owner": "",
        "lease_until": None,
        "next_attempt_at": next_attempt_at,
        "updated_at": now,
    }
    if relay:
        values["relay"] = relay
    if status == "sent":
        values["sent_at"] = now
    with db.writing() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


def counts(db: Database, issue_id: int) -> dict[str, int]:
    with db.reading() as session:
        rows = session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.issue_id == issue_id)
            .group_by(Delivery.status)
        ).all()
    return {status: int(n) for status, n in rows}


def outstanding(db: Database, issue_id: int) -> int:
    """Rows that still need work (queued, deferred or sending)."""
    with db.reading() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.issue_id == issue_id)
                .where(Delivery.status.in_(("queued", "deferred", "sending")))
            )
            or 0
        )


def issue_by_key(db: Database, key: str) -> Issue | None:
    with db.reading() as session:
        return session.scalars(select(Issue).where(Issue.key == key)).first()

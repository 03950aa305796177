"""The delivery ledger: fan-out, claiming and recording, each in short transactions.

A result is committed the moment it is known; no transaction is open during an SMTP call.
One row's life: ``queued`` -> (claimed: a lease, status unchanged) -> ``sending`` (committed
just before its SMTP conversation) -> ``sent`` | ``deferred`` | ``bounced`` | ``failed`` |
``unknown`` | ``skipped``. A row found in ``sending`` after its sender died was in flight at
the crash: it goes back to the queue and is re-sent (no subscriber is missed), marked
*uncertain* because the relay may already have had it. The mark is the prefix
``UNCERTAIN`` on ``last_text``; it stays through later attempts, so possible duplicates are
counted, and their number is bounded by the number of connections in flight at the crash.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Engine,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from pulseletter.db import Database
from pulseletter.db.models import Delivery, Issue, Subscriber
from pulseletter.db.types import UTCDateTime
from pulseletter.subscribers.lifecycle import set_status

UNCERTAIN = "possible duplicate: "
OUTSTANDING = ("queued", "deferred", "sending")
FAILURES = ("failed", "bounced", "unknown", "skipped")
_immediate: WeakKeyDictionary[Database, Engine] = WeakKeyDictionary()


def _writer(db: Database) -> Engine:
    """An engine whose transactions start with BEGIN IMMEDIATE (SQLite), cached per database."""
    engine = _immediate.get(db)
    if engine is None:
        engine = db.engine.execution_options(pulseletter_immediate=True)
        _immediate[db] = engine
    return engine


def fan_out(
    db: Database, issue_id: int, now: datetime, *, cutoff: datetime | None = None, batch: int = 2000
) -> int:
    """Freeze the audience: one queued row per active, unpaused subscriber. Idempotent.

    Subscribers whose status changed after ``cutoff`` (the send's start) are left out, so
    resuming an interrupted fan-out never adds people who subscribed after the send began.
    Inserted in batches of subscriber ids, each its own short transaction.
    """
    audience = [
        Subscriber.status == "active",
        or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now),
    ]
    if cutoff is not None:
        audience.append(Subscriber.status_changed_at <= cutoff)
    # a lookup in the unique (issue_id, subscriber_id) index per subscriber, not a scan
    already = exists().where(Delivery.issue_id == issue_id, Delivery.subscriber_id == Subscriber.id)
    columns = ["issue_id", "subscriber_id", "email", "status", "attempts", "next_attempt_at"]
    columns.append("updated_at")
    total, last_id = 0, 0
    while True:
        with db.reading() as session:
            upper = session.scalar(
                select(func.max(Subscriber.id)).where(
                    Subscriber.id.in_(
                        select(Subscriber.id)
                        .where(Subscriber.id > last_id)
                        .order_by(Subscriber.id)
                        .limit(batch)
                    )
                )
            )
        if upper is None:
            return total
        rows = (
            select(
                literal(issue_id),
                Subscriber.id,
                Subscriber.email,
                literal("queued"),
                literal(0),
                literal(now),
                literal(now),
            )
            .where(Subscriber.id > last_id, Subscriber.id <= upper, *audience)
            .where(~already)
            .order_by(Subscriber.id)
        )
        with db.writing() as session:  # RETURNING: rowcount of INSERT..SELECT is -1 on psycopg
            stmt = insert(Delivery).from_select(columns, rows).returning(Delivery.id)
            total += len(session.execute(stmt).all())
        last_id = upper


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    subscriber_id: int | None
    email: str
    message_id: str
    attempts: int
    name: str = ""
    token: str = ""
    needs_smtputf8: bool = False
    uncertain: bool = False  # an earlier attempt may have been delivered


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """A lease owner on this host is alive while its process is; others only by lease time."""
    host, _, pid = owner.partition(":")
    if host != socket.gethostname() or not pid.split(":")[0].isdigit():
        return True
    try:
        os.kill(int(pid.split(":")[0]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(db: Database, issue_id: int, now: datetime) -> int:
    """Take back rows whose sender died or whose lease ran out; returns rows that were in flight.

    In-flight rows (``sending``) go back to the queue with ``uncertain`` raised: the message may
    have reached the relay before the crash. Claimed rows that never started lose their lease.
    """
    with db.reading() as session:
        owners = session.scalars(
            select(Delivery.lease_owner)
            .where(Delivery.issue_id == issue_id, Delivery.lease_owner != "")
            .distinct()
        ).all()
    dead = [o for o in owners if not owner_alive(o)]
    stale = or_(Delivery.lease_until < now, Delivery.lease_owner.in_(dead))
    mine = and_(Delivery.issue_id == issue_id, Delivery.lease_owner != "", stale)
    with db.writing() as session:
        in_flight = session.execute(
            update(Delivery)
            .where(mine, Delivery.status == "sending")
            .values(
                status="queued",
                last_code=None,
                last_text=UNCERTAIN + "the sender stopped mid-send; re-sent",
                lease_owner="",
                lease_until=None,
                next_attempt_at=now,
                updated_at=now,
            )
        ).rowcount
        session.execute(
            update(Delivery)
            .where(mine, Delivery.status != "sending")
            .values(lease_owner="", lease_until=None)
        )
    return int(in_flight or 0)


def claim(
    db: Database, issue_id: int, owner: str, now: datetime, *, limit: int, lease: timedelta
) -> list[Claimed]:
    """Lease up to ``limit`` due rows (queued, or deferred and due) with their subscriber."""
    free = and_(Delivery.issue_id == issue_id, Delivery.lease_owner == "")
    queries = [
        Delivery.status == "queued",
        and_(Delivery.status == "deferred", Delivery.next_attempt_at <= now),
    ]
    claimed: list[Claimed] = []
    with db.writing() as session:
        for due in queries:
            if len(claimed) >= limit:
                break
            query = (
                select(
                    Delivery.id,
                    Delivery.subscriber_id,
                    Delivery.email,
                    Delivery.message_id,
                    Delivery.attempts,
                    Subscriber.name,
                    Subscriber.token,
                    Subscriber.needs_smtputf8,
                    Delivery.last_text.startswith(UNCERTAIN),
                )
                .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(free, due)
                .limit(limit - len(claimed))
            )
            if not db.is_sqlite:
                query = query.order_by(Delivery.id).with_for_update(of=Delivery, skip_locked=True)
            for r in session.execute(query):
                claimed.append(
                    Claimed(
                        r[0], r[1], r[2], r[3], r[4], r[5] or "", r[6] or "", bool(r[7]), bool(r[8])
                    )
                )
        if claimed:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_([c.delivery_id for c in claimed]))
                .values(lease_owner=owner, lease_until=now + lease)
            )
    return claimed


def release(db: Database, delivery_ids: Iterable[int], now: datetime) -> None:
    """Give claimed rows that were never started back to the queue (a stop, a pause)."""
    ids = list(delivery_ids)
    if not ids:
        return
    with db.writing() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status != "sending")
            .values(lease_owner="", lease_until=None)
        )


@dataclass(frozen=True)
class Result:
    """What happened to one attempt; written by ``step`` in the next transaction."""

    delivery_id: int
    subscriber_id: int | None
    status: str  # sent, deferred, failed, bounced, unknown, or "queued" to hand it back
    code: int | None = None
    text: str = ""
    relay: str = ""
    next_attempt_at: datetime | None = None
    uncertain: bool = False
    hard_bounce: bool = False
    refund_attempt: bool = False


def _times(*names: str) -> list[Any]:
    return [bindparam(name, type_=UTCDateTime()) for name in names]


# The hot path: plain statements compiled once (building an update() per message costs more
# than the SQLite commit itself).
class _Sql:
    # each parameter is used once: PostgreSQL must deduce one type per parameter
    record = (
        "UPDATE deliveries SET status = :status, last_code = :code, last_text = :text,"
        " lease_owner = '', lease_until = NULL, next_attempt_at = :next, updated_at = :now,"
        " relay = CASE WHEN :keep_relay = 1 THEN relay ELSE :relay END,"
        " sent_at = CASE WHEN :is_sent = 1 THEN :sent_at ELSE sent_at END,"
        " attempts = attempts - :refund WHERE id = :id"
    )
    status = "SELECT status FROM subscribers WHERE id = :id"
    start = (
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, message_id = :mid,"
        " lease_until = :lease, updated_at = :now WHERE id = :id AND lease_owner = :owner"
    )
    # the usual case in one statement: start it if its subscriber is still active
    start_active = (
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, message_id = :mid,"
        " lease_until = :lease, updated_at = :now WHERE id = :id AND lease_owner = :owner"
        " AND EXISTS (SELECT 1 FROM subscribers WHERE subscribers.id = :sid"
        " AND subscribers.status = 'active')"
    )
    skip = (
        "UPDATE deliveries SET status = 'skipped', last_text = :text, lease_owner = '',"
        " lease_until = NULL, updated_at = :now WHERE id = :id AND lease_owner = :owner"
    )


_RECORD = text(_Sql.record).bindparams(*_times("now", "next", "sent_at"))
_STATUS = text(_Sql.status)
_START = text(_Sql.start).bindparams(*_times("now", "lease"))
_SKIP = text(_Sql.skip).bindparams(*_times("now"))


def step(
    db: Database,
    now: datetime,
    *,
    owner: str,
    lease: timedelta,
    finished: Result | None = None,
    start: Claimed | None = None,
    message_id: str = "",
    bounce_limit: int = 0,
) -> bool | None:
    """One short transaction: record a finished attempt and/or mark the next one in flight.

    Marking a row ``sending`` right before its SMTP conversation is what lets a crash be
    accounted for exactly. Returns whether ``start`` may be sent (None if nothing to start):
    False if its subscriber is no longer active (skipped) or another sender took the row.
    """
    with _writer(db).begin() as conn:
        if finished is not None:
            _record(conn, finished, now, bounce_limit)
        if start is None:
            return None
        status = None
        if start.subscriber_id is not None:
            status = conn.execute(_STATUS, {"id": start.subscriber_id}).scalar()
        if status != "active":
            why = f"subscriber is {status or 'erased'} since fan-out: not mailed"
            conn.execute(_SKIP, {"text": why, "now": now, "id": start.delivery_id, "owner": owner})
            return False
        taken = conn.execute(
            _START,
            {
                "mid": message_id,
                "lease": now + lease,
                "now": now,
                "id": start.delivery_id,
                "owner": owner,
            },
        ).rowcount
        return bool(taken)


def _record(conn: Any, r: Result, now: datetime, bounce_limit: int) -> None:
    conn.execute(_RECORD, _record_params(r, now, now))
    if r.hard_bounce and r.subscriber_id is not None:
        _count_bounce(conn, r, now, bounce_limit)


def _record_params(r: Result, now: Any, sent_at: Any) -> dict[str, Any]:
    return {
        "status": r.status,
        "code": r.code,
        "text": ((UNCERTAIN if r.uncertain else "") + r.text)[:1000],
        "next": r.next_attempt_at,
        "now": now,
        "keep_relay": 0 if r.relay else 1,
        "relay": r.relay,
        "is_sent": 1 if r.status == "sent" else 0,
        "sent_at": sent_at,
        "refund": 1 if r.refund_attempt else 0,
        "id": r.delivery_id,
    }


def _count_bounce(conn: Any, r: Result, now: datetime, bounce_limit: int) -> None:
    """A hard bounce counts against the subscriber; at ``bounce_limit`` they are suppressed."""
    session = Session(bind=conn)
    subscriber = session.get(Subscriber, r.subscriber_id)
    if subscriber is None:
        return
    subscriber.bounce_count += 1
    if bounce_limit and subscriber.bounce_count >= bounce_limit and subscriber.status == "active":
        set_status(
            session,
            subscriber,
            "bounced",
            source="bounce",
            now=now,
            detail=f"{r.code} {r.text}"[:500],
        )
    session.flush()


def counts(db: Database, issue_id: int) -> dict[str, int]:
    with db.reading() as session:
        rows = session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.issue_id == issue_id)
            .group_by(Delivery.status)
        ).all()
    return {status: int(n) for status, n in rows}


def uncertain(db: Database, issue_id: int) -> int:
    """Deliveries with at least one attempt of unknown outcome (possible duplicates)."""
    with db.reading() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.issue_id == issue_id, Delivery.last_text.startswith(UNCERTAIN))
            )
            or 0
        )


def outstanding(db: Database, issue_id: int) -> int:
    """Rows that still need work (queued, deferred or sending)."""
    with db.reading() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.issue_id == issue_id)
                .where(Delivery.status.in_(OUTSTANDING))
            )
            or 0
        )


def next_due(db: Database, issue_id: int) -> datetime | None:
    """When the earliest deferred row may be tried again."""
    with db.reading() as session:
        return session.scalar(
            select(func.min(Delivery.next_attempt_at)).where(
                Delivery.issue_id == issue_id, Delivery.status == "deferred"
            )
        )


def top_failures(db: Database, issue_id: int, limit: int = 5) -> list[tuple[str, int]]:
    """The most common reasons among failed, bounced, unknown and deferred rows."""
    with db.reading() as session:
        rows = session.execute(
            select(Delivery.status, Delivery.last_code, Delivery.last_text, func.count())
            .where(
                Delivery.issue_id == issue_id,
                Delivery.status.in_(("failed", "bounced", "unknown", "deferred")),
            )
            .group_by(Delivery.status, Delivery.last_code, Delivery.last_text)
            .order_by(func.count().desc())
            .limit(limit)
        ).all()
    return [(f"{s}: {c if c is not None else '-'} {t[:80]}", int(n)) for s, c, t, n in rows]


def failures(db: Database, issue_id: int) -> list[Delivery]:
    """Every row that did not end as sent, or may have been sent twice (``failures --csv``)."""
    with db.reading() as session:
        return list(
            session.scalars(
                select(Delivery)
                .where(
                    Delivery.issue_id == issue_id,
                    or_(Delivery.status.in_(FAILURES), Delivery.last_text.startswith(UNCERTAIN)),
                )
                .order_by(Delivery.id)
            )
        )


def sent_between(db: Database, issue_id: int, since: datetime) -> int:
    """Rows sent since ``since``: the recent rate for ``issue status``."""
    with db.reading() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.issue_id == issue_id,
                    Delivery.status == "sent",
                    Delivery.sent_at >= since,
                )
            )
            or 0
        )


def requeue(db: Database, issue_id: int, statuses: Iterable[str], now: datetime) -> int:
    """Put failed (or unknown) rows back in the queue: ``issue retry-failed``."""
    with db.writing() as session:
        result = session.execute(
            update(Delivery)
            .where(Delivery.issue_id == issue_id, Delivery.status.in_(list(statuses)))
            .values(status="queued", next_attempt_at=now, attempts=0, updated_at=now)
        )
        return int(result.rowcount or 0)


def skip_outstanding(db: Database, issue_id: int, now: datetime, reason: str) -> int:
    """Rows not yet sent (and not in flight) become ``skipped``: a cancelled issue."""
    with db.writing() as session:
        result = session.execute(
            update(Delivery)
            .where(Delivery.issue_id == issue_id, Delivery.status.in_(("queued", "deferred")))
            .values(
                status="skipped", last_text=reason, lease_owner="", lease_until=None, updated_at=now
            )
        )
        return int(result.rowcount or 0)


def issue_by_key(db: Database, key: str) -> Issue | None:
    with db.reading() as session:
        return session.scalars(select(Issue).where(Issue.key == key)).first()


def issue_state(db: Database, issue_id: int) -> str:
    with db.reading() as session:
        return str(session.scalar(select(Issue.state).where(Issue.id == issue_id)) or "")


class FastStep:
    """``step`` on one raw DB-API connection held by one sender thread.

    SQLAlchemy's per-statement overhead is several times the cost of the SQLite commit, and
    this runs twice per message; so the hot path speaks DB-API directly, with the same
    statements and the same column encodings (via the dialect's bind processors). Rare
    branches (a hard bounce changes a subscriber) go through ``step``.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine
        dialect = self.engine.dialect
        self.sqlite = dialect.name == "sqlite"
        bind = UTCDateTime().bind_processor(dialect)
        self.time: Any = (
            bind if bind is not None else (lambda v: UTCDateTime().process_bind_param(v, dialect))
        )
        self.conn: Any = self.engine.raw_connection()
        self.sql = {
            name: self._sql(getattr(_Sql, name))
            for name in ("record", "status", "start", "start_active", "skip")
        }

    def _sql(self, statement: str) -> str:
        if self.engine.dialect.paramstyle in ("named",) or self.sqlite:
            return statement
        return re.sub(r":(\w+)", r"%(\1)s", statement)

    def close(self) -> None:
        self.conn.close()

    def many(
        self,
        now: datetime,
        items: list[tuple[Result | None, Claimed | None, str]],
        owner: str,
        lease: timedelta,
        bounce_limit: int = 0,
    ) -> list[bool | None]:
        """Several ``step``s in one transaction (one pass of the sender loop)."""
        work = []
        for finished, start, message_id in items:
            if finished is not None and finished.hard_bounce:
                step(
                    self.db,
                    now,
                    owner=owner,
                    lease=lease,
                    finished=finished,
                    bounce_limit=bounce_limit,
                )
                finished = None
            work.append((finished, start, message_id))
        t_now = self.time(now)
        t_lease = self.time(now + lease)
        cur = self.conn.cursor()
        try:
            if self.sqlite:
                cur.execute("BEGIN IMMEDIATE")
            out = [self._one(cur, t_now, t_lease, owner, *w) for w in work]
            if self.sqlite:
                cur.execute("COMMIT")
            else:
                self.conn.commit()
            return out
        except BaseException:
            if self.sqlite:
                with contextlib.suppress(Exception):
                    cur.execute("ROLLBACK")
            else:
                self.conn.rollback()
            raise
        finally:
            cur.close()

    def _one(
        self,
        cur: Any,
        t_now: Any,
        t_lease: Any,
        owner: str,
        finished: Result | None,
        start: Claimed | None,
        message_id: str,
    ) -> bool | None:
        if finished is not None:
            params = _record_params(finished, t_now, t_now)
            params["next"] = self.time(finished.next_attempt_at)
            cur.execute(self.sql["record"], params)
        if start is None:
            return None
        if start.subscriber_id is not None:
            cur.execute(
                self.sql["start_active"],
                {
                    "mid": message_id,
                    "lease": t_lease,
                    "now": t_now,
                    "id": start.delivery_id,
                    "owner": owner,
                    "sid": start.subscriber_id,
                },
            )
            if cur.rowcount == 1:
                return True
        # not started: the subscriber left (skip it), or another sender has the row
        status = None
        if start.subscriber_id is not None:
            cur.execute(self.sql["status"], {"id": start.subscriber_id})
            found = cur.fetchone()
            status = found[0] if found else None
        if status != "active":
            why = f"subscriber is {status or 'erased'} since fan-out: not mailed"
            cur.execute(
                self.sql["skip"],
                {"text": why, "now": t_now, "id": start.delivery_id, "owner": owner},
            )
            return False
        cur.execute(
            self.sql["start"],
            {
                "mid": message_id,
                "lease": t_lease,
                "now": t_now,
                "id": start.delivery_id,
                "owner": owner,
            },
        )
        return bool(cur.rowcount == 1)

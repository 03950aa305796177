"""Subscriber use cases: add, find, unsubscribe, delete/erase, statistics, listing.

The public web flows (sign-up, confirm, one-click unsubscribe, preferences) live in
``service.web_actions``; CSV import and export in ``service.subscriber_csv``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from pulseletter.content.week import week_containing
from pulseletter.db.models import SUBSCRIBER_STATUSES, Subscriber, SubscriberEvent
from pulseletter.errors import SubscriberError
from pulseletter.service.app import App
from pulseletter.subscribers import lifecycle
from pulseletter.subscribers.addresses import normalise_address
from pulseletter.subscribers.lifecycle import add_subscriber

DEMO_NAMES = (
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "Claude",
    "Sophie",
)


def add(
    app: App, email: str, *, name: str = "", status: str = "pending", source: str = "cli"
) -> Subscriber:
    with app.db.writing() as session:
        return add_subscriber(
            session,
            email,
            name=name,
            status=status,
            source=source,
            now=app.clock(),
            check_deliverability=app.settings.subscribers.check_deliverability,
        )


def add_demo_subscribers(app: App, count: int) -> None:
    """``reader001@example.com`` ... as active (consented) subscribers, in one transaction."""
    with app.db.writing() as session:
        for n in range(1, count + 1):
            add_subscriber(
                session,
                f"reader{n:03d}@example.com",
                name=DEMO_NAMES[(n - 1) % len(DEMO_NAMES)],
                status="active",
                source="demo",
                now=app.clock(),
            )


@dataclass(frozen=True)
class SubscriberFilter:
    """What ``subscribers list`` and ``export`` can select on."""

    status: str | None = None
    source: str | None = None
    search: str | None = None  # substring of the address or the name, case-insensitive
    since: datetime | None = None  # joined at or after
    paused: bool | None = None
    limit: int | None = None

    def apply(self, query: Any, now: datetime) -> Any:
        if self.status:
            query = query.where(Subscriber.status == self.status)
        if self.source:
            query = query.where(Subscriber.source == self.source)
        if self.search:
            pattern = f"%{self.search.casefold()}%"
            query = query.where(
                or_(Subscriber.email_key.like(pattern), func.lower(Subscriber.name).like(pattern))
            )
        if self.since:
            query = query.where(Subscriber.created_at >= self.since)
        if self.paused is True:
            query = query.where(Subscriber.paused_until > now)
        elif self.paused is False:
            query = query.where(
                or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now)
            )
        if self.limit:
            query = query.limit(self.limit)
        return query


def list_subscribers(
    app: App, status: str | None = None, *, where: SubscriberFilter | None = None
) -> list[Subscriber]:
    return list(iter_subscribers(app, where or SubscriberFilter(status=status)))


def iter_subscribers(app: App, where: SubscriberFilter) -> Iterator[Subscriber]:
    """Stream rows in id order (exports of a million rows stay flat in memory)."""
    with app.db.reading() as session:
        query = where.apply(select(Subscriber).order_by(Subscriber.id), app.clock())
        yield from session.scalars(query.execution_options(yield_per=2000))


def count_subscribers(app: App, where: SubscriberFilter) -> int:
    with app.db.reading() as session:
        inner = where.apply(select(Subscriber.id), app.clock()).subquery()
        return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def find(app: App, email: str) -> Subscriber:
    key = normalise_address(email).key
    with app.db.reading() as session:
        subscriber = lifecycle.find_by_key(session, key)
    if subscriber is None:
        raise SubscriberError(f"{email} is not a subscriber")
    return subscriber


def history(app: App, email: str) -> tuple[Subscriber, list[SubscriberEvent]]:
    subscriber = find(app, email)
    with app.db.reading() as session:
        events = session.scalars(
            select(SubscriberEvent)
            .where(SubscriberEvent.subscriber_id == subscriber.id)
            .order_by(SubscriberEvent.id)
        ).all()
    return subscriber, list(events)


def _locked(session: Any, email: str) -> Subscriber:
    subscriber = lifecycle.find_by_key(session, normalise_address(email).key)
    if subscriber is None:
        raise SubscriberError(f"{email} is not a subscriber")
    return subscriber


def unsubscribe(app: App, email: str, *, source: str = "cli", detail: str = "") -> bool:
    """Unsubscribe at once (the next fan-out and any queued delivery skip it)."""
    with app.db.writing() as session:
        subscriber = _locked(session, email)
        return lifecycle.unsubscribe(
            session, subscriber, source=source, now=app.clock(), detail=detail
        )


def set_status(app: App, email: str, status: str, *, source: str, detail: str = "") -> bool:
    """For bounce and complaint processing (and operators): any status, with its reason."""
    if status not in SUBSCRIBER_STATUSES:
        raise SubscriberError(f"unknown status {status!r}")
    with app.db.writing() as session:
        subscriber = _locked(session, email)
        return lifecycle.set_status(
            session, subscriber, status, source=source, now=app.clock(), detail=detail
        )


def delete(app: App, email: str, *, erase: bool = False, source: str = "cli") -> str:
    """Plain delete (pending/active only) or erasure; returns what was done."""
    with app.db.writing() as session:
        subscriber = _locked(session, email)
        if erase:
            digest = lifecycle.erase(session, subscriber, source=source, now=app.clock())
            return f"erased; suppression hash {digest[:12]}…"
        lifecycle.delete_subscriber(session, subscriber, source=source, now=app.clock())
        return "deleted"


def purge_pending(app: App, older_than_days: int, *, source: str = "cli") -> int:
    """Delete sign-ups never confirmed within ``older_than_days``: a stranger may have typed
    those addresses, so keeping them forever keeps data nobody consented to."""
    if older_than_days < 1:
        raise SubscriberError("--older-than must be at least 1 day")
    cutoff = app.clock() - timedelta(days=older_than_days)
    removed = 0
    while True:
        with app.db.writing() as session:
            rows = session.scalars(
                select(Subscriber)
                .where(Subscriber.status == "pending", Subscriber.created_at < cutoff)
                .limit(1000)
            ).all()
            for subscriber in rows:
                lifecycle.delete_subscriber(session, subscriber, source=source, now=app.clock())
        removed += len(rows)
        if len(rows) < 1000:
            return removed


@dataclass(frozen=True)
class Stats:
    by_status: dict[str, int]
    paused: int
    needs_smtputf8: int
    erased: int
    weeks: list[dict[str, Any]]  # {"week": "2026-W47", "joined": n, "confirmed": n, "left": n}


def stats(app: App, weeks: int = 8) -> Stats:
    """Counts per status and, per ISO week, how many joined, confirmed and left."""
    from pulseletter.db.models import Suppression

    now = app.clock()
    with app.db.reading() as session:
        by_status = dict.fromkeys(SUBSCRIBER_STATUSES, 0)
        for status, n in session.execute(
            select(Subscriber.status, func.count()).group_by(Subscriber.status)
        ):
            by_status[status] = int(n)
        paused = session.scalar(
            select(func.count()).where(Subscriber.paused_until > now, Subscriber.status == "active")
        )
        utf8 = session.scalar(select(func.count()).where(Subscriber.needs_smtputf8.is_(True)))
        erased = session.scalar(select(func.count()).select_from(Suppression))
        tz, first_day = app.settings.timezone, app.settings.content.week_start
        current = week_containing(now, tz, first_day)
        windows = [
            week_containing(current.start - timedelta(weeks=i), tz, first_day)
            for i in reversed(range(weeks))
        ]
        table = {w.key: [0, 0, 0] for w in windows}
        start = windows[0].start

        def count(at: datetime, column: int) -> None:
            key = week_containing(at, tz, first_day).key
            if key in table:  # a time past `now` (a shifted clock) counts in no row
                table[key][column] += 1

        for (created,) in session.execute(
            select(Subscriber.created_at).where(Subscriber.created_at >= start)
        ):
            count(created, 0)
        events = select(SubscriberEvent.kind, SubscriberEvent.created_at).where(
            SubscriberEvent.created_at >= start,
            SubscriberEvent.kind.in_(("active", "unsubscribed", "bounced", "complained")),
        )
        for kind, at in session.execute(events):
            count(at, 1 if kind == "active" else 2)
    rows = [
        {"week": key, "joined": v[0], "confirmed": v[1], "left": v[2]} for key, v in table.items()
    ]
    return Stats(by_status, int(paused or 0), int(utf8 or 0), int(erased or 0), rows)

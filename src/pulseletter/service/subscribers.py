"""Subscriber use cases."""

from __future__ import annotations

from sqlalchemy import select

from pulseletter.db.models import Subscriber
from pulseletter.service.app import App
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


def list_subscribers(app: App, status: str | None = None) -> list[Subscriber]:
    with app.db.reading() as session:
        query = select(Subscriber).order_by(Subscriber.id)
        if status:
            query = query.where(Subscriber.status == status)
        return list(session.scalars(query))

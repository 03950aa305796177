"""Create subscribers and change their status, writing an event for every change."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulseletter.db.models import Subscriber, SubscriberEvent
from pulseletter.errors import SubscriberError
from pulseletter.subscribers.addresses import check_display_name, normalise_address


def new_token() -> str:
    """192 random bits, URL-safe: unguessable and unrelated to the address or id."""
    return secrets.token_urlsafe(24)


def add_subscriber(
    session: Session,
    email: str,
    *,
    name: str = "",
    status: str = "pending",
    source: str = "cli",
    now: datetime,
    check_deliverability: bool = False,
) -> Subscriber:
    address = normalise_address(email, check_deliverability=check_deliverability)
    existing = session.scalars(
        select(Subscriber).where(Subscriber.email_key == address.key)
    ).first()
    if existing is not None:
        raise SubscriberError(f"{address.email} is already a subscriber ({existing.status})")
    subscriber = Subscriber(
        email=address.email,
        email_key=address.key,
        name=check_display_name(name),
        status=status,
        status_changed_at=now,
        status_reason=source,
        source=source,
        token=new_token(),
        needs_smtputf8=address.needs_smtputf8,
        created_at=now,
        confirmed_at=now if status == "active" else None,
    )
    session.add(subscriber)
    session.flush()
    session.add(
        SubscriberEvent(subscriber_id=subscriber.id, kind=status, source=source, created_at=now)
    )
    return subscriber


def set_status(
    session: Session,
    subscriber: Subscriber,
    status: str,
    *,
    source: str,
    now: datetime,
    detail: str = "",
) -> bool:
    """Change the status and record why; returns False if it already had that status."""
    if subscriber.status == status:
        return False
    subscriber.status = status
    subscriber.status_changed_at = now
    subscriber.status_reason = source
    session.add(
        SubscriberEvent(
            subscriber_id=subscriber.id, kind=status, source=source, detail=detail, created_at=now
        )
    )
    return True

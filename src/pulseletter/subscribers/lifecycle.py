"""Create subscribers and change their status, writing an event for every change.

Lifecycle::

    (new) --sign-up/import--> pending --confirm--> active --unsubscribe--> unsubscribed
                                 |                   |----bounce------> bounced
                                 +--unsubscribe--+   +----complaint---> complained

``unsubscribed``, ``bounced`` and ``complained`` rows are the suppression list: they are kept
(never deleted silently), imports cannot change them, and only a fresh opt-in (the person
clicking a confirmation link we mailed them) makes them active again. ``erase`` removes the row
and keeps only a hash of the address in ``suppressions``.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from pulseletter.db.models import Delivery, Subscriber, SubscriberEvent, Suppression
from pulseletter.errors import SubscriberError
from pulseletter.subscribers.addresses import (
    address_hash,
    check_display_name,
    normalise_address,
)

SUPPRESSING = ("unsubscribed", "bounced", "complained")
MAX_PAUSE_WEEKS = 52


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
    allow_erased: bool = False,
) -> Subscriber:
    """A new row; refuses an existing address and (unless ``allow_erased``, for a web
    sign-up that still has to be confirmed) an address erased on request."""
    address = normalise_address(email, check_deliverability=check_deliverability)
    existing = session.scalars(
        select(Subscriber).where(Subscriber.email_key == address.key)
    ).first()
    if existing is not None:
        raise SubscriberError(f"{address.email} is already a subscriber ({existing.status})")
    if not allow_erased and is_erased(session, address.key):
        raise SubscriberError(
            f"{address.email} was erased on request and is suppressed; "
            "only the person can sign up again, through the web form"
        )
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
    if status == "active":
        subscriber.confirmed_at = now
    session.add(
        SubscriberEvent(
            subscriber_id=subscriber.id, kind=status, source=source, detail=detail, created_at=now
        )
    )
    return True


def record(
    session: Session,
    subscriber: Subscriber,
    kind: str,
    *,
    source: str,
    now: datetime,
    detail: str = "",
) -> None:
    """Append a non-status event (confirmation sent, paused, renamed) to the history."""
    session.add(
        SubscriberEvent(
            subscriber_id=subscriber.id, kind=kind, source=source, detail=detail, created_at=now
        )
    )


def find_by_key(session: Session, key: str) -> Subscriber | None:
    return session.scalars(select(Subscriber).where(Subscriber.email_key == key)).first()


def find_by_token(session: Session, token: str) -> Subscriber | None:
    if not token or len(token) > 64:
        return None
    return session.scalars(select(Subscriber).where(Subscriber.token == token)).first()


def is_erased(session: Session, key: str) -> bool:
    digest = address_hash(key)
    return (
        session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)) is not None
    )


def confirm(session: Session, subscriber: Subscriber, *, source: str, now: datetime) -> bool:
    """Opt-in proven: active from now, whatever it was (a second visit changes nothing)."""
    subscriber.paused_until = None if subscriber.status != "active" else subscriber.paused_until
    changed = set_status(session, subscriber, "active", source=source, now=now)
    if changed:
        lifted = address_hash(subscriber.email_key)
        session.execute(delete(Suppression).where(Suppression.email_hash == lifted))
    return changed


def unsubscribe(
    session: Session, subscriber: Subscriber, *, source: str, now: datetime, detail: str = ""
) -> bool:
    """Idempotent; bounced and complained stay as they are (they are stronger reasons)."""
    if subscriber.status in SUPPRESSING:
        return False
    return set_status(session, subscriber, "unsubscribed", source=source, now=now, detail=detail)


def pause(
    session: Session, subscriber: Subscriber, weeks: int, *, source: str, now: datetime
) -> None:
    """Leave the subscriber out of fan-out for ``weeks`` weeks; 0 ends a pause."""
    if not 0 <= weeks <= MAX_PAUSE_WEEKS:
        raise SubscriberError(f"a pause is 0 to {MAX_PAUSE_WEEKS} weeks, not {weeks}")
    subscriber.paused_until = now + timedelta(weeks=weeks) if weeks else None
    detail = subscriber.paused_until.isoformat() if subscriber.paused_until else "resumed"
    record(
        session, subscriber, "paused" if weeks else "resumed", source=source, now=now, detail=detail
    )


def rename(
    session: Session, subscriber: Subscriber, name: str, *, source: str, now: datetime
) -> bool:
    name = check_display_name(name)[:200]
    if name == subscriber.name:
        return False
    subscriber.name = name
    record(session, subscriber, "renamed", source=source, now=now)
    return True


def delete_subscriber(
    session: Session, subscriber: Subscriber, *, source: str, now: datetime
) -> None:
    """Plain delete: only for pending or active rows (a typo, a test address).

    A suppressed row (unsubscribed, bounced, complained) is the proof that we must not mail
    the address again, so it is never deleted this way: use ``erase``."""
    if subscriber.status in SUPPRESSING:
        raise SubscriberError(
            f"{subscriber.email} is {subscriber.status}: it stays on the suppression list; "
            "use --erase to forget the address and keep only its hash"
        )
    session.add(SubscriberEvent(subscriber_id=None, kind="deleted", source=source, created_at=now))
    _remove(session, subscriber)


def erase(session: Session, subscriber: Subscriber, *, source: str, now: datetime) -> str:
    """Right to be forgotten: remove the row, its history and the address in the ledger;
    keep only a SHA-256 of the address so it is never mailed or re-imported. Returns it."""
    digest = address_hash(subscriber.email_key)
    if session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)) is None:
        session.add(Suppression(email_hash=digest, reason="erased", created_at=now))
    session.execute(delete(SubscriberEvent).where(SubscriberEvent.subscriber_id == subscriber.id))
    session.add(SubscriberEvent(subscriber_id=None, kind="erased", source=source, created_at=now))
    _remove(session, subscriber)
    return digest


def _remove(session: Session, subscriber: Subscriber) -> None:
    """Delete the row; deliveries keep their counts but lose the address (and are skipped if
    still queued, because the sender finds no active subscriber)."""
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber.id)
        .values(email="(deleted)", subscriber_id=None)
    )
    session.delete(subscriber)
    session.flush()

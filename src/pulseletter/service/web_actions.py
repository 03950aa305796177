"""The public flows behind the web pages: sign-up (double opt-in), confirm, one-click
unsubscribe, preferences. Routes call these and present the result; nothing here knows HTTP.

Anti-enumeration: ``request_subscription`` answers the same (None or a subscriber id to mail,
never "exists") and the route's response never depends on it; the mail itself is sent after the
response, so timing does not tell either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from pulseletter.compose.render import compile_mjml, make_environment, render_template
from pulseletter.db.models import Subscriber, SubscriberEvent
from pulseletter.service.app import App
from pulseletter.service.transactional import send_transactional
from pulseletter.subscribers import lifecycle
from pulseletter.subscribers.addresses import check_display_name, normalise_address
from pulseletter.subscribers.links import personal_links
from pulseletter.subscribers.tokens import make_confirm_token, read_confirm_token

log = logging.getLogger(__name__)
CONFIRMATION_SENT = "confirmation_sent"


def request_subscription(
    app: App, email: str, name: str = "", *, source: str = "web"
) -> int | None:
    """Record a sign-up; return the id of a subscriber to send a confirmation to, or None.

    New address: a pending row. Pending, unsubscribed, bounced or complained: unchanged until
    the person confirms (a stranger cannot change anyone's status). Active: nothing to do.
    Raises SubscriberError only for input that is invalid whoever owns the address."""
    s = app.settings
    address = normalise_address(email, check_deliverability=s.subscribers.check_deliverability)
    name = check_display_name(name)[:200]
    with app.db.writing() as session:
        existing = lifecycle.find_by_key(session, address.key)
        if existing is None:
            created = lifecycle.add_subscriber(
                session, address.email, name=name, source=source, now=app.clock(), allow_erased=True
            )
            return created.id
        lifecycle.record(session, existing, "signup_repeated", source=source, now=app.clock())
        return None if existing.status == "active" else existing.id


def confirmation_allowed(app: App, subscriber_id: int) -> bool:
    """Reserve one confirmation mail under the per-address daily limit (counts, then records)."""
    limit = app.settings.subscribers.confirmations_per_address_per_day
    now = app.clock()
    with app.db.writing() as session:
        sent = session.scalar(
            select(func.count()).where(
                SubscriberEvent.subscriber_id == subscriber_id,
                SubscriberEvent.kind == CONFIRMATION_SENT,
                SubscriberEvent.created_at > now - timedelta(days=1),
            )
        )
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.status == "active" or (sent or 0) >= limit:
            return False
        lifecycle.record(session, subscriber, CONFIRMATION_SENT, source="mail", now=now)
        return True


def send_confirmation(app: App, subscriber_id: int) -> bool:
    """Mail a confirmation link if the per-address limit allows; True if one was accepted."""
    with app.db.reading() as session:
        subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return False
    if not confirmation_allowed(app, subscriber_id):
        return False
    subject, text, html, unsubscribe_url = confirmation_message(app, subscriber)
    reply = send_transactional(
        app,
        to_address=subscriber.email,  # send_transactional punycodes the domain
        to_name=subscriber.name,
        subject=subject,
        text=text,
        html=html,
        unsubscribe_url=unsubscribe_url,
    )
    if not reply.ok:
        log.warning("confirmation to subscriber %s refused: %s", subscriber_id, reply.code)
        _record_failure(app, subscriber_id, f"{reply.code} {reply.text}")
    return reply.ok


def _record_failure(app: App, subscriber_id: int, detail: str) -> None:
    with app.db.writing() as session:
        row = session.get(Subscriber, subscriber_id)
        if row is not None:
            lifecycle.record(
                session,
                row,
                "confirmation_failed",
                source="mail",
                now=app.clock(),
                detail=detail[:500],
            )


def confirmation_message(app: App, subscriber: Subscriber) -> tuple[str, str, str, str]:
    """(subject, text, html, unsubscribe_url) of the confirmation mail, from templates."""
    s = app.settings
    token = make_confirm_token(
        s.signing_secret, subscriber.token, app.clock(), s.security.confirm_token_hours
    )
    base = s.web.base_url.rstrip("/")
    links = personal_links(base, subscriber, "")
    context = {
        "newsletter": s.newsletter,
        "theme": s.theme,
        "name": subscriber.name,
        "confirm_url": f"{base}/confirm/{token}",
        "unsubscribe_url": links["unsubscribe_url"],
        "hours": s.security.confirm_token_hours,
        "archive_url": f"{base}/archive",
    }
    env = make_environment(s)
    subject = f"Confirm your subscription to {s.newsletter.name}"
    text = render_template(env, "email/confirm.txt.j2", context)
    html = compile_mjml(render_template(env, "email/confirm.mjml.j2", context), s)
    return subject, text, html, links["unsubscribe_url"]


@dataclass(frozen=True)
class Confirmed:
    name: str
    already: bool  # a second visit: nothing changed


def confirm(app: App, token: str) -> Confirmed | None:
    """Activate the subscriber behind a confirmation token; None if the row is gone.

    Raises TokenInvalid or TokenExpired (the page then says so)."""
    claim = read_confirm_token(app.settings.signing_secret, token, app.clock())
    with app.db.writing() as session:
        subscriber = lifecycle.find_by_token(session, claim.subscriber_token)
        if subscriber is None:
            return None
        changed = lifecycle.confirm(session, subscriber, source="web", now=app.clock())
        return Confirmed(subscriber.name, already=not changed)


def subscriber_for_token(app: App, token: str) -> Subscriber | None:
    with app.db.reading() as session:
        return lifecycle.find_by_token(session, token)


def unsubscribe_by_token(app: App, token: str, *, source: str) -> Subscriber | None:
    """Unsubscribe at once; idempotent. None if no subscriber has this token."""
    with app.db.writing() as session:
        subscriber = lifecycle.find_by_token(session, token)
        if subscriber is not None:
            lifecycle.unsubscribe(session, subscriber, source=source, now=app.clock())
        return subscriber


def update_preferences(
    app: App, token: str, *, name: str, pause_weeks: int, unsubscribe: bool
) -> Subscriber | None:
    """Save the preferences form in one transaction; None if no subscriber has this token."""
    now = app.clock()
    with app.db.writing() as session:
        subscriber = lifecycle.find_by_token(session, token)
        if subscriber is None:
            return None
        lifecycle.rename(session, subscriber, name, source="web", now=now)
        if unsubscribe:
            lifecycle.unsubscribe(session, subscriber, source="preferences", now=now)
        elif pause_weeks >= 0:
            lifecycle.pause(session, subscriber, pause_weeks, source="web", now=now)
        return subscriber

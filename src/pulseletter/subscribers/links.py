"""Personal links, built from ``web.base_url`` and the subscriber's token."""

from __future__ import annotations

from pulseletter.db.models import Subscriber


def personal_links(base_url: str, subscriber: Subscriber, issue_key: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {
        "unsubscribe_url": f"{base}/unsubscribe/{subscriber.token}",
        "preferences_url": f"{base}/preferences/{subscriber.token}",
        "web_url": f"{base}/archive/{issue_key}",
    }

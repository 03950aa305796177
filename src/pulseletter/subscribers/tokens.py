"""Signed, expiring tokens: confirmation links and the sign-up form's CSRF token.

A confirmation token is ``<subscriber token>.<expiry>.<signature>``: the random per-subscriber
token (192 bits) finds the row, the HMAC-SHA256 under ``security.secret`` proves that we issued
this expiry for it. Nothing in a token says anything about the address or the row id, and a
guess is as good as guessing 192 random bits, so tokens cannot be used to enumerate anyone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pulseletter.errors import SubscriberError


class TokenInvalid(SubscriberError):
    """The token was not issued by us (or the secret has changed since)."""


class TokenExpired(SubscriberError):
    """The token was ours but its lifetime is over."""


def _sign(secret: str, purpose: str, *parts: str) -> str:
    if not secret:
        raise SubscriberError(
            "security.secret is not set: set PULSELETTER_SECURITY__SECRET or security.secret_file"
        )
    message = "\x1f".join((purpose, *parts)).encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:20]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_confirm_token(secret: str, subscriber_token: str, now: datetime, hours: int) -> str:
    expires = int((now + timedelta(hours=hours)).timestamp())
    return (
        f"{subscriber_token}.{expires}.{_sign(secret, 'confirm', subscriber_token, str(expires))}"
    )


@dataclass(frozen=True)
class ConfirmClaim:
    subscriber_token: str
    expires_at: datetime


def read_confirm_token(secret: str, token: str, now: datetime) -> ConfirmClaim:
    """The subscriber token inside a confirmation token; raise TokenInvalid / TokenExpired."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise TokenInvalid("this confirmation link is not valid")
    sub_token, expires, signature = parts
    expected = _sign(secret, "confirm", sub_token, expires)
    if not hmac.compare_digest(expected, signature):
        raise TokenInvalid("this confirmation link is not valid")
    expires_at = datetime.fromtimestamp(int(expires), UTC)
    if now >= expires_at:
        raise TokenExpired("this confirmation link has expired")
    return ConfirmClaim(sub_token, expires_at)


def make_csrf_token(secret: str, nonce: str, now: datetime) -> str:
    """Signed double-submit token: the nonce also lives in a cookie; both must match."""
    issued = str(int(now.timestamp()))
    return f"{issued}.{_sign(secret, 'csrf', nonce, issued)}"


def new_csrf_nonce() -> str:
    return secrets.token_urlsafe(16)


def check_csrf_token(secret: str, token: str, nonce: str, now: datetime, minutes: int) -> bool:
    issued, _, signature = token.partition(".")
    if not issued.isdigit() or not nonce or not signature:
        return False
    if not hmac.compare_digest(_sign(secret, "csrf", nonce, issued), signature):
        return False
    age = now.timestamp() - int(issued)
    return -60 <= age <= minutes * 60

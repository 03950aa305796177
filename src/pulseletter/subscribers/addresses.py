"""Validate and normalise addresses with email-validator; one place decides what is an address.

``normalise_address`` is the rule. ``AddressChecker`` gives the same answers faster for bulk
imports: a plain ASCII local part is checked with a strict regex and each distinct domain is
validated by email-validator once and remembered; anything unusual goes the slow, exact way.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import NamedTuple

from email_validator import EmailNotValidError, validate_email

from pulseletter.errors import SubscriberError

# A strict subset of RFC 5322 dot-atom: email-validator accepts all of these unchanged.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*")
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9.\-]+")


class ValidAddress(NamedTuple):
    email: str  # normalised form, stored
    key: str  # case-folded, for uniqueness
    needs_smtputf8: bool


def normalise_address(raw: str, *, check_deliverability: bool = False) -> ValidAddress:
    try:
        info = validate_email(raw.strip(), check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{raw!r} is not a valid address: {exc}") from None
    return ValidAddress(info.normalized, info.normalized.casefold(), bool(info.smtputf8))


def address_hash(key: str) -> str:
    """What an erased address leaves behind in ``suppressions``: SHA-256 of its key.

    Not keyed by ``security.secret`` on purpose, so rotating the secret never lifts a
    suppression."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_display_name(name: str) -> str:
    if "\r" in name or "\n" in name:
        raise SubscriberError("a name must not contain line breaks")
    return name.strip()


class AddressChecker:
    """``normalise_address`` with a fast path for bulk work; answers are identical."""

    def __init__(self, *, check_deliverability: bool = False, max_domains: int = 20_000) -> None:
        self.check_deliverability = check_deliverability
        self.max_domains = max_domains
        self._domains: OrderedDict[str, str | None] = OrderedDict()  # as written -> normalised

    def check(self, raw: str) -> ValidAddress:
        raw = raw.strip()
        local, at, domain = raw.rpartition("@")
        if (
            at
            and not self.check_deliverability
            and len(local) <= 64
            and len(raw) <= 254
            and _PLAIN_LOCAL.fullmatch(local)
        ):
            normal_domain = self._domains.get(domain) or self._domain(domain)
            if normal_domain:
                email = local + "@" + normal_domain
                return ValidAddress(email, email.lower(), False)  # ASCII: lower() == casefold()
        return normalise_address(raw, check_deliverability=self.check_deliverability)

    def _domain(self, domain: str) -> str | None:
        """The normalised domain, or None when the slow path must decide (and explain)."""
        if not _PLAIN_DOMAIN.fullmatch(domain):
            return None
        if domain in self._domains:
            return self._domains[domain]
        try:
            info = validate_email("a@" + domain, check_deliverability=False)
            result: str | None = info.domain
        except EmailNotValidError:
            result = None
        self._domains[domain] = result
        if len(self._domains) > self.max_domains:
            self._domains.popitem(last=False)
        return result

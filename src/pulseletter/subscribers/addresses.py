"""Validate and normalise addresses with email-validator; one place decides what is an address."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from pulseletter.errors import SubscriberError


@dataclass(frozen=True)
class ValidAddress:
    email: str  # normalised form, stored
    key: str  # case-folded, for uniqueness
    needs_smtputf8: bool


def normalise_address(raw: str, *, check_deliverability: bool = False) -> ValidAddress:
    try:
        info = validate_email(raw.strip(), check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{raw!r} is not a valid address: {exc}") from None
    return ValidAddress(info.normalized, info.normalized.casefold(), bool(info.smtputf8))


def check_display_name(name: str) -> str:
    if "\r" in name or "\n" in name:
        raise SubscriberError("a name must not contain line breaks")
    return name.strip()

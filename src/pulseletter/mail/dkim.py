"""DKIM signing with dkimpy, covering the headers bulk-sender rules care about.

dkimpy's default header list leaves out List-Unsubscribe, List-Unsubscribe-Post and
Feedback-ID; mailbox providers want the one-click unsubscribe signed, so we name them.
"""

from __future__ import annotations

import dkim

from pulseletter.config import Settings
from pulseletter.errors import ConfigError
from pulseletter.mail.transports import DotSafe

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
)


class DkimSigner:
    """Prepends a ``DKIM-Signature`` (rsa-sha256, relaxed/relaxed) to finished message bytes."""

    def __init__(self, domain: str, selector: str, private_key: bytes) -> None:
        self.domain, self.selector, self.key = domain.encode(), selector.encode(), private_key

    def sign(self, message: bytes) -> bytes:
        present = {
            line.split(b":", 1)[0].strip().lower()
            for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            if line and line[:1] not in b" \t"
        }
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[h for h in SIGNED_HEADERS if h in present],
            linesep=b"\r\n",
        )
        signed = signature + message
        return DotSafe(signed) if isinstance(message, DotSafe) else signed


def signer_from_settings(settings: Settings) -> DkimSigner | None:
    """None when ``[dkim] domain`` is empty; a clear error if the key is missing or unusable."""
    d = settings.dkim
    if not d.domain:
        return None
    problems = []
    if not d.selector:
        problems.append("dkim.selector: required when dkim.domain is set")
    key = settings.dkim_key
    if not key:
        problems.append("dkim.key_file: no private key (set it, or PULSELETTER_DKIM__KEY)")
    elif b"PRIVATE KEY" not in key:
        problems.append("dkim.key_file: not a PEM private key")
    if problems:
        raise ConfigError(problems, settings.source)
    return DkimSigner(d.domain, d.selector, key)

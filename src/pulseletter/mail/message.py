"""Build the MIME message for one recipient, with the headers bulk senders must carry.

``build_message`` is the reference builder (an ``EmailMessage`` from scratch, about 3 ms). The
per-recipient hot path is ``mail.fastpath.MessageTemplate``, which must parse to the same
message; a property test holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid

import idna

from pulseletter.config import Settings

ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class MessageHeaders:
    """Headers that are the same for every recipient of an issue."""

    from_name: str
    from_address: str
    subject: str
    list_id: str
    reply_to: str = ""
    feedback_id: str = ""
    unsubscribe_mailto: str = ""


def headers_from_settings(settings: Settings, subject: str) -> MessageHeaders:
    """Headers shared by every recipient of an issue (and by previews and test sends)."""
    n = settings.newsletter
    domain = n.from_address.rpartition("@")[2] or "localhost"
    slug = "".join(c if c.isalnum() else "-" for c in n.name.lower()).strip("-")
    return MessageHeaders(
        from_name=n.from_name,
        from_address=n.from_address,
        subject=subject,
        reply_to=n.reply_to,
        list_id=settings.sending.list_id or f"{n.name} <{slug}.{domain}>",
        feedback_id=settings.sending.feedback_id,
        unsubscribe_mailto=settings.sending.unsubscribe_mailto,
    )


def new_message_id(from_address: str) -> str:
    """A globally unique Message-ID on the sender's domain; stored so retries reuse it."""
    return make_msgid(domain=from_address.rpartition("@")[2] or "localhost")


def wire_address(address: str) -> tuple[str, bool]:
    """The address as SMTP carries it: domain in punycode (A-labels). The flag says whether the
    local part is still non-ASCII, which needs the relay's SMTPUTF8 extension."""
    local, _, domain = address.rpartition("@")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}", not local.isascii()


def list_unsubscribe(url: str, mailto: str = "") -> str:
    """``<https://…/unsubscribe/TOKEN>`` first (one-click), then an optional mailto."""
    value = f"<{url}>"
    if mailto:
        value += f", <mailto:{mailto}?subject=unsubscribe>"
    return value


def build_message(
    headers: MessageHeaders,
    *,
    to_address: str,
    to_name: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime,
    unsubscribe_url: str,
) -> bytes:
    """multipart/alternative (text first, then HTML) with CRLF line endings, as SMTP sends it."""
    address, utf8 = wire_address(to_address)
    msg = EmailMessage(policy=SMTPUTF8 if utf8 else SMTP)
    msg["From"] = Address(headers.from_name, addr_spec=headers.from_address)
    if utf8:  # Address() refuses a non-ASCII local part even under the SMTPUTF8 policy
        quoted = to_name.replace("\\", "\\\\").replace('"', '\\"')
        msg["To"] = f'"{quoted}" <{address}>' if to_name else f"<{address}>"
    else:
        msg["To"] = Address(to_name, addr_spec=address)
    if headers.reply_to:
        msg["Reply-To"] = headers.reply_to
    msg["Subject"] = headers.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["List-Id"] = headers.list_id
    msg["List-Unsubscribe"] = list_unsubscribe(unsubscribe_url, headers.unsubscribe_mailto)
    msg["List-Unsubscribe-Post"] = ONE_CLICK
    if headers.feedback_id:
        msg["Feedback-ID"] = headers.feedback_id
    msg.set_content(text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes()

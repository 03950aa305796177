"""Build the MIME message for one recipient, with the headers bulk senders must carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from pulseletter.config import Settings


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
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(headers.from_name, addr_spec=headers.from_address)
    msg["To"] = Address(to_name, addr_spec=to_address)
    if headers.reply_to:
        msg["Reply-To"] = headers.reply_to
    msg["Subject"] = headers.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["List-Id"] = headers.list_id
    unsubscribe = f"<{unsubscribe_url}>"
    if headers.unsubscribe_mailto:
        unsubscribe += f", <mailto:{headers.unsubscribe_mailto}?subject=unsubscribe>"
    msg["List-Unsubscribe"] = unsubscribe
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if headers.feedback_id:
        msg["Feedback-ID"] = headers.feedback_id
    msg.set_content(text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes()

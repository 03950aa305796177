"""One-off messages (confirmations, test sends, editor notices) through the production path:
the same message builder, DKIM signer and configured transport as an issue."""

from __future__ import annotations

from pulseletter.mail.dkim import signer_from_settings
from pulseletter.mail.message import (
    build_message,
    headers_from_settings,
    new_message_id,
    wire_address,
)
from pulseletter.mail.transports import Reply
from pulseletter.service.app import App
from pulseletter.service.relays import one_transport


def send_transactional(
    app: App,
    *,
    to_address: str,
    to_name: str,
    subject: str,
    text: str,
    html: str,
    unsubscribe_url: str,
) -> Reply:
    """Build and send one message; returns the transport's reply (check ``reply.ok``)."""
    s = app.settings
    data = build_message(
        headers_from_settings(s, subject),
        to_address=to_address,
        to_name=to_name,
        text=text,
        html=html,
        message_id=new_message_id(s.newsletter.from_address),
        date=app.clock(),
        unsubscribe_url=unsubscribe_url,
    )
    signer = signer_from_settings(s)
    if signer is not None:
        data = signer.sign(data)
    rcpt, smtputf8 = wire_address(to_address)
    transport = one_transport(app)
    try:
        return transport.send(s.newsletter.from_address, rcpt, data, smtputf8=smtputf8)
    finally:
        transport.close()

"""A confirmation to an address with a non-ASCII local part goes out as an SMTPUTF8 message."""

from __future__ import annotations

from pathlib import Path

from aiosmtpd.controller import Controller

from pulseletter.mail.sink import SavingHandler, free_port
from pulseletter.mail.transports import SmtpTransport
from pulseletter.service import subscribers as subscriber_service
from pulseletter.service.app import App
from pulseletter.service.web_actions import send_confirmation


def test_confirmation_to_a_utf8_local_part_uses_smtputf8(app: App, tmp_path: Path) -> None:
    handler = SavingHandler(tmp_path / "received")
    port = free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    server.start()
    try:
        app.transport_factory = lambda: SmtpTransport("127.0.0.1", port, security="none")
        sub = subscriber_service.add(app, "zoë@bücher.de", name="Zoë")
        assert sub.needs_smtputf8
        assert send_confirmation(app, sub.id)
    finally:
        server.stop()
    assert len(handler.messages) == 1
    _mail_from, rcpts, data = handler.messages[0]
    assert rcpts == ["zoë@xn--bcher-kva.de"]  # punycoded domain, UTF-8 local part
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    assert '"Zoë" <zoë@xn--bcher-kva.de>' in head

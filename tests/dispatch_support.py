"""Test helpers for dispatch: an issue ready to send, subscribers, and aiosmtpd servers that
misbehave on purpose (scripted replies per recipient, drops, slowness, refused logins)."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from sqlalchemy import select

from pulseletter.compose.render import placeholder
from pulseletter.db.models import Delivery, Issue, Subscriber
from pulseletter.mail.sink import free_port
from pulseletter.service.app import App
from pulseletter.subscribers.lifecycle import add_subscriber

KEY = "2026-W47"


def issue_html(body_kb: int = 2) -> str:
    filler = "<p>" + "A paragraph about batteries, chips and satellites. " * 20 + "</p>\n"
    return (
        "<!doctype html><html><body>\n"
        f"<p>Hello {placeholder('name')},</p>\n"
        + filler
        * max(1, body_kb * 1024 // len(filler))
        + f'<p><a href="{placeholder("web_url")}">Read on the web</a> · '
        f'<a href="{placeholder("preferences_url")}">Preferences</a> · '
        f'<a href="{placeholder("unsubscribe_url")}">Unsubscribe</a></p>\n'
        "</body></html>\n"
    )


def issue_text() -> str:
    return (
        f"Hello {placeholder('name')},\n\nThis week: batteries, chips and satellites.\n"
        ".a line starting with a dot\n\n"
        f"Web: {placeholder('web_url')}\nUnsubscribe: {placeholder('unsubscribe_url')}\n"
    )


def make_issue(
    app: App, subscribers: int, *, body_kb: int = 2, names: bool = True, state: str = "ready"
) -> Issue:
    """``subscribers`` active subscribers and a ready issue under KEY (no compose needed)."""
    now = app.clock()
    with app.db.writing() as session:
        for n in range(subscribers):
            add_subscriber(
                session,
                f"reader{n:04d}@example.com",
                name=f"Reader {n}" if names else "",
                status="active",
                now=now,
            )
        issue = Issue(
            key=KEY,
            number=7,
            week_start=now - timedelta(days=7),
            week_end=now,
            state=state,
            send_started_at=now if state == "sending" else None,
            subject="The Weekly Pulse #7: Grid batteries outgrow the pilot",
            html=issue_html(body_kb),
            text=issue_text(),
            content={"stories": [{"title": "Grid batteries"}]},
            created_at=now,
        )
        session.add(issue)
    return issue


def deliveries(app: App) -> dict[str, Delivery]:
    with app.db.reading() as session:
        return {d.email: d for d in session.scalars(select(Delivery))}


def statuses(app: App) -> dict[str, str]:
    return {email: d.status for email, d in deliveries(app).items()}


def subscriber(app: App, email: str) -> Subscriber:
    with app.db.reading() as session:
        found = session.scalars(select(Subscriber).where(Subscriber.email == email)).first()
        assert found is not None
        return found


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


Script = Callable[[str, int], str | None]  # (recipient, attempt number) -> reply or None


@dataclass
class FaultHandler:
    """Replies scripted per recipient and attempt; records what the server accepted."""

    rcpt: Script | None = None
    data: Script | None = None
    data_delay: float = 0.0
    drop_after_dot: set[str] = field(default_factory=set)
    drop_at_data: set[str] = field(default_factory=set)
    hold: threading.Event | None = None  # while set, DATA replies wait (a sender "mid-DATA")
    accepted: list[tuple[str, bytes]] = field(default_factory=list)  # 250 after the dot
    unacked: list[tuple[str, bytes]] = field(default_factory=list)  # dot seen, no reply sent
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    commands: list[str] = field(default_factory=list)
    held: int = 0  # DATA replies that waited on ``hold``
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, opts: Any
    ) -> str:
        self.commands.append(" ".join([f"MAIL {address}", *opts]))
        envelope.mail_from = address
        envelope.mail_options.extend(opts)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, opts: Any
    ) -> str:
        with self.lock:
            self.attempts[address] += 1
            n = self.attempts[address]
        self.commands.append(f"RCPT {address}")
        reply = self.rcpt(address, n) if self.rcpt else None
        if reply is not None:
            if reply.startswith("421"):  # the server closes the channel after saying so
                asyncio.get_running_loop().call_later(0.02, server.transport.close)
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = envelope.rcpt_tos[0]
        data: bytes = envelope.original_content or envelope.content
        if self.hold is not None and self.hold.is_set():
            # an MTA that has queued the message (delivered) but is slow to say so
            with self.lock:
                self.held += 1
                self.accepted.append((rcpt, data))
            while self.hold.is_set():
                await asyncio.sleep(0.01)
            return "250 Message accepted (late)"
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if rcpt in self.drop_after_dot:
            with self.lock:
                self.unacked.append((rcpt, data))
            server.transport.close()
            return "250 never seen"
        reply = self.data(rcpt, self.attempts[rcpt]) if self.data else None
        if reply is not None:
            return reply
        with self.lock:
            self.accepted.append((rcpt, data))
        return "250 Message accepted"

    def received(self) -> list[str]:
        return sorted(r for r, _ in self.accepted)


class FaultSMTP(SMTP):
    """Drops the connection on DATA for chosen recipients: nothing can have been delivered."""

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        if self.envelope is not None and set(self.envelope.rcpt_tos) & handler.drop_at_data:
            handler.drop_at_data -= set(self.envelope.rcpt_tos)  # once
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_DATA(arg)


class FaultController(Controller):
    def factory(self) -> SMTP:
        return FaultSMTP(self.handler, **self.SMTP_kwargs)


class FaultServer:
    """``with FaultServer(handler) as server: server.port`` (aiosmtpd on 127.0.0.1)."""

    def __init__(
        self, handler: FaultHandler, *, password: str | None = None, smtputf8: bool = False
    ) -> None:
        self.handler = handler
        self.host, self.port = "127.0.0.1", free_port()
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
        if password is not None:

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> AuthResult:
                ok = getattr(auth_data, "password", b"") == password.encode()
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        self._controller = FaultController(
            handler, hostname=self.host, port=self.port, ready_timeout=10, **kwargs
        )

    def __enter__(self) -> FaultServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

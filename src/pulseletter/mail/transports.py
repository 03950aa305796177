"""Transports hand finished message bytes to the world: SMTP, a folder of .eml files, or memory.

Every transport answers with a ``Reply`` (code, text, stage) instead of raising per outcome, so
the sender classifies results by SMTP code, never by exception type (smtplib raises
``SMTPRecipientsRefused`` for a 451 and a 550 alike).
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pulseletter.config import Settings


@dataclass(frozen=True)
class Reply:
    code: int
    text: str
    stage: str = "data"  # connect, auth, mail, rcpt, data, after-data

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


class Transport(Protocol):
    name: str

    def send(self, mail_from: str, rcpt: str, data: bytes) -> Reply: ...

    def close(self) -> None: ...


class FileTransport:
    """Writes each message to ``DIR/<n>-<rcpt>.eml``: the safe default of a fresh config."""

    name = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = len(list(folder.glob("*.eml")))

    def send(self, mail_from: str, rcpt: str, data: bytes) -> Reply:
        with self._lock:
            self._count += 1
            n = self._count
        safe = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in rcpt)
        path = self.folder / f"{n:06d}-{safe}.eml"
        path.write_bytes(data)
        return Reply(250, f"written to {path.name}")

    def close(self) -> None:
        pass


@dataclass
class MemoryTransport:
    """Keeps (mail_from, rcpt, bytes) in a list; answers a scripted reply per recipient."""

    name: str = "memory"
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    replies: dict[str, Reply] = field(default_factory=dict)

    def send(self, mail_from: str, rcpt: str, data: bytes) -> Reply:
        reply = self.replies.get(rcpt, Reply(250, "OK"))
        if reply.ok:
            self.sent.append((mail_from, rcpt, data))
        return reply

    def close(self) -> None:
        pass


class SmtpTransport:
    """One SMTP connection, opened lazily and reused; replies mapped to codes, not exceptions."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str = "",
        password: str = "",
        local_hostname: str = "localhost",
        timeout: float = 30.0,
        data_timeout: float = 600.0,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.local_hostname = local_hostname
        self.timeout, self.data_timeout = timeout, data_timeout
        self._conn: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        s = settings.smtp
        return cls(
            s.host,
            s.port,
            security=s.security,
            username=s.username,
            password=settings.smtp_password,
            local_hostname=s.local_hostname,
            timeout=s.timeout,
            data_timeout=s.data_timeout,
        )

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if self.security == "ssl":
            conn = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=context,
            )
        else:
            conn = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
            if self.security == "starttls":
                conn.starttls(context=context)
        conn.ehlo()
        if self.username:
            conn.login(self.username, self.password)
        return conn

    def send(self, mail_from: str, rcpt: str, data: bytes) -> Reply:
        stage = "connect"
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            stage = "mail"
            code, text = conn.mail(mail_from)
            if code != 250:
                return self._fail(code, text, stage)
            stage = "rcpt"
            code, text = conn.rcpt(rcpt)
            if code not in (250, 251):
                conn.rset()
                return Reply(code, _text(text), stage)
            stage = "data"
            if conn.sock is not None:
                conn.sock.settimeout(self.data_timeout)  # RFC 5321: wait long after the dot
            code, text = conn.data(data)
            if conn.sock is not None:
                conn.sock.settimeout(self.timeout)
            if code != 250:
                conn.rset()
            return Reply(code, _text(text), stage)
        except smtplib.SMTPAuthenticationError as exc:
            return self._fail(exc.smtp_code, exc.smtp_error, "auth")
        except smtplib.SMTPResponseException as exc:
            return self._fail(exc.smtp_code, exc.smtp_error, stage)
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            # no reply at all: after DATA was sent we cannot know whether it was delivered
            after = "after-data" if stage == "data" else stage
            return self._fail(0, f"{type(exc).__name__}: {exc}", after)

    def _fail(self, code: int, text: bytes | str, stage: str) -> Reply:
        self.close()
        return Reply(code, _text(text), stage)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def transport_from_settings(settings: Settings) -> Transport:
    if settings.transport.kind == "smtp":
        return SmtpTransport.from_settings(settings)
    return FileTransport(settings.path(settings.transport.file_dir))

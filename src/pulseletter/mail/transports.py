"""Transports hand finished message bytes to the world: SMTP, a folder of .eml files, or memory.

Every transport answers with a ``Reply`` (code, text, stage) instead of raising per outcome, so
the sender classifies results by SMTP code and stage, never by exception type (smtplib raises
``SMTPRecipientsRefused`` for a 451 and a 550 alike). Code 0 means "no reply at all"
(a dropped connection or a timeout); its stage says how far the conversation got.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pulseletter.config import Settings

# Stages, in the order of an SMTP conversation. "after-data": the final dot was sent and no
# reply came back, so the message may or may not have been delivered.
# "local": refused by this client before asking the relay (e.g. SMTPUTF8 not offered).
STAGES = ("connect", "auth", "mail", "rcpt", "data", "after-data", "local")


@dataclass(frozen=True)
class Reply:
    code: int
    text: str
    stage: str = "data"

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


@dataclass(frozen=True)
class Wait:
    """A paused SMTP exchange: waiting for ``sock`` to become readable, at most ``seconds``."""

    sock: socket.socket | None
    seconds: float


class Transport(Protocol):
    name: str

    def send(self, mail_from: str, rcpt: str, data: bytes, *, smtputf8: bool = False) -> Reply: ...

    def close(self) -> None: ...


class FileTransport:
    """Writes each message to ``DIR/<n>-<rcpt>.eml``: the safe default of a fresh config."""

    name = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = len(list(folder.glob("*.eml")))

    def send(self, mail_from: str, rcpt: str, data: bytes, *, smtputf8: bool = False) -> Reply:
        with self._lock:
            self._count += 1
            n = self._count
        safe = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in rcpt)
        path = self.folder / f"{n:06d}-{safe}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # a crash never leaves half a message behind
        return Reply(250, f"written to {path.name}")

    def close(self) -> None:
        pass


@dataclass
class MemoryTransport:
    """Keeps (mail_from, rcpt, bytes) in a list; answers a scripted reply per recipient."""

    name: str = "memory"
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    replies: dict[str, Reply] = field(default_factory=dict)

    def send(self, mail_from: str, rcpt: str, data: bytes, *, smtputf8: bool = False) -> Reply:
        reply = self.replies.get(rcpt, Reply(250, "OK"))
        if reply.ok:
            self.sent.append((mail_from, rcpt, data))
        return reply

    def close(self) -> None:
        pass


class DotSafe(bytes):
    """Message bytes known to end in CRLF with no line starting with '.': no stuffing scan.

    The fast path guarantees it (QP encodes a leading dot as =2E; folded header lines start
    with a space), and scanning 40 KB for CRLF-dot costs more than building the message."""


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2 transparency, plus the final CRLF the terminating dot needs."""
    if isinstance(data, DotSafe):
        return data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n..")
    return data


class SmtpTransport:
    """One SMTP connection, opened lazily and reused.

    TLS is verified with ``ssl.create_default_context()``; the EHLO name is given, never looked
    up. If the relay offers PIPELINING, MAIL, RCPT and DATA go out in one write (RFC 2920).
    After the final dot the client waits ``data_timeout`` (RFC 5321 asks for 10 minutes): a
    short wait there turns slow relays into duplicates.
    """

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
        name: str = "smtp",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.local_hostname = local_hostname
        self.timeout, self.data_timeout = timeout, data_timeout
        self.name = name
        self.ssl_context = ssl_context
        self.messages = 0  # messages attempted on the current connection
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

    def _context(self) -> ssl.SSLContext:
        """Verified TLS; made once per transport (loading the CA store costs milliseconds)."""
        if self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        return self.ssl_context

    def _connect(self) -> smtplib.SMTP:
        conn: smtplib.SMTP
        if self.security == "ssl":
            context = self._context()
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
        try:
            conn.ehlo()
            if self.security == "starttls":
                conn.starttls(context=self._context())
                conn.ehlo()
        except BaseException:
            conn.close()
            raise
        return conn

    def connect(self) -> Reply:
        """Open (and authenticate) the connection if needed; a failure comes back as a Reply."""
        if self._conn is not None:
            return Reply(250, "connected", "connect")
        try:
            conn = self._connect()
        except smtplib.SMTPResponseException as exc:
            return Reply(exc.smtp_code, _text(exc.smtp_error), "connect")
        except (smtplib.SMTPException, OSError) as exc:
            return Reply(0, f"{type(exc).__name__}: {exc}", "connect")
        if self.username:
            try:
                conn.login(self.username, self.password)
            except smtplib.SMTPResponseException as exc:
                conn.close()
                return Reply(exc.smtp_code, _text(exc.smtp_error), "auth")
            except (smtplib.SMTPException, OSError) as exc:
                conn.close()
                return Reply(0, f"{type(exc).__name__}: {exc}", "auth")
        self._conn = conn
        self.messages = 0
        return Reply(250, "connected", "connect")

    def send(self, mail_from: str, rcpt: str, data: bytes, *, smtputf8: bool = False) -> Reply:
        steps = self.steps(mail_from, rcpt, data, smtputf8=smtputf8)
        try:
            while True:
                next(steps)  # blocking: just read on; the socket's own timeout applies
        except StopIteration as done:
            reply: Reply = done.value
            return reply

    def steps(
        self, mail_from: str, rcpt: str, data: bytes, *, smtputf8: bool = False
    ) -> Generator[Wait, None, Reply]:
        """``send`` as a generator that pauses wherever it would wait for the relay.

        Each pause yields ``Wait(socket, seconds)``: resume when the socket is readable, or
        throw ``TimeoutError`` in after ``seconds`` (it ends as a no-reply at that stage).
        This lets one thread drive many connections (``dispatch.sender``); ``send`` simply
        resumes at once and lets the blocking read wait."""
        opened = self.connect()
        if not opened.ok:
            return opened
        conn = self._conn
        assert conn is not None
        self.messages += 1
        if smtputf8 and not conn.has_extn("smtputf8"):
            # our relay's shortcoming, not the address's: "local" never counts as a bounce
            return Reply(553, "the relay does not offer SMTPUTF8, needed for this address", "local")
        options = " SMTPUTF8 BODY=8BITMIME" if smtputf8 else ""
        encoding = "utf-8" if smtputf8 else "ascii"
        mail = f"MAIL FROM:<{mail_from}>{options}\r\n".encode(encoding)
        to = f"RCPT TO:<{rcpt}>\r\n".encode(encoding)
        stage = "mail"
        try:
            if conn.has_extn("pipelining"):
                _write(conn, mail + to + b"DATA\r\n")
                yield Wait(conn.sock, self.timeout)
                mail_reply = self._reply(conn, "mail")
                rcpt_reply = self._reply(conn, "rcpt")
                data_reply = self._reply(conn, "data")
                failed = next((r for r in (mail_reply, rcpt_reply) if r.code >= 300), None)
                if failed is not None:
                    if data_reply.code == 354:  # a lenient server: end the empty DATA
                        _write(conn, b".\r\n")
                        _read_reply(conn)
                    return self._after_failure(conn, failed)
            else:
                _write(conn, mail)
                yield Wait(conn.sock, self.timeout)
                mail_reply = self._reply(conn, "mail")
                if mail_reply.code >= 300:
                    return self._after_failure(conn, mail_reply)
                stage = "rcpt"
                _write(conn, to)
                yield Wait(conn.sock, self.timeout)
                rcpt_reply = self._reply(conn, "rcpt")
                if rcpt_reply.code >= 300:
                    return self._after_failure(conn, rcpt_reply)
                stage = "data"
                _write(conn, b"DATA\r\n")
                yield Wait(conn.sock, self.timeout)
                data_reply = self._reply(conn, "data")
            stage = "data"
            if data_reply.code != 354:
                return self._after_failure(conn, data_reply)
            _write(conn, dot_stuff(data) + b".\r\n")
            stage = "after-data"
            yield Wait(conn.sock, self.data_timeout)
            if conn.sock is not None:
                conn.sock.settimeout(self.data_timeout)
            final = self._reply(conn, "data")
            if conn.sock is not None:
                conn.sock.settimeout(self.timeout)
            if final.code == 421:
                self.close()
            return final
        except (smtplib.SMTPException, OSError) as exc:
            # no reply: before the final dot nothing was delivered; after it, we cannot know
            self._drop()
            return Reply(0, f"{type(exc).__name__}: {exc}", stage)

    @staticmethod
    def _reply(conn: smtplib.SMTP, stage: str) -> Reply:
        code, text = _read_reply(conn)
        return Reply(code, _text(text), stage)

    def _after_failure(self, conn: smtplib.SMTP, reply: Reply) -> Reply:
        """Keep the connection for the next message (RSET), unless the server is closing it."""
        if reply.code == 421:
            self._drop()
            return reply
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
        return reply

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None


# The per-message conversation skips smtplib's send() and getreply() (debug hooks, a Python
# loop per line): smtplib still opens, secures and authenticates the connection, and these
# two speak the same bytes on the socket and the buffered reader it set up.
def _write(conn: smtplib.SMTP, data: bytes) -> None:
    if conn.sock is None:
        raise smtplib.SMTPServerDisconnected("please run connect() first")
    conn.sock.sendall(data)


def _read_reply(conn: smtplib.SMTP) -> tuple[int, bytes]:
    """One (possibly multi-line) reply, as ``smtplib.SMTP.getreply`` returns it."""
    if conn.file is None:
        if conn.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        conn.file = conn.sock.makefile("rb")
    lines = []
    while True:
        try:
            line = conn.file.readline(smtplib._MAXLINE + 1)
        except OSError as exc:
            conn.close()
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from exc
        if not line:
            conn.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > smtplib._MAXLINE:
            conn.close()
            raise smtplib.SMTPResponseException(500, "Line too long.")
        lines.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            break
    try:
        code = int(line[:3])
    except ValueError:
        code = -1
    return code, b"\n".join(lines)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def transport_from_settings(settings: Settings) -> Transport:
    if settings.transport.kind == "smtp":
        return SmtpTransport.from_settings(settings)
    return FileTransport(settings.path(settings.transport.file_dir))

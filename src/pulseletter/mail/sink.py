"""An embedded SMTP server (aiosmtpd) on 127.0.0.1 that saves what it receives as .eml files.

Used by ``pulseletter demo`` and by the tests: a real SMTP conversation, nothing leaves the host.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port(host: str = "127.0.0.1") -> int:
    """aiosmtpd 1.4.6 cannot bind port 0 itself, so ask the OS for a free port first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SavingHandler:
    """Writes each message as received (CRLF, exactly the DATA bytes) to ``folder``."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.messages: list[tuple[str, list[str], bytes]] = []
        self._lock = threading.Lock()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        with self._lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), data))
            n = len(self.messages)
        if self.folder is not None:
            (self.folder / f"{n:05d}.eml").write_bytes(data)
        return "250 Message accepted for delivery"


class SmtpSink:
    """Context manager: ``with SmtpSink(folder) as sink: ... sink.port``."""

    def __init__(self, folder: Path | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.handler = SavingHandler(folder)
        self._controller = Controller(self.handler, hostname=host, port=self.port, ready_timeout=10)

    @property
    def messages(self) -> list[tuple[str, list[str], bytes]]:
        return self.handler.messages

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

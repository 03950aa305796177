"""A minimal, fast SMTP responder for benchmarks: answers the protocol, counts messages.

aiosmtpd reads DATA line by line and tops out at a few hundred messages per second on a small
machine, which would hide the sender's own cost. This one scans for the final dot in bulk and
keeps nothing. It advertises PIPELINING, so pipelining clients may batch their commands.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
from multiprocessing.sharedctypes import Synchronized
from typing import Any


class Responder(asyncio.Protocol):
    def __init__(self, counter: Synchronized[int]) -> None:
        self.counter = counter
        self.buffer = bytearray()
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"220 bench ESMTP ready\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                del self.buffer[: end + 5]
                self.in_data = False
                with self.counter.get_lock():
                    self.counter.value += 1
                out.append(b"250 2.0.0 queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(self.buffer[:end]).upper()
            del self.buffer[: end + 2]
            verb = line[:4]
            if verb in (b"EHLO", b"HELO"):
                out.append(b"250-bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == b"DATA":
                out.append(b"354 go ahead\r\n")
                self.in_data = True
                self.buffer[:0] = b"\r\n"  # so a message whose body is empty still ends
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                assert self.transport is not None
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            else:
                out.append(b"250 2.0.0 ok\r\n")
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


def serve(sock: socket.socket, counter: Synchronized[int]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Responder(counter), sock=sock)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class ResponderProcess:
    """Runs the responder in its own process (its own core and GIL); ``count`` is shared."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self.counter: Synchronized[int] = multiprocessing.Value("q", 0)  # type: ignore[assignment]
        self.process = multiprocessing.Process(
            target=serve, args=(self.sock, self.counter), daemon=True
        )

    @property
    def count(self) -> int:
        return int(self.counter.value)

    def __enter__(self) -> ResponderProcess:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join()
        self.sock.close()

"""Helpers for the subscriber and web tests: a TestClient on the app, CSRF form posts, and
reading links out of the messages a transport received."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import time
import warnings
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from pulseletter.mail.transports import MemoryTransport
from pulseletter.service.app import App
from pulseletter.web.app import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def client(app: App) -> TestClient:
    return TestClient(create_app(app), base_url="http://127.0.0.1:8025")


def form_token(c: TestClient) -> str:
    page = c.get("/subscribe")
    assert page.status_code == 200
    match = CSRF.search(page.text)
    assert match, "the sign-up form has no CSRF token"
    return match.group(1)


def subscribe_form(c: TestClient, email_address: str, name: str = "", **extra: str):  # type: ignore[no-untyped-def]
    data = {"email": email_address, "name": name, "csrf_token": form_token(c), "website": ""}
    data.update(extra)
    return c.post("/subscribe", data=data)


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def text_body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def confirm_path(transport: MemoryTransport, rcpt: str) -> str:
    """The /confirm/... path from the last confirmation mail sent to ``rcpt``."""
    for _, to, data in reversed(transport.sent):
        if to == rcpt:
            match = re.search(r"https?://[^/\s]+(/confirm/\S+)", text_body(parse(data)))
            assert match, "no confirmation link in the mail"
            return match.group(1)
    raise AssertionError(f"no mail was sent to {rcpt}")


def unsubscribe_url(data: bytes) -> str:
    """The https URL in List-Unsubscribe, as a mailbox provider reads it."""
    header = str(parse(data)["List-Unsubscribe"])
    match = re.search(r"<(https?://[^>]+)>", header)
    assert match, header
    return match.group(1)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def start_server(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSELETTER_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulseletter", "--config", str(config), "serve", "--web-only"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"the server exited: {out}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise AssertionError("the server did not answer /healthz within 15 s")

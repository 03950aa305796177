"""What a person sees: headless Chromium signs up through the real form on a real server
(CSRF cookie and all), confirms from the mail, and unsubscribes with the button."""

from __future__ import annotations

import re
import time
from pathlib import Path

from browser_support import chromium
from conftest import write_config
from pulseletter.config import load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.mail.sink import free_port
from pulseletter.service.app import App
from pulseletter.service.subscribers import find
from subscribers_support import parse, start_server, text_body


def test_a_person_signs_up_confirms_and_unsubscribes_in_a_browser(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(
        tmp_path / "config.toml",
        {
            "database": {"url": "sqlite:///subscribers.db"},
            "security": {"secret": "browser-test-secret"},
            "web": {"port": port, "base_url": base},
            "transport": {"kind": "file", "file_dir": "outbox"},
        },
    )
    settings = load_settings(config, environ={})
    app = App.open(settings, check_schema=False)
    upgrade(app.db.engine)
    server = start_server(config, port)
    try:
        with chromium() as browser:
            page = browser.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security" in m.text else None,
            )
            page.goto(f"{base}/")  # the home page leads to the form
            assert page.url == f"{base}/subscribe"
            trap = page.locator("input[name=website]").bounding_box()
            assert trap is not None and trap["x"] + trap["width"] < 0  # the honeypot: off-screen
            header = page.locator("header").evaluate("e => getComputedStyle(e).backgroundColor")
            assert header == "rgb(31, 58, 95)"  # inline styles pass the CSP
            page.fill("#email", "Reader@Example.com")
            page.fill("#name", "Reader")
            page.click("button[type=submit]")
            assert page.locator("h1").inner_text() == "Check your inbox"

            mails = wait_for_mail(tmp_path / "outbox")  # sent after the answer, by design
            assert len(mails) == 1
            body = text_body(parse(mails[0].read_bytes()))
            link = re.search(r"(http://\S+/confirm/\S+)", body)
            assert link
            page.goto(link.group(1))
            assert page.locator("h1").inner_text() == "You are subscribed"
            assert find(app, "reader@example.com").status == "active"

            token = find(app, "reader@example.com").token
            page.goto(f"{base}/unsubscribe/{token}")
            assert find(app, "reader@example.com").status == "active"  # a visit changes nothing
            page.click("button.danger")
            assert page.locator("h1").inner_text() == "You are unsubscribed"
            assert find(app, "reader@example.com").status == "unsubscribed"
            assert violations == []
    finally:
        server.terminate()
        server.wait(timeout=10)
        app.close()


def wait_for_mail(folder: Path, timeout: float = 10.0) -> list[Path]:
    """The confirmation goes out after the response (so timing reveals nothing): wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mails = sorted(folder.glob("*.eml"))
        if mails:
            return mails
        time.sleep(0.05)
    return []

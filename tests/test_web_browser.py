"""What a person sees: headless Chromium signs up through the real form on a real server
(CSRF cookie and all), confirms from the mail, and unsubscribes with the button."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import write_config
from pulseletter.config import load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.mail.sink import free_port
from pulseletter.service.app import App
from pulseletter.service.subscribers import find
from subscribers_support import parse, start_server, text_body

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        if os.environ.get("PULSELETTER_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (PULSELETTER_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("Chromium is not installed")
    return path


@pytest.mark.browser
def test_a_person_signs_up_confirms_and_unsubscribes_in_a_browser(tmp_path: Path) -> None:
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
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
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=ARGS)
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

            mails = sorted((tmp_path / "outbox").glob("*.eml"))
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
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        app.close()

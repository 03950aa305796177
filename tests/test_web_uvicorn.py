"""The "done when" of one-click unsubscribe, over real HTTP: a real uvicorn process
(`pulseletter serve --web-only`) on 127.0.0.1, a real SMTP server receiving a real issue, and
a POST exactly as Gmail sends it to the URL in that message's List-Unsubscribe header. The
subscriber then gets nothing from the next issue."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import FixedClock, write_config
from pulseletter.config import load_settings
from pulseletter.content.week import week_from_key
from pulseletter.db.migrate import upgrade
from pulseletter.mail.sink import SmtpSink, free_port
from pulseletter.service.app import App
from pulseletter.service.content import ingest
from pulseletter.service.demo import copy_sample_content
from pulseletter.service.issues import prepare_issue, resolve_week
from pulseletter.service.sending import send_issue
from pulseletter.service.subscribers import add_demo_subscribers, find
from subscribers_support import parse, start_server, unsubscribe_url


@pytest.fixture
def site(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[tuple[Path, int]]:
    """A config whose links point at a free local port and whose transport is the sink."""
    port = free_port()
    config = write_config(
        tmp_path / "config.toml",
        {
            "database": {"url": "sqlite:///subscribers.db"},
            "content": {"dir": "content"},
            "security": {"secret": "uvicorn-test-secret"},
            "web": {"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
            "transport": {"kind": "smtp"},
            "smtp": {"host": smtp_sink.host, "port": smtp_sink.port, "security": "none"},
        },
    )
    yield config, port


def test_gmail_style_one_click_over_real_http_stops_the_next_issue(
    site: tuple[Path, int], smtp_sink: SmtpSink, clock: FixedClock
) -> None:
    config, port = site
    settings = load_settings(config, environ={})
    app = App.open(settings, check_schema=False, clock=clock)
    upgrade(app.db.engine)
    copy_sample_content(settings.path("content"), clock())
    ingest(app, [settings.path("content")])
    add_demo_subscribers(app, 3)
    first = prepare_issue(app, resolve_week(app, None))
    assert send_issue(app, first.key).state == "sent"
    assert len(smtp_sink.messages) == 3

    _, _, data = next(m for m in smtp_sink.messages if m[1] == ["reader002@example.com"])
    msg = parse(data)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = unsubscribe_url(data)
    assert url.startswith(f"http://127.0.0.1:{port}/unsubscribe/")

    server = start_server(config, port)
    try:
        # What Gmail sends: a POST, urlencoded body, no cookies, no redirects followed.
        with httpx.Client(follow_redirects=False) as browser_less:
            answer = browser_less.post(
                url,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            again = browser_less.post(
                url,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        assert answer.status_code == 200, answer.text
        assert again.status_code == 200
        assert "set-cookie" not in answer.headers
        assert answer.headers["referrer-policy"] == "no-referrer"
        curl = shutil.which("curl")
        if curl:  # the issue's own words: a curl POST gets 200 (a repeat, so idempotent too)
            out = subprocess.run(
                [
                    curl,
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{redirect_url}",
                    "-X",
                    "POST",
                    "-H",
                    "Content-Type: application/x-www-form-urlencoded",
                    "--data",
                    "List-Unsubscribe=One-Click",
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            assert out.strip() == "200"
    finally:
        server.terminate()
        server.wait(timeout=10)

    gone = find(app, "reader002@example.com")
    assert gone.status == "unsubscribed" and gone.status_reason == "one-click"

    smtp_sink.messages.clear()
    earlier = week_from_key("2026-W46", settings.timezone)
    second = prepare_issue(app, earlier)
    assert second.key != first.key
    assert send_issue(app, second.key).state == "sent"
    received = sorted(r for _, rs, _ in smtp_sink.messages for r in rs)
    assert received == ["reader001@example.com", "reader003@example.com"]
    app.close()

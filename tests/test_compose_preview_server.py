"""The live preview server, on a real socket: its views, reloads on change, and template errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from compose_support import sample_app
from pulseletter.web.preview_server import PreviewServer


def wait_for(check: Callable[[], bool], timeout: float = 8.0) -> None:
    """Poll until ``check()``: the watcher reacts in well under a second on a quiet machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("the preview did not change in time")


def test_preview_server_shows_every_view_and_reloads_on_changes(
    make_settings, clock, tmp_path: Path
) -> None:
    overrides = tmp_path / "overrides"
    (overrides / "email" / "partials").mkdir(parents=True)
    with (
        sample_app(make_settings, clock, templates={"dir": str(overrides)}) as app,
        PreviewServer(app, "2026-W47") as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        assert server.url.startswith("http://127.0.0.1:")
        page = client.get("/").text
        for needle in (
            'id="desktop" title="desktop" src="/issue.html',
            'width="600"',
            'id="mobile"',
            'width="375"',
            'src="/dark.html',
            '<pre id="text">',
            "<th>List-Unsubscribe</th>",
            "<th>Subject</th>",
            'Lint: <span class="ok">OK to send',
        ):
            assert needle in page, needle
        issue = client.get("/issue.html").text
        assert "LEAD STORY" in issue and "/unsubscribe/PREVIEW-TOKEN" in issue
        dark = client.get("/dark.html").text
        assert "@media all" in dark and "prefers-color-scheme: dark" not in dark
        assert "Unsubscribe (one click)" in client.get("/issue.txt").text
        assert client.get("/issue.eml").content.startswith(b"From: ")
        assert client.get("/lint.json").json()["ok"] is True

        def version() -> int:
            return int(client.get("/version").json()["version"])

        # 1. a broken template: the page shows the error with file and line, server stays up
        v = version()
        broken = overrides / "email" / "partials" / "glossary.mjml.j2"
        broken.write_text("<mj-section>\n{% if %}\n", "utf-8")
        wait_for(lambda: version() > v)
        page = client.get("/").text
        assert 'class="error"' in page and f"{broken}:2" in page
        assert "LEAD STORY" in client.get("/issue.html").text  # the last good build stays

        # 2. fixed again: the error is gone
        v = version()
        broken.unlink()
        wait_for(lambda: version() > v and not client.get("/version").json()["error"])
        assert 'class="error"' not in client.get("/").text

        # 3. the config changes: the new name shows
        v = version()
        config = Path(app.settings.source)
        config.write_text(
            config.read_text("utf-8") + '\n[newsletter]\nname = "Renamed Weekly"\n', "utf-8"
        )
        wait_for(lambda: version() > v and "Renamed Weekly" in client.get("/issue.html").text)

        # 4. the content changes: a new article is ingested and shows
        articles = app.settings.path(app.settings.content.dir) / "articles"
        template = sorted(articles.glob("*.md"))[-1].read_text("utf-8")
        lines = [
            'title: "A Freshly Written Story"'
            if line.startswith("title:")
            else "url: https://pulse.example.com/articles/fresh"
            if line.startswith("url:")
            else "guid: fresh-story"
            if line.startswith("guid:")
            else line
            for line in template.splitlines()
        ]
        v = version()
        (articles / "99-fresh.md").write_text("\n".join(lines) + "\n", "utf-8")
        wait_for(
            lambda: version() > v and "A Freshly Written Story" in client.get("/issue.html").text
        )


def test_preview_server_starts_on_a_broken_template_and_shows_the_error(
    make_settings, clock, tmp_path: Path
) -> None:
    overrides = tmp_path / "overrides" / "email"
    overrides.mkdir(parents=True)
    (overrides / "issue.txt.j2").write_text("line one\n{{ content.no_such_field }}\n", "utf-8")
    with (
        sample_app(make_settings, clock, templates={"dir": str(tmp_path / "overrides")}) as app,
        PreviewServer(app, "2026-W47") as server,
    ):
        response = httpx.get(server.url + "/", timeout=5)
        assert response.status_code == 200
        assert f"{overrides / 'issue.txt.j2'}:2" in response.text
        assert "no_such_field" in response.text
        assert httpx.get(server.url + "/issue.html", timeout=5).status_code == 500


def test_the_cli_serves_the_preview_on_127_0_0_1(make_settings, clock) -> None:
    with sample_app(make_settings, clock) as app:
        config = app.settings.source
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "pulseletter", "--config", config, "preview", "--serve"]
    proc = subprocess.Popen(
        [*command, "--week", "2026-W47", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"

        def up() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.TransportError:
                return proc.poll() is not None  # stop waiting if it died

        wait_for(up, timeout=15)
        assert proc.poll() is None, proc.communicate()[0]
        assert "Desktop · 600 px" in httpx.get(url, timeout=5).text
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert f"Preview of 2026-W47 at http://127.0.0.1:{port}" in output

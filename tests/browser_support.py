"""Headless Chromium for the tests where a person would look.

Debian's /usr/bin/chromium driven by Playwright (never a downloaded browser). Without it a
browser test skips with the reason, unless PULSELETTER_REQUIRE_BROWSER=1 (CI): then it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium_path() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Playwright browser; skips (or fails under CI) when it cannot be had."""
    executable = _chromium_path()
    reason = ""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[test]')"
    if not reason and executable is None:
        reason = "no Chromium at /usr/bin/chromium (apt-get install chromium)"
    if reason:
        if os.environ.get("PULSELETTER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"PULSELETTER_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()

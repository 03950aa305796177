"""The issue in a real browser (headless Chromium via Playwright) at phone and desktop widths.

Without Chromium these tests skip with the reason; with PULSELETTER_REQUIRE_BROWSER=1 (CI) they
fail instead, so a missing browser can never hide a broken layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_support import chromium
from compose_support import hostile_content, sample_app
from pulseletter.compose.render import Recipient, compile_issue, personalise
from pulseletter.service.issues import resolve_week
from pulseletter.service.preview import preview_week

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def inspect(browser: Any, page_file: Path, width: int, shot: Path, scheme: str = "light") -> dict:
    page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # images point at example.com: refuse every request so nothing leaves the machine
    page.route(
        "**/*",
        lambda route: (
            route.abort() if not route.request.url.startswith("file:") else route.continue_()
        ),
    )
    page.goto(page_file.as_uri())
    facts = page.evaluate(
        """() => {
          const unsub = [...document.querySelectorAll('a')]
            .find(a => a.textContent.trim() === 'Unsubscribe');
          let visible = false;
          if (unsub) {
            const r = unsub.getBoundingClientRect();
            const s = getComputedStyle(unsub);
            visible = r.width > 0 && r.height > 0 && s.visibility !== 'hidden' &&
                      s.display !== 'none' && parseFloat(s.opacity) > 0 &&
                      r.right <= document.documentElement.clientWidth;
          }
          return {
            scrollWidth: document.documentElement.scrollWidth,
            images: [...document.images].map(i => ({alt: i.getAttribute('alt'), src: i.src})),
            unsubscribeVisible: visible,
            bodyBg: getComputedStyle(document.querySelector('.pl-page')).backgroundColor,
          };
        }"""
    )
    if facts["unsubscribeVisible"]:
        page.locator("a", has_text="Unsubscribe").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return {**facts, "dialogs": dialogs}


@pytest.mark.parametrize("width", [375, 600])
def test_the_issue_fits_the_screen_with_alt_text_and_a_visible_unsubscribe(
    browser: Any, make_settings, clock, tmp_path: Path, width: int
) -> None:
    with sample_app(make_settings, clock) as app:
        bundle = preview_week(app, resolve_week(app, "2026-W47"))
    page_file = tmp_path / "issue.html"
    page_file.write_text(bundle.html, "utf-8")
    shot = tmp_path / f"issue-{width}.png"
    facts = inspect(browser, page_file, width, shot)
    assert facts["scrollWidth"] <= width, f"horizontal overflow: {facts['scrollWidth']} > {width}"
    assert facts["images"], "the sample lead story has an image"
    assert all((img["alt"] or "").strip() for img in facts["images"]), facts["images"]
    assert facts["unsubscribeVisible"]
    assert shot.stat().st_size > 10_000


def test_hostile_content_and_dark_mode_at_phone_width(
    browser: Any, make_settings, tmp_path: Path
) -> None:
    compiled = compile_issue(
        make_settings(), hostile_content(), number=1, subject="S", preheader="P"
    )
    links = Recipient("https://e.example/u", "https://e.example/p", "https://e.example/w")
    html, _ = personalise(compiled, links)
    page_file = tmp_path / "hostile.html"
    page_file.write_text(html, "utf-8")
    light = inspect(browser, page_file, 375, tmp_path / "hostile-light.png")
    dark = inspect(browser, page_file, 375, tmp_path / "hostile-dark.png", scheme="dark")
    for facts in (light, dark):
        assert facts["scrollWidth"] <= 375 and facts["unsubscribeVisible"]
        assert not facts["dialogs"], "an escaped <script> ran"
    assert light["bodyBg"] != dark["bodyBg"]  # the dark-mode styles apply

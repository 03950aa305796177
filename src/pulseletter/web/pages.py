"""Render templates/web/*.html.j2 into responses (the operator's template folder shadows them)."""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.responses import HTMLResponse

from pulseletter.compose.render import make_environment, render_template
from pulseletter.config import Settings

NO_STORE = {"cache-control": "no-store"}


class Pages:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env: jinja2.Environment = make_environment(settings)

    def render(
        self,
        template: str,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        s = self.settings
        base = {
            "newsletter": s.newsletter,
            "theme": s.theme,
            "base_url": s.web.base_url.rstrip("/"),
            "title": "",
        }
        html = render_template(self.env, f"web/{template}.html.j2", base | context)
        return HTMLResponse(html, status_code=status_code, headers=headers)

    def message(
        self,
        title: str,
        *paragraphs: str,
        status_code: int = 200,
        link: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        return self.render(
            "message",
            status_code,
            headers,
            title=title,
            paragraphs=list(paragraphs),
            link=link,
        )

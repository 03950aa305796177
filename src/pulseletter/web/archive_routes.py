"""The public archive (HTML pages and an Atom feed) and the health check."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pulseletter.service.app import App
from pulseletter.service.archive import archived_page, sent_issues
from pulseletter.service.health import health_report
from pulseletter.web.feed import atom_feed
from pulseletter.web.pages import Pages

FEED_SIZE = 50
CACHE = {"cache-control": "public, max-age=300"}


def routes(state: dict[str, Any]) -> list[Route]:
    app: App = state["app"]
    pages: Pages = state["pages"]
    base = app.settings.web.base_url.rstrip("/")

    async def archive_index(request: Request) -> Response:
        issues = await run_in_threadpool(sent_issues, app)
        rows = [
            {
                "key": i.key,
                "number": i.number,
                "subject": i.subject,
                "preheader": i.preheader,
                "date": i.sent_at.strftime("%d %B %Y"),
            }
            for i in issues
        ]
        return pages.render("archive", 200, CACHE, title="Past issues", issues=rows)

    async def archive_issue(request: Request) -> Response:
        key = request.path_params["key"]
        found, html = await run_in_threadpool(archived_page, app, key)
        if found == "gone":
            return pages.message(
                "This issue was withdrawn",
                f"Issue {key} was cancelled and is no longer published.",
                link={"url": f"{base}/archive", "text": "See past issues"},
                status_code=410,
            )
        if html is None:
            return pages.message(
                "No such issue",
                f"There is no published issue {key}.",
                link={"url": f"{base}/archive", "text": "See past issues"},
                status_code=404,
            )
        return HTMLResponse(html, headers=CACHE)

    async def feed(request: Request) -> Response:
        issues = await run_in_threadpool(sent_issues, app, FEED_SIZE)
        body = atom_feed(
            title=app.settings.newsletter.name,
            base_url=base,
            issues=issues,
            author=app.settings.newsletter.from_name,
            now=app.clock(),
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8", headers=CACHE)

    async def healthz(request: Request) -> Response:
        ok, details = await run_in_threadpool(health_report, app)
        details["ok"] = ok
        return JSONResponse(details, 200 if ok else 503, {"cache-control": "no-store"})

    return [
        Route("/archive", archive_index, methods=["GET"]),
        Route("/archive/feed.xml", feed, methods=["GET"]),
        Route("/archive/{key}", archive_issue, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]

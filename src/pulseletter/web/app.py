"""``create_app(app)``: the Starlette application ``pulseletter serve`` runs under uvicorn.

Routes parse the request, call one use case in ``service`` and render the answer; every write
happens inside that use case's transaction. Errors never show a stack trace: 404, 405, 410 and
500 get pages of their own (JSON for JSON clients).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulseletter.service.app import App
from pulseletter.web import archive_routes, subscription_routes
from pulseletter.web.pages import Pages
from pulseletter.web.ratelimit import SlidingWindow
from pulseletter.web.security import SECURITY_HEADERS, SecurityHeaders

log = logging.getLogger(__name__)


def create_app(app: App) -> Starlette:
    pages = Pages(app.settings)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if _wants_json(request):
            return JSONResponse({"error": _REASONS.get(status, "error")}, status_code=status)
        if status == 405:
            return pages.message(
                "Not allowed", "This page cannot be used that way.", status_code=405
            )
        if status != 404:
            return pages.message("Something is wrong", _REASONS.get(status, ""), status_code=status)
        return pages.message(
            "Page not found",
            "There is nothing at this address. If you followed a link from an email, check that "
            "it was not cut in two by your mail program.",
            link={"url": f"{_base(app)}/archive", "text": "See past issues"},
            status_code=404,
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        headers = dict(SECURITY_HEADERS)
        if _wants_json(request):
            return JSONResponse({"error": "internal error"}, status_code=500, headers=headers)
        try:
            return pages.message(
                "Something went wrong",
                "We could not do that just now. Nothing was changed; please try again later.",
                status_code=500,
                headers=headers,
            )
        except Exception:  # the page itself failed: a plain answer, still no trace
            return Response("Internal error", status_code=500, headers=headers)

    state: dict[str, Any] = {
        "app": app,
        "pages": pages,
        "ip_limit": SlidingWindow(app.settings.web.subscribe_per_ip_per_hour, 3600, app.clock),
    }
    routes = [
        Route("/", lambda request: _redirect_home(app), methods=["GET"]),
        *subscription_routes.routes(state),
        *archive_routes.routes(state),
    ]
    return Starlette(
        debug=False,
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: http_error, 500: server_error},
    )


_REASONS = {404: "not found", 405: "method not allowed", 400: "bad request", 410: "gone"}


def _base(app: App) -> str:
    return app.settings.web.base_url.rstrip("/")


def _redirect_home(app: App) -> Response:
    from starlette.responses import RedirectResponse

    return RedirectResponse(f"{_base(app)}/subscribe", status_code=303)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    ctype = request.headers.get("content-type", "")
    return "application/json" in ctype or (
        "application/json" in accept and "text/html" not in accept
    )

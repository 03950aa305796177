"""``pulseletter serve``: run the public web app (uvicorn) and/or the weekly scheduler."""

from __future__ import annotations

from pulseletter.errors import PulseletterError
from pulseletter.service.app import App


def run_service(
    app: App, *, host: str | None = None, port: int | None = None, web: bool, scheduler: bool
) -> None:
    if scheduler:
        raise PulseletterError("the scheduler is not available yet: use `serve --web-only`")
    import uvicorn

    from pulseletter.web.app import create_app

    uvicorn.run(
        create_app(app),
        host=host or app.settings.web.host,
        port=port or app.settings.web.port,
        log_level="info",
    )

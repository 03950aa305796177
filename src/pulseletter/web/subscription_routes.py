"""Sign-up, confirmation, unsubscribe (page and RFC 8058 one-click) and preferences."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pulseletter.errors import SubscriberError
from pulseletter.service import web_actions
from pulseletter.service.app import App
from pulseletter.subscribers.lifecycle import MAX_PAUSE_WEEKS
from pulseletter.subscribers.tokens import (
    TokenExpired,
    TokenInvalid,
    check_csrf_token,
    make_csrf_token,
    new_csrf_nonce,
)
from pulseletter.web.pages import NO_STORE, Pages
from pulseletter.web.ratelimit import SlidingWindow
from pulseletter.web.security import client_ip

log = logging.getLogger(__name__)
CSRF_COOKIE = "pl_csrf"
ACCEPTED = (
    "If that address can receive mail, a confirmation link is on its way to it. "
    "Press it to start your subscription; nothing is sent until you do."
)
MAX_BODY = 64 * 1024


def routes(state: dict[str, Any]) -> list[Route]:
    app: App = state["app"]
    pages: Pages = state["pages"]
    ip_limit: SlidingWindow = state["ip_limit"]
    s = app.settings
    secure_cookie = s.web.base_url.startswith("https://")

    def subscribe_form(
        *, error: str = "", email: str = "", name: str = "", status_code: int = 200
    ) -> Response:
        nonce = new_csrf_nonce()
        response = pages.render(
            "subscribe",
            status_code,
            dict(NO_STORE),
            title=f"Subscribe to {s.newsletter.name}",
            csrf_token=make_csrf_token(s.signing_secret, nonce, app.clock()),
            error=error,
            email=email,
            name=name,
        )
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            max_age=s.security.csrf_token_minutes * 60,
            path="/subscribe",
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
        )
        return response

    async def subscribe_get(request: Request) -> Response:
        return subscribe_form()

    async def subscribe_post(request: Request) -> Response:
        is_json = "application/json" in request.headers.get("content-type", "")
        retry = ip_limit.hit(client_ip(request, s.web.trust_forwarded_for))
        if retry is not None:
            headers = {"retry-after": str(int(retry))}
            if is_json:
                return JSONResponse({"error": "too many requests"}, 429, headers)
            return pages.message(
                "Too many requests",
                "Too many sign-ups came from your network. Please try again later.",
                status_code=429,
                headers=headers,
            )
        if is_json:
            return await _subscribe_json(request)
        try:
            form = await request.form(max_files=0, max_fields=20)
        except Exception:
            return subscribe_form(error="The form could not be read.", status_code=400)
        email, name = str(form.get("email", "")), str(form.get("name", ""))
        csrf_ok = check_csrf_token(
            s.signing_secret,
            str(form.get("csrf_token", "")),
            request.cookies.get(CSRF_COOKIE, ""),
            app.clock(),
            s.security.csrf_token_minutes,
        )
        if not csrf_ok:
            return subscribe_form(
                error="This form has expired or was sent from another site. "
                "Please check your details and send it again.",
                email=email,
                name=name,
                status_code=403,
            )
        if form.get("website"):  # honeypot: a person never fills it; answer as if we did it
            log.info("honeypot filled on /subscribe; ignored")
            return _accepted_page(None)
        try:
            subscriber_id = await run_in_threadpool(
                web_actions.request_subscription, app, email, name
            )
        except SubscriberError as exc:
            return subscribe_form(error=_reason(exc), email=email, name=name, status_code=400)
        return _accepted_page(subscriber_id)

    async def _subscribe_json(request: Request) -> Response:
        body = await request.body()
        try:
            data = json.loads(body) if len(body) <= MAX_BODY else None
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("email"), str):
            return JSONResponse({"error": 'expected a JSON object with "email"'}, 400)
        name = data.get("name", "")
        if not isinstance(name, str):
            return JSONResponse({"error": '"name" must be a string'}, 400)
        try:
            subscriber_id = await run_in_threadpool(
                web_actions.request_subscription, app, data["email"], name
            )
        except SubscriberError as exc:
            return JSONResponse({"error": _reason(exc)}, 400)
        return JSONResponse(
            {"status": "accepted", "message": ACCEPTED},
            200,
            NO_STORE,
            background=_confirmation_task(subscriber_id),
        )

    def _accepted_page(subscriber_id: int | None) -> Response:
        response = pages.message("Check your inbox", ACCEPTED, headers=dict(NO_STORE))
        response.background = _confirmation_task(subscriber_id)
        return response

    def _confirmation_task(subscriber_id: int | None) -> BackgroundTask | None:
        """The mail goes after the response, so known and unknown addresses answer alike."""
        if subscriber_id is None:
            return None
        return BackgroundTask(_send_confirmation, subscriber_id)

    def _send_confirmation(subscriber_id: int) -> None:
        try:
            web_actions.send_confirmation(app, subscriber_id)
        except Exception:
            log.exception("could not send a confirmation to subscriber %s", subscriber_id)

    async def confirm(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            done = await run_in_threadpool(web_actions.confirm, app, token)
        except TokenExpired:
            return pages.message(
                "This link has expired",
                f"Confirmation links work for {s.security.confirm_token_hours} hours. "
                "Sign up again and we will send you a fresh one.",
                link={"url": f"{_base(app)}/subscribe", "text": "Sign up again"},
                status_code=410,
                headers=dict(NO_STORE),
            )
        except TokenInvalid:
            return _unknown_link()
        if done is None:
            return pages.message(
                "This subscription no longer exists",
                "The address behind this link was removed. You can sign up again.",
                link={"url": f"{_base(app)}/subscribe", "text": "Sign up again"},
                status_code=410,
                headers=dict(NO_STORE),
            )
        title = "You were already confirmed" if done.already else "You are subscribed"
        return pages.message(
            title,
            "The next issue will reach you. Every issue has a link to change your preferences "
            "or unsubscribe in one click.",
            link={"url": f"{_base(app)}/archive", "text": "Read past issues meanwhile"},
            headers=dict(NO_STORE),
        )

    async def unsubscribe_get(request: Request) -> Response:
        """A page with a button: link scanners prefetch GETs, so a GET never unsubscribes."""
        token = request.path_params["token"]
        subscriber = await run_in_threadpool(web_actions.subscriber_for_token, app, token)
        if subscriber is None:
            return _unknown_link()
        return pages.render(
            "unsubscribe",
            200,
            dict(NO_STORE),
            title="Unsubscribe",
            subscriber=subscriber,
            token=token,
        )

    async def unsubscribe_post(request: Request) -> Response:
        """RFC 8058 one-click: unsubscribe now, answer 200, never redirect, set no cookie."""
        token = request.path_params["token"]
        source = "web"
        try:
            form = await request.form(max_files=0, max_fields=10)
            if form.get("List-Unsubscribe") == "One-Click":
                source = "one-click"
        except Exception:  # a malformed body must not stop an unsubscribe
            log.info("unreadable one-click body; unsubscribing anyway")
        subscriber = await run_in_threadpool(
            web_actions.unsubscribe_by_token, app, token, source=source
        )
        if subscriber is None:
            return _unknown_link()
        return pages.message(
            "You are unsubscribed",
            f"{subscriber.email} will get nothing more from {s.newsletter.name}, starting now.",
            link={"url": f"{_base(app)}/subscribe", "text": "Subscribed by mistake? Sign up again"},
            headers=dict(NO_STORE),
        )

    async def preferences(request: Request) -> Response:
        token = request.path_params["token"]
        saved, error = "", ""
        if request.method == "POST":
            form = await request.form(max_files=0, max_fields=10)
            try:
                weeks = int(str(form.get("pause_weeks", "-1")))
            except ValueError:
                weeks = -2
            if not -1 <= weeks <= MAX_PAUSE_WEEKS:
                error = f"Choose a pause of 1 to {MAX_PAUSE_WEEKS} weeks."
            else:
                try:
                    row = await run_in_threadpool(
                        lambda: web_actions.update_preferences(
                            app,
                            token,
                            name=str(form.get("name", "")),
                            pause_weeks=weeks,
                            unsubscribe=bool(form.get("unsubscribe")),
                        )
                    )
                    if row is None:
                        return _unknown_link()
                    saved = "Saved." if row.status != "unsubscribed" else "You are unsubscribed."
                except SubscriberError as exc:
                    error = _reason(exc)
        subscriber = await run_in_threadpool(web_actions.subscriber_for_token, app, token)
        if subscriber is None:
            return _unknown_link()
        paused = subscriber.paused_until
        return pages.render(
            "preferences",
            400 if error else 200,
            dict(NO_STORE),
            title="Your preferences",
            subscriber=subscriber,
            token=token,
            saved=saved,
            error=error,
            paused_until=paused.strftime("%Y-%m-%d") if paused and paused > app.clock() else "",
            pause_choices=[1, 2, 4, 8, 12],
        )

    def _unknown_link() -> Response:
        return pages.message(
            "This link is not valid",
            "We do not recognise this link. If you copied it from an email, make sure it is "
            "complete; if the address was removed, the link no longer works.",
            link={"url": f"{_base(app)}/subscribe", "text": "Go to the sign-up page"},
            status_code=404,
            headers=dict(NO_STORE),
        )

    return [
        Route("/subscribe", subscribe_get, methods=["GET"]),
        Route("/subscribe", subscribe_post, methods=["POST"]),
        Route("/confirm/{token}", confirm, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_get, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
        Route("/preferences/{token}", preferences, methods=["GET", "POST"]),
    ]


def _base(app: App) -> str:
    return app.settings.web.base_url.rstrip("/")


def _reason(exc: SubscriberError) -> str:
    text = str(exc)
    return text[0].upper() + text[1:] if text else "That did not work."

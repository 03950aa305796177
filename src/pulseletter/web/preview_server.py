"""``pulseletter preview --serve``: the editors' local preview, rebuilt on every change.

One page shows the issue at 600 px and 375 px side by side, a dark-mode view, the plain text,
the headers and the lint report. A watcher thread (watchfiles) rebuilds the preview when a
template, the config or the content folder changes (content is re-ingested first); the page
polls ``/version`` and reloads itself. A broken template never stops the server: the error,
with its file and line, is what the page shows until the template is fixed.
"""

from __future__ import annotations

import html
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pulseletter.config import Settings, load_settings
from pulseletter.errors import PulseletterError
from pulseletter.service.app import App
from pulseletter.service.content import ingest
from pulseletter.service.issues import resolve_week
from pulseletter.service.preview import PreviewBundle, preview_week

log = logging.getLogger(__name__)
DARK_QUERY = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)")


@dataclass
class PreviewState:
    """The latest preview (or the error that replaced it) and a version the page polls."""

    app: App
    week_key: str | None
    version: int = 0
    bundle: PreviewBundle | None = None
    error: str = ""
    notice: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rebuild(self, *, reload_config: bool = False, reingest: bool = False) -> None:
        """Re-read what changed and rebuild; any user error is kept for the page to show."""
        notice = ""
        try:
            if reload_config and Path(self.app.settings.source).is_file():
                self.app = _with_settings(self.app, load_settings(self.app.settings.source))
            if reingest:
                notice = self._ingest()
            bundle = preview_week(self.app, resolve_week(self.app, self.week_key))
            error = ""
        except PulseletterError as exc:
            bundle, error = self.bundle, str(exc)
            log.warning("preview: %s", exc)
        with self.lock:
            self.bundle, self.error, self.notice = bundle, error, notice
            self.version += 1

    def _ingest(self) -> str:
        folder = self.app.settings.path(self.app.settings.content.dir)
        if not folder.is_dir():
            return ""
        report = ingest(self.app, [folder])
        return "\n".join(str(r) for r in report.rejected)

    def watched_paths(self) -> list[Path]:
        s = self.app.settings
        paths = [p for p in s.template_dirs() if p.is_dir()]
        if Path(s.source).is_file():
            paths.append(Path(s.source).resolve())
        content = s.path(s.content.dir)
        if content.is_dir():
            paths.append(content)
        return paths


def _with_settings(app: App, settings: Settings) -> App:
    return App(settings, app.db, clock=app.clock, transport_factory=app.transport_factory)


def watch(state: PreviewState, stop: threading.Event) -> None:
    """Rebuild on every batch of file changes until ``stop`` is set."""
    import watchfiles

    paths = state.watched_paths()
    config = Path(state.app.settings.source).resolve()
    content = state.app.settings.path(state.app.settings.content.dir)
    for changes in watchfiles.watch(
        *paths, stop_event=stop, debounce=150, step=50, rust_timeout=500, yield_on_timeout=False
    ):
        changed = [Path(p).resolve() for _, p in changes]
        state.rebuild(
            reload_config=config in changed,
            reingest=any(content in p.parents for p in changed),
        )


def create_preview_app(state: PreviewState) -> object:
    """The Starlette app of the preview server (thin: every page reads ``state``)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    def current() -> tuple[PreviewBundle | None, str, str, int]:
        with state.lock:
            return state.bundle, state.error, state.notice, state.version

    async def index(request: object) -> Response:
        bundle, error, notice, version = current()
        return HTMLResponse(page(bundle, error, notice, version))

    async def issue_html(request: object) -> Response:
        bundle, error, _, _ = current()
        if bundle is None:
            return HTMLResponse(f"<pre>{html.escape(error)}</pre>", status_code=500)
        return HTMLResponse(bundle.html)

    async def dark_html(request: object) -> Response:
        bundle, error, _, _ = current()
        if bundle is None:
            return HTMLResponse(f"<pre>{html.escape(error)}</pre>", status_code=500)
        return HTMLResponse(dark_variant(bundle.html))

    async def issue_text(request: object) -> Response:
        bundle, error, _, _ = current()
        return PlainTextResponse(bundle.text if bundle else error)

    async def issue_eml(request: object) -> Response:
        bundle, _, _, _ = current()
        if bundle is None:
            return PlainTextResponse("no preview", status_code=500)
        return Response(bundle.eml, media_type="message/rfc822")

    async def lint_json(request: object) -> Response:
        bundle, _, _, _ = current()
        return JSONResponse(bundle.lint.to_json() if bundle else {})

    async def version(request: object) -> Response:
        _, error, _, v = current()
        return JSONResponse({"version": v, "error": error})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/issue.html", issue_html),
            Route("/dark.html", dark_html),
            Route("/issue.txt", issue_text),
            Route("/issue.eml", issue_eml),
            Route("/lint.json", lint_json),
            Route("/version", version),
        ]
    )


def dark_variant(issue_html: str) -> str:
    """The issue with its dark-mode rules always on, as a dark-mode client shows it."""
    forced = DARK_QUERY.sub("@media all", issue_html)
    return forced.replace("<head>", "<head><style>:root{color-scheme:dark}</style>", 1)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 0; background: #e9ebee; color: #1b1b1b; }}
header {{ padding: 12px 20px; background: #1b1b1b; color: #fff; }}
header b {{ font-size: 16px; }} main {{ padding: 16px 20px; }}
.row {{ display: flex; gap: 20px; align-items: flex-start; flex-wrap: wrap; }}
figure {{ margin: 0; }} figcaption {{ font-weight: 600; margin-bottom: 6px; }}
iframe {{ border: 1px solid #b8bcc4; background: #fff; height: 900px; }}
pre {{ background: #fff; padding: 12px; border: 1px solid #ccd; overflow: auto; max-height: 900px;
       white-space: pre; font: 13px/1.4 ui-monospace, monospace; }}
.error {{ background: #fde8e8; color: #7a1010; border: 2px solid #c62828; padding: 12px 16px;
          white-space: pre-wrap; font: 14px/1.5 ui-monospace, monospace; }}
.notice {{ background: #fff6d6; border: 1px solid #c9a100; padding: 8px 12px; }}
table {{ border-collapse: collapse; background: #fff; }} td, th {{ border: 1px solid #ccd;
  padding: 4px 8px; text-align: left; vertical-align: top; font-size: 13px; }}
.ok {{ color: #1b5e20; }} .bad {{ color: #b71c1c; }}
</style></head>
<body><header><b>pulseletter preview</b> · {title} · reloads by itself on every change
 · <a style="color:#9cc4ff" href="/issue.eml">issue.eml</a></header><main>
{error}{notice}{body}
</main>
<script>
const seen = {version};
async function poll() {{
  try {{
    const r = await fetch("/version", {{cache: "no-store"}});
    const v = (await r.json()).version;
    if (v !== seen) {{ location.reload(); return; }}
  }} catch (e) {{}}
  setTimeout(poll, 700);
}}
setTimeout(poll, 700);
</script></body></html>
"""


def page(bundle: PreviewBundle | None, error: str, notice: str, version: int) -> str:
    """The preview page: the error first (if any), then every view of the last good build."""
    esc = html.escape
    error_html = (
        f'<h2 class="bad">The preview could not be built</h2><div class="error" id="error">'
        f"{esc(error)}</div><p>Showing the last good preview below, if any.</p>"
        if error
        else ""
    )
    notice_html = f'<p class="notice">{esc(notice)}</p>' if notice else ""
    if bundle is None:
        return PAGE.format(
            title="no preview", error=error_html, notice=notice_html, body="", version=version
        )
    stamp = f"?v={version}"
    lint = bundle.lint
    verdict = (
        '<span class="ok">OK to send</span>' if lint.ok else '<span class="bad">NOT sendable</span>'
    )
    headers = "".join(
        f"<tr><th>{esc(name)}</th><td>{esc(value)}</td></tr>" for name, value in bundle.headers
    )
    body = f"""
<h2>{esc(bundle.subject)}</h2>
<div class="row">
 <figure><figcaption>Desktop · 600 px</figcaption>
  <iframe id="desktop" title="desktop" src="/issue.html{stamp}" width="600"></iframe></figure>
 <figure><figcaption>Mobile · 375 px</figcaption>
  <iframe id="mobile" title="mobile" src="/issue.html{stamp}" width="375"></iframe></figure>
 <figure><figcaption>Dark mode · 375 px</figcaption>
  <iframe id="dark" title="dark mode" src="/dark.html{stamp}" width="375"></iframe></figure>
</div>
<h2 id="lint">Lint: {verdict}</h2><pre>{esc(lint.render())}</pre>
<div class="row">
 <section><h2>Plain text</h2><pre id="text">{esc(bundle.text)}</pre></section>
 <section><h2>Headers</h2><table id="headers">{headers}</table></section>
</div>"""
    return PAGE.format(
        title=esc(bundle.key), error=error_html, notice=notice_html, body=body, version=version
    )


class PreviewServer:
    """The preview app on a real socket (uvicorn) plus the watcher, in background threads."""

    def __init__(
        self, app: App, week_key: str | None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = PreviewState(app, week_key)
        self.host, self.port = host, port
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: object | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *, watch_files: bool = True) -> PreviewServer:
        import uvicorn

        self.state.rebuild()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise PulseletterError(f"cannot listen on {self.host}:{self.port}: {exc}") from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_preview_app(self.state),  # type: ignore[arg-type]
            log_level="warning",
            lifespan="off",
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._server = server
        self._spawn(lambda: server.run(sockets=[sock]), "preview-http")
        if watch_files:
            self._spawn(lambda: watch(self.state, self._stop), "preview-watch")
        for _ in range(200):
            if server.started:
                break
            self._stop.wait(0.02)
        return self

    def _spawn(self, target: Callable[[], object], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait(self) -> None:
        """Block until interrupted (Ctrl-C) or stopped."""
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

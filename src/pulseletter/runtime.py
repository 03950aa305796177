"""``pulseletter serve``: the public web app (uvicorn) and the weekly scheduler in one process.

Threads: uvicorn serves in one; the lease keeper renews the scheduler lease every third of
``schedule.lease_seconds`` in another, starting the scheduler when it holds the lease and
stopping it if it ever loses it; the main thread waits for SIGTERM/SIGINT and then shuts down in
order: stop taking work, let the sender finish and record its in-flight message (up to
``schedule.shutdown_timeout``), stop the web server, release the lease so a standby takes over.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from pulseletter.service import health, lease
from pulseletter.service.app import App

log = logging.getLogger("pulseletter.service")

WebFactory = Callable[[App], Any]  # App -> ASGI application


def default_web_factory(app: App) -> Any:
    from pulseletter.web.app import create_app

    return create_app(app)


class Service:
    """One ``serve`` process. ``run()`` blocks until ``request_stop()`` (or a signal)."""

    def __init__(
        self,
        app: App,
        *,
        web: bool,
        scheduler: bool,
        host: str | None = None,
        port: int | None = None,
        web_factory: WebFactory = default_web_factory,
    ) -> None:
        self.app = app
        self.web, self.scheduler = web, scheduler
        self.host = host or app.settings.web.host
        self.port = app.settings.web.port if port is None else port
        self.asgi = web_factory(app) if web else None
        self.holder = lease.make_holder()
        self.ttl = timedelta(seconds=app.settings.schedule.lease_seconds)
        self.stopping = threading.Event()
        self.weekly: Any = None  # WeeklyScheduler while we hold the lease
        self.server: Any = None
        self._threads: list[threading.Thread] = []
        self._standby_for: str | None = None
        self._held_until = datetime.min.replace(tzinfo=UTC)
        self.failed = False

    # -- the lease keeper ---------------------------------------------------------------------

    def lease_step(self) -> bool:
        """Take or renew the lease; start or stop the scheduler to match. True if scheduling."""
        from pulseletter.scheduler.runner import WeeklyScheduler

        try:
            current = lease.acquire(self.app, self.holder, self.ttl)
        except SQLAlchemyError as exc:
            log.error("cannot renew the scheduler lease: %s", exc, extra={"event": "lease.error"})
            if self.weekly is not None and self.app.clock() >= self._held_until:
                # a standby may take over once it expires: never two schedulers
                self._stop_scheduling(
                    "the scheduler lease expired while the database was unreachable; "
                    "stopping this scheduler",
                    event="lease.expired",
                )
            return self.weekly is not None
        if current.mine:
            self._held_until = current.expires_at
            if self.weekly is None and not self.stopping.is_set():
                log.info(
                    "holding the scheduler lease as %s; scheduling",
                    self.holder,
                    extra={"event": "lease.acquired", "holder": self.holder},
                )
                self._standby_for = None
                self.weekly = WeeklyScheduler(self.app)
                self.weekly.start()
            return True
        if self.weekly is not None:
            self._stop_scheduling(
                f"lost the scheduler lease to {current.holder}; stopping this scheduler",
                event="lease.lost",
                holder=current.holder,
            )
        if self._standby_for != current.holder:
            log.warning(
                "another instance holds the scheduler lease: %s (until %s); this one does not "
                "schedule and takes over if that lease expires",
                current.holder,
                current.expires_at.isoformat(),
                extra={"event": "lease.standby", "holder": current.holder},
            )
            self._standby_for = current.holder
        return False

    def _stop_scheduling(self, message: str, *, event: str, holder: str = "") -> None:
        """Stop this process's scheduler (the lease is gone or going) and say why."""
        extra = {"event": event, **({"holder": holder} if holder else {})}
        log.error(message, extra=extra)
        assert self.weekly is not None
        self.weekly.stop_gracefully(self.app.settings.schedule.shutdown_timeout)
        self.weekly = None

    def _keep_lease(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self.stopping.is_set():
            try:
                self.lease_step()
            except Exception:
                log.exception("the scheduler failed to start", extra={"event": "scheduler.error"})
                self.failed = True
                self.stopping.set()
                return
            self.stopping.wait(interval)

    # -- web ----------------------------------------------------------------------------------

    def _serve_web(self) -> None:
        try:
            self.server.run()
        finally:
            if not self.stopping.is_set():
                log.error("the web server stopped unexpectedly", extra={"event": "web.error"})
                self.failed = True
                self.stopping.set()

    def bound_port(self) -> int | None:
        """The port uvicorn actually listens on (useful with port 0)."""
        if self.server is None or not self.server.started:
            return None
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.web:
            import uvicorn

            config = uvicorn.Config(
                self.asgi, host=self.host, port=self.port, log_config=None, access_log=False
            )
            self.server = uvicorn.Server(config)
            self._spawn("web", self._serve_web)
            log.info("web app on http://%s:%s", self.host, self.port, extra={"event": "web.start"})
        if self.scheduler:
            health.SCHEDULING.set()
            self._spawn("lease", self._keep_lease)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"pulseletter-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def request_stop(self) -> None:
        self.stopping.set()

    def shutdown(self) -> bool:
        """Stop in order; True when everything in flight finished and was recorded."""
        timeout = self.app.settings.schedule.shutdown_timeout
        log.info("stopping: finishing in-flight work (up to %.0fs)", timeout)
        self.stopping.set()
        for thread in self._threads:
            if thread.name == "pulseletter-lease":
                thread.join()
        clean = True
        if self.weekly is not None:
            clean = self.weekly.stop_gracefully(timeout)
            if clean:
                lease.release(self.app, self.holder)
            self.weekly = None
        if self.server is not None:
            self.server.should_exit = True
            for thread in self._threads:
                if thread.name == "pulseletter-web":
                    thread.join(timeout=10)
        if self.scheduler:
            health.SCHEDULING.clear()
        log.info("stopped", extra={"event": "service.stop", "clean": clean})
        return clean and not self.failed

    def run(self) -> int:
        """Start, wait for a stop request, shut down. Returns the exit code (0: clean)."""
        self.start()
        while not self.stopping.wait(0.5):
            pass
        return 0 if self.shutdown() else 1


def run_service(
    app: App,
    *,
    host: str | None = None,
    port: int | None = None,
    web: bool,
    scheduler: bool,
    web_factory: WebFactory = default_web_factory,
) -> int:
    """Run until SIGTERM or SIGINT; return the exit code. CLI commands never call this."""
    service = Service(
        app, web=web, scheduler=scheduler, host=host, port=port, web_factory=web_factory
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name, extra={"event": "service.signal"})
        service.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return service.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

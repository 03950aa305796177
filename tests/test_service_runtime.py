"""The serve runtime in-process: the lease keeper with two instances on one database, and web
plus scheduler in one process. The web app here is a stand-in (a single /healthz route over
``health_report``) because ``pulseletter.web.app`` is built on another branch; the subprocess
tests in test_service_serve.py use the real one when it is installed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import ConfigWriter, FixedClock
from pulseletter.config import load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.mail.sink import free_port
from pulseletter.mail.transports import MemoryTransport
from pulseletter.runtime import Service
from pulseletter.service import lease
from pulseletter.service.app import App
from pulseletter.service.health import health_report
from service_support import scheduling, wait_for


@pytest.fixture
def two_apps(
    make_settings: ConfigWriter, clock: FixedClock, memory_transport: MemoryTransport
) -> Iterator[tuple[App, App]]:
    settings = make_settings(schedule={"lease_seconds": 60, "shutdown_timeout": 5})
    apps = [
        App.open(
            settings, check_schema=False, clock=clock, transport_factory=lambda: memory_transport
        )
        for _ in range(2)
    ]
    upgrade(apps[0].db.engine)
    yield apps[0], apps[1]
    for app in apps:
        app.close()


def test_only_the_lease_holder_schedules_and_a_standby_takes_over(
    two_apps: tuple[App, App], clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    first = Service(two_apps[0], web=False, scheduler=True)
    second = Service(two_apps[1], web=False, scheduler=True)
    try:
        with caplog.at_level(logging.INFO, logger="pulseletter.service"):
            assert first.lease_step() is True and first.weekly is not None
            assert second.lease_step() is False and second.weekly is None
            assert second.lease_step() is False  # said once, not on every renewal
        standby = [r for r in caplog.records if getattr(r, "event", "") == "lease.standby"]
        assert len(standby) == 1 and first.holder in standby[0].getMessage()
        clock.advance(seconds=30)
        assert first.lease_step() is True  # renewed; the standby still waits
        assert second.lease_step() is False
        # the first instance dies without a word: its lease runs out, the standby takes over
        first.weekly.stop_gracefully(5)
        first.weekly = None
        clock.advance(seconds=61)
        assert second.lease_step() is True and second.weekly is not None
        assert lease.read(two_apps[0]).holder == second.holder  # type: ignore[union-attr]
    finally:
        for service in (first, second):
            if service.weekly is not None:
                service.weekly.stop_gracefully(5)


def test_a_holder_that_loses_its_lease_stops_scheduling(
    two_apps: tuple[App, App], clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    service = Service(two_apps[0], web=False, scheduler=True)
    try:
        assert service.lease_step() is True
        clock.advance(seconds=61)  # frozen past its lease (a suspended VM, a long GC pause)
        assert lease.acquire(two_apps[1], "another-host:1:abc", timedelta(seconds=60)).mine
        with caplog.at_level(logging.INFO, logger="pulseletter.service"):
            assert service.lease_step() is False
        assert service.weekly is None
        assert any(getattr(r, "event", "") == "lease.lost" for r in caplog.records)
    finally:
        if service.weekly is not None:
            service.weekly.stop_gracefully(5)


def test_a_holder_cut_off_from_the_database_stops_when_its_lease_expires(
    two_apps: tuple[App, App], clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    service = Service(two_apps[0], web=False, scheduler=True)
    try:
        assert service.lease_step() is True

        def unreachable(*args: object, **kwargs: object) -> None:
            raise OperationalError("renew", {}, Exception("database is unreachable"))

        monkeypatch.setattr(lease, "acquire", unreachable)
        clock.advance(seconds=30)
        assert service.lease_step() is True  # still within its lease: keeps scheduling
        clock.advance(seconds=31)
        assert service.lease_step() is False  # expired: a standby may take over now
        assert service.weekly is None
    finally:
        if service.weekly is not None:
            service.weekly.stop_gracefully(5)


def stand_in_web(app: App) -> Any:
    """What the real web app does for /healthz: health_report as JSON, 200 or 503."""

    async def healthz(request: Request) -> JSONResponse:
        ok, details = health_report(app)
        return JSONResponse(details, status_code=200 if ok else 503)

    return Starlette(routes=[Route("/healthz", healthz)])


def test_web_and_scheduler_share_one_process_and_stop_cleanly(
    two_apps: tuple[App, App], clock: FixedClock
) -> None:
    app = two_apps[0]
    clock.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday: no send is due
    service = Service(
        app, web=True, scheduler=True, host="127.0.0.1", port=0, web_factory=stand_in_web
    )
    service.start()
    try:
        port = wait_for(service.bound_port, 10, "uvicorn to listen")
        wait_for(lambda: service.weekly is not None, 10, "the scheduler to start")
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["scheduler"] == {
            "running": True,
            "holder": service.holder,
            "lease_expires_at": (clock.now + timedelta(seconds=60)).isoformat(),
        }
        assert body["next_run"]["job"] == "weekly-send"
    finally:
        assert service.shutdown() is True
    assert lease.read(app) is None  # released at a clean stop: a standby takes over at once
    with scheduling():
        ok, details = health_report(app)
    assert not ok and details["scheduler"]["running"] is False


def test_health_is_503_material_when_the_database_does_not_answer(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    port = free_port()  # nothing listens there
    (tmp_path / "config.toml").write_text(
        f'[database]\nurl = "postgresql+psycopg://nobody@127.0.0.1:{port}/none"\n', "utf-8"
    )
    app = App.open(load_settings(tmp_path / "config.toml", environ={}), check_schema=False)
    try:
        ok, details = health_report(app)
    finally:
        app.close()
    assert not ok
    assert details["database"].startswith("unreachable")
    assert details["problems"] == ["the database is unreachable"]


def test_web_only_never_takes_the_lease_and_only_warns_about_the_scheduler(
    two_apps: tuple[App, App],
) -> None:
    app = two_apps[0]
    service = Service(
        app, web=True, scheduler=False, host="127.0.0.1", port=0, web_factory=stand_in_web
    )
    service.start()
    try:
        port = wait_for(service.bound_port, 10, "uvicorn to listen")
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert response.status_code == 200  # a web node stays in its load balancer...
        body = response.json()
        assert body["role"] == "web" and body["problems"] == []
        assert "no scheduler holds a live lease" in body["warnings"][0]  # ...and still tells
        assert lease.read(app) is None and service.weekly is None
    finally:
        assert service.shutdown() is True

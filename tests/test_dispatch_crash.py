"""Crash safety: ``kill -9`` the real CLI sender at several points (one of them while it waits
for the reply to its final dot), resume, and check nobody was missed and duplicates stayed
within the messages in flight; SIGTERM stops gracefully with exit 0 and no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dispatch_support import KEY, FaultHandler, FaultServer, deliveries, make_issue
from pulseletter.db.migrate import upgrade
from pulseletter.dispatch.ledger import UNCERTAIN
from pulseletter.service.app import App

CONNECTIONS = 2
SUBSCRIBERS = 60


@pytest.fixture
def crash_setup(
    tmp_path: Path, make_settings: Callable[..., object]
) -> Iterator[tuple[App, FaultHandler, Path]]:
    handler = FaultHandler(data_delay=0.004)
    with FaultServer(handler) as server:
        settings = make_settings(
            transport={"kind": "smtp"},
            smtp={"host": server.host, "port": server.port, "security": "none", "timeout": 10.0},
            sending={"connections": CONNECTIONS, "batch_size": 10, "progress_seconds": 0.2},
        )
        app = App.open(settings, check_schema=False)  # type: ignore[arg-type]
        upgrade(app.db.engine)
        make_issue(app, SUBSCRIBERS, state="sending")
        yield app, handler, tmp_path / "config.toml"
        app.close()


def start_sender(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSELETTER_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pulseletter",
            "--config",
            str(config),
            "issue",
            "send",
            "--week",
            KEY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def wait_until(
    condition: Callable[[], bool], proc: subprocess.Popen[bytes], limit: float = 30
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sender made no progress"
        time.sleep(0.002)


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_misses_nobody(
    crash_setup: tuple[App, FaultHandler, Path],
) -> None:
    app, handler, config = crash_setup
    kills = 0

    def kill(proc: subprocess.Popen[bytes]) -> None:
        nonlocal kills
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1

    # 1. early: right after the first message was accepted
    proc = start_sender(config)
    wait_until(lambda: len(handler.accepted) >= 1, proc)
    kill(proc)

    # 2. mid-DATA: every connection has sent its final dot and waits for the reply
    handler.hold = threading.Event()
    handler.hold.set()
    before = len(handler.accepted)
    proc = start_sender(config)
    wait_until(lambda: handler.held >= CONNECTIONS, proc)
    kill(proc)
    in_flight = {d.email for d in deliveries(app).values() if d.status == "sending"}
    assert len(in_flight) == CONNECTIONS  # the ledger knows exactly what was in flight
    assert len(handler.accepted) == before + CONNECTIONS  # and the server has those messages
    handler.hold.clear()

    # 3. in the middle of the list
    proc = start_sender(config)
    wait_until(lambda: len(handler.accepted) >= SUBSCRIBERS // 2, proc)
    kill(proc)

    # resume to the end
    proc = start_sender(config)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert f"{KEY} is sent" in out.decode()

    received = Counter(rcpt for rcpt, _ in handler.accepted)
    everyone = {f"reader{n:04d}@example.com" for n in range(SUBSCRIBERS)}
    assert set(received) == everyone  # no subscriber missed
    duplicates = {rcpt for rcpt, n in received.items() if n > 1}
    assert sum(received.values()) - SUBSCRIBERS <= CONNECTIONS * kills  # bounded by in flight
    assert len(duplicates) >= CONNECTIONS  # the mid-DATA kill did cause duplicates...
    rows = deliveries(app)
    assert all(r.status == "sent" for r in rows.values())
    for rcpt in duplicates:  # ...and every one of them is recorded as uncertain
        assert rows[rcpt].last_text.startswith(UNCERTAIN), rows[rcpt].last_text


@pytest.mark.slow
def test_sigterm_finishes_in_flight_messages_and_exits_0(
    crash_setup: tuple[App, FaultHandler, Path],
) -> None:
    app, handler, config = crash_setup
    proc = start_sender(config)
    wait_until(lambda: len(handler.accepted) >= 10, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert "SIGTERM" in err.decode()
    rows = deliveries(app).values()
    assert not [r for r in rows if r.status == "sending" or r.lease_owner]  # all recorded
    sent_before = {r.email for r in rows if r.status == "sent"}
    assert sorted(sent_before) == sorted(r for r, _ in handler.accepted)  # ledger == server
    assert len(sent_before) < SUBSCRIBERS

    proc = start_sender(config)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    received = Counter(rcpt for rcpt, _ in handler.accepted)
    assert len(received) == SUBSCRIBERS and set(received.values()) == {1}  # exactly once

"""The sender's single-threaded loop: all connections in flight at once from one thread, one
message per connection at most, and each result committed before that connection goes on."""

from __future__ import annotations

import threading
import time

from conftest import ConfigWriter, FixedClock
from dispatch_support import KEY, FaultHandler, FaultServer, make_issue, statuses
from pulseletter.db.migrate import upgrade
from pulseletter.service.app import App
from pulseletter.service.sending import SendOutcome, send_issue


def _app(
    make_settings: ConfigWriter, clock: FixedClock, server: FaultServer, **sending: object
) -> App:
    settings = make_settings(
        transport={"kind": "smtp"},
        smtp={"host": server.host, "port": server.port, "security": "none", "timeout": 5.0},
        sending={"throttle_seconds": 0.05, **sending},
    )
    app = App.open(settings, check_schema=False, clock=clock)
    upgrade(app.db.engine)
    return app


def _wait_for(condition: object, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


def test_four_connections_are_in_flight_together_one_message_each(
    make_settings: ConfigWriter, clock: FixedClock
) -> None:
    handler = FaultHandler(hold=threading.Event())
    assert handler.hold is not None
    handler.hold.set()  # the relay sits on every final reply until released
    with FaultServer(handler) as server:
        app = _app(make_settings, clock, server, connections=4)
        make_issue(app, 10)
        threads_before = threading.active_count()
        box: list[SendOutcome] = []
        sender = threading.Thread(target=lambda: box.append(send_issue(app, KEY)))
        sender.start()
        try:
            _wait_for(lambda: handler.held == 4)
            time.sleep(0.2)  # give a wrongly eager sender the chance to start a fifth message
            seen = statuses(app)
            # one thread drives all four: no worker threads besides the one calling send_issue
            assert threading.active_count() == threads_before + 1
        finally:
            handler.hold.clear()
            sender.join(30)
        app.close()
    assert handler.held == 4
    assert list(seen.values()).count("sending") == 4
    assert "sent" not in seen.values()
    assert box and box[0].counts == {"sent": 10}
    assert len(handler.received()) == 10


def test_a_timeout_on_one_connection_does_not_hold_back_the_others(
    make_settings: ConfigWriter, clock: FixedClock
) -> None:
    slow = "reader0000@example.com"

    class SlowForOne(FaultHandler):
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            if envelope.rcpt_tos[0] == slow:  # type: ignore[attr-defined]
                import asyncio

                await asyncio.sleep(1.0)
            return await super().handle_DATA(server, session, envelope)

    handler = SlowForOne()
    with FaultServer(handler) as server:
        settings = make_settings(
            transport={"kind": "smtp"},
            smtp={
                "host": server.host,
                "port": server.port,
                "security": "none",
                "timeout": 5.0,
                "data_timeout": 0.5,
            },
            sending={"connections": 2, "throttle_seconds": 0.05},
        )
        app = App.open(settings, check_schema=False, clock=clock)
        upgrade(app.db.engine)
        make_issue(app, 6)
        outcome = send_issue(app, KEY)
        app.close()
    assert outcome.counts == {"unknown": 1, "sent": 5}
    # the other connection went on while the slow one waited
    assert sorted(handler.received()) == [f"reader{n:04d}@example.com" for n in range(1, 6)]

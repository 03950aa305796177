"""Work through an issue's ledger with N SMTP connections, each reused for up to M messages.

One thread drives all N connections (no worker threads, so no GIL hand-offs and no locks on
the send path). Each loop pass: claims rows when the queue runs low, commits in ONE
transaction every result learnt in the previous pass together with the start (``sending``,
Message-ID) of the next message on each free connection, then writes to the relays and
waits on all their sockets with a selector until one answers. No transaction spans an SMTP
call; a connection never starts a message before the result of its previous one is
committed; at most one message per connection is in flight, so a crash can leave at most N
uncertain rows.

The sender knows nothing about subscribers or templates: ``build`` turns a claimed row and
its Message-ID into message bytes.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pulseletter.db import Database
from pulseletter.dispatch import ledger
from pulseletter.dispatch.ledger import Claimed, Result
from pulseletter.dispatch.policy import Breaker, backoff, classify
from pulseletter.dispatch.pool import Relay, RelayPool
from pulseletter.dispatch.ratelimit import RateLimit, try_acquire
from pulseletter.mail.message import wire_address
from pulseletter.mail.transports import Reply, Transport, Wait

log = logging.getLogger(__name__)

BuildMessage = Callable[[Claimed, str], bytes]
Clock = Callable[[], datetime]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class SenderConfig:
    connections: int = 2
    messages_per_connection: int = 100
    batch: int = 200
    lease: timedelta = timedelta(minutes=15)
    max_attempts: int = 5
    retry_base: float = 300.0
    retry_max: float = 6 * 3600.0
    throttle_seconds: float = 120.0
    bounce_limit: int = 1
    resend_unknown: bool = False


@dataclass
class SendReport:
    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    recovered: int = 0  # rows found in flight from a dead sender, re-sent (possible duplicates)
    paused_reason: str = ""
    by_code: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, status: str, reply: Reply | None) -> None:
        with self._lock:
            if hasattr(self, status) and status not in ("recovered", "paused_reason"):
                setattr(self, status, getattr(self, status) + 1)
            if reply is not None and not reply.ok:
                key = f"{reply.code} {reply.text[:60]}"
                self.by_code[key] = self.by_code.get(key, 0) + 1

    @property
    def attempted(self) -> int:
        return self.sent + self.deferred + self.bounced + self.failed + self.unknown


@dataclass
class _Slot:
    """One connection of the loop, and the message (if any) in flight on it."""

    relay: Relay | None = None
    transport: Transport | None = None
    row: Claimed | None = None
    steps: Generator[Wait, None, Reply] | None = None
    wait: Wait | None = None
    deadline: float = 0.0


class _Engine:
    """One thread drives every connection: each pass commits every result known so far
    together with the start of the next messages (one transaction), then talks SMTP on all
    connections at once, waiting on their sockets with a selector. A connection never starts
    a message before the pass that records its previous result has been committed."""

    def __init__(
        self,
        db: Database,
        issue_id: int,
        pool: RelayPool,
        mail_from: str,
        build: BuildMessage,
        new_message_id: Callable[[], str],
        *,
        clock: Clock,
        config: SenderConfig,
        global_limit: RateLimit,
        breaker: Breaker,
        stop: threading.Event,
        progress: Progress | None,
        report: SendReport | None = None,
    ) -> None:
        self.db, self.issue_id, self.pool = db, issue_id, pool
        self.mail_from, self.build, self.new_message_id = mail_from, build, new_message_id
        self.clock, self.config = clock, config
        self.global_limit, self.breaker, self.stop = global_limit, breaker, stop
        self.progress = progress
        self.owner = f"{ledger.owner_id()}:{secrets.token_hex(3)}"
        self.report = report if report is not None else SendReport()
        self.queue: deque[Claimed] = deque()
        self._halt = False  # paused or cancelled from elsewhere
        self.slots = [_Slot() for _ in range(max(config.connections, 1))]
        self.finished: list[Result] = []  # known, not yet committed: committed this pass
        self.selector = selectors.DefaultSelector()
        self.fast: ledger.FastStep | None = None

    def halted(self) -> bool:
        return self.stop.is_set() or self.breaker.opened.is_set() or self._halt

    def run(self) -> SendReport:
        self.report.recovered = ledger.recover(self.db, self.issue_id, self.clock())
        leftover: list[int] = []
        try:
            self.loop()
        finally:
            leftover.extend(row.delivery_id for row in self.queue)
            self.queue.clear()
            for slot in self.slots:
                if slot.transport is not None:
                    slot.transport.close()
                if slot.relay is not None:
                    self.pool.release(slot.relay)
            self.selector.close()
            if self.fast is not None:
                self.fast.close()
            ledger.release(self.db, leftover, self.clock())
        self.report.paused_reason = self.breaker.reason
        return self.report

    def in_flight(self) -> bool:
        return any(slot.steps is not None for slot in self.slots)

    def loop(self) -> None:
        idle_checks = 0
        batch = max(self.config.batch, 1)
        while True:
            starts: list[tuple[_Slot, Claimed, str]] = []
            retry_soon = False
            if not self.halted():
                if len(self.queue) <= batch // 2 and not self._refill(batch):
                    if not self.queue and not self.in_flight() and not self.finished:
                        idle_checks += 1  # rows handed back can reappear: stop when quiet
                        if idle_checks >= 2:
                            return
                        self.stop.wait(0.02)
                        continue
                else:
                    idle_checks = 0
                for slot in self.slots:
                    if slot.steps is not None or not self.queue:
                        continue
                    if not self._ready(slot):
                        retry_soon = True
                        continue
                    row = self.queue.popleft()
                    starts.append((slot, row, row.message_id or self.new_message_id()))
            elif not self.in_flight() and not self.finished:
                return
            self._commit_and_start(starts)
            if not self.in_flight():
                if retry_soon:
                    self.stop.wait(0.01)
                continue
            self._wait(0.01 if retry_soon else 1.0)

    def _refill(self, batch: int) -> bool:
        if ledger.issue_state(self.db, self.issue_id) != "sending":
            self._halt = True  # paused or cancelled from elsewhere: finish what is in flight
            return True
        rows = ledger.claim(
            self.db,
            self.issue_id,
            self.owner,
            self.clock(),
            limit=batch - len(self.queue),
            lease=self.config.lease,
        )
        self.queue.extend(rows)
        return bool(rows)

    def _ready(self, slot: _Slot) -> bool:
        """Give the slot an open relay and rate tokens for one message; False: not now."""
        if slot.transport is not None and self._used_up(slot.transport):
            slot.transport.close()
            slot.transport = None
        if slot.relay is None or slot.transport is None:
            if slot.relay is not None:
                self.pool.release(slot.relay)
            slot.relay = self.pool.acquire()
            if slot.relay is None:
                return False
            slot.transport = slot.relay.factory()
        return try_acquire([self.global_limit, slot.relay.limit])

    def _used_up(self, transport: Transport) -> bool:
        used = getattr(transport, "messages", 0)
        return bool(used) and used >= self.config.messages_per_connection

    def _commit_and_start(self, starts: list[tuple[_Slot, Claimed, str]]) -> None:
        """One transaction: every result known so far, and the start of these messages."""
        if not starts and not self.finished:
            return
        if self.fast is None:
            self.fast = ledger.FastStep(self.db)
        items: list[tuple[Result | None, Claimed | None, str]] = [
            (result, None, "") for result in self.finished
        ]
        items += [(None, row, message_id) for _, row, message_id in starts]
        done = len(self.finished)
        try:
            outcome = self.fast.many(
                self.clock(), items, self.owner, self.config.lease, self.config.bounce_limit
            )
        except BaseException:
            for _slot, row, _ in starts:
                self.queue.appendleft(row)  # never started: released by run()
            raise
        self.finished = []
        if self.progress is not None:
            for _ in range(done):
                self.progress("tick")
        for (slot, row, message_id), go in zip(starts, outcome[done:], strict=True):
            if not go:
                self.report.add("skipped", None)
                continue
            self._begin(slot, row, message_id)

    def _begin(self, slot: _Slot, row: Claimed, message_id: str) -> None:
        assert slot.transport is not None
        rcpt, smtputf8 = wire_address(row.email)
        data = self.build(row, message_id)
        slot.row = row
        steps = getattr(slot.transport, "steps", None)
        if steps is None:  # a transport that answers at once (file, memory)
            reply = slot.transport.send(self.mail_from, rcpt, data, smtputf8=smtputf8)
            self._finish(slot, reply)
            return
        slot.steps = steps(self.mail_from, rcpt, data, smtputf8=smtputf8)
        self._advance(slot, None)

    def _advance(self, slot: _Slot, error: BaseException | None) -> None:
        """Run the slot's exchange until it waits for the relay again, or ends."""
        assert slot.steps is not None
        try:
            wait = slot.steps.send(None) if error is None else slot.steps.throw(error)
        except StopIteration as done:
            slot.steps = None
            self._unwatch(slot)
            self._finish(slot, done.value)
            return
        if wait.sock is None:  # nothing to wait on: read on at once (it will fail fast)
            self._advance(slot, None)
            return
        if slot.wait is None or slot.wait.sock is not wait.sock:
            self._unwatch(slot)
            self.selector.register(wait.sock, selectors.EVENT_READ, slot)
        slot.wait = wait
        slot.deadline = time.monotonic() + wait.seconds

    def _unwatch(self, slot: _Slot) -> None:
        if slot.wait is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(slot.wait.sock)  # type: ignore[arg-type]
            slot.wait = None

    def _wait(self, longest: float) -> None:
        now = time.monotonic()
        waiting = [slot for slot in self.slots if slot.steps is not None]
        soonest = min(slot.deadline for slot in waiting)
        for key, _ in self.selector.select(max(0.0, min(longest, soonest - now))):
            slot = key.data
            if slot.steps is not None:
                self._advance(slot, None)
        now = time.monotonic()
        for slot in waiting:
            if slot.steps is not None and slot.deadline <= now:
                self._advance(slot, TimeoutError("timed out waiting for the relay"))

    def _finish(self, slot: _Slot, reply: Reply) -> None:
        """Classify a reply; the result is committed at the start of the next pass."""
        row, relay = slot.row, slot.relay
        assert row is not None and relay is not None
        slot.row = None
        verdict = classify(reply)
        self.breaker.observe(reply, verdict, relay.name)
        if verdict.throttle:
            relay.limit.throttle(self.config.throttle_seconds)
        status, retry_at = verdict.status, None
        if status == "unknown" and self.config.resend_unknown:
            status = "deferred"
        if status == "deferred":
            if row.attempts + 1 >= self.config.max_attempts:
                status = "failed"
            else:
                wait = backoff(row.attempts + 1, self.config.retry_base, self.config.retry_max)
                retry_at = self.clock() + wait
        if status == "queued":  # not the recipient's fault: back to the queue, attempt refunded
            retry_at = self.clock()
        self.report.add(status, reply)
        self.finished.append(
            Result(
                row.delivery_id,
                row.subscriber_id,
                status,
                code=reply.code,
                text=reply.text,
                relay=relay.name,
                next_attempt_at=retry_at,
                uncertain=verdict.uncertain or row.uncertain,
                hard_bounce=status == "bounced",
                refund_attempt=status == "queued",
            )
        )


def run_sender(
    db: Database,
    issue_id: int,
    pool: RelayPool,
    mail_from: str,
    build: BuildMessage,
    new_message_id: Callable[[], str],
    *,
    clock: Clock,
    config: SenderConfig | None = None,
    global_limit: RateLimit | None = None,
    breaker: Breaker | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    report: SendReport | None = None,
) -> SendReport:
    """Send every due delivery once; each result is committed before anything else happens.

    Setting ``stop`` (SIGTERM, shutdown) stops claiming; messages in flight finish and are
    recorded; rows claimed but not started go back to the queue. If the breaker opens, the
    run ends the same way and ``report.paused_reason`` says why.
    """
    engine = _Engine(
        db,
        issue_id,
        pool,
        mail_from,
        build,
        new_message_id,
        clock=clock,
        config=config or SenderConfig(),
        global_limit=global_limit or RateLimit([]),
        breaker=breaker or Breaker(),
        stop=stop or threading.Event(),
        progress=progress,
        report=report,
    )
    return engine.run()

"""Work through an issue's ledger with N SMTP connections, each reused for up to M messages.

The feeder (the calling thread) claims batches of due rows and queues them; each worker owns
one connection on a relay of the pool and, per message: takes rate tokens, marks the row
``sending`` (one short commit, together with the previous result), builds the bytes, talks SMTP
and commits the result before it waits for anything else. No transaction spans an SMTP call,
and at most one message per connection is ever in flight, so a crash can leave at most N
uncertain rows.

The sender knows nothing about subscribers or templates: ``build`` turns a claimed row and
its Message-ID into message bytes.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pulseletter.db import Database
from pulseletter.dispatch import ledger
from pulseletter.dispatch.ledger import Claimed, Result
from pulseletter.dispatch.policy import Breaker, backoff, classify
from pulseletter.dispatch.pool import Relay, RelayPool
from pulseletter.dispatch.ratelimit import RateLimit, acquire, try_acquire
from pulseletter.mail.message import wire_address
from pulseletter.mail.transports import Reply, Transport

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


_DONE = object()


class _Engine:
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
        # unbounded and lock-light; the feeder keeps it at most one batch long
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.busy = 0
        self._busy_lock = threading.Lock()
        self._halt = threading.Event()  # paused or cancelled from elsewhere, or a sender broke
        self.error: BaseException | None = None
        self.ledger = ledger.GroupCommit(
            db, clock, self.owner, config.lease, config.bounce_limit
        )  # every sender's writes, committed together when they arrive together

    def halted(self) -> bool:
        return self.stop.is_set() or self.breaker.opened.is_set() or self._halt.is_set()

    # -- feeder ---------------------------------------------------------------------------
    def run(self) -> SendReport:
        self.report.recovered = ledger.recover(self.db, self.issue_id, self.clock())
        workers = [
            threading.Thread(target=self.work, name=f"pulseletter-send-{n}", daemon=True)
            for n in range(self.config.connections)
        ]
        for w in workers:
            w.start()
        leftover: list[int] = []
        try:
            self.feed()
        finally:
            leftover.extend(self._drain())  # claimed, never started: back to the queue
            for _ in workers:
                self.queue.put(_DONE)
            for w in workers:
                w.join()
            self.ledger.close()
            leftover.extend(self._drain())
            ledger.release(self.db, leftover, self.clock())
        self.report.paused_reason = self.breaker.reason
        if self.error is not None:
            raise self.error  # e.g. the database went away: in-flight rows stay "sending"
        return self.report

    def feed(self) -> None:
        """Keep between half a batch and a batch of claimed rows queued for the workers."""
        idle_checks = 0
        batch = max(self.config.batch, 1)
        while not self.halted():
            waiting = self.queue.qsize()
            if waiting > batch // 2:
                self.stop.wait(0.002)
                continue
            if ledger.issue_state(self.db, self.issue_id) != "sending":
                self._halt.set()  # paused or cancelled from elsewhere: finish what is in flight
                return
            rows = ledger.claim(
                self.db,
                self.issue_id,
                self.owner,
                self.clock(),
                limit=batch - waiting,
                lease=self.config.lease,
            )
            if not rows:
                # rows handed back by a worker can reappear: stop only when all is quiet
                if self.queue.empty() and self.busy == 0:
                    idle_checks += 1
                    if idle_checks >= 2:
                        return
                self.stop.wait(0.02)
                continue
            idle_checks = 0
            for row in rows:
                self.queue.put(row)

    def _drain(self) -> list[int]:
        """Unqueue every claimed row not yet taken by a worker."""
        ids = []
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return ids
            if isinstance(item, Claimed):
                ids.append(item.delivery_id)

    # -- workers --------------------------------------------------------------------------
    def work(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # stop everyone; run() re-raises it in the caller
            self.error = self.error or exc
            self._halt.set()
            log.exception("a sender thread failed")

    def _work(self) -> None:
        relay: Relay | None = None
        transport: Transport | None = None
        # A result not yet committed. It never waits for anything: it is committed together
        # with the start of the next message when that can begin at once, else on its own.
        pending: Result | None = None
        try:
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    pending = self._commit(pending)
                    item = self.queue.get()
                if item is _DONE or not isinstance(item, Claimed):
                    break
                with self._busy_lock:
                    self.busy += 1
                try:
                    if self.halted():
                        pending = self._commit(pending)
                        ledger.release(self.db, [item.delivery_id], self.clock())
                        continue
                    if transport is not None and self._used_up(transport):
                        transport.close()
                        transport = None
                    if relay is None or transport is None:
                        pending = self._commit(pending)
                        if relay is not None:
                            self.pool.release(relay)
                        relay = self._relay()
                        if relay is None:
                            ledger.release(self.db, [item.delivery_id], self.clock())
                            continue
                        transport = relay.factory()
                    limits = [self.global_limit, relay.limit]
                    if not try_acquire(limits):
                        pending = self._commit(pending)
                        if not acquire(limits, self.halted):
                            ledger.release(self.db, [item.delivery_id], self.clock())
                            continue
                    pending = self.attempt(item, relay, transport, pending)
                finally:
                    with self._busy_lock:
                        self.busy -= 1
        finally:
            self._commit(pending)
            if transport is not None:
                transport.close()
            if relay is not None:
                self.pool.release(relay)

    def _commit(self, result: Result | None) -> None:
        if result is not None:
            self.ledger(
                self.clock(),
                owner=self.owner,
                lease=self.config.lease,
                finished=result,
                bounce_limit=self.config.bounce_limit,
            )
            if self.progress is not None:
                self.progress("tick")
        return None

    def _used_up(self, transport: Transport) -> bool:
        used = getattr(transport, "messages", 0)
        return bool(used) and used >= self.config.messages_per_connection

    def _relay(self) -> Relay | None:
        while not self.halted():
            relay = self.pool.acquire()
            if relay is not None:
                return relay
            self.stop.wait(0.05)
        return None

    def attempt(
        self, row: Claimed, relay: Relay, transport: Transport, previous: Result | None
    ) -> Result | None:
        """Commit ``previous`` and mark this row in flight (one transaction), send it, and
        return its result, to be committed next (None: skipped)."""
        message_id = row.message_id or self.new_message_id()
        go = self.ledger(
            self.clock(),
            owner=self.owner,
            lease=self.config.lease,
            finished=previous,
            start=row,
            message_id=message_id,
            bounce_limit=self.config.bounce_limit,
        )
        if previous is not None and self.progress is not None:
            self.progress("tick")
        if not go:
            self.report.add("skipped", None)
            return None
        rcpt, smtputf8 = wire_address(row.email)
        data = self.build(row, message_id)
        reply = transport.send(self.mail_from, rcpt, data, smtputf8=smtputf8)
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
        return Result(
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

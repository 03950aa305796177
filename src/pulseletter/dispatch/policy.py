"""What a reply means: classification by code and stage, backoff, and the circuit breaker.

2xx                          sent
5xx at RCPT (e.g. 550 5.1.1) bounced (a hard bounce; counts against the subscriber)
4xx anywhere (421, 450, 451, 452, 454 ...)
                             deferred: retried after exponential backoff with jitter; the
                             relay is throttled for a while
no reply after the final dot unknown: the relay may have the message (not re-sent unless
                             sending.resend_unknown)
no reply before the final dot deferred (nothing can have been delivered)
5xx after DATA (554 ...)     failed; a run of them opens the breaker
535 / any failure at AUTH, 5xx at MAIL FROM, repeated connection failures
                             breaker: the issue is paused with the reason; the recipient's
                             row goes back to the queue untouched
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import timedelta

from pulseletter.mail.transports import Reply


@dataclass(frozen=True)
class Verdict:
    status: str  # sent, deferred, bounced, failed, unknown, or "queued" (hand back)
    throttle: bool = False  # slow the relay down
    breaker: str = ""  # non-empty: pause the issue with this reason
    uncertain: bool = False


def classify(reply: Reply) -> Verdict:
    """Map an SMTP reply to a ledger status by code and stage, never by exception type."""
    if reply.ok:
        return Verdict("sent")
    if reply.stage == "auth":
        return Verdict("queued", breaker=f"the relay refused our login: {_show(reply)}")
    if reply.stage == "connect":
        return Verdict("queued", throttle=True)
    if reply.code == 0:
        if reply.stage == "after-data":
            return Verdict("unknown", uncertain=True)
        return Verdict("deferred", throttle=False)
    if 400 <= reply.code < 500:
        return Verdict("deferred", throttle=True)
    if reply.stage == "mail":
        return Verdict("queued", breaker=f"the relay refused our sender address: {_show(reply)}")
    if reply.stage == "rcpt":
        return Verdict("bounced")
    return Verdict("failed")


def _show(reply: Reply) -> str:
    return f"{reply.code} {reply.text}".strip()


def backoff(
    attempts: int, base: float = 300.0, cap: float = 6 * 3600.0, rng: random.Random | None = None
) -> timedelta:
    """Exponential backoff with jitter: about base * 2^(attempts-1), between half and all of it."""
    r = rng or random
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=r.uniform(ceiling / 2, ceiling))


class Breaker:
    """Opens (once) on a fatal relay answer or a run of failures; the sender then stops."""

    def __init__(self, data_failures: int = 5, connect_failures: int = 5) -> None:
        self.data_limit, self.connect_limit = data_failures, connect_failures
        self.reason = ""
        self._data_run = 0
        self._connect_run = 0
        self._lock = threading.Lock()
        self.opened = threading.Event()

    def trip(self, reason: str) -> None:
        with self._lock:
            if not self.reason:
                self.reason = reason
        self.opened.set()

    def observe(self, reply: Reply, verdict: Verdict, relay: str) -> None:
        if verdict.breaker:
            self.trip(f"{relay}: {verdict.breaker}")
            return
        with self._lock:
            if reply.stage == "connect" and not reply.ok:
                self._connect_run += 1
                run, limit = self._connect_run, self.connect_limit
                what = "connections in a row failed"
            elif verdict.status == "failed" and reply.stage == "data":
                self._connect_run = 0
                self._data_run += 1
                run, limit = self._data_run, self.data_limit
                what = "messages in a row were rejected after DATA"
            else:
                if reply.ok:
                    self._data_run = 0
                self._connect_run = 0 if reply.stage != "connect" else self._connect_run
                return
        if run >= limit:
            self.trip(f"{relay}: {run} {what}, the last with {_show(reply)}")

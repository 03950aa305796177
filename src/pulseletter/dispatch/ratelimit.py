"""Token buckets: per relay (per second, per hour, per day) and one over all relays.

A relay that answers 4xx (421, 450, 451, 452, 454) is throttling us: its rate is halved for a
while (``throttle_seconds``), and it takes no new message during the first part of that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; rate 0 means unlimited."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, max(capacity, 1.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def _refill(self, now: float, factor: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate * factor)
        self.stamp = now

    def wait_time(self, now: float, factor: float = 1.0) -> float:
        """Seconds until one token is available (0: now)."""
        if self.rate <= 0:
            return 0.0
        self._refill(now, factor)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / (self.rate * factor)

    def take(self) -> None:
        if self.rate > 0:
            self.tokens -= 1


def buckets(per_second: float, per_hour: int, per_day: int) -> list[TokenBucket]:
    """Bursts of up to one second's worth (per second), or 1% of the hour's/day's budget."""
    out = []
    if per_second > 0:
        out.append(TokenBucket(per_second, per_second))
    if per_hour > 0:
        out.append(TokenBucket(per_hour / 3600.0, max(1.0, per_hour / 100)))
    if per_day > 0:
        out.append(TokenBucket(per_day / 86400.0, max(1.0, per_day / 100)))
    return out


class RateLimit:
    """All buckets of one scope (a relay, or global); thread-safe; can be throttled."""

    def __init__(
        self, limits: list[TokenBucket], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.factor = 1.0
        self.throttled_until = 0.0
        self.paused_until = 0.0
        self._lock = threading.Lock()

    def try_take(self) -> float:
        """Take a token from every bucket now (returns 0), or return seconds to wait."""
        with self._lock:
            now = self.clock()
            if now >= self.throttled_until:
                self.factor = 1.0
            if now < self.paused_until:
                return self.paused_until - now
            wait = max((b.wait_time(now, self.factor) for b in self.limits), default=0.0)
            if wait > 0:
                return wait
            for b in self.limits:
                b.take()
            return 0.0

    def try_peek(self) -> float:
        """Seconds this scope is paused for (0: open); takes nothing."""
        with self._lock:
            return max(0.0, self.paused_until - self.clock())

    def refund(self) -> None:
        with self._lock:
            for b in self.limits:
                if b.rate > 0:
                    b.tokens += 1

    def throttle(self, seconds: float) -> None:
        """Halve the rate for ``seconds`` and pause for a tenth of it (at most 5 s)."""
        if seconds <= 0:
            return
        with self._lock:
            now = self.clock()
            self.factor = max(self.factor / 2, 1 / 64)
            self.throttled_until = now + seconds
            self.paused_until = max(self.paused_until, now + min(seconds / 10, 5.0))


def acquire(limits: list[RateLimit], stop: Callable[[], bool], max_sleep: float = 0.25) -> bool:
    """Block until every limit gives a token; False if ``stop`` became true while waiting."""
    while True:
        taken: list[RateLimit] = []
        wait = 0.0
        for limit in limits:
            wait = limit.try_take()
            if wait > 0:
                break
            taken.append(limit)
        if wait <= 0:
            return True
        for limit in taken:
            limit.refund()
        if stop():
            return False
        time.sleep(min(wait, max_sleep))


def try_acquire(limits: list[RateLimit]) -> bool:
    """Take a token from every limit now, or from none of them."""
    taken: list[RateLimit] = []
    for limit in limits:
        if limit.try_take() > 0:
            for t in taken:
                t.refund()
            return False
        taken.append(limit)
    return True

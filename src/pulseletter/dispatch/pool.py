"""A pool of relays: each has a weight, a connection cap and its own rate limits."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pulseletter.dispatch.ratelimit import RateLimit
from pulseletter.mail.transports import Transport


@dataclass
class Relay:
    name: str
    factory: Callable[[], Transport]
    limit: RateLimit = field(default_factory=lambda: RateLimit([]))
    weight: float = 1.0
    max_connections: int = 0  # 0: no cap of its own
    open_connections: int = 0


class RelayPool:
    """Hands each new connection to a relay chosen by weight among those with room."""

    def __init__(self, relays: list[Relay], rng: random.Random | None = None) -> None:
        if not relays:
            raise ValueError("a relay pool needs at least one relay")
        self.relays = relays
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def acquire(self) -> Relay | None:
        with self._lock:
            free = [
                r
                for r in self.relays
                if not r.max_connections or r.open_connections < r.max_connections
            ]
            if not free:
                return None
            now = [r for r in free if r.limit.try_peek() == 0.0] or free
            relay = self._rng.choices(now, weights=[r.weight for r in now])[0]
            relay.open_connections += 1
            return relay

    def release(self, relay: Relay) -> None:
        with self._lock:
            relay.open_connections -= 1

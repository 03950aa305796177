"""A sliding-window counter per key (client IP), in memory, bounded in size.

Per process: with several web workers each has its own window, so the effective limit is
``limit x workers``. The per-address limit on confirmation mails lives in the database
(``service.web_actions``) and holds across processes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime


class SlidingWindow:
    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], datetime],
        max_keys: int = 100_000,
    ) -> None:
        self.limit, self.window, self.clock, self.max_keys = limit, window_seconds, clock, max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count one request; None if allowed, else seconds until the next one is allowed."""
        now = self.clock().timestamp()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            self._hits[key] = hits
            if len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            if len(hits) >= self.limit:
                return max(1.0, hits[0] + self.window - now)
            hits.append(now)
            return None

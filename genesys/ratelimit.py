"""Pace requests under Genesys Cloud's per-token rate limit instead of running into 429s.

Genesys allows 300 requests a minute per client-credentials token by default. A sliding
window of the last minute's request times is exact: a request waits until it would be at
most the `limit`-th in any 60 s, for at most `max_wait` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class RequestPacer:
    """A sliding-window limiter shared by every thread of one Genesys client."""

    def __init__(
        self,
        limit: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._limit = limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()

    def acquire(self, max_wait: float) -> bool:
        """Take a place for one request, waiting up to `max_wait` s; False if none came."""
        deadline = self._clock() + max_wait
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - WINDOW_SECONDS:
                    self._sent.popleft()
                if len(self._sent) < self._limit:
                    self._sent.append(now)
                    return True
                wait = self._sent[0] + WINDOW_SECONDS - now
            if now + wait > deadline:
                return False
            self._sleep(min(wait, 1.0))

"""Pace requests under Genesys Cloud's per-token rate limit instead of running into 429s.

Genesys allows 300 requests a minute per client-credentials token by default. A token
bucket that holds `burst` requests and refills at (limit - burst) a minute can never let
more than `limit` through in any 60 s, and spreads requests out evenly under load, so a
request waits a fraction of a second rather than for a whole window to pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WINDOW_SECONDS = 60.0
DEFAULT_BURST = 10


class RequestPacer:
    """A token bucket shared by every thread of one Genesys client."""

    def __init__(
        self,
        limit: int,
        *,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._burst = max(1, min(burst, limit // 2))
        self._rate = (limit - self._burst) / WINDOW_SECONDS
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self._burst)
        self._updated = clock()

    def acquire(self, max_wait: float) -> bool:
        """Take a place for one request, waiting up to `max_wait` s; False if none came.

        Places are handed out in arrival order: a request reserves the next free slot and
        sleeps until then, so waiting threads do not race each other.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(
                float(self._burst), self._tokens + (now - self._updated) * self._rate
            )
            self._updated = now
            wait = max(0.0, (1.0 - self._tokens) / self._rate)
            if wait > max_wait:
                return False
            self._tokens -= 1.0
        if wait > 0:
            self._sleep(wait)
        return True

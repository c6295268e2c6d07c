"""The benchmark's rate-limited Genesys: the simulator enforcing a sliding-window limit."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

from sandbox.genesys_simulator import FakeGenesys, RecordedRequest, _error, _Reply


class RateLimitedGenesys(FakeGenesys):
    """The simulator answering 429 with `Retry-After` once `limit` requests came in `window` s.

    The window slides and is counted on arrival: a request is refused when `limit` requests
    were already admitted in the `window` seconds before it arrived. Choices, stated so the
    figures can be read:

    - only admitted requests count towards the limit (a refused one does not use it up);
    - only `/api/v2/...` is limited; `POST /oauth/token` is on Genesys's login service, whose
      limits are separate;
    - `Retry-After` is the whole seconds until the oldest admitted request leaves the window
      (at least 1), so a client that honours it is admitted on its next try;
    - the refusal is decided on arrival and sent after the injected `latency`, like any other
      answer.
    """

    def __init__(self, *, limit: int, window: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit = limit
        self.window = window
        self.rejected = 0
        self.admitted = 0
        #: For each refusal, the seconds until the window had room again (before rounding up).
        self.refused_for: list[float] = []
        self._window_lock = threading.Lock()
        self._admitted_at: deque[float] = deque()
        self._decision = threading.local()  # the verdict on the request this thread serves

    def _handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> _Reply | None:
        self._decision.retry_after = self._admit(target) if target.startswith("/api/v2/") else None
        return super()._handle(method, target, headers, raw)

    def _admit(self, target: str) -> int | None:
        """None if the request is admitted, else the Retry-After in seconds."""
        with self._window_lock:
            now = time.monotonic()
            while self._admitted_at and self._admitted_at[0] <= now - self.window:
                self._admitted_at.popleft()
            if len(self._admitted_at) >= self.limit:
                self.rejected += 1
                wait = self._admitted_at[0] + self.window - now
                self.refused_for.append(wait)
                return max(1, math.ceil(wait))
            self._admitted_at.append(now)
            self.admitted += 1
            return None

    def _route(self, request: RecordedRequest) -> _Reply:
        # Runs on the thread that ran _handle for this request (one handler thread each).
        retry_after: int | None = getattr(self._decision, "retry_after", None)
        if retry_after is None:
            return super()._route(request)
        reply = _error(
            429,
            message=(
                f"Rate limit exceeded the maximum [{self.limit}] requests within "
                f"[{self.window:g}] seconds"
            ),
        )
        reply.headers["Retry-After"] = str(retry_after)
        return reply

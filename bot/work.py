"""Slow work (Genesys, Slack updates) runs here, after the acknowledgement, on its own pool.

Bolt's listener threads then only check and acknowledge, so a burst of commands, or a slow
Genesys, can never hold up the next acknowledgement. The pool is bounded: past
`max_waiting` queued jobs a request is refused with a clear message instead of waiting
without end. A job also waits for a pause in the requests being answered (`Foreground`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)


# The longest a job waits for a pause in the requests being answered.
MAX_HOLD_SECONDS = 0.25
# Requests still open after this long with no other request starting or ending (a client
# that connects and sends nothing, or sends its body slowly) no longer hold jobs back.
STILL_AFTER_SECONDS = 0.02


class Foreground:
    """The Slack requests being answered right now; jobs wait for a pause in them.

    Python runs one thread at a time, so a job that starts while a burst of requests is
    being answered takes CPU from their acknowledgements: a look-up costs several times
    what an acknowledgement does. The HTTP server counts each request in (`begin`) when it
    hands the connection to a thread, and out (`end`) once its answer is written. A job
    starts when the count is zero; or when no request has started or ended for
    `still_after` seconds, so that a connection that sends nothing, or its request slowly,
    holds work back for that long only; and after `max_hold` seconds whatever happens, so
    that requests that never stop cannot hold it back for longer. It also means a job's
    first message (through `response_url`) follows its request's answer instead of racing
    it. Where nothing counts (Socket Mode, tests without a server), the count stays zero
    and jobs start at once. `release` (at shutdown) stops all holding.
    """

    def __init__(
        self, *, max_hold: float = MAX_HOLD_SECONDS, still_after: float = STILL_AFTER_SECONDS
    ) -> None:
        self._max_hold = max_hold
        self._still_after = still_after
        self._lock = threading.Lock()
        self._answering = 0
        self._last_change = time.monotonic()
        self._released = False
        self._paused = threading.Event()
        self._paused.set()

    def begin(self) -> None:
        """A request is being read and answered."""
        with self._lock:
            self._answering += 1
            self._last_change = time.monotonic()
            if not self._released:
                self._paused.clear()

    def end(self) -> None:
        """A request's answer has been written (or it has been given up)."""
        with self._lock:
            if self._answering == 0:
                logger.warning("A request was counted out that was never counted in")
            self._answering = max(0, self._answering - 1)
            self._last_change = time.monotonic()
            if self._answering == 0:
                self._paused.set()

    def release(self) -> None:
        """Hold no job back from now on (the bot is stopping: let the queue drain)."""
        with self._lock:
            self._released = True
            self._paused.set()

    def wait_for_pause(self) -> bool:
        """Wait for a pause (see the class); True if no request was being answered."""
        deadline = time.monotonic() + self._max_hold
        while True:
            now = time.monotonic()
            with self._lock:
                still_for = now - self._last_change
            if still_for >= self._still_after or now >= deadline:
                return self._paused.is_set()
            if self._paused.wait(min(self._still_after - still_for, deadline - now)):
                return True


class WorkQueue:
    """A thread pool with a bounded queue and a drain for graceful shutdown."""

    def __init__(
        self, *, workers: int = 16, max_waiting: int = 500, foreground: Foreground | None = None
    ) -> None:
        self.foreground = foreground or Foreground()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drop-work")
        self._slots = threading.BoundedSemaphore(workers + max_waiting)
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Condition(self._lock)

    @property
    def in_progress(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return self._running

    def submit(self, job: Callable[[], None], on_error: Callable[[Exception], None]) -> bool:
        """Queue `job`; False (and nothing queued) when the queue is full.

        An exception from `job` is logged with its traceback and handed to `on_error`, which
        tells the person concerned.
        """
        if not self._slots.acquire(blocking=False):
            logger.warning("Work queue full: a request was refused")
            return False
        with self._lock:
            self._running += 1

        def run() -> None:
            try:
                self.foreground.wait_for_pause()
                job()
            except Exception as exc:
                logger.exception("Unexpected error in a request")
                try:
                    on_error(exc)
                except Exception:
                    logger.exception("Could not report the error to the user")
            finally:
                self._slots.release()
                with self._lock:
                    self._running -= 1
                    self._idle.notify_all()

        self._executor.submit(run)
        return True

    def drain(self, timeout: float) -> bool:
        """Wait until every queued job has finished; False if some still run after `timeout`."""
        with self._lock:
            return self._idle.wait_for(lambda: self._running == 0, timeout=timeout)

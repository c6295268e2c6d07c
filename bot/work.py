"""Slow work (Genesys, Slack updates) runs here, after the acknowledgement, on its own pool.

Bolt's listener threads then only check and acknowledge, so a burst of commands, or a slow
Genesys, can never hold up the next acknowledgement. The pool is bounded: past
`max_waiting` queued jobs a request is refused with a clear message instead of waiting
without end. A job also waits for a pause in the requests being answered (`Foreground`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)


# The longest a job waits for a pause in the requests being answered.
MAX_HOLD_SECONDS = 0.25


class Foreground:
    """The Slack requests being answered right now; jobs wait for a pause in them.

    Python runs one thread at a time, so a job that starts while a burst of requests is
    being answered takes CPU from their acknowledgements: a look-up costs several times
    what an acknowledgement does. The HTTP server counts each request in (`begin`) when it
    hands the connection to a thread, and out (`end`) once its answer is written; a job
    starts when the count is zero, or after `max_hold` seconds whatever the count, so that
    requests that never stop, or one client that sends its request slowly, cannot hold
    work back for longer. It also means a job's first message (through `response_url`)
    follows its request's answer instead of racing it. Where nothing counts (Socket Mode,
    tests without a server), the count stays zero and jobs start at once.
    """

    def __init__(self, *, max_hold: float = MAX_HOLD_SECONDS) -> None:
        self._max_hold = max_hold
        self._lock = threading.Lock()
        self._answering = 0
        self._paused = threading.Event()
        self._paused.set()

    def begin(self) -> None:
        """A request is being read and answered."""
        with self._lock:
            self._answering += 1
            self._paused.clear()

    def end(self) -> None:
        """A request's answer has been written (or it has been given up)."""
        with self._lock:
            self._answering = max(0, self._answering - 1)
            if self._answering == 0:
                self._paused.set()

    def wait_for_pause(self) -> bool:
        """Wait until no request is being answered, at most `max_hold` s; True if none is."""
        return self._paused.wait(self._max_hold)


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

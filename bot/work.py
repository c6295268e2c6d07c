"""Slow work (Genesys, Slack updates) runs here, after the acknowledgement, on its own pool.

Bolt's listener threads then only check and acknowledge, so a burst of commands, or a slow
Genesys, can never hold up the next acknowledgement. The pool is bounded: past
`max_waiting` queued jobs a request is refused with a clear message instead of waiting
without end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)


class WorkQueue:
    """A thread pool with a bounded queue and a drain for graceful shutdown."""

    def __init__(self, *, workers: int = 16, max_waiting: int = 500) -> None:
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

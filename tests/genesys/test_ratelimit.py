"""genesys.ratelimit.RequestPacer on a hand-driven clock."""

from __future__ import annotations

import threading

from genesys.ratelimit import RequestPacer


class Clock:
    """A clock that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_up_to_the_limit_goes_at_once() -> None:
    """The first `limit` requests in a minute do not wait."""
    clock = Clock()
    pacer = RequestPacer(5, clock=clock, sleep=clock.sleep)

    assert all(pacer.acquire(max_wait=0) for _ in range(5))
    assert clock.slept == 0


def test_the_next_request_waits_for_the_window() -> None:
    """Request limit+1 waits until the first one is a minute old."""
    clock = Clock()
    pacer = RequestPacer(5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.acquire(max_wait=0)
    clock.now = 10.0

    assert pacer.acquire(max_wait=60)
    assert clock.now >= 60.0


def test_a_request_that_would_wait_too_long_is_refused() -> None:
    """With no place within `max_wait`, acquire says no at once instead of hanging."""
    clock = Clock()
    pacer = RequestPacer(2, clock=clock, sleep=clock.sleep)
    pacer.acquire(max_wait=0)
    pacer.acquire(max_wait=0)

    assert pacer.acquire(max_wait=30) is False
    assert clock.slept == 0


def test_threads_never_exceed_the_limit_in_any_minute() -> None:
    """Many threads together stay within the limit for every 60 s window."""
    pacer = RequestPacer(50)
    granted: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        ok = pacer.acquire(max_wait=0)
        with lock:
            granted.append(ok)

    threads = [threading.Thread(target=take) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert granted.count(True) == 50

"""genesys.ratelimit.RequestPacer on a hand-driven clock."""

from __future__ import annotations

import bisect

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


def test_a_small_burst_goes_at_once() -> None:
    """The first few requests (the burst) do not wait."""
    clock = Clock()
    pacer = RequestPacer(300, burst=10, clock=clock, sleep=clock.sleep)

    assert all(pacer.acquire(max_wait=0) for _ in range(10))
    assert clock.slept == 0


def test_past_the_burst_requests_are_spread_out() -> None:
    """After the burst each request waits about one refill interval, not a whole minute."""
    clock = Clock()
    pacer = RequestPacer(300, burst=10, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        pacer.acquire(max_wait=0)

    assert pacer.acquire(max_wait=60)

    assert 0.1 < clock.slept < 0.5  # 290 a minute: about 0.21 s apart


def test_a_request_that_would_wait_too_long_is_refused() -> None:
    """With no place within `max_wait`, acquire says no at once instead of hanging."""
    clock = Clock()
    pacer = RequestPacer(4, burst=2, clock=clock, sleep=clock.sleep)
    pacer.acquire(max_wait=0)
    pacer.acquire(max_wait=0)

    assert pacer.acquire(max_wait=1) is False
    assert clock.slept == 0


def test_no_minute_ever_holds_more_than_the_limit() -> None:
    """Requests flat out for ten minutes: every 60 s window stays within the limit."""
    clock = Clock()
    pacer = RequestPacer(300, burst=10, clock=clock, sleep=clock.sleep)
    sent: list[float] = []
    while clock.now < 600:
        assert pacer.acquire(max_wait=60)
        sent.append(clock.now)

    busiest = max(bisect.bisect_left(sent, t + 60) - i for i, t in enumerate(sent))
    assert busiest <= 300
    assert len(sent) >= 2900  # and it does not hold back far below the limit either

"""The work queue waits for a pause in the requests being answered before a job starts."""

from __future__ import annotations

import threading
import time

from bot.work import Foreground, WorkQueue


def _started(queue: WorkQueue) -> threading.Event:
    started = threading.Event()
    assert queue.submit(started.set, on_error=lambda _: None)
    return started


def test_a_job_waits_while_a_request_is_being_answered() -> None:
    foreground = Foreground(max_hold=30.0)
    queue = WorkQueue(workers=2, foreground=foreground)
    foreground.begin()
    started = _started(queue)
    assert not started.wait(0.3), "the job started while a request was still being answered"
    foreground.end()
    assert started.wait(5), "the job did not start once the answer was written"
    assert queue.drain(5)


def test_a_job_waits_for_every_request_in_progress() -> None:
    foreground = Foreground(max_hold=30.0)
    queue = WorkQueue(workers=2, foreground=foreground)
    foreground.begin()
    foreground.begin()
    started = _started(queue)
    foreground.end()
    assert not started.wait(0.3), "the job started while a second request was in progress"
    foreground.end()
    assert started.wait(5)
    assert queue.drain(5)


def test_requests_that_never_pause_hold_a_job_back_for_max_hold_only() -> None:
    foreground = Foreground(max_hold=0.4)
    queue = WorkQueue(workers=2, foreground=foreground)
    foreground.begin()  # never ended: a client that never finishes sending
    queued_at = time.monotonic()
    started = _started(queue)
    assert started.wait(5), "the job never started"
    waited = time.monotonic() - queued_at
    assert waited >= 0.4, f"the job started after {waited:.3f} s, before max_hold"
    assert queue.drain(5)


def test_with_nothing_counted_a_job_starts_at_once() -> None:
    """Socket Mode: no server counts requests, so nothing is held back."""
    queue = WorkQueue(workers=2, foreground=Foreground(max_hold=30.0))
    assert _started(queue).wait(5)
    assert queue.drain(5)


def test_an_extra_end_does_not_make_the_count_negative() -> None:
    foreground = Foreground(max_hold=30.0)
    foreground.end()
    foreground.begin()
    queue = WorkQueue(workers=2, foreground=foreground)
    started = _started(queue)
    assert not started.wait(0.3), "a stray end() let the count go below the one request"
    foreground.end()
    assert started.wait(5)
    assert queue.drain(5)

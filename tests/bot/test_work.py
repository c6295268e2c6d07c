"""The work queue waits for a pause in the requests being answered before a job starts."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from bot.work import Foreground, WorkQueue

# Long enough that only the behaviour under test can let a job start.
FOREVER = 30.0


def _started(queue: WorkQueue) -> threading.Event:
    started = threading.Event()
    assert queue.submit(started.set, on_error=lambda _: None)
    return started


def test_a_job_waits_while_a_request_is_being_answered() -> None:
    foreground = Foreground(max_hold=FOREVER, still_after=FOREVER)
    queue = WorkQueue(workers=2, foreground=foreground)
    foreground.begin()
    started = _started(queue)
    assert not started.wait(0.3), "the job started while a request was still being answered"
    foreground.end()
    assert started.wait(5), "the job did not start once the answer was written"
    assert queue.drain(5)


def test_a_job_waits_for_every_request_in_progress() -> None:
    foreground = Foreground(max_hold=FOREVER, still_after=FOREVER)
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
    foreground = Foreground(max_hold=0.4, still_after=FOREVER)
    queue = WorkQueue(workers=2, foreground=foreground)
    foreground.begin()  # never ended
    queued_at = time.monotonic()
    started = _started(queue)
    assert started.wait(5), "the job never started"
    waited = time.monotonic() - queued_at
    assert waited >= 0.4, f"the job started after {waited:.3f} s, before max_hold"
    assert queue.drain(5)


def test_an_open_request_with_nothing_else_happening_holds_a_job_for_still_after_only() -> None:
    """A client that connects and sends nothing (or sends slowly) is not a burst."""
    foreground = Foreground(max_hold=FOREVER, still_after=0.3)
    queue = WorkQueue(workers=2, foreground=foreground)
    foreground.begin()  # never ended, and nothing else starts or ends
    queued_at = time.monotonic()
    started = _started(queue)
    assert started.wait(5), "the job never started"
    waited = time.monotonic() - queued_at
    assert 0.2 <= waited < 5, f"the job started after {waited:.3f} s"
    assert queue.drain(5)


def test_requests_starting_and_ending_keep_holding_a_job_while_one_is_open() -> None:
    foreground = Foreground(max_hold=FOREVER, still_after=0.3)
    queue = WorkQueue(workers=2, foreground=foreground)
    foreground.begin()  # one stays open throughout
    started = _started(queue)
    for _ in range(8):  # others come and go, 0.1 s apart: 0.8 s in all
        time.sleep(0.1)
        foreground.begin()
        foreground.end()
        assert not started.wait(0), "the job started while requests kept coming"
    assert started.wait(5), "the job did not start once the requests stopped coming"
    assert queue.drain(5)


def test_with_nothing_counted_a_job_starts_at_once() -> None:
    """Socket Mode: no server counts requests, so nothing is held back."""
    queue = WorkQueue(workers=2, foreground=Foreground(max_hold=FOREVER, still_after=FOREVER))
    assert _started(queue).wait(5)
    assert queue.drain(5)


def test_release_stops_holding_jobs_back() -> None:
    """At shutdown the queue drains at once, whatever is still counted."""
    foreground = Foreground(max_hold=FOREVER, still_after=FOREVER)
    queue = WorkQueue(workers=2, foreground=foreground)
    foreground.begin()
    started = _started(queue)
    assert not started.wait(0.2)
    foreground.release()
    assert started.wait(5), "a waiting job was still held after release"
    foreground.begin()
    assert _started(queue).wait(5), "a new job was held after release"
    assert queue.drain(5)


def test_an_extra_end_is_logged_and_does_not_make_the_count_negative(
    caplog: pytest.LogCaptureFixture,
) -> None:
    foreground = Foreground(max_hold=FOREVER, still_after=FOREVER)
    with caplog.at_level(logging.WARNING, logger="bot.work"):
        foreground.end()
    assert "never counted in" in caplog.text
    foreground.begin()
    queue = WorkQueue(workers=2, foreground=foreground)
    started = _started(queue)
    assert not started.wait(0.3), "a stray end() let the count go below the one request"
    foreground.end()
    assert started.wait(5)
    assert queue.drain(5)

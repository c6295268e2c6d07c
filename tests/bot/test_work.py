"""The work queue: jobs run off the listener threads, a full queue refuses, drain waits."""

from __future__ import annotations

import threading

from bot.work import WorkQueue


def test_a_job_runs_at_once_and_drain_waits_for_it() -> None:
    """A queued job starts straight away; drain returns once it has finished."""
    queue = WorkQueue(workers=2)
    started, release = threading.Event(), threading.Event()

    def job() -> None:
        started.set()
        release.wait(5)

    assert queue.submit(job, on_error=lambda _: None)
    assert started.wait(5)
    assert queue.in_progress == 1
    assert not queue.drain(0.1), "drain returned while the job was still running"
    release.set()
    assert queue.drain(5)
    assert queue.in_progress == 0


def test_a_full_queue_refuses_and_queues_nothing() -> None:
    """Past its workers and waiting slots, submit says no instead of waiting."""
    queue = WorkQueue(workers=1, max_waiting=1)
    release = threading.Event()
    ran: list[int] = []

    def job(n: int) -> None:
        release.wait(5)
        ran.append(n)

    assert queue.submit(lambda: job(1), on_error=lambda _: None)
    assert queue.submit(lambda: job(2), on_error=lambda _: None)
    assert not queue.submit(lambda: job(3), on_error=lambda _: None)
    release.set()
    assert queue.drain(5)
    assert sorted(ran) == [1, 2]


def test_a_failing_job_is_reported_and_frees_its_slot() -> None:
    """An exception reaches on_error; the queue goes on taking work."""
    queue = WorkQueue(workers=1, max_waiting=0)
    errors: list[Exception] = []

    def boom() -> None:
        raise RuntimeError("bug")

    assert queue.submit(boom, on_error=errors.append)
    assert queue.drain(5)
    assert [str(e) for e in errors] == ["bug"]
    assert queue.submit(lambda: None, on_error=errors.append)
    assert queue.drain(5)

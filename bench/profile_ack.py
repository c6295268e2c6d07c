"""Where an acknowledgement's CPU goes: `python -m bench.profile_ack`.

The benchmark times acknowledgements over HTTP, under granian. This calls the bot's WSGI
application directly, in this process, so that what the bot itself costs per
acknowledgement can be told apart from what the server costs (bench/bare.py):

1. CPU per acknowledgement (the calling thread's own CPU time, so the look-ups the commands
   queue, which run on other threads, are not counted), with requests one at a time and
   from as many threads at once as the HTTP server answers with (bot.server.HTTP_THREADS);
2. a cProfile of the acknowledgement path, one request at a time.

The bot is the real one (bot.app_factory.build_bot: the Bolt app, the real Genesys SDK, the
loopback simulators), with logging set up as in production and written to /dev/null.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.botprocess import SIGNING_SECRET, SUPERVISOR
from bench.burst import Prepared
from bench.client import prepare_command
from bot.app_factory import Bot, build_bot
from bot.redaction import configure_logging
from bot.server import HTTP_THREADS
from bot.settings import load_settings
from bot.web import WsgiApp
from sandbox.environment import simulated_environment
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack

EVENTS_URL = "http://127.0.0.1:3000/slack/events"  # only the Host header uses it

Environ = tuple[dict[str, Any], bytes]


def environ_for(request: Prepared) -> Environ:
    """The WSGI environ (without its input) and body for a prepared HTTP request."""
    head, _, body = request.data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, protocol = lines[0].split(" ", 2)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": request.host,
        "SERVER_PORT": str(request.port),
        "SERVER_PROTOCOL": protocol,
        "wsgi.url_scheme": "http",
    }
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value.strip()
        else:
            environ[f"HTTP_{key}"] = value.strip()
    return environ, body


def answer(application: WsgiApp, request: Environ) -> str:
    """Call the WSGI app once; its status line."""
    environ, body = request
    statuses: list[str] = []
    environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
    b"".join(application(environ, lambda status, headers, *_: statuses.append(status)))
    return statuses[0]


def cpu_per_answer(application: WsgiApp, requests: Sequence[Environ], threads: int) -> float:
    """Milliseconds of the answering threads' own CPU per request."""
    parts = [requests[i::threads] for i in range(threads)]
    spent = [0.0] * threads
    start = threading.Barrier(threads)

    def run(index: int) -> None:
        start.wait()
        began = time.thread_time()
        for request in parts[index]:
            answer(application, request)
        spent[index] = time.thread_time() - began

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(spent) * 1000 / len(requests)


@contextlib.contextmanager
def in_process_bot(genesys: FakeGenesys, slack: FakeSlack, tmp: Path) -> Iterator[Bot]:
    """The real bot, built as `python app.py --http` builds it, in this process."""
    environ = simulated_environment(
        genesys,
        slack,
        signing_secret=SIGNING_SECRET,
        supervisors=SUPERVISOR,
        database_url=f"sqlite:///{tmp / 'drop_caller.db'}",
    )
    # Unpaced: the look-ups the acknowledgements queue must not wait on the rate limit.
    environ["GENESYS_REQUESTS_PER_MINUTE"] = "1000000"
    bot = build_bot(load_settings(environ, mode="http"))
    slack.wait_for(lambda: bot.identity.team_id is not None)
    try:
        yield bot
    finally:
        bot.stop_background()
        bot.finish_work(timeout=30)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the CPU per acknowledgement and the profile of the acknowledgement path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--requests", type=int, default=300, help="per measurement (the work queue holds 516)"
    )
    parser.add_argument("--top", type=int, default=25, help="functions to show")
    parser.add_argument(
        "--json", action="store_true", help="print only the CPU figures, as JSON (no profile)"
    )
    args = parser.parse_args(argv)
    configure_logging("INFO", [])
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    # Log lines are formatted and written as in production, to nowhere. Left open: the
    # bot's threads may log until this process ends.
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeGenesys() as genesys,
        FakeSlack() as slack,
        in_process_bot(genesys, slack, Path(tmp)) as bot,
    ):
        application = bot.wsgi

        def batch(count: int) -> list[Environ]:
            url = slack.new_response_url(channel="CPROFILE")
            return [
                environ_for(
                    prepare_command(
                        EVENTS_URL,
                        f"+1555{n:07d}",
                        user_id=SUPERVISOR,
                        channel_id="CPROFILE",
                        response_url=url,
                    )
                )
                for n in range(count)
            ]

        def settle() -> None:
            # Each acknowledgement queues a look-up; let them finish so that the work
            # queue never fills (a full queue answers differently).
            if not bot.finish_work(timeout=120):
                raise RuntimeError("the queued look-ups did not finish")

        status = answer(application, batch(1)[0])
        if not status.startswith("200"):
            print(f"the bot answered {status}", file=sys.stderr)
            return 1
        for request in batch(50):  # warm up
            answer(application, request)
        settle()
        costs: dict[str, float] = {}
        for threads in (1, HTTP_THREADS):
            costs[str(threads)] = round(
                cpu_per_answer(application, batch(args.requests), threads), 3
            )
            settle()
        if args.json:
            print(json.dumps({"cpu_ms_per_ack_by_threads": costs, "requests": args.requests}))
            return 0
        print("CPU per acknowledgement (the answering threads' own CPU time)")
        for count, cost in costs.items():
            print(f"   {count:>2} thread(s): {cost:.3f} ms")
        profiler = cProfile.Profile()
        requests = batch(args.requests)
        profiler.enable()
        for request in requests:
            answer(application, request)
        profiler.disable()
        settle()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"\ncProfile of {args.requests} acknowledgements, one at a time (cumulative):")
    print(out.getvalue().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())

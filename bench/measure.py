"""What the benchmark measures, each as a function returning JSON-able figures.

1. acknowledgement time of `/drop-caller` (the signed command's HTTP response time) at 1, 20
   and 100 concurrent commands, each for a different number with a seeded live call; the
   same bursts to a bare granian answering at once (bench/bare.py) and to Node.js's own HTTP
   server (the floor of this machine); and the bot's own CPU per acknowledgement;
2. command -> card and click -> outcome, one flow at a time (FakeSlack polled every 2 ms),
   each beside its floor: the sequential Genesys round trips the flow needs, counted from the
   requests FakeGenesys saw during that flow, times the injected latency. The counting rule:
   lookup = tokens fetched + details query pages + 1 if any call was read (the two real-time
   activity queries run beside the first details page, and the reads of several hits run
   concurrently, so neither adds a round trip); click = tokens fetched + 1 live read before
   the PATCH (if any) + PATCHes + confirming reads after it;
3. Genesys requests per drop by endpoint, and OAuth tokens fetched, over the first 100 drops
   of a fresh process (the cold-start drop included; the start-up check of the real-time
   sources left out);
4. cold start: process start -> /healthz 200, and -> the card for a command sent as soon as
   the port accepts connections;
5. proportional memory (Pss) of the bot's processes after those 100 drops;
6. Socket Mode: 100 slash-command envelopes pushed at once down the bot's websocket, each
   timed from its push to its ack;
7. sustained successful drops per minute against a FakeGenesys enforcing 300 requests per
   60 s (bench/fakes.py), with the drops that failed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import itertools
import json
import math
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.botprocess import (
    SUPERVISOR,
    BotProcess,
    cpu_seconds,
    free_port,
    http_get,
    read_status,
)
from bench.burst import burst_in_subprocess
from bench.client import prepare_command
from bench.fakes import RateLimitedGenesys
from genesys.realtime import PROBE_NUMBER
from sandbox.genesys_simulator import FakeGenesys, RecordedRequest
from sandbox.slack_requests import SlackResponse
from sandbox.slack_simulator import FakeSlack, Message

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
DISCONNECT_BUTTON = "drop_caller_disconnect_0"
ENDPOINTS = (
    "token",
    "analytics_query",
    "queue_activity",
    "flow_activity",
    "get_call",
    "note",
    "patch",
    "other",
)
# What one drop needs at least (issues 5 and 13): the details query and the two real-time
# activity queries, one live read for the card, one live read and the PATCH at the click, the
# confirming read; since issue 16, the note written into the interaction before the PATCH
# (participant attributes, DROP_CALLER_WRITE_BACK, on by default). The token is once per
# process.
MINIMUM_PER_DROP = {
    "token": 0,
    "analytics_query": 1,
    "queue_activity": 1,
    "flow_activity": 1,
    "get_call": 3,
    "note": 1,
    "patch": 1,
    "other": 0,
}
SEQUENTIAL_POLL = 0.002  # seconds between looks at FakeSlack while one flow is timed
BULK_POLL = 0.01
FLOW_TIMEOUT = 60.0
RATE_WINDOW = 60.0  # seconds, as Genesys counts its 300 requests a minute
FAILURE_PAUSE = 1.0  # seconds a supervisor waits after a failed drop before the next one
# The fake of the main phases enforces no rate limit, so the bot is told there is none
# (its own pacing at the default 300 a minute would otherwise throttle those phases' ~1,400
# requests in about a minute). The sustained phase keeps the limit, on both sides.
UNLIMITED_ENV = {"GENESYS_REQUESTS_PER_MINUTE": "1000000"}


class BenchError(RuntimeError):
    """Something the benchmark needs did not happen (a card never came, ...)."""


# ------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """How much of each measurement to do."""

    latency: float  # seconds injected before every Genesys answer
    quick: bool
    samples: int  # drops timed one at a time
    multi_samples: int  # lookups of a number that is on three live calls
    drops: int  # drops in the fresh process before memory and requests are read
    bulk_concurrency: int
    ack_rounds: tuple[tuple[int, int], ...]  # (concurrent commands, rounds)
    rate_limit: int  # Genesys requests admitted per RATE_WINDOW (60 s), sliding
    sustained_seconds: float
    sustained_workers: int  # supervisors dropping callers one after another

    @staticmethod
    def make(latency_ms: float, quick: bool) -> Plan:
        """The default plan (about 4 minutes at 100 ms) or the quick one (under a minute)."""
        if quick:
            return Plan(
                latency=latency_ms / 1000,
                quick=True,
                samples=5,
                multi_samples=2,
                drops=100,
                bulk_concurrency=20,
                ack_rounds=((1, 5), (20, 2), (100, 1)),
                # A third of the time, a third of the limit: 100 requests a minute, 20 s. The
                # 2 supervisors offer ~5 times what that lets through, as in the default plan.
                rate_limit=100,
                sustained_seconds=20.0,
                sustained_workers=2,
            )
        return Plan(
            latency=latency_ms / 1000,
            quick=False,
            samples=20,
            multi_samples=5,
            drops=100,
            bulk_concurrency=10,
            ack_rounds=((1, 20), (20, 5), (100, 3)),
            rate_limit=300,
            # Whole windows: a sliding window admits a full `limit` in any one of them, so a
            # run of k windows can never let more than k * limit requests through.
            sustained_seconds=120.0,
            sustained_workers=2,
        )


# ------------------------------------------------------------------------- helpers


def poll(
    check: Callable[[], T | None], *, interval: float, timeout: float
) -> tuple[T | None, float]:
    """Call `check` every `interval` s until it returns something; (value, perf_counter)."""
    deadline = time.perf_counter() + timeout
    while True:
        value = check()
        now = time.perf_counter()
        if value is not None or now >= deadline:
            return value, now
        time.sleep(interval)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> float:
    """Seconds to milliseconds, rounded to 0.1 ms."""
    return round(seconds * 1000, 1)


def spread(seconds: Sequence[float]) -> dict[str, Any]:
    """n, p50, p99, max and min of durations given in seconds, in ms."""
    if not seconds:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, "min_ms": None}
    return {
        "n": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds)),
        "min_ms": ms(min(seconds)),
    }


def endpoint(request: RecordedRequest) -> str:
    """Which Genesys endpoint a recorded request went to."""
    if request.path == "/oauth/token":
        return "token"
    if request.path.endswith("/analytics/conversations/details/query"):
        return "analytics_query"
    if request.path.endswith("/analytics/conversations/activity/query"):
        return "queue_activity"
    if request.path.endswith("/analytics/flows/activity/query"):
        return "flow_activity"
    if request.method == "PATCH" and request.path.endswith("/attributes"):
        return "note"
    if request.method == "PATCH" and "/participants/" in request.path:
        return "patch"
    if request.method == "GET" and request.path.startswith("/api/v2/conversations/calls/"):
        return "get_call"
    return "other"


def lookup_rounds(requests: Sequence[RecordedRequest]) -> int:
    """Sequential round trips a lookup needs, given what it sent (see the module docstring)."""
    kinds = [endpoint(r) for r in requests]
    return kinds.count("token") + kinds.count("analytics_query") + min(1, kinds.count("get_call"))


def click_rounds(requests: Sequence[RecordedRequest]) -> int:
    """Sequential round trips a click needs: token?, one read, the note, the PATCH,
    confirming reads."""
    kinds = [endpoint(r) for r in requests]
    first = next((i for i, kind in enumerate(kinds) if kind in ("note", "patch")), len(kinds))
    before, after = kinds[:first], kinds[first:]
    return (
        kinds.count("token")
        + min(1, before.count("get_call"))
        + after.count("note")
        + after.count("patch")
        + after.count("get_call")
    )


def observed_waves(requests: Sequence[RecordedRequest], latency: float) -> int:
    """How many one-after-another waves the requests arrived in (by arrival time).

    Requests arriving within half the latency of a wave's first one count as concurrent.
    """
    if not requests:
        return 0
    if latency <= 0:
        return len(requests)
    waves, start = 0, -math.inf
    for at in sorted(r.at for r in requests):
        if at - start >= latency / 2:
            waves, start = waves + 1, at
    return waves


def by_endpoint(requests: Sequence[RecordedRequest]) -> dict[str, int]:
    """Request counts per endpoint (every endpoint present, zeros included)."""
    counts = Counter(endpoint(r) for r in requests)
    return {name: counts.get(name, 0) for name in ENDPOINTS}


def is_final(text: str) -> bool:
    """Whether a card's text is an outcome (not the confirmation card, not "Disconnecting")."""
    return "Awaiting" not in text and ":hourglass_flowing_sand:" not in text


# ------------------------------------------------------------------------- driving the bot


@dataclass(frozen=True)
class Sent:
    """A signed request sent to the bot, and when."""

    response: SlackResponse
    started: float  # perf_counter just before sending
    wall: float  # time.time() just before sending (FakeSlack stamps calls with time.time())
    response_url: str


@dataclass(frozen=True)
class DropResult:
    """One drop driven end to end, as a supervisor would."""

    ok: bool
    detail: str
    finished: float  # perf_counter


class Driver:
    """Seeds calls in FakeGenesys and drives the bot like Slack and a supervisor would."""

    def __init__(self, genesys: FakeGenesys, slack: FakeSlack, bot: BotProcess) -> None:
        self.genesys = genesys
        self.slack = slack
        self.bot = bot
        self._ids = itertools.count(1)

    def seed(self, calls: int = 1) -> tuple[str, str]:
        """A fresh number on `calls` live inbound calls, and a fresh channel to ask in."""
        n = next(self._ids)
        number, channel = f"+1555{n:07d}", f"CB{n:07d}"
        for _ in range(calls):
            self.genesys.add_inbound_call(number)
        return number, channel

    def command(self, number: str, channel: str) -> Sent:
        """`/drop-caller <number>` from the supervisor in `channel`."""
        url = self.slack.new_response_url(channel=channel)
        wall, started = time.time(), time.perf_counter()
        response = self.bot.requester.command(
            number, user_id=SUPERVISOR, channel_id=channel, response_url=url
        )
        return Sent(response, started, wall, url)

    def click(self, card: Message) -> Sent:
        """Click the card's first Disconnect button."""
        button = card.button(DISCONNECT_BUTTON)
        url = self.slack.new_response_url(channel=card.channel, message_ts=card.ts)
        wall, started = time.time(), time.perf_counter()
        response = self.bot.requester.click(
            action_id=DISCONNECT_BUTTON,
            value=button["value"],
            user_id=SUPERVISOR,
            channel_id=card.channel,
            message_ts=card.ts,
            response_url=url,
            message=card.to_payload(),
        )
        return Sent(response, started, wall, url)

    def card(self, channel: str) -> Message | None:
        """The card in `channel`, once posted."""
        messages = self.slack.messages(channel)
        return messages[0] if messages else None

    def outcome(self, card: Message) -> str | None:
        """The card's text once it shows an outcome."""
        text = self.slack.message(card.channel, card.ts).text
        return text if is_final(text) else None

    def told(self, response_url: str) -> str | None:
        """The first ephemeral note posted through `response_url` (how failures are told)."""
        for post in self.slack.response_posts:
            if post.url == response_url and not post.body.get("replace_original"):
                return str(post.body.get("text", ""))
        return None

    def drop(self) -> DropResult:
        """Command, card, click, outcome; ok only if the card ends up saying "Disconnected"."""
        number, channel = self.seed()
        sent = self.command(number, channel)
        if sent.response.status != 200:
            return DropResult(False, f"command answered HTTP {sent.response.status}", _now())
        found, _ = poll(
            lambda: self.card(channel) or self.told(sent.response_url),
            interval=BULK_POLL,
            timeout=FLOW_TIMEOUT,
        )
        if not isinstance(found, Message):
            return DropResult(False, f"no card: {found or 'timed out'}", _now())
        clicked = self.click(found)
        if clicked.response.status != 200:
            return DropResult(False, f"click answered HTTP {clicked.response.status}", _now())
        card = found
        text, _ = poll(
            lambda: self.outcome(card) or self.told(clicked.response_url),
            interval=BULK_POLL,
            timeout=FLOW_TIMEOUT,
        )
        if text is None:
            return DropResult(False, "no outcome: timed out", _now())
        return DropResult("Disconnected" in text, text, _now())


def _now() -> float:
    return time.perf_counter()


# ------------------------------------------------------------------------- measurements


def calibrate() -> dict[str, Any]:
    """What the Genesys simulator adds to the injected latency: GETs from here, no bot, no
    latency, over one kept-alive connection, as the bot's pool sends them."""
    with FakeGenesys() as genesys:
        return spread(_get_round_trips(genesys, 10))


def _get_round_trips(genesys: FakeGenesys, count: int) -> list[float]:
    cid = genesys.add_inbound_call("+15559999999")
    connection = http.client.HTTPConnection(genesys.base_url.removeprefix("http://"), timeout=30)
    try:
        basic = base64.b64encode(b"test-client:test-secret").decode()
        connection.request(
            "POST",
            "/oauth/token",
            body="grant_type=client_credentials",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        token = json.loads(connection.getresponse().read())["access_token"]
        times: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            connection.request(
                "GET",
                f"/api/v2/conversations/calls/{cid}",
                headers={"Authorization": f"Bearer {token}"},
            )
            connection.getresponse().read()
            times.append(time.perf_counter() - started)
    finally:
        connection.close()
    return times


def wait_port(bot: BotProcess, timeout: float = 60.0) -> float:
    """Retry connecting until the bot's port accepts; returns perf_counter at that moment."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        bot.check_running()
        try:
            with socket.create_connection(("127.0.0.1", bot.port), timeout=1.0):
                return time.perf_counter()
        except OSError:
            time.sleep(0.002)
    raise BenchError(f"port {bot.port} did not accept connections within {timeout:g} s")


def cold_start(driver: Driver) -> dict[str, Any]:
    """Start the bot; time /healthz 200 and the card for a command sent as the port opens."""
    bot = driver.bot
    number, channel = driver.seed()
    started = bot.start()
    healthy: list[float] = []

    def watch_health() -> None:
        while time.perf_counter() - started < FLOW_TIMEOUT and bot.is_running():
            try:
                status = http_get(f"{bot.base_url}/healthz", timeout=FLOW_TIMEOUT)
            except OSError:  # not listening yet: that does not count, try again
                status = 0
            if status == 200:
                healthy.append(time.perf_counter())
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch_health, name="bench-healthz", daemon=True)
    watcher.start()
    port_open = wait_port(bot)
    sent = driver.command(number, channel)
    card, card_at = poll(lambda: driver.card(channel), interval=SEQUENTIAL_POLL, timeout=60)
    watcher.join(FLOW_TIMEOUT)
    bot.check_running()
    if card is None or not healthy:
        raise BenchError(f"cold start: no card or no healthy /healthz\n{bot.log_tail()}")
    clicked = driver.click(card)
    outcome, _ = poll(lambda: driver.outcome(card), interval=BULK_POLL, timeout=FLOW_TIMEOUT)
    ok = clicked.response.status == 200 and outcome is not None and "Disconnected" in outcome
    return {
        "port_accepting_ms": ms(port_open - started),
        "healthz_200_ms": ms(healthy[0] - started),
        "command_sent_at_ms": ms(sent.started - started),
        "command_ack_status": sent.response.status,
        "command_ack_ms": ms(sent.response.elapsed),
        "command_acked_at_ms": ms(sent.started + sent.response.elapsed - started),
        "first_card_ms": ms(card_at - started),
        "first_card_after_healthz_ms": ms(card_at - healthy[0]),
        "drop_ok": ok,
    }


def timed_flow(
    driver: Driver, latency: float, *, calls: int = 1, click: bool = True
) -> dict[str, Any]:
    """One drop (or just its lookup) timed alone, with the requests FakeGenesys saw for it."""
    genesys = driver.genesys
    number, channel = driver.seed(calls)
    first = len(genesys.requests)
    sent = driver.command(number, channel)
    card, card_at = poll(
        lambda: driver.card(channel), interval=SEQUENTIAL_POLL, timeout=FLOW_TIMEOUT
    )
    if card is None:
        raise BenchError(f"no card for {number}: {driver.told(sent.response_url)}")
    lookup = genesys.requests[first:]
    sample: dict[str, Any] = {
        "ack_ms": ms(sent.response.elapsed),
        "card_ms": ms(card_at - sent.started),
        "card_floor_rounds": lookup_rounds(lookup),
        "card_waves": observed_waves(lookup, latency),
        "card_requests": by_endpoint(lookup),
    }
    if not click:
        return sample
    second = len(genesys.requests)
    clicked = driver.click(card)
    text, outcome_at = poll(
        lambda: driver.outcome(card), interval=SEQUENTIAL_POLL, timeout=FLOW_TIMEOUT
    )
    confirm = genesys.requests[second:]
    sample |= {
        "click_ack_ms": ms(clicked.response.elapsed),
        "outcome_ms": ms(outcome_at - clicked.started),
        "outcome_floor_rounds": click_rounds(confirm),
        "outcome_waves": observed_waves(confirm, latency),
        "outcome_requests": by_endpoint(confirm),
        "disconnected": text is not None and "Disconnected" in text,
    }
    return sample


def flow_summary(
    samples: Sequence[dict[str, Any]], key: str, rounds_key: str, waves_key: str, latency: float
) -> dict[str, Any]:
    """Latency of one step across samples, beside its floor, the overhead and the ratio."""
    totals = [s[key] / 1000 for s in samples]
    floors = [s[rounds_key] * latency for s in samples]
    overheads = [t - f for t, f in zip(totals, floors, strict=True)]
    ratios = [t / f for t, f in zip(totals, floors, strict=True) if f > 0]
    return {
        "latency": spread(totals),
        "floor_rounds": sorted({s[rounds_key] for s in samples}),
        "observed_waves": sorted({s[waves_key] for s in samples}),
        "floor_ms_p50": ms(percentile(floors, 50)),
        "overhead": spread(overheads),
        "ratio_p50": round(percentile(ratios, 50), 2) if ratios else None,
        "ratio_max": round(max(ratios), 2) if ratios else None,
    }


def ack_round(driver: Driver, concurrent: int) -> tuple[list[int], list[float], list[float]]:
    """`concurrent` commands released together: statuses, ack times, and card times.

    The requests are built and signed beforehand (bench/client.py) and sent from a process
    of their own (bench/burst.py), so the timed part is connect, send and read; cards are
    timed from FakeSlack's arrival stamp of chat.postMessage.
    """
    events_url = driver.bot.requester.events_url
    prepared = []
    for _ in range(concurrent):
        number, channel = driver.seed()
        url = driver.slack.new_response_url(channel=channel)
        request = prepare_command(
            events_url, number, user_id=SUPERVISOR, channel_id=channel, response_url=url
        )
        prepared.append((channel, request))
    answers = burst_in_subprocess([request for _, request in prepared])
    sent_at = {channel: answer.wall for (channel, _), answer in zip(prepared, answers, strict=True)}

    def all_cards() -> dict[str, float] | None:
        # chat.postMessage calls carry FakeSlack's arrival time: no polling granularity here.
        posted = {
            str(call.args.get("channel")): call.at
            for call in driver.slack.calls_to("chat.postMessage")
            if call.args.get("channel") in sent_at
        }
        return posted if len(posted) == len(sent_at) else None

    posted, _ = poll(all_cards, interval=0.02, timeout=FLOW_TIMEOUT)
    if posted is None:
        raise BenchError(f"not every card of {concurrent} concurrent commands arrived")
    statuses = [answer.status for answer in answers]
    acks = [answer.elapsed for answer in answers]
    return statuses, acks, [posted[channel] - wall for channel, wall in sent_at.items()]


# A server with no Python in it, answering at once: what 100 new connections cost on this
# machine (kernel, loopback, the sending process) before any server code of ours runs.
NODE_SERVER = (
    "require('http').createServer((q, s) => { q.resume(); q.on('end', () => { "
    "s.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': '0'}); s.end(); }); })"
    ".listen(+process.argv[1], '127.0.0.1');"
)


def bare_server(plan: Plan, workdir: Path) -> dict[str, Any]:
    """The same bursts against bench/bare.py: the bot's granian set-up answering at once.

    Shows how much of an acknowledgement's time the HTTP server takes by itself here.
    """
    port = free_port()
    command = [sys.executable, "-m", "bench.bare", str(port)]
    # The worker is forked after the port opens.
    return reference_server(plan, workdir / "bare.log", command, port, settle=0.5)


def native_server(plan: Plan, workdir: Path) -> dict[str, Any] | None:
    """The same bursts against Node.js's own HTTP server answering at once, if `node` is
    installed (None if not): the floor of this machine for the bursts."""
    node = shutil.which("node")
    if node is None:
        return None
    port = free_port()
    return reference_server(
        plan, workdir / "node.log", [node, "-e", NODE_SERVER, str(port)], port, settle=0.2
    )


def reference_server(
    plan: Plan, log_path: Path, command: list[str], port: int, *, settle: float
) -> dict[str, Any]:
    """Start `command` (a server answering 200 at once on 127.0.0.1:`port`), send it the
    plan's bursts of signed commands, stop it; the answer times at each level."""
    url = f"http://127.0.0.1:{port}/slack/events"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter, or node, and our code
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.perf_counter() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                        break
                except OSError:
                    if process.poll() is not None or time.perf_counter() > deadline:
                        raise BenchError(f"{' '.join(command[:2])} did not start") from None
                    time.sleep(0.01)
            time.sleep(settle)
            levels: dict[str, Any] = {}
            for concurrent, rounds in plan.ack_rounds:
                times: list[float] = []
                failures = 0
                for _ in range(rounds):
                    requests = [
                        prepare_command(
                            url,
                            f"+1555{n:07d}",
                            user_id=SUPERVISOR,
                            channel_id="CBARE",
                            response_url="http://127.0.0.1:9/unused",
                        )
                        for n in range(concurrent)
                    ]
                    answers = burst_in_subprocess(requests)
                    times += [a.elapsed for a in answers]
                    failures += sum(1 for a in answers if a.status != 200)
                    time.sleep(0.3)
                levels[str(concurrent)] = {"ack": spread(times), "non_200": failures}
            return levels
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def socket_mode(plan: Plan, workdir: Path) -> dict[str, Any]:
    """The bot over Socket Mode: the plan's bursts of slash-command envelopes pushed at once
    down its websocket, each timed from its push to its ack arriving at the Slack simulator.

    The simulator runs in this process, beside the Genesys simulator serving the look-ups
    those commands queue, so an ack's arrival is stamped by a thread that shares this
    process's GIL: the figures include that wait, as the HTTP ones do not.
    """
    genesys = FakeGenesys()
    genesys.latency = plan.latency
    with (
        genesys,
        FakeSlack() as slack,
        running(BotProcess(genesys, slack, workdir, UNLIMITED_ENV, socket_mode=True)) as bot,
    ):
        bot.start()
        bot.wait_healthy()
        slack.wait_for_socket_connection(timeout=FLOW_TIMEOUT)
        driver = Driver(genesys, slack, bot)
        levels: dict[str, Any] = {}
        for concurrent, rounds in plan.ack_rounds:
            times: list[float] = []
            for _ in range(rounds):
                seeded = [driver.seed() for _ in range(concurrent)]
                pushed: dict[str, float] = {}
                for number, channel in seeded:
                    at = time.monotonic()
                    envelope = slack.send_socket_command(
                        number, user_id=SUPERVISOR, channel_id=channel
                    )
                    pushed[envelope] = at
                acked, _ = poll(
                    functools.partial(_all_acked, slack, set(pushed)),
                    interval=0.01,
                    timeout=FLOW_TIMEOUT,
                )
                if acked is None:
                    raise BenchError(f"not every one of {concurrent} envelopes was acked")
                times += [acked[envelope] - at for envelope, at in pushed.items()]
                bot.check_running()
                time.sleep(0.5)  # let the round's look-ups finish
            levels[str(concurrent)] = {"ack": spread(times)}
        return levels


def _all_acked(slack: FakeSlack, envelopes: set[str]) -> dict[str, float] | None:
    times = slack.socket_ack_times
    return times if envelopes <= set(times) else None


def ack_cpu() -> dict[str, Any]:
    """The bot's own CPU per acknowledgement, with no HTTP server (bench/profile_ack.py),
    measured in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.profile_ack", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"bench.profile_ack failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def acknowledgements(driver: Driver, plan: Plan) -> dict[str, Any]:
    """Ack time (and card time under the same load) at each concurrency level."""
    levels: dict[str, Any] = {}
    for concurrent, rounds in plan.ack_rounds:
        acks: list[float] = []
        cards: list[float] = []
        failures = 0
        worker = driver.bot.worker_pid()
        cpu_before = cpu_seconds(worker) if worker else math.nan
        for _ in range(rounds):
            statuses, ack_times, card_times = ack_round(driver, concurrent)
            acks += ack_times
            failures += sum(1 for status in statuses if status != 200)
            cards += card_times
            time.sleep(0.3)  # let the round's card posts and log lines finish
        cpu = (cpu_seconds(worker) - cpu_before) if worker else math.nan
        levels[str(concurrent)] = {
            "rounds": rounds,
            # The worker's CPU for each command: ack, lookup, card post and their logging.
            "worker_cpu_ms_per_command": ms(cpu / (rounds * concurrent)),
            "ack": spread(acks),
            "non_200": failures,
            "card_under_load": spread(cards),
        }
    return levels


def drops_and_memory(
    driver: Driver, plan: Plan, latency: float, first: int, tokens_before: int
) -> dict[str, Any]:
    """After the cold-start drop: timed drops, then bulk drops up to plan.drops; then read
    the requests per drop and the memory."""
    genesys = driver.genesys
    samples = [timed_flow(driver, latency) for _ in range(plan.samples)]
    remaining = plan.drops - 1 - plan.samples
    with ThreadPoolExecutor(max_workers=plan.bulk_concurrency, thread_name_prefix="bench") as pool:
        bulk = list(pool.map(lambda _: driver.drop(), range(remaining)))
    # Not the bot's start-up check of the real-time sources (asked for a number no call has).
    drop_requests = [r for r in genesys.requests[first:] if PROBE_NUMBER not in json.dumps(r.body)]
    tokens = genesys.token_requests - tokens_before
    time.sleep(0.5)  # let the last card updates and log lines settle
    master = read_status(driver.bot.pid)
    worker_pid = driver.bot.worker_pid()
    worker = read_status(worker_pid) if worker_pid else {}
    counts = by_endpoint(drop_requests)
    drops = plan.drops
    failed = [r.detail for r in bulk if not r.ok] + [
        "timed drop not disconnected" for s in samples if not s.get("disconnected")
    ]
    return {
        "samples": samples,
        "requests": {
            "drops": drops,
            "failed_drops": len(failed),
            "failures": failed[:10],
            "total": counts,
            "per_drop": {k: round(v / drops, 3) for k, v in counts.items()},
            "per_drop_all": round(sum(counts.values()) / drops, 3),
            "minimum_per_drop": MINIMUM_PER_DROP,
            "tokens_fetched": tokens,
            "tokens_per_100_drops": round(tokens * 100 / drops, 2),
        },
        "memory": {
            "after_drops": drops,
            "parent_pid": driver.bot.pid,
            "worker_pid": worker_pid,
            "parent": _mib(master),
            "worker": _mib(worker),
            "sum_rss_mib": _round_mib(master.get("VmRSS", 0) + worker.get("VmRSS", 0)),
            "sum_pss_mib": _round_mib(master.get("Pss", 0) + worker.get("Pss", 0)),
        },
    }


def _round_mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _mib(status: dict[str, int]) -> dict[str, float]:
    names = {"VmRSS": "rss_mib", "VmHWM": "peak_rss_mib", "Pss": "pss_mib"}
    return {names[k]: _round_mib(v) for k, v in status.items()}


def sustained(plan: Plan, workdir: Path) -> dict[str, Any]:
    """Supervisors dropping callers back to back against a rate-limited Genesys."""
    genesys = RateLimitedGenesys(limit=plan.rate_limit, window=RATE_WINDOW)
    genesys.latency = plan.latency
    genesys.disconnect_delay = 0.0
    # The bot is configured with the limit the fake enforces, as a deployment would be.
    env = {"GENESYS_REQUESTS_PER_MINUTE": str(plan.rate_limit)}
    with (
        genesys,
        FakeSlack() as slack,
        running(BotProcess(genesys, slack, workdir, env)) as bot,
    ):
        bot.start()
        bot.wait_healthy()
        driver = Driver(genesys, slack, bot)
        results: list[DropResult] = []
        lock = threading.Lock()
        started = time.perf_counter()
        stop_at = started + plan.sustained_seconds

        def supervisor() -> None:
            while time.perf_counter() < stop_at:
                result = driver.drop()
                with lock:
                    results.append(result)
                if not result.ok:
                    time.sleep(FAILURE_PAUSE)  # reads the error, then tries the next one

        threads = [
            threading.Thread(target=supervisor, name=f"bench-supervisor-{i}")
            for i in range(plan.sustained_workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ended = time.perf_counter()
        in_time = [r for r in results if r.ok and r.finished <= stop_at]
        failed = [r for r in results if not r.ok]
        reasons = Counter(_reason(r.detail) for r in failed)
        # At most one full limit per (started) window gets through, at MINIMUM_PER_DROP a drop.
        admissible = math.ceil(plan.sustained_seconds / RATE_WINDOW) * plan.rate_limit
        ceiling = admissible / sum(MINIMUM_PER_DROP.values()) * 60 / plan.sustained_seconds
        ok_total = sum(1 for r in results if r.ok)
        return {
            "rate_limit": f"{plan.rate_limit} requests / {RATE_WINDOW:g} s",
            "bot_env": env,
            "supervisors": plan.sustained_workers,
            "pause_after_failure_s": FAILURE_PAUSE,
            "seconds": plan.sustained_seconds,
            "drain_seconds": round(ended - stop_at, 1),
            "drops_per_minute": round(len(in_time) * 60 / plan.sustained_seconds, 1),
            "attempted_per_minute": round(
                sum(1 for r in results if r.finished <= stop_at) * 60 / plan.sustained_seconds, 1
            ),
            "ceiling_per_minute": round(ceiling, 1),
            "attempted": len(results),
            "succeeded": ok_total,
            "failed": len(failed),
            "failure_reasons": dict(reasons.most_common(5)),
            "answered_429": genesys.rejected,
            # How close each refusal came to being admitted: a few ms means the bot paced to
            # the limit by its own clock and the request arrived a hair early by Genesys's.
            "answered_429_window_room_in_ms": [ms(w) for w in genesys.refused_for[:20]],
            "admitted_requests": genesys.admitted,
            "admitted_per_successful_drop": round(genesys.admitted / ok_total, 2)
            if ok_total
            else None,
        }


def _reason(detail: str) -> str:
    """A failure detail with its digits masked, so that failures of one kind group together."""
    return re.sub(r"\d+", "#", detail)[:240]


@contextlib.contextmanager
def running(bot: BotProcess) -> Iterator[BotProcess]:
    """Stop the bot process at the end, however the block ends."""
    try:
        yield bot
    finally:
        bot.stop()

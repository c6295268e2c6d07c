"""Fault injection (issue 4): Genesys and Slack failing at the HTTP level, end to end.

Every test drives the real bot (signed Slack requests, the Bolt app, the real Genesys SDK)
against the loopback fakes, injects one fault at one stage, and checks four things:

(a) the supervisor: the command is acknowledged at once (under Slack's 3 s), and the kind of
    sentence the fault calls for (or the card, or its outcome) arrives within a stated bound;
(b) Genesys: every PATCH names the chosen customer/external participant, no more PATCHes
    arrive than the retry policy allows, and Genesys carries out at most one of them;
(c) the store: the request and its audit events as they must be afterwards;
(d) the bot keeps serving: once the fault has cleared, another caller is dropped;

and that the captured logs show phone numbers only masked, and no secret.

Bounds. The harness gives the Genesys client the production policy's shape with short
numbers: at most 3 attempts, none starting once 3 s (RETRY_BUDGET) have been spent, each
waiting at most 2 s (READ_TIMEOUT) for an answer. One Genesys operation under a fault
therefore gives up within RETRY_BUDGET + READ_TIMEOUT = 5 s; a click may then add a
confirming read that polls for up to CONFIRM_TIMEOUT (1 s). Two more seconds cover Slack,
thread hand-offs, the request pacer (after a burst of 10, one Genesys request every ~0.2 s)
and a slow CI machine: GENESYS_BOUND = 8 s, counted from the command or the click.
Slack's own retries (slack_sdk, bot.publisher.slack_retries) sleep Retry-After (1 s here) or
0.5 s·2^n plus up to 1 s of jitter, twice at most: at most ~3.5 s; with the same 2 s margin,
SLACK_BOUND = 6 s.

Wall time: the slow tests are the ones waiting out a read timeout (2-4 s each), a
Retry-After (1-2 s) or Slack's backoff. Everything else polls; nothing sleeps a fixed time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from bot.audit import audit_records
from bot.phone import mask_number
from bot.publisher import SLACK_TIMEOUT
from bot.redaction import RedactingFilter
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack, Message
from tests.harness import (
    CHANNEL,
    NUMBER,
    SUPERVISOR,
    BotHarness,
    card_text,
    start_bot,
)

# Each fault is waited out in real time (timeouts, retries, sweeps): minutes in all.
pytestmark = pytest.mark.slow

T = TypeVar("T")

DISCONNECT = "drop_caller_disconnect_0"
SHOWN = "+1 555-123-4567"
OTHER_NUMBER = "+15559876543"
OTHER_SHOWN = "+1 555-987-6543"
NO_CALL_NUMBER = "+15550001111"

ACK_LIMIT = 3.0  # Slack's limit for the HTTP answer to a command or a click
RETRY_BUDGET = 3.0  # tests/harness.py: RetryPolicy(max_total_seconds=3.0)
READ_TIMEOUT = 2.0  # tests/harness.py: GenesysConfig(read_timeout=2.0)
CONFIRM_TIMEOUT = 1.0  # start_bot's default confirm_timeout
GENESYS_BOUND = RETRY_BUDGET + READ_TIMEOUT + CONFIRM_TIMEOUT + 2.0
SLACK_BOUND = 6.0

ANALYTICS = r"^/api/v2/analytics/conversations/details/query$"
TOKEN = r"^/oauth/token$"
DISCONNECTED = {"state": "disconnected"}


# ------------------------------------------------------------------------------- helpers


def _watch_logs(caplog: pytest.LogCaptureFixture, bot: BotHarness) -> None:
    """Capture every log line at DEBUG through the bot's own redacting filter."""
    caplog.handler.addFilter(RedactingFilter(bot.settings.secrets))
    caplog.set_level(logging.DEBUG)


def _assert_logs_masked(
    caplog: pytest.LogCaptureFixture, bot: BotHarness, numbers: tuple[str, ...]
) -> None:
    """Each number appears in the logs masked (+1555***4567), never whole; no secret does."""
    text = caplog.text
    squeezed = re.sub(r"[\s().+/-]", "", text)
    for number in numbers:
        assert mask_number(number) in text
        assert number[2:] not in squeezed, f"{mask_number(number)} logged unmasked"
    for secret in bot.settings.secrets:
        assert secret not in text


def _within(
    bot: BotHarness, since: float, bound: float, predicate: Callable[[], T | bool | None]
) -> T:
    """Poll `predicate` until it holds; fail if that is not within `bound` s of `since`."""
    remaining = since + bound - time.monotonic()
    try:
        return bot.slack.wait_for(predicate, timeout=max(remaining, 0.0))
    except AssertionError as exc:
        raise AssertionError(f"not within {bound:g} s of the request: {exc}") from exc


def _told(bot: BotHarness) -> list[str]:
    """Everything the supervisor was told privately: via response_url or chat.postEphemeral."""
    return bot.ephemeral_texts() + [e.text for e in bot.slack.ephemerals if e.user == SUPERVISOR]


def _wait_told(bot: BotHarness, since: float, bound: float, *parts: str) -> str:
    """The first private message containing every one of `parts`, within the bound."""
    return _within(
        bot, since, bound, lambda: next((t for t in _told(bot) if all(p in t for p in parts)), None)
    )


def _command(bot: BotHarness, number: str) -> float:
    """Send the command; it must be acknowledged at once. Returns when it was sent."""
    sent = time.monotonic()
    answer = bot.command(number)
    assert answer.status == 200
    assert answer.elapsed < ACK_LIMIT
    assert "Looking for a live call" in answer.body
    return sent


def _click(bot: BotHarness, card: Message) -> float:
    """Click Disconnect; it must be acknowledged at once. Returns when it was sent."""
    sent = time.monotonic()
    answer = bot.click(card, DISCONNECT)
    assert answer.status == 200
    assert answer.elapsed < ACK_LIMIT
    return sent


def _open_card(bot: BotHarness, shown: str, since: float, bound: float) -> Message:
    """The card, still with its buttons, offering to drop the number shown as `shown`."""

    def card() -> Message | None:
        for message in bot.slack.messages(CHANNEL):
            if shown in card_text(message) and any(b["type"] == "actions" for b in message.blocks):
                return message
        return None

    return _within(bot, since, bound, card)


def _card_says(bot: BotHarness, card: Message, since: float, bound: float, *parts: str) -> str:
    """The card's text once it contains every one of `parts`."""

    def says() -> str | None:
        text = card_text(bot.slack.message(CHANNEL, card.ts))
        return text if all(p in text for p in parts) else None

    return _within(bot, since, bound, says)


def _state(bot: BotHarness, card: Message, since: float, bound: float, state: str) -> str:
    """Wait for the card's request to reach `state`; returns the request id."""
    request_id = card.button("drop_caller_cancel")["value"]

    def reached() -> str | None:
        request = bot.store.get(request_id)
        return request_id if request is not None and request.state.value == state else None

    return _within(bot, since, bound, reached)


def _kinds(bot: BotHarness, request_id: str) -> list[str]:
    return [event["kind"] for event in bot.store.events(request_id)]


def _caller_state(bot: BotHarness, conversation_id: str, participant_id: str) -> str:
    legs = bot.genesys.participants(conversation_id)
    return str(next(p for p in legs if p["id"] == participant_id)["state"])


def _assert_dropped(
    bot: BotHarness, card: Message, cid: str, customer: str, clicked: float, bound: float
) -> str:
    """The click ended in "disconnected": card, store and Genesys agree. Returns the id."""
    request_id = _state(bot, card, clicked, bound, "done")
    request = bot.store.get(request_id)
    assert request is not None
    assert request.outcome == "disconnected"
    assert request.decided_by == SUPERVISOR
    assert _kinds(bot, request_id) == ["requested", "approved", "outcome"]
    _card_says(bot, card, clicked, bound, "Disconnected")
    assert _caller_state(bot, cid, customer) == "disconnected"
    return request_id


def _assert_keeps_serving(bot: BotHarness) -> None:
    """(d) With the fault gone, a fresh command and click drop another caller, once."""
    cid = bot.genesys.add_inbound_call(OTHER_NUMBER, agent_name="Olga Agent")
    customer = bot.genesys.participant_id(cid, "customer")
    before = len(bot.genesys.patches())
    sent = _command(bot, OTHER_NUMBER)
    card = _open_card(bot, OTHER_SHOWN, sent, SLACK_BOUND)
    clicked = _click(bot, card)
    _assert_dropped(bot, card, cid, customer, clicked, SLACK_BOUND)
    assert bot.genesys.patches()[before:] == [(cid, customer, DISCONNECTED)]


def _only_the_look_ups_recorded(bot: BotHarness, *outcomes: str) -> None:
    """Look-ups that offered nothing leave no request: only a `looked_up` audit event each,
    with these outcomes, in order (written just after the supervisor is told)."""
    deadline = time.monotonic() + 5
    records = audit_records(bot.store)
    while len(records) < len(outcomes) and time.monotonic() < deadline:
        time.sleep(0.02)
        records = audit_records(bot.store)
    assert [(r["event"], r["outcome"]) for r in records] == [
        ("looked_up", outcome) for outcome in outcomes
    ]
    assert all(bot.store.get(r["request_id"]) is None for r in records)


# ------------------------------------------------------------------ Genesys HTTP faults


@dataclass(frozen=True)
class HttpFault:
    """One way a Genesys answer can go wrong, as FakeGenesys.inject scripts it."""

    name: str
    #: The words of the sentence the supervisor gets once the bot gives up.
    sentence: tuple[str, ...]
    #: Requests the bot makes before giving up (the policy: 3, fewer if the budget runs out).
    attempts: int
    status: int | None = None  # None: the endpoint's own success status (200, PATCH 202)
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None
    delay: float = 0.0
    reset: bool = False
    #: Genesys' error code, which the audit trail must keep.
    error_code: str | None = None
    #: At the disconnect stage, fault the read of the call instead of the PATCH.
    on_read: bool = False
    #: Also test a single occurrence (retried to success).
    once: bool = True

    def inject(self, genesys: FakeGenesys, method: str, path: str, times: int) -> None:
        success = 202 if method == "PATCH" else 200
        genesys.inject(
            method,
            path,
            status=self.status or success,
            headers=self.headers,
            raw_body=self.raw_body,
            delay=self.delay,
            reset=self.reset,
            times=times,
        )


HTTP_FAULTS = [
    HttpFault(
        "429",
        ("rate-limiting the bot", "Try again in 1 second."),
        attempts=3,
        status=429,
        headers={"Retry-After": "1"},
        error_code="too.many.requests",
    ),
    *(
        HttpFault(
            str(status),
            (f"Genesys Cloud is unavailable (HTTP {status})", "Try again in a minute"),
            attempts=3,
            status=status,
            error_code=code,
        )
        for status, code in (
            (500, "internal.server.error"),
            (502, "bad.gateway"),
            (503, "service.unavailable"),
            (504, "gateway.timeout"),
        )
    ),
    HttpFault(
        "502-html-page",
        ("Genesys Cloud is unavailable (HTTP 502)",),
        attempts=3,
        status=502,
        headers={"Content-Type": "text/html"},
        raw_body=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        once=False,  # once, it is 502-once
    ),
    HttpFault(
        "reset-mid-response",
        ("Genesys Cloud could not be reached", "(connection dropped)"),
        attempts=3,
        reset=True,
    ),
    HttpFault(
        # Answers only after the read timeout: attempts at 0 s and 2 s, then the 3 s budget
        # is spent.
        "no-answer",
        ("Genesys Cloud could not be reached", "(no answer in time)"),
        attempts=2,
        delay=READ_TIMEOUT + 1.0,
    ),
    HttpFault(
        "malformed-json",
        ("Genesys Cloud sent an answer the bot could not read",),
        attempts=3,
        raw_body=b'{"conversations": [{"conversationId": "c0ffee", "participants": [',
        on_read=True,
    ),
]
# A Retry-After beyond the time budget: no retry at all, and the wait is passed on.
RATE_LIMITED_BEYOND_BUDGET = HttpFault(
    "429-beyond-budget",
    ("rate-limiting the bot", "Try again in 5 seconds"),
    attempts=1,
    status=429,
    headers={"Retry-After": "5"},
    error_code="too.many.requests",
)


def _cases() -> list[object]:
    cases: list[object] = []
    for fault in HTTP_FAULTS:
        if fault.once:
            cases.append(pytest.param(fault, 1, id=f"{fault.name}-once"))
        cases.append(pytest.param(fault, fault.attempts, id=f"{fault.name}-persistent"))
    cases.append(pytest.param(RATE_LIMITED_BEYOND_BUDGET, 1, id=RATE_LIMITED_BEYOND_BUDGET.name))
    return cases


@pytest.mark.parametrize(("fault", "times"), _cases())
def test_genesys_fault_during_lookup(
    bot: BotHarness, caplog: pytest.LogCaptureFixture, fault: HttpFault, times: int
) -> None:
    """The analytics query fails `times` times: retried to a card, or a clear sentence."""
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    fault.inject(bot.genesys, "POST", ANALYTICS, times)

    sent = _command(bot, NUMBER)

    if times < fault.attempts:
        card = _open_card(bot, SHOWN, sent, GENESYS_BOUND)
        assert len(bot.genesys.requests_to("POST", ANALYTICS)) == times + 1
        clicked = _click(bot, card)
        _assert_dropped(bot, card, cid, customer, clicked, GENESYS_BOUND)
        assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)]
    else:
        text = _wait_told(bot, sent, GENESYS_BOUND, f"Could not look up {SHOWN}", *fault.sentence)
        assert "while looking up calls" in text
        assert len(bot.genesys.requests_to("POST", ANALYTICS)) == fault.attempts
        assert bot.slack.messages(CHANNEL) == []
        assert bot.genesys.patches() == []
        _only_the_look_ups_recorded(bot, "lookup_failed")

    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


@pytest.mark.parametrize(("fault", "times"), _cases())
def test_genesys_fault_during_disconnect(
    bot: BotHarness, caplog: pytest.LogCaptureFixture, fault: HttpFault, times: int
) -> None:
    """The PATCH (or the read before it) fails `times` times: dropped, or the card says why.

    A PATCH answered with a fault here was not carried out by the fake, so the retry that
    follows it is the only PATCH Genesys acts on.
    """
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
    if fault.on_read:
        fault.inject(bot.genesys, "GET", rf"^/api/v2/conversations/calls/{cid}$", times)
    else:
        fault.inject(bot.genesys, "PATCH", rf"/calls/{cid}/participants/{customer}$", times)

    clicked = _click(bot, card)

    if times < fault.attempts:
        _assert_dropped(bot, card, cid, customer, clicked, GENESYS_BOUND)
        sent = 1 if fault.on_read else times + 1
        assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)] * sent
    else:
        text = _card_says(bot, card, clicked, GENESYS_BOUND, "Not disconnected", *fault.sentence)
        assert not any(
            block["type"] == "actions" for block in bot.slack.message(CHANNEL, card.ts).blocks
        )
        request_id = _state(bot, card, clicked, GENESYS_BOUND, "failed")
        request = bot.store.get(request_id)
        assert request is not None
        assert request.outcome == "failed"
        assert all(part in (request.outcome_detail or "") for part in fault.sentence)
        assert _kinds(bot, request_id) == ["requested", "approved", "outcome"]
        outcome = bot.store.events(request_id)[-1]["detail"]
        assert outcome["error_code"] == fault.error_code
        sent = 0 if fault.on_read else fault.attempts
        assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)] * sent
        # "Not disconnected" is the truth: the caller is still on the call.
        assert _caller_state(bot, cid, customer) == "connected"
        step = "while reading the call" if fault.on_read else "while disconnecting the caller"
        assert step in text

    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


def _drop_whose_answer_is_lost(bot: BotHarness) -> tuple[str, str, Message, float]:
    """Genesys carries out the PATCH but its answer never arrives (the client times out)."""
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
    bot.genesys.inject("PATCH", r"/participants/", status=202, delay=READ_TIMEOUT + 1.0)
    clicked = _click(bot, card)
    bot.slack.wait_for(lambda: bot.genesys.patches())
    bot.genesys.hang_up(cid, customer)  # the first PATCH took effect; only its answer is lost
    return cid, customer, card, clicked


def test_patch_carried_out_but_its_answer_lost(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """The PATCH took effect and only its answer was lost: the card says "Disconnected"."""
    _watch_logs(caplog, bot)
    cid, customer, card, clicked = _drop_whose_answer_is_lost(bot)

    _assert_dropped(bot, card, cid, customer, clicked, GENESYS_BOUND)
    # The retry reaches the same participant, and Genesys answers "already disconnected".
    patches = bot.genesys.patches()
    assert 1 <= len(patches) <= 2
    assert all(patch == (cid, customer, DISCONNECTED) for patch in patches)
    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


def test_patch_carried_out_is_never_sent_again(bot: BotHarness) -> None:
    """Issue 4 read literally: once Genesys may have carried out the PATCH, none follows."""
    cid, customer, card, clicked = _drop_whose_answer_is_lost(bot)

    _state(bot, card, clicked, GENESYS_BOUND, "done")
    assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)]


# ------------------------------------------------------------------ connection refused


class Relay:
    """A TCP relay on a fixed loopback port in front of FakeGenesys.

    `refuse()` closes the port and every relayed connection, so new connections are refused;
    `serve()` opens the same port again.
    """

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._relayed: set[socket.socket] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def refuse(self) -> None:
        """Close the port; when this returns, connecting to it is refused."""
        with self._lock:
            listener, self._listener = self._listener, None
            relayed, self._relayed = self._relayed, set()
        for sock in ([listener] if listener else []) + list(relayed):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() / recv() blocked on it
            sock.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._relayed.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relay(genesys: FakeGenesys) -> Iterator[Relay]:
    """FakeGenesys behind a port that can be closed and opened again."""
    relay = Relay(int(genesys.base_url.rsplit(":", 1)[1]))
    relay.serve()
    yield relay
    relay.refuse()


@pytest.mark.parametrize("stage", ["lookup", "disconnect"])
def test_genesys_connection_refused(
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    relay: Relay,
    caplog: pytest.LogCaptureFixture,
    stage: str,
) -> None:
    """Nothing listens on Genesys' port: "could not be reached (connection refused)"."""
    with start_bot(genesys, slack, tmp_path, env={"GENESYS_API_URL": relay.url}) as bot:
        _watch_logs(caplog, bot)
        cid = genesys.add_inbound_call(NUMBER)
        customer = genesys.participant_id(cid, "customer")
        if stage == "lookup":
            # Signed in already: the refusal hits the look-up itself, not the sign-in.
            _wait_told(bot, _command(bot, NO_CALL_NUMBER), SLACK_BOUND, "No active call")
            relay.refuse()
            sent = _command(bot, NUMBER)
            _wait_told(
                bot,
                sent,
                GENESYS_BOUND,
                f"Could not look up {SHOWN}: Genesys Cloud could not be reached while looking "
                "up calls (connection refused)",
            )
            assert slack.messages(CHANNEL) == []
            _only_the_look_ups_recorded(bot, "no_live_call", "lookup_failed")
        else:
            card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
            relay.refuse()
            clicked = _click(bot, card)
            _card_says(
                bot,
                card,
                clicked,
                GENESYS_BOUND,
                "Not disconnected",
                "could not be reached while reading the call (connection refused)",
            )
            request_id = _state(bot, card, clicked, GENESYS_BOUND, "failed")
            assert _kinds(bot, request_id) == ["requested", "approved", "outcome"]
            assert _caller_state(bot, cid, customer) == "connected"
        assert genesys.patches() == []

        relay.serve()  # the same port answers again
        _assert_keeps_serving(bot)
        numbers = (
            (NUMBER, OTHER_NUMBER, NO_CALL_NUMBER) if stage == "lookup" else (NUMBER, OTHER_NUMBER)
        )
        _assert_logs_masked(caplog, bot, numbers)


# ------------------------------------------------------------------ sign-in faults


@pytest.mark.parametrize("stage", ["lookup", "disconnect"])
def test_token_expiring_mid_flow(
    bot: BotHarness, caplog: pytest.LogCaptureFixture, stage: str
) -> None:
    """A 401 on a token that worked before: one new sign-in, and the drop goes through."""
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    if stage == "lookup":
        _wait_told(bot, _command(bot, NO_CALL_NUMBER), SLACK_BOUND, "No active call")
        assert bot.genesys.token_requests == 1
        bot.genesys.expire_all_tokens()
        card = _open_card(bot, SHOWN, _command(bot, NUMBER), GENESYS_BOUND)
        assert bot.genesys.token_requests == 2
    else:
        card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
        assert bot.genesys.token_requests == 1
        bot.genesys.expire_all_tokens()

    clicked = _click(bot, card)

    _assert_dropped(bot, card, cid, customer, clicked, GENESYS_BOUND)
    assert bot.genesys.token_requests == 2
    assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)]
    _assert_keeps_serving(bot)
    assert bot.genesys.token_requests == 2
    numbers = (
        (NUMBER, OTHER_NUMBER, NO_CALL_NUMBER) if stage == "lookup" else (NUMBER, OTHER_NUMBER)
    )
    _assert_logs_masked(caplog, bot, numbers)


@pytest.mark.parametrize("times", [1, 3], ids=["once", "persistent"])
@pytest.mark.parametrize("stage", ["lookup", "disconnect"])
def test_sign_in_service_failing(
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    stage: str,
    times: int,
) -> None:
    """POST /oauth/token answers 503: retried to success, or "unavailable while signing in"."""
    # Without the start-up check of the real-time sources, which would sign in first.
    with start_bot(genesys, slack, tmp_path, check_realtime=False) as bot:
        _watch_logs(caplog, bot)
        cid = bot.genesys.add_inbound_call(NUMBER)
        customer = bot.genesys.participant_id(cid, "customer")
        persistent = times == 3  # the policy's max attempts
        sentence = "Genesys Cloud is unavailable (HTTP 503) while signing in"
        if stage == "lookup":
            bot.genesys.inject("POST", TOKEN, status=503, times=times)
            sent = _command(bot, NUMBER)
            if persistent:
                _wait_told(bot, sent, GENESYS_BOUND, f"Could not look up {SHOWN}", sentence)
                assert bot.slack.messages(CHANNEL) == []
                _only_the_look_ups_recorded(bot, "lookup_failed")
            else:
                card = _open_card(bot, SHOWN, sent, GENESYS_BOUND)
                _assert_dropped(bot, card, cid, customer, _click(bot, card), GENESYS_BOUND)
        else:
            card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
            bot.genesys.expire_all_tokens()  # so the click must sign in again
            bot.genesys.inject("POST", TOKEN, status=503, times=times)
            clicked = _click(bot, card)
            if persistent:
                _card_says(bot, card, clicked, GENESYS_BOUND, "Not disconnected", sentence)
                request_id = _state(bot, card, clicked, GENESYS_BOUND, "failed")
                assert _kinds(bot, request_id) == ["requested", "approved", "outcome"]
                assert _caller_state(bot, cid, customer) == "connected"
            else:
                _assert_dropped(bot, card, cid, customer, clicked, GENESYS_BOUND)
        # Tokens issued: one for the card at the disconnect stage, one for the step under test
        # unless the service never recovered; every refused sign-in is a request on top.
        signed_in = (stage == "disconnect") + (not persistent)
        assert bot.genesys.token_requests == signed_in
        assert len(bot.genesys.requests_to("POST", TOKEN)) == signed_in + times
        assert bot.genesys.patches() == ([] if persistent else [(cid, customer, DISCONNECTED)])

        _assert_keeps_serving(bot)
        _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


# ------------------------------------------------------------------ Genesys data faults


@pytest.mark.parametrize("stage", ["lookup", "disconnect"])
def test_zombie_conversation(bot: BotHarness, caplog: pytest.LogCaptureFixture, stage: str) -> None:
    """Analytics still lists a call that the live API says has ended: nothing is dropped."""
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    if stage == "lookup":
        bot.genesys.make_zombie(cid)
        sent = _command(bot, NUMBER)
        _wait_told(bot, sent, GENESYS_BOUND, f"No active call for {SHOWN}")
        assert bot.genesys.requests_to("GET", rf"/calls/{cid}$")  # it was checked live
        assert bot.slack.messages(CHANNEL) == []
        _only_the_look_ups_recorded(bot, "no_live_call")
    else:
        card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
        bot.genesys.make_zombie(cid)
        clicked = _click(bot, card)
        _card_says(bot, card, clicked, GENESYS_BOUND, "Nothing to disconnect")
        request_id = _state(bot, card, clicked, GENESYS_BOUND, "done")
        request = bot.store.get(request_id)
        assert request is not None
        assert request.outcome == "already_gone"
        assert _kinds(bot, request_id) == ["requested", "approved", "outcome"]
    assert bot.genesys.patches() == []

    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


def test_disconnect_accepted_but_caller_never_leaves(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """PATCH answers 202 but the participant stays: "not yet confirmed", outcome unconfirmed."""
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
    bot.genesys.ignore_disconnects = True

    clicked = _click(bot, card)

    text = _card_says(bot, card, clicked, GENESYS_BOUND, "not yet confirmed")
    assert "Check the call in Genesys Cloud" in text
    request_id = _state(bot, card, clicked, GENESYS_BOUND, "done")
    request = bot.store.get(request_id)
    assert request is not None
    assert request.outcome == "unconfirmed"
    assert _kinds(bot, request_id) == ["requested", "approved", "outcome"]
    assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)]
    assert _caller_state(bot, cid, customer) == "connected"

    bot.genesys.ignore_disconnects = False
    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


# ------------------------------------------------------------------ Slack faults


def test_card_post_not_in_channel_goes_through_response_url(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """chat.postMessage says not_in_channel: the card is posted through the response_url."""
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    bot.slack.not_in_channel.add(CHANNEL)

    card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)

    assert card.source == "response_url"
    assert [c.error for c in bot.slack.calls_to("chat.postMessage")] == ["not_in_channel"]
    request_id = card.button("drop_caller_cancel")["value"]
    request = bot.store.get(request_id)
    assert request is not None
    assert request.message_ts is None  # so the outcome must also go through a response_url
    clicked = _click(bot, card)
    _assert_dropped(bot, card, cid, customer, clicked, SLACK_BOUND)
    assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)]

    bot.slack.not_in_channel.discard(CHANNEL)
    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


@dataclass(frozen=True)
class SlackFault:
    name: str
    error: str
    status: int
    times: int
    #: Whether the bot's Slack client retries it until the card is out.
    card_arrives: bool
    headers: dict[str, str] = field(default_factory=dict)


SLACK_FAULTS = [
    SlackFault("ratelimited-once", "ratelimited", 429, 1, True, {"Retry-After": "1"}),
    # 1 try + 2 retries, all refused.
    SlackFault("ratelimited-persistent", "ratelimited", 429, 3, False, {"Retry-After": "1"}),
    # Retry-After over bot.publisher.MAX_SLACK_RETRY_AFTER: not waited for.
    SlackFault("ratelimited-long", "ratelimited", 429, 1, False, {"Retry-After": "30"}),
    # 500 is retried alike (slack_sdk's ServerErrorRetryHandler: 500 and 503).
    SlackFault("503-once", "service_unavailable", 503, 1, True),
    SlackFault("503-persistent", "service_unavailable", 503, 3, False),
    # Not retried by slack_sdk's ServerErrorRetryHandler.
    SlackFault("502-once", "bad_gateway", 502, 1, False),
    SlackFault("504-once", "gateway_timeout", 504, 1, False),
]


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.name) for f in SLACK_FAULTS])
def test_card_post_failing(
    bot: BotHarness, caplog: pytest.LogCaptureFixture, fault: SlackFault
) -> None:
    """chat.postMessage fails: the card arrives after a retry, or the supervisor is told."""
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    bot.slack.fail_next(
        "chat.postMessage",
        fault.error,
        status=fault.status,
        times=fault.times,
        headers=fault.headers,
    )

    sent = _command(bot, NUMBER)

    if fault.card_arrives:
        card = _open_card(bot, SHOWN, sent, SLACK_BOUND)
        errors = [c.error for c in bot.slack.calls_to("chat.postMessage")]
        assert errors == [fault.error] * fault.times + [None]
        assert len(bot.slack.messages(CHANNEL)) == 1
        _assert_dropped(bot, card, cid, customer, _click(bot, card), SLACK_BOUND)
        assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)]
    else:
        _wait_told(
            bot,
            sent,
            SLACK_BOUND,
            f"Could not post the confirmation card ({fault.error}); nothing will be dropped.",
        )
        errors = [c.error for c in bot.slack.calls_to("chat.postMessage")]
        assert errors == [fault.error] * fault.times
        assert bot.slack.messages(CHANNEL) == []
        assert bot.genesys.patches() == []
        # The request itself is not lost: it was recorded before the post was tried, and
        # closed when the post failed, so no stray copy of the card can act.
        records = audit_records(bot.store)
        assert [r["event"] for r in records] == ["requested", "abandoned"]
        assert records[0]["number"] == NUMBER

    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


def test_card_that_failed_to_post_cannot_drop(bot: BotHarness) -> None:
    """The promise "nothing will be dropped" holds even for a card Slack posted anyway."""
    bot.genesys.add_inbound_call(NUMBER)
    # A 502 leaves it open whether Slack stored the message (and slack_sdk does not retry it).
    bot.slack.fail_next("chat.postMessage", "bad_gateway", status=502)
    sent = _command(bot, NUMBER)
    _wait_told(bot, sent, SLACK_BOUND, "nothing will be dropped")
    request_id = audit_records(bot.store)[0]["request_id"]

    # The card Slack may have stored after all: its Disconnect button carries the request id.
    bot.requester.click(
        action_id=DISCONNECT,
        value=request_id,
        channel_id=CHANNEL,
        message_ts="1700000000.999999",
        response_url=bot.slack.new_response_url(channel=CHANNEL),
    )
    told = len(_told(bot))
    # Processed: either the click is refused (a new private note) or it reached Genesys.
    bot.slack.wait_for(lambda: len(_told(bot)) > told or bot.genesys.patches())

    assert bot.genesys.patches() == []
    request = bot.store.get(request_id)
    assert request is not None
    assert request.state.value != "pending"


@pytest.mark.parametrize(
    "response_url_works", [True, False], ids=["response-url-ok", "response-url-down"]
)
def test_card_update_lost_after_disconnect(
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    response_url_works: bool,
) -> None:
    """chat.update fails once the caller is gone: the outcome reaches the card through the
    click's response_url, or the approver by chat.postEphemeral and later the card by the
    sweeper."""
    env = {"DROP_CALLER_SWEEP_INTERVAL": "0.2"}
    catch_up = timedelta(seconds=1)
    with start_bot(
        genesys, slack, tmp_path, env=env, catch_up_after=catch_up, confirm_timeout=3.0
    ) as bot:
        _watch_logs(caplog, bot)
        cid = genesys.add_inbound_call(NUMBER)
        customer = genesys.participant_id(cid, "customer")
        card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
        # The bot records where it posted the card just after Slack answers; a person's click
        # comes later than that, so the progress card goes by chat.update.
        slack.wait_for(lambda: bot.request_for(card).message_ts)
        # The caller leaves 0.5 s after the PATCH: time to break Slack between the progress
        # card (which goes out) and the outcome.
        genesys.disconnect_delay = 0.5

        clicked = _click(bot, card)
        slack.wait_for(lambda: genesys.patches())
        assert [c.error for c in slack.calls_to("chat.update")] == [None]  # the progress card
        # Slack's transient "internal_error" (HTTP 200, ok: false): no HTTP-level retry
        # handler retries it, so this one failure is the whole outage for chat.update.
        slack.fail_next("chat.update", "internal_error")
        if not response_url_works:
            slack.response_url_status = 503

        request_id = _state(bot, card, clicked, GENESYS_BOUND + SLACK_BOUND, "done")
        request = bot.store.get(request_id)
        assert request is not None
        assert request.outcome == "disconnected"
        assert genesys.patches() == [(cid, customer, DISCONNECTED)]
        assert _kinds(bot, request_id) == ["requested", "approved", "outcome"]
        slack.wait_for(lambda: len(slack.calls_to("chat.update")) >= 2)
        assert [c.error for c in slack.calls_to("chat.update")][:2] == [None, "internal_error"]
        if response_url_works:
            _card_says(bot, card, clicked, GENESYS_BOUND + SLACK_BOUND, "Disconnected")
            replaced = [p for p in slack.response_posts if p.body.get("replace_original")]
            assert [p.status for p in replaced] == [200]
            assert "Disconnected" in str(replaced[0].body.get("text"))
        else:
            note = _within(
                bot,
                clicked,
                GENESYS_BOUND + SLACK_BOUND,
                lambda: next((e for e in slack.ephemerals if "Disconnected" in e.text), None),
            )
            assert note.user == SUPERVISOR
            slack.response_url_status = 200
            # chat.update works again: the sweeper updates the card once catch_up has passed.
            _card_says(bot, card, clicked, GENESYS_BOUND + SLACK_BOUND, "Disconnected")
            assert len(slack.calls_to("chat.update")) == 3
        slack.wait_for(
            lambda: (r := bot.store.get(request_id)) is not None and r.card_shown_state == "done"
        )
        assert len(slack.messages(CHANNEL)) == 1  # updated in place, never re-posted

        genesys.disconnect_delay = 0.0
        _assert_keeps_serving(bot)
        _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


def test_response_url_404_falls_back_to_post_ephemeral(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Every response_url answers 404: private notes go out with chat.postEphemeral."""
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    bot.slack.response_url_status = 404

    sent = _command(bot, NO_CALL_NUMBER)
    note = _within(bot, sent, SLACK_BOUND, lambda: next(iter(bot.slack.ephemerals), None))
    assert "No active call for +1 555-000-1111" in note.text
    assert (note.user, note.channel) == (SUPERVISOR, CHANNEL)
    assert [p.status for p in bot.slack.response_posts] == [404]

    card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
    _assert_dropped(bot, card, cid, customer, _click(bot, card), SLACK_BOUND)
    again = _click(bot, card)  # a second click is answered privately too
    _within(
        bot,
        again,
        SLACK_BOUND,
        lambda: any("already approved this drop" in e.text for e in bot.slack.ephemerals),
    )
    assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)]

    bot.slack.response_url_status = 200
    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, NO_CALL_NUMBER, OTHER_NUMBER))


def test_response_url_hanging_leaves_cards_working(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """response_url posts never answered: cards still go out and update (chat.* methods)."""
    _watch_logs(caplog, bot)
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")
    bot.slack.response_url_delay = 60.0

    card = _open_card(bot, SHOWN, _command(bot, NUMBER), SLACK_BOUND)
    _assert_dropped(bot, card, cid, customer, _click(bot, card), SLACK_BOUND)
    assert bot.genesys.patches() == [(cid, customer, DISCONNECTED)]
    assert bot.slack.response_posts == []

    bot.slack.response_url_delay = 0.0
    _assert_keeps_serving(bot)
    _assert_logs_masked(caplog, bot, (NUMBER, OTHER_NUMBER))


def test_response_url_hanging_falls_back_in_time(bot: BotHarness) -> None:
    """A hung response_url costs at most SLACK_TIMEOUT before chat.postEphemeral is used."""
    bot.slack.response_url_delay = 60.0

    sent = _command(bot, NO_CALL_NUMBER)

    _within(
        bot,
        sent,
        SLACK_TIMEOUT + 0.5,  # one chat.postEphemeral after giving up on the response_url
        lambda: any("No active call" in e.text for e in bot.slack.ephemerals),
    )

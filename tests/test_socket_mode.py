"""`python app.py --socket` as a process, connected to the fake Slack over a real WebSocket.

The fake answers ``apps.connections.open`` (reached through ``SLACK_API_URL``) with a
``ws://127.0.0.1`` URL, then pushes the envelopes Slack would and records the bot's acks.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_requests import SlackRequester, app_home_opened
from sandbox.slack_simulator import FakeSlack
from tests.harness import (
    CHANNEL,
    NUMBER,
    SIGNING_SECRET,
    SUPERVISOR,
    bot_environment,
    card_text,
)

pytestmark = pytest.mark.slow

APP = Path(__file__).resolve().parents[1] / "app.py"
# Importing the Genesys SDK alone takes about two seconds.
STARTUP_TIMEOUT = 20.0
ACK_TIMEOUT = 3.0  # what Slack allows before it tells the user the app did not respond
EXIT_TIMEOUT = 10.0


def _base_env(tmp_path: Path) -> dict[str, str]:
    """A bare environment: no Slack, Genesys or proxy variables leak in from the shell."""
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(tmp_path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class BotProcess:
    """The bot as a child process, with its combined output collected as it comes."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = int(env["PORT"])
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(APP), "--socket"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self._lines.append(line)

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def wait_for_exit(self, timeout: float) -> int | None:
        """The exit code, or None if it is still running after `timeout` seconds."""
        try:
            returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=2)
        return returncode

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Send `sig`, wait for the exit; kill after `EXIT_TIMEOUT` (then return None)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=EXIT_TIMEOUT)
                self._reader.join(timeout=2)
                return None
        self._reader.join(timeout=2)
        return self.process.returncode


def _wait_until_connected(bot: BotProcess, slack: FakeSlack) -> None:
    """Wait for the bot's WebSocket; fail at once, with its output, if it exits first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            slack.wait_for_socket_connection(timeout=0.1)
            return
        except AssertionError:
            if bot.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the bot did not connect (exit code {bot.process.poll()}):\n{bot.output}"
                ) from None


@pytest.fixture
def socket_bot(
    tmp_path: Path, genesys: FakeGenesys, slack: FakeSlack
) -> Iterator[Callable[[str], BotProcess]]:
    """Start `python app.py --socket` with a given SLACK_APP_TOKEN; stopped at teardown."""
    started: list[BotProcess] = []

    def start(app_token: str) -> BotProcess:
        env = _base_env(tmp_path) | bot_environment(genesys, slack, tmp_path)
        env["SLACK_APP_TOKEN"] = app_token
        env["PORT"] = str(_free_port())
        bot = BotProcess(env, tmp_path)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.stop(signal.SIGKILL)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_socket_mode_serves_the_whole_flow(
    socket_bot: Callable[[str], BotProcess],
    genesys: FakeGenesys,
    slack: FakeSlack,
    stop_signal: signal.Signals,
) -> None:
    """Over a real WebSocket: the command is acked in time, the card posted, the click drops
    the caller, and the signal stops the process."""
    cid = genesys.add_inbound_call(NUMBER)
    bot = socket_bot(slack.app_token)
    _wait_until_connected(bot, slack)
    # The URL came from the fake, through SLACK_API_URL, with the app-level token.
    opened = slack.calls_to("apps.connections.open")
    assert [(call.token, call.error) for call in opened] == [(slack.app_token, None)]

    command_id = slack.send_socket_command(
        NUMBER,
        user_id=SUPERVISOR,
        channel_id=CHANNEL,
        response_url=slack.new_response_url(channel=CHANNEL),
    )
    ack = slack.wait_for(lambda: slack.socket_ack(command_id), timeout=ACK_TIMEOUT)
    assert "Looking for a live call" in ack["payload"]["text"]

    card = slack.wait_for(lambda: next(iter(slack.messages(CHANNEL)), None), timeout=10)
    button = card.button("drop_caller_disconnect_0")
    click = SlackRequester("http://127.0.0.1/unused", SIGNING_SECRET).block_actions_payload(
        action_id="drop_caller_disconnect_0",
        value=button["value"],
        user_id=SUPERVISOR,
        channel_id=CHANNEL,
        message_ts=card.ts,
        response_url=slack.new_response_url(channel=CHANNEL, message_ts=card.ts),
        message=card.to_payload(),
    )
    click_id = slack.send_socket_click(click)
    assert slack.wait_for(lambda: slack.socket_ack(click_id), timeout=ACK_TIMEOUT) == {
        "envelope_id": click_id
    }

    slack.wait_for(lambda: "Disconnected" in card_text(slack.message(CHANNEL, card.ts)), timeout=10)
    assert genesys.patches() == [
        (cid, genesys.participant_id(cid, "customer"), {"state": "disconnected"})
    ]

    # A graceful stop: in-flight work finishes, the process exits 0 without a traceback.
    returncode = bot.stop(stop_signal)
    assert returncode == 0, f"exit {returncode} after {stop_signal.name}:\n{bot.output}"
    output = bot.output
    assert "Traceback" not in output
    assert "finishing those in progress" in output
    assert "5551234567" not in output.replace("+", "").replace(" ", "").replace("-", "")
    assert slack.app_token not in output
    assert "test-secret" not in output


def test_a_wrong_app_token_is_reported_and_the_process_ends(
    socket_bot: Callable[[str], BotProcess], slack: FakeSlack
) -> None:
    """apps.connections.open answers invalid_auth: the bot says SLACK_APP_TOKEN was refused and
    exits 2 (configuration error) without a traceback, neither hanging nor retrying forever,
    and without printing the token."""
    wrong = "xapp-1-A0001-wrong-token"
    bot = socket_bot(wrong)

    returncode = bot.wait_for_exit(STARTUP_TIMEOUT)

    output = bot.output
    assert returncode is not None, f"still running after {STARTUP_TIMEOUT}s:\n{output}"
    assert returncode == 2, output
    assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in output
    assert "Traceback" not in output
    opened = slack.calls_to("apps.connections.open")
    assert [(call.token, call.error) for call in opened] == [(wrong, "invalid_auth")], output
    assert slack.socket_connections == 0
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert any(
        "Failed to retrieve WSS URL" in line and f"{slack.api_url}apps.connections.open" in line
        for line in errors
    ), output
    assert "invalid_auth" in output
    assert wrong not in output


def test_the_fake_speaks_the_sdks_socket_mode(slack: FakeSlack) -> None:
    """The fake itself, against slack_sdk's builtin client in-process: hello, frames over
    64 KiB both ways, ping/pong, Slack's disconnect message, a close frame, and tokens and
    tickets checked."""
    received: list[str] = []
    client = SocketModeClient(
        app_token=slack.app_token,
        web_client=WebClient(token=slack.bot_token, base_url=slack.api_url),
        on_message_listeners=[received.append],
    )

    def echo(socket_client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        response = SocketModeResponse(request.envelope_id, payload={"echo": request.payload})
        socket_client.send_socket_mode_response(response)

    client.socket_mode_request_listeners.append(echo)
    try:
        client.connect()
        slack.wait_for_socket_connection(timeout=2)
        slack.wait_for(lambda: any('"type": "hello"' in text for text in received), timeout=2)
        big = {"text": "x" * 70_000}
        envelope_id = slack.send_socket_envelope("events_api", big, accepts_response_payload=False)
        ack = slack.wait_for(lambda: slack.socket_ack(envelope_id), timeout=ACK_TIMEOUT)
        assert ack == {"envelope_id": envelope_id, "payload": {"echo": big}}
        slack.send_socket_ping(b"are-you-there")
        slack.wait_for(lambda: slack.socket_pongs == [b"are-you-there"], timeout=2)
        slack.send_socket_message({"type": "disconnect", "reason": "refresh_requested"})
        slack.wait_for(lambda: slack.socket_connections == 2, timeout=2)
        # A close frame from the server ends the session. The SDK closing its socket alone
        # leaves its reader thread in recv() until the 3 s socket timeout (and the fake sees
        # the old connection end only then).
        client.auto_reconnect_enabled = False
        assert slack.close_socket_connections(1000, "bye") >= 1
        slack.wait_for(lambda: not client.is_connected(), timeout=2)
    finally:
        client.close()
    assert [call.error for call in slack.calls_to("apps.connections.open")] == [None, None]

    with pytest.raises(SlackApiError, match="invalid_auth"):
        WebClient(base_url=slack.api_url).apps_connections_open(app_token=slack.bot_token)
    port = int(slack.base_url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request(
            "GET",
            "/link/?ticket=forged",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )
        assert connection.getresponse().status == 401
    finally:
        connection.close()


def test_slack_unavailable_at_start_is_retried_until_it_answers(
    socket_bot: Callable[[str], BotProcess], slack: FakeSlack
) -> None:
    """apps.connections.open failing at start (Slack down) is retried; the bot then connects."""
    # slack_sdk retries a 503 twice by itself (bot.publisher.slack_retries); the fourth
    # failure reaches the bot's own retry loop.
    slack.fail_next("apps.connections.open", "internal_error", times=4, status=503)

    bot = socket_bot(slack.app_token)
    _wait_until_connected(bot, slack)

    opened = slack.calls_to("apps.connections.open")
    assert len(opened) == 5, bot.output
    assert "retrying" in bot.output
    assert bot.stop(signal.SIGTERM) == 0


def test_socket_mode_health_reflects_the_slack_connection(
    socket_bot: Callable[[str], BotProcess], slack: FakeSlack
) -> None:
    """In Socket Mode /healthz is 200 while the socket is open and 503 once Slack drops it."""
    bot = socket_bot(slack.app_token)
    _wait_until_connected(bot, slack)
    url = f"http://127.0.0.1:{bot.port}/healthz"

    # The bot's side of the socket may report itself open a moment after the server's.
    deadline = time.monotonic() + 10
    status, report = _health(url)
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        status, report = _health(url)
    assert status == 200, report
    assert report["slack"] == "connected"

    # Slack goes away: the bot's next liveness check notices (it pings every 10 s).
    slack.fail_next("apps.connections.open", "internal_error", times=1000, status=503)
    slack.close_socket_connections()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, report = _health(url)
        if status == 503:
            break
        time.sleep(0.2)
    assert status == 503, report
    assert report["slack"] == "disconnected"
    assert bot.stop(signal.SIGTERM) == 0


def test_the_home_tab_over_socket_mode_and_a_retried_event(
    socket_bot: Callable[[str], BotProcess], slack: FakeSlack
) -> None:
    """app_home_opened over the socket publishes the Home tab; Slack's retry of the same
    event (retry_attempt) is acknowledged and publishes nothing more."""
    bot = socket_bot(slack.app_token)
    _wait_until_connected(bot, slack)

    first = slack.send_socket_event(app_home_opened(SUPERVISOR), event_id="Ev0001")
    slack.wait_for(lambda: slack.home_views(SUPERVISOR), timeout=10)
    retry = slack.send_socket_event(app_home_opened(SUPERVISOR), event_id="Ev0001", retry_attempt=1)

    assert slack.wait_for(lambda: slack.socket_ack(first), timeout=ACK_TIMEOUT)
    assert slack.wait_for(lambda: slack.socket_ack(retry), timeout=ACK_TIMEOUT)
    time.sleep(0.5)
    assert len(slack.calls_to("views.publish")) == 1
    assert "Health" in json.dumps(slack.home_views(SUPERVISOR)[0])
    assert bot.stop(signal.SIGTERM) == 0


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _healthy(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _health(url)[0] == 200:
            return True
        time.sleep(0.1)
    return False


def _first_503(url: str, timeout: float) -> float | None:
    """Seconds until /healthz first answers 503, or None within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if _health(url)[0] == 503:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def _acks_a_command(slack: FakeSlack) -> bool:
    envelope = slack.send_socket_command("status", user_id=SUPERVISOR, channel_id=CHANNEL)
    return bool(slack.wait_for(lambda: slack.socket_ack(envelope), timeout=ACK_TIMEOUT))


@pytest.mark.parametrize("reset", [False, True], ids=["no-close-frame", "reset"])
def test_a_connection_that_simply_ends_is_noticed_at_once(
    socket_bot: Callable[[str], BotProcess], slack: FakeSlack, reset: bool
) -> None:
    """Slack's side ends the TCP connection with no WebSocket close frame (or resets it):
    /healthz says 503 within a few seconds, a new connection is open within 20 s, and the bot
    does not spin meanwhile. (Slack refuses the first new connection, so that the gap is
    long enough to see.)"""
    bot = socket_bot(slack.app_token)
    _wait_until_connected(bot, slack)
    url = f"http://127.0.0.1:{bot.port}/healthz"
    assert _healthy(url, 10)
    connections = slack.socket_connections
    # The first reconnection fails (with the client's own two retries of a 503).
    slack.fail_next("apps.connections.open", "internal_error", times=3, status=503)
    cpu_before, started = _cpu_seconds(bot.process.pid), time.monotonic()

    assert slack.end_socket_connections(reset=reset) == 1

    noticed = _first_503(url, 5)
    assert noticed is not None, bot.output
    assert noticed < 3
    slack.wait_for(lambda: slack.socket_connections > connections, timeout=20)
    reconnected = time.monotonic() - started
    assert reconnected < 20
    assert _healthy(url, 5)
    cpu = (_cpu_seconds(bot.process.pid) - cpu_before) / (time.monotonic() - started)
    assert cpu < 0.25, f"{cpu:.0%} of a core while reconnecting"
    assert _acks_a_command(slack)
    # One open connection, and no more apps.connections.open calls than the retries asked.
    assert slack.open_socket_connections == 1
    assert len(slack.calls_to("apps.connections.open")) <= 1 + 3 + 2
    assert bot.stop(signal.SIGTERM) == 0
    print(f"503 after {noticed:.2f} s, reconnected after {reconnected:.1f} s, CPU {cpu:.1%}")


def test_slacks_disconnect_message_moves_to_a_new_connection(
    socket_bot: Callable[[str], BotProcess], slack: FakeSlack
) -> None:
    """Slack asks the app to reconnect (`disconnect`, as before a server restart): the bot
    opens a new connection, closes the old one, and answers on the new one."""
    bot = socket_bot(slack.app_token)
    _wait_until_connected(bot, slack)
    connections = slack.socket_connections
    opened = len(slack.calls_to("apps.connections.open"))
    started = time.monotonic()

    slack.send_socket_message({"type": "disconnect", "reason": "refresh_requested"})

    slack.wait_for(lambda: slack.socket_connections > connections, timeout=20)
    slack.wait_for(lambda: slack.open_socket_connections == 1, timeout=20)
    took = time.monotonic() - started
    assert _acks_a_command(slack)
    assert len(slack.calls_to("apps.connections.open")) - opened <= 2
    assert bot.stop(signal.SIGTERM) == 0
    print(f"new connection after {took:.1f} s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _health(url: str) -> tuple[int, dict[str, Any]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())

"""`python app.py` as a process: its configuration contract and HTTP mode (granian)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_requests import SlackRequester
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
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _base_env(tmp_path: Path) -> dict[str, str]:
    """A bare environment: no Slack or Genesys variables leak in from the developer's shell."""
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(tmp_path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python app.py *args` in `tmp_path` with exactly `env`."""
    return _python(tmp_path, env, str(APP), *args)


def _python(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter, with our script or code
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_configuration_names_every_problem(tmp_path: Path) -> None:
    """With nothing configured: one message naming every missing variable, exit 2, no traceback."""
    result = _run(tmp_path, _base_env(tmp_path), "--http")

    assert result.returncode == 2
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "GENESYS_CLIENT_ID",
        "GENESYS_CLIENT_SECRET",
    ):
        assert name in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_invalid_values_are_reported_together(tmp_path: Path) -> None:
    """Bad values are all reported in one go, and secrets are not echoed."""
    env = _base_env(tmp_path) | {
        "SLACK_BOT_TOKEN": "xoxb-not-a-real-token",
        "SLACK_APP_TOKEN": "not-an-app-token",
        "GENESYS_CLIENT_ID": "id",
        "GENESYS_CLIENT_SECRET": "very-secret-value",
        "GENESYS_REGION": "not a region!",
        "DROP_CALLER_SUPERVISORS": "bob",
        "DROP_CALLER_REQUEST_TTL": "soon",
        "PORT": "99999",
    }

    result = _run(tmp_path, env)

    assert result.returncode == 2
    for fragment in (
        "SLACK_APP_TOKEN",
        "GENESYS_REGION",
        "DROP_CALLER_SUPERVISORS",
        "DROP_CALLER_REQUEST_TTL",
        "PORT",
    ):
        assert fragment in result.stderr
    assert "very-secret-value" not in result.stderr
    assert "xoxb-not-a-real-token" not in result.stderr
    assert "Traceback" not in result.stderr


def test_dotenv_is_read_and_the_real_environment_wins(tmp_path: Path) -> None:
    """.env supplies values; a variable set in the real environment overrides it."""
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-from-dotenv\nDROP_CALLER_DEFAULT_REGION=ZZ\nPORT=abc\n"
    )
    env = _base_env(tmp_path) | {"PORT": "3000"}

    result = _run(tmp_path, env, "--http")

    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" not in result.stderr  # came from .env
    assert "DROP_CALLER_DEFAULT_REGION" in result.stderr  # .env's bad value is read
    assert "PORT" not in result.stderr  # the environment's 3000 beat .env's abc


def test_the_parent_freezes_what_it_holds_before_the_worker_is_forked(tmp_path: Path) -> None:
    """`prepare_http` (what the server's parent runs before the fork) ends with gc.freeze(),
    so the worker's full collections skip everything it inherits; and it made the schema."""
    script = (
        "import gc, os, sys\n"
        f"sys.path.insert(0, {str(APP.parent)!r})\n"
        "from bot.server import prepare_http\n"
        "from bot.settings import load_settings\n"
        "settings = load_settings(os.environ, mode='http')\n"
        "before = gc.get_freeze_count()\n"
        "prepare_http(settings)\n"
        "print(before, gc.get_freeze_count())\n"
    )
    env = _base_env(tmp_path) | {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "GENESYS_CLIENT_ID": "test-client",
        "GENESYS_CLIENT_SECRET": "test-secret",
        "GENESYS_REGION": "us_east_1",
        "DROP_CALLER_SUPERVISORS": SUPERVISOR,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'drop_caller.db'}",
    }
    result = _python(tmp_path, env, "-c", script)
    assert result.returncode == 0, result.stderr
    before, after = (int(n) for n in result.stdout.split())
    assert before == 0
    assert after > 10_000, f"only {after} objects frozen"
    assert (tmp_path / "drop_caller.db").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with _OPENER.open(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def http_bot(
    tmp_path: Path, genesys: FakeGenesys, slack: FakeSlack
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python app.py --http` (the bot served by granian) against the fakes."""
    port = _free_port()
    env = (
        _base_env(tmp_path)
        | bot_environment(genesys, slack, tmp_path)
        # Load tests here are about HTTP, not about pacing under Genesys' rate limit.
        | {"PORT": str(port), "GENESYS_REQUESTS_PER_MINUTE": "100000"}
    )
    process = _spawn_http(tmp_path, env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _get(f"{base}/healthz")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    try:
        yield base, process
    finally:
        _stop(process)


def _spawn_http(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`python app.py --http` in `tmp_path` with exactly `env`."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(APP), "--http"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, and a kill if it has not ended 35 s later."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=35)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_http_mode_serves_the_whole_flow(
    http_bot: tuple[str, subprocess.Popen[str]], genesys: FakeGenesys, slack: FakeSlack
) -> None:
    """In HTTP mode: /healthz is 200, and a signed command and click drop the caller."""
    base, process = http_bot
    status, body = _get(f"{base}/healthz")
    assert status == 200, body
    assert json.loads(body)["ok"] is True
    cid = genesys.add_inbound_call(NUMBER)
    requester = SlackRequester(f"{base}/slack/events", SIGNING_SECRET)

    answer = requester.command(NUMBER, response_url=slack.new_response_url(channel=CHANNEL))
    assert answer.status == 200
    card = slack.wait_for(lambda: next(iter(slack.messages(CHANNEL)), None), timeout=10)
    button = card.button("drop_caller_disconnect_0")
    requester.click(
        action_id="drop_caller_disconnect_0",
        value=button["value"],
        channel_id=CHANNEL,
        message_ts=card.ts,
        response_url=slack.new_response_url(channel=CHANNEL, message_ts=card.ts),
        message=card.to_payload(),
    )
    slack.wait_for(lambda: "Disconnected" in card_text(slack.message(CHANNEL, card.ts)), timeout=10)
    assert genesys.patches() == [
        (cid, genesys.participant_id(cid, "customer"), {"state": "disconnected"})
    ]
    bad = requester.post(b"x=1", content_type="application/x-www-form-urlencoded", signature="v0=0")
    assert bad.status == 401

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=35)
    assert process.returncode == 0
    assert "5551234567" not in output.replace("+", "").replace(" ", "").replace("-", "")
    assert "test-secret" not in output


def test_http_mode_serves_concurrent_commands(
    http_bot: tuple[str, subprocess.Popen[str]], genesys: FakeGenesys, slack: FakeSlack
) -> None:
    """In HTTP mode, 100 commands at once, with Genesys slow, are all acknowledged within
    Slack's 3 s, and every one gets its card."""
    from concurrent.futures import ThreadPoolExecutor

    base, _ = http_bot
    numbers = [f"+1555123{n:04d}" for n in range(100)]
    for number in numbers:
        genesys.add_inbound_call(number)
    genesys.latency = 0.3
    requester = SlackRequester(f"{base}/slack/events", SIGNING_SECRET)

    def send(number: str) -> tuple[int, float]:
        answer = requester.command(number, response_url=slack.new_response_url(channel=CHANNEL))
        return answer.status, answer.elapsed

    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(send, numbers))

    assert all(status == 200 for status, _ in answers)
    assert max(elapsed for _, elapsed in answers) < 3.0
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 100, timeout=60)


def test_a_client_that_keeps_its_connection_open_does_not_hold_up_others(
    http_bot: tuple[str, subprocess.Popen[str]],
) -> None:
    """A client that keeps its end open after a `Connection: close` answer must only tie up
    its own connection: another request is still answered (gunicorn 27's gthread worker,
    used before, held everyone for up to 2 s)."""
    base, _ = http_bot
    port = int(base.rsplit(":", 1)[1])
    request = b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as lingering:
        lingering.sendall(request)
        first = b""
        while b'"ok"' not in first:
            chunk = lingering.recv(65536)
            assert chunk, "the first request got no answer"
            first += chunk
        assert first.startswith(b"HTTP/1.1 200")
        # The lingering client keeps its end open; give the server time to start waiting on
        # it. Another client must then get its answer well inside a 2 s linger (it takes
        # milliseconds when nothing holds it up).
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as other:
            other.sendall(request)
            second = other.recv(65536)
        assert second.startswith(b"HTTP/1.1 200")
        # The server has closed its side of the lingering connection.
        assert lingering.recv(65536) == b""


def test_a_stopping_bot_finishes_the_command_it_is_reading(
    http_bot: tuple[str, subprocess.Popen[str]], genesys: FakeGenesys, slack: FakeSlack
) -> None:
    """SIGTERM while a command is still arriving: the worker waits for it, answers it, and
    finishes the look-up it queued (the card is posted) before it exits.

    The server's graceful stop answers the requests it is reading before the worker exits,
    and only then does the exit hook drain the work queue; connections closed before (here
    three health checks) must not confuse that, or the look-up would be lost.
    """
    base, process = http_bot
    port = int(base.rsplit(":", 1)[1])
    genesys.add_inbound_call(NUMBER)
    for _ in range(3):
        assert _get(f"{base}/healthz")[0] == 200
    requester = SlackRequester(f"{base}/slack/events", SIGNING_SECRET)
    body = urllib.parse.urlencode(
        {
            "team_id": "T0001",
            "channel_id": CHANNEL,
            "user_id": SUPERVISOR,
            "command": "/drop-caller",
            "text": NUMBER,
            "api_app_id": "A0001",
            "response_url": slack.new_response_url(channel=CHANNEL),
        }
    ).encode()
    timestamp = int(time.time())
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {timestamp}\r\n"
        f"X-Slack-Signature: {requester.sign(body, timestamp)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.sendall(head + body[:10])
        time.sleep(0.5)  # the worker is now reading the rest of the body
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        slow.sendall(body[10:])
        answer = b""
        while chunk := slow.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert "Looking for a live call" in answer.decode()
    assert process.wait(timeout=35) == 0
    assert slack.messages(CHANNEL), "the command's look-up was dropped at the stop"


@pytest.fixture
def unanswering_database() -> Iterator[str]:
    """A PostgreSQL URL whose server, on loopback, accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"postgresql://drop:caller@127.0.0.1:{listener.getsockname()[1]}/bot"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()


def test_a_command_is_answered_at_once_while_the_database_does_not_answer(
    tmp_path: Path, genesys: FakeGenesys, slack: FakeSlack, unanswering_database: str
) -> None:
    """A database that hangs at start delays opening the port (the parent tries the schema
    once, for its 3 s connect timeout) but not the answers: the worker does not wait for the
    database again, and says so when a request needs it."""
    port = _free_port()
    env = (
        _base_env(tmp_path)
        | bot_environment(genesys, slack, tmp_path)
        | {"PORT": str(port), "DATABASE_URL": unanswering_database}
    )
    process = _spawn_http(tmp_path, env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "the port never opened"
                time.sleep(0.05)
        genesys.add_inbound_call(NUMBER)
        requester = SlackRequester(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)

        answer = requester.command(NUMBER, response_url=slack.new_response_url(channel=CHANNEL))

        assert answer.status == 200
        # Milliseconds when the worker does not wait for the database; its connect timeout
        # (3 s, from the port opening) when it does, which is Slack's whole limit.
        assert answer.elapsed < 1.5
        told = slack.wait_for(
            lambda: [t for t in _told(slack) if "database is unavailable" in t], timeout=30
        )
        assert told
    finally:
        _stop(process)


def _told(slack: FakeSlack) -> list[str]:
    return [str(post.body.get("text", "")) for post in slack.response_posts]

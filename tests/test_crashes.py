"""The bot killed or stopped mid-drop, as real processes: nothing lost, nothing sent twice."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from bot.store import RequestStore
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack, Message
from tests.harness import CHANNEL, NUMBER, bot_environment, card_text
from tests.processes import BotProcess, base_env, bot_process

pytestmark = pytest.mark.slow

DISCONNECT = "drop_caller_disconnect_0"


@pytest.fixture
def env(genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path) -> dict[str, str]:
    """A bot environment with production's time bounds (so its lease on a drop is the one
    production derives, 25 s) whose sweeper looks often."""
    return (
        base_env(tmp_path)
        | bot_environment(genesys, slack, tmp_path)
        | {"DROP_CALLER_SWEEP_INTERVAL": "0.2", "DROP_CALLER_CATCH_UP_AFTER": "1"}
    )


@pytest.fixture
def store(env: dict[str, str]) -> RequestStore:
    """The processes' database, read from the test."""
    return RequestStore.from_url(env["DATABASE_URL"])


def _post_card(bot: BotProcess, slack: FakeSlack) -> Message:
    before = len(slack.messages(CHANNEL))
    bot.requester.command(NUMBER, response_url=slack.new_response_url(channel=CHANNEL))
    return slack.wait_for(
        lambda: len(slack.messages(CHANNEL)) > before and slack.messages(CHANNEL)[-1], timeout=15
    )


def _click(bot: BotProcess, slack: FakeSlack, card: Message) -> str:
    value = str(card.button(DISCONNECT)["value"])
    bot.requester.click(
        action_id=DISCONNECT,
        value=value,
        channel_id=CHANNEL,
        message_ts=card.ts,
        response_url=slack.new_response_url(channel=CHANNEL, message_ts=card.ts),
        message=card.to_payload(),
    )
    return value


def _kill_hard(bot: BotProcess) -> None:
    """SIGKILL the server's worker (where the drop runs) and then its parent: a crash."""
    master = bot.process.pid
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == master:
                os.kill(int(entry), signal.SIGKILL)
    bot.process.kill()
    bot.process.wait(timeout=10)


def _state(store: RequestStore, request_id: str) -> str:
    request = store.get(request_id)
    assert request is not None
    return request.state.value


def test_killed_between_the_claim_and_the_disconnect(
    env: dict[str, str],
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    store: RequestStore,
) -> None:
    """SIGKILL after the claim, before any PATCH: after a restart the request is marked
    interrupted, the card says the caller is still on the call, and nothing was sent."""
    cid = genesys.add_inbound_call(NUMBER)
    crashed = BotProcess("crashed", env, tmp_path)
    crashed.wait_healthy()
    card = _post_card(crashed, slack)
    genesys.latency = 3.0  # the re-read before the PATCH hangs: the kill lands in it
    request_id = _click(crashed, slack, card)
    slack.wait_for(lambda: _state(store, request_id) == "approving", timeout=10)
    _kill_hard(crashed)
    killed = time.monotonic()
    genesys.latency = 0.0

    with bot_process(env, tmp_path, name="restarted") as restarted:
        # Recovered once the dead instance's lease runs out, within a minute of the crash.
        slack.wait_for(lambda: _state(store, request_id) == "failed", timeout=60)
        assert time.monotonic() - killed < 60
        request = store.get(request_id)
        assert request is not None
        assert request.outcome == "interrupted"
        assert genesys.patches() == []
        assert genesys.participants(cid)[0]["state"] == "connected"
        slack.wait_for(
            lambda: "still on the call" in card_text(slack.message(CHANNEL, card.ts)), timeout=10
        )
        assert [e["kind"] for e in store.events(request_id)] == [
            "requested",
            "approved",
            "outcome",
        ]
        # And the restarted bot serves the next drop of the same caller.
        again = _post_card(restarted, slack)
        second = _click(restarted, slack, again)
        slack.wait_for(lambda: _state(store, second) == "done", timeout=15)
        assert len(genesys.patches()) == 1


def test_killed_between_the_disconnect_and_the_outcome(
    env: dict[str, str],
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    store: RequestStore,
) -> None:
    """SIGKILL after the PATCH, before the outcome is written: after a restart the request
    is recovered from the call (caller gone), its card updated, and no second PATCH sent."""
    cid = genesys.add_inbound_call(NUMBER)
    genesys.disconnect_delay = 0.5  # the confirming reads are still waiting when it dies
    crashed = BotProcess("crashed", env, tmp_path)
    crashed.wait_healthy()
    card = _post_card(crashed, slack)
    request_id = _click(crashed, slack, card)
    slack.wait_for(lambda: len(genesys.patches()) == 1, timeout=10)
    _kill_hard(crashed)
    killed = time.monotonic()
    assert _state(store, request_id) == "approving"

    with bot_process(env, tmp_path, name="restarted"):
        slack.wait_for(lambda: _state(store, request_id) == "done", timeout=60)
        assert time.monotonic() - killed < 60
        request = store.get(request_id)
        assert request is not None
        assert request.outcome == "recovered_gone"
        slack.wait_for(
            lambda: "no longer on the call" in card_text(slack.message(CHANNEL, card.ts)),
            timeout=10,
        )
    assert len(genesys.patches()) == 1
    assert genesys.participants(cid)[0]["state"] == "disconnected"


def test_sigterm_during_a_disconnect_finishes_it_first(
    env: dict[str, str],
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    store: RequestStore,
) -> None:
    """SIGTERM while a drop is in flight: the drop completes, its card is updated, exit 0."""
    genesys.add_inbound_call(NUMBER)
    bot = BotProcess("stopping", env, tmp_path)
    bot.wait_healthy()
    card = _post_card(bot, slack)
    genesys.latency = 0.7  # re-read, PATCH and confirming read: about 2 s in flight
    request_id = _click(bot, slack, card)
    slack.wait_for(lambda: _state(store, request_id) == "approving", timeout=10)

    started = time.monotonic()
    returncode = bot.stop()

    assert returncode == 0, bot.output()
    assert time.monotonic() - started < 30
    request = store.get(request_id)
    assert request is not None
    assert request.state.value == "done"
    assert request.outcome == "disconnected"
    assert "Disconnected" in card_text(slack.message(CHANNEL, card.ts))
    assert len(genesys.patches()) == 1
    assert "finishing the requests in progress" in bot.output()

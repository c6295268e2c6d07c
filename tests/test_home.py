"""The App Home tab through the real request path: signed `app_home_opened` events into the
bot, `views.publish` into the simulated Slack (which checks the view against Block Kit's
limits, as Slack does)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_requests import app_home_opened
from sandbox.slack_simulator import FakeSlack
from tests.harness import CHANNEL, NUMBER, OUTSIDER, SUPERVISOR, BotHarness, start_bot

DISCONNECT = "drop_caller_disconnect_0"


@pytest.fixture
def home_bot(genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path) -> Iterator[BotHarness]:
    """The bot with a block list, so that every part of the tab shows."""
    table = genesys.add_datatable("Blocked numbers", ["Reason"])
    env = {"DROP_CALLER_BLOCKLIST_TABLE": table, "DROP_CALLER_TWO_PERSON": "true"}
    with start_bot(genesys, slack, tmp_path, env=env) as bot:
        yield bot


def _text(view: dict[str, Any]) -> str:
    parts: list[str] = []
    for block in view["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(e.get("text", "") for e in block.get("elements", []))
    return "\n".join(parts)


def _views(bot: BotHarness, user: str, count: int) -> list[dict[str, Any]]:
    return bot.slack.wait_for(
        lambda: len(views := bot.slack.home_views(user)) >= count and views, timeout=5
    )


def test_a_supervisor_sees_health_policy_requests_and_blocks(home_bot: BotHarness) -> None:
    """Opening the Home tab: acknowledged at once, then the supervisor's view is published."""
    answer = home_bot.requester.event(app_home_opened(SUPERVISOR))

    assert answer.status == 200
    [view] = _views(home_bot, SUPERVISOR, 1)
    text = _text(view)
    assert [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"] == [
        "drop-caller",
        "Health",
        "Policy",
        "Last 10 requests",
        "Blocked numbers",
    ]
    assert "Database: ok" in text
    assert "two supervisors" in text
    assert "A card expires after 5 minutes" in text
    assert "Block list: on" in text
    assert "No requests yet." in text
    assert "No number is blocked by the bot right now." in text


def test_someone_else_sees_what_the_app_is_for_and_who_can_use_it(
    home_bot: BotHarness,
) -> None:
    """Not a supervisor: no health, policy or requests; who the supervisors are."""
    home_bot.requester.event(app_home_opened(OUTSIDER))

    [view] = _views(home_bot, OUTSIDER, 1)
    text = _text(view)
    assert "Health" not in text
    assert "Last 10 requests" not in text
    assert f"<@{SUPERVISOR}>" in text
    assert "Who can use it" in text


def test_the_tab_is_refreshed_when_a_request_ends(home_bot: BotHarness) -> None:
    """A supervisor who opened the tab sees a request's outcome there once it ends, with a
    link to its card."""
    bot = home_bot
    bot.requester.event(app_home_opened(SUPERVISOR))
    _views(bot, SUPERVISOR, 1)
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER, user_id=SUPERVISOR)
    card = bot.wait_for_card()

    bot.click(card, "drop_caller_cancel", user_id=SUPERVISOR)
    bot.wait_for_state(card, "cancelled")

    view = _views(bot, SUPERVISOR, 2)[-1]
    text = _text(view)
    assert f"cancelled by <@{SUPERVISOR}>" in text
    ts = card.ts.replace(".", "")
    assert re.search(rf"<https://fake\.slack\.com/archives/{CHANNEL}/p{ts}\|Card>", text), text
    # An outsider's tab is not refreshed: they never see requests.
    assert bot.slack.home_views(OUTSIDER) == []


def test_a_retried_event_publishes_once(home_bot: BotHarness) -> None:
    """Slack retries an event it thinks was not acknowledged (X-Slack-Retry-Num): the retry
    is acknowledged and publishes nothing more. A retry of an event that never arrived
    (the first delivery was lost) still publishes."""
    bot = home_bot
    event = app_home_opened(SUPERVISOR)
    first = bot.requester.event(event, event_id="Ev0001")
    _views(bot, SUPERVISOR, 1)

    retries = [bot.requester.event(event, event_id="Ev0001", retry_num=n) for n in (1, 2)]
    lost = bot.requester.event(event, event_id="Ev0002", retry_num=1)

    assert [r.status for r in (first, *retries, lost)] == [200, 200, 200, 200]
    assert len(_views(bot, SUPERVISOR, 2)) == 2
    assert len(bot.slack.calls_to("views.publish")) == 2


def test_the_messages_tab_publishes_nothing(home_bot: BotHarness) -> None:
    """app_home_opened also fires for the Messages tab: nothing to publish then."""
    answer = home_bot.requester.event(app_home_opened(SUPERVISOR, tab="messages"))
    home_bot.requester.event(app_home_opened(OUTSIDER))  # a marker that events are handled
    _views(home_bot, OUTSIDER, 1)

    assert answer.status == 200
    assert home_bot.slack.home_views(SUPERVISOR) == []


def test_slacks_url_verification_is_answered(home_bot: BotHarness) -> None:
    """Saving the HTTP manifest's Events URL: Slack sends a challenge, the bot echoes it."""
    answer = home_bot.requester.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7")

    assert answer.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7" in answer.body

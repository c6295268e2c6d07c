"""Finding the caller's call through the real request path: the real-time sources beside the
conversation index, candidates the bot may not read, and what each Genesys answer becomes.

Signed Slack requests into the real Bolt app, the real Genesys SDK against the simulator, a
fake Slack Web API, all over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from bot.audit import audit_records
from sandbox.genesys_simulator import (
    FLOW_OBSERVATION_PERMISSION,
    QUEUE_OBSERVATION_PERMISSION,
    FakeGenesys,
)
from sandbox.slack_simulator import FakeSlack
from tests.harness import (
    CHANNEL,
    NUMBER,
    SECOND_SUPERVISOR,
    BotHarness,
    card_text,
    start_bot,
)

DISCONNECT = "drop_caller_disconnect_0"
SHOWN = "+1 555-123-4567"
QUEUE_ACTIVITY = "/analytics/conversations/activity/query"
FLOW_ACTIVITY = "/analytics/flows/activity/query"
DETAILS = "/analytics/conversations/details/query"
NOT_INDEXED_YET = "may not be in Genesys' index yet"


def _told(bot: BotHarness, fragment: str) -> str:
    """The first ephemeral text containing `fragment` (waits for it)."""
    return bot.slack.wait_for(
        lambda: next((t for t in bot.ephemeral_texts() if fragment in t), None)
    )


def _final_card_text(bot: BotHarness, ts: str, fragment: str) -> str:
    return bot.slack.wait_for(
        lambda: text if fragment in (text := card_text(bot.slack.message(CHANNEL, ts))) else None
    )


def _wait_for_card_of(bot: BotHarness, conversation_id: str) -> None:
    bot.slack.wait_for(
        lambda: any(conversation_id in card_text(m) for m in bot.slack.messages(CHANNEL))
    )


def _warnings_naming(caplog: pytest.LogCaptureFixture, fragment: str) -> int:
    return sum(
        1
        for record in caplog.records
        if record.levelno >= logging.WARNING and fragment in record.getMessage()
    )


# ------------------------------------------------------------------ real-time sources


def test_call_not_yet_indexed_gets_its_card_and_is_dropped(bot: BotHarness) -> None:
    """A call that started a second ago, not yet in the details index, is found through the
    real-time queue source; its card names the queue and says the agent is not indexed yet."""
    bot.genesys.index_delay = 60.0
    cid = bot.genesys.add_inbound_call(NUMBER, queue_name="Billing", connected_seconds_ago=1)
    customer = bot.genesys.participant_id(cid, "customer")

    bot.command(NUMBER)

    card = bot.wait_for_card()
    text = card_text(card)
    assert cid in text
    assert "Billing" in text
    assert "not yet in Genesys' index" in text
    # The details index listed nothing: the card came from the real-time source.
    [details] = bot.genesys.requests_to("POST", DETAILS)
    assert len(bot.genesys.requests_to("POST", QUEUE_ACTIVITY)) == 1
    assert details.body["paging"]["pageNumber"] == 1

    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)

    assert bot.wait_for_state(card, "done").outcome == "disconnected"
    assert bot.genesys.patches() == [(cid, customer, {"state": "disconnected"})]


def test_caller_in_an_ivr_flow_gets_its_card(bot: BotHarness) -> None:
    """A caller still in an IVR flow (no queue, no agent, not indexed) is found through the
    flow activity source, and can be dropped."""
    bot.genesys.index_delay = 60.0
    cid = bot.genesys.add_ivr_call(NUMBER, flow_name="Main Line IVR")
    customer = bot.genesys.participant_id(cid, "customer")

    bot.command(NUMBER)

    card = bot.wait_for_card()
    text = card_text(card)
    assert cid in text
    assert "IVR Main Line IVR" in text
    assert bot.genesys.requests_to("POST", FLOW_ACTIVITY)

    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)

    assert bot.wait_for_state(card, "done").outcome == "disconnected"
    assert bot.genesys.patches() == [(cid, customer, {"state": "disconnected"})]


def test_a_call_in_every_source_is_read_once(bot: BotHarness) -> None:
    """A call listed by the details index and the queue source is one candidate: one live
    read, one entry on the card, with the index's names."""
    cid = bot.genesys.add_inbound_call(NUMBER, agent_name="Jane Agent")

    bot.command(NUMBER)

    card = bot.wait_for_card()
    assert "Jane Agent" in card_text(card)
    assert len(bot.genesys.requests_to("GET", f"/conversations/calls/{cid}$")) == 1
    assert len(bot.genesys.requests_to("POST", QUEUE_ACTIVITY)) == 1
    assert len(bot.genesys.requests_to("POST", FLOW_ACTIVITY)) == 1


def test_number_recorded_bare_is_found_by_the_index(bot: BotHarness) -> None:
    """An org whose analytics records `+E164` rather than `tel:+E164` is matched too."""
    bot.genesys.number_form = "bare"
    bot.genesys.deny_permission(QUEUE_OBSERVATION_PERMISSION)
    cid = bot.genesys.add_inbound_call(NUMBER)

    bot.command(NUMBER)

    assert cid in card_text(bot.wait_for_card())


def test_missing_observation_permission_is_named_once_and_commands_still_work(
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without Queue Observation the start-up log names it once; commands keep working through
    the details query without asking the refused source again; status names it too."""
    genesys.deny_permission(QUEUE_OBSERVATION_PERMISSION)
    caplog.set_level(logging.INFO)
    with start_bot(genesys, slack, tmp_path) as bot:
        assert _warnings_naming(caplog, "Analytics > Queue Observation > View") == 1
        for _ in range(2):
            cid = genesys.add_inbound_call(NUMBER)
            bot.command(NUMBER)
            _wait_for_card_of(bot, cid)

        bot.command("status")
        status = _told(bot, "Real-time lookup")

    assert _warnings_naming(caplog, "Analytics > Queue Observation > View") == 1
    assert "real-time lookup of calls in queues is off" in caplog.text.lower()
    # The refused source is left alone until it is due a recheck.
    assert genesys.requests_to("POST", QUEUE_ACTIVITY) == []
    assert "the role lacks Analytics &gt; Queue Observation &gt; View" in status
    assert "analytics:queueObservation:view" in status


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        ({"status": 500}, "HTTP 500"),
        ({"status": 200, "raw_body": b"<html>maintenance</html>"}, "could not read"),
        ({"status": 400}, "refused the request"),
        ({"status": 404}, "no such call"),
    ],
    ids=["500", "malformed", "400", "404"],
)
def test_failing_queue_source_leaves_the_details_query_working(
    bot: BotHarness, caplog: pytest.LogCaptureFixture, fault: dict[str, object], logged: str
) -> None:
    """A queue source that fails (500, malformed JSON, 400, 404) never fails the command, and
    its cause is logged once, not once per command."""
    caplog.set_level(logging.INFO)
    bot.genesys.inject("POST", QUEUE_ACTIVITY, times=10, **fault)  # type: ignore[arg-type]
    for _ in range(2):
        cid = bot.genesys.add_inbound_call(NUMBER)
        bot.command(NUMBER)
        _wait_for_card_of(bot, cid)

    assert len(bot.genesys.requests_to("POST", QUEUE_ACTIVITY)) == 2
    assert _warnings_naming(caplog, "Real-time lookup of calls in queues is failing") == 1
    assert logged in caplog.text


def test_hung_queue_source_does_not_hold_the_card_up(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """A queue source that does not answer is waited for only for the look-up's real-time
    budget (0.5 s here), not for its 2 s timeout."""
    with start_bot(genesys, slack, tmp_path, realtime_budget=0.5) as bot:
        genesys.inject("POST", QUEUE_ACTIVITY, status=200, delay=5.0)
        cid = genesys.add_inbound_call(NUMBER)
        sent = time.monotonic()
        bot.command(NUMBER)
        card = bot.wait_for_card()
        waited = time.monotonic() - sent

        assert cid in card_text(card)
        assert waited < 1.9, f"the card waited {waited:.2f} s for the hung source"


def test_no_call_says_the_index_may_lag_only_when_real_time_did_not_answer(
    bot: BotHarness,
) -> None:
    """ "No active call" mentions the indexing lag when only the details query answered, and
    always reminds that the bot sees only its role's divisions."""
    bot.command(NUMBER)
    answered = _told(bot, "No active call")
    assert NOT_INDEXED_YET not in answered
    assert "divisions" in answered

    bot.genesys.deny_permission(QUEUE_OBSERVATION_PERMISSION)
    bot.genesys.deny_permission(FLOW_OBSERVATION_PERMISSION)
    bot.command("+15557654321")

    alone = _told(bot, "No active call for +1 555-765-4321")
    assert NOT_INDEXED_YET in alone
    assert "divisions" in alone


# ------------------------------------------------------------------ unreadable candidates


def test_one_unreadable_call_does_not_stop_the_card_for_the_other(bot: BotHarness) -> None:
    """Of two calls, one the role may not read (403): the other gets its card, and the
    requester is told privately about the one that could not be read."""
    readable = bot.genesys.add_inbound_call(NUMBER, agent_name="Jane Agent")
    hidden = bot.genesys.add_inbound_call(NUMBER, agent_name="Other Division")
    bot.genesys.restrict_call(hidden)

    bot.command(NUMBER)

    card = bot.wait_for_card()
    text = card_text(card)
    assert readable in text
    assert hidden not in text
    note = _told(bot, "Found 1 more live call")
    assert "cannot read it" in note
    assert "divisions" in note
    assert bot.request_for(card).candidates[0].conversation_id == readable


def test_every_candidate_unreadable_says_so_not_no_active_call(bot: BotHarness) -> None:
    """When every call found is unreadable, the answer says the role cannot read them, quotes
    Genesys with its contextId, and points at divisions; it is recorded."""
    for _ in range(2):
        bot.genesys.restrict_call(bot.genesys.add_inbound_call(NUMBER))

    bot.command(NUMBER)

    told = _told(bot, "Found 2 live calls")
    assert f"Found 2 live calls for {SHOWN}, but the bot's Genesys role cannot read them" in told
    assert "Genesys said: You are not authorized to perform the requested action." in told
    assert "contextId " in told
    assert "Check that its role covers the divisions these calls are in." in told
    assert not any("No active call" in t for t in bot.ephemeral_texts())
    assert bot.slack.messages(CHANNEL) == []
    records = bot.slack.wait_for(
        lambda: [r for r in audit_records(bot.store) if r["outcome"] == "calls_unreadable"]
    )
    assert records[0]["context_id"]


def test_call_gone_with_the_other_404_code_at_the_click_is_already_hung_up(
    bot: BotHarness,
) -> None:
    """A 404 `conversation.error.conversation.not.found` at the click means the caller had
    already hung up, not a failure."""
    cid = bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.genesys.not_found_code = "conversation.error.conversation.not.found"
    bot.genesys.remove_call(cid)

    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)

    request = bot.wait_for_state(card, "done")
    assert request.outcome == "already_gone"
    assert "already hung up" in _final_card_text(bot, card.ts, "Nothing to disconnect")
    assert bot.genesys.patches() == []


def test_refused_read_at_the_click_is_not_called_a_missing_permission(bot: BotHarness) -> None:
    """A 403 that names no permission (a call moved out of the role's divisions) is said as
    Genesys' refusal with its code and contextId, never as a missing permission."""
    cid = bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.genesys.restrict_call(cid)

    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)

    request = bot.wait_for_state(card, "failed")
    [outcome] = [r for r in audit_records(bot.store) if r["event"] == "outcome"]
    assert (outcome["request_id"], outcome["error_code"]) == (request.id, "not.authorized")
    assert outcome["context_id"]
    text = _final_card_text(bot, card.ts, "Not disconnected")
    assert "refused the bot access" in text
    assert "division" in text
    assert "missing the permission" not in text
    assert bot.genesys.patches() == []

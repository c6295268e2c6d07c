"""bot.cards: the Block Kit cards, built from DropRequest objects with an injected now."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.cards import (
    CANCEL_ACTION,
    DISCONNECT_ACTION_PREFIX,
    Block,
    confirmation_card,
    outcome_card,
)
from bot.domain import DropRequest, Outcome, RequestState, TargetKind
from genesys.models import CallMatch, StillConnected, Stuck

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
NUMBER = "+15551234567"
REQUESTER = "UREQ0001"
DECIDER = "UDEC0002"
REQUEST_ID = "0123456789abcdef01234567"

CALL = CallMatch(
    conversation_id="3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718",
    participant_id="9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    number=NUMBER,
    purpose="customer",
    participant_name="Pat Caller",
    agent_names=("Ann Agent",),
    queue_names=("Support",),
    direction="inbound",
    connected_at=NOW - timedelta(minutes=2, seconds=5),
)

PENDING = DropRequest(
    id=REQUEST_ID,
    team_id="T0001",
    channel_id="C0001",
    requester_id=REQUESTER,
    number=NUMBER,
    state=RequestState.PENDING,
    created_at=NOW - timedelta(seconds=10),
    expires_at=NOW + timedelta(seconds=290),
    message_ts=None,
    response_url=None,
    decided_by=None,
    decided_at=None,
    chosen_position=None,
    outcome=None,
    outcome_detail=None,
    candidates=(CALL,),
)

HOSTILE = "<!channel> <!here|here> <https://evil.example|click me> <@U999EVIL> <#C999|x> &amp;"


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a block tree, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


# Slack's date formatting, `<!date^unix^format|fallback>`.
_DATE = re.compile(r"<!date\^(\d+)\^([^|>]+)\|([^>]+)>")


def _as_fallback(text: str) -> str:
    """The text as a client that cannot show local times reads it: each date its fallback."""
    return _DATE.sub(lambda date: date.group(3), text)


def _texts(blocks: list[Block], kind: str) -> list[str]:
    """The text of every text object of the given type ("mrkdwn" or "plain_text"), each date
    read as its UTC fallback (the test below checks the dates themselves)."""
    return [
        _as_fallback(node["text"])
        for node in _walk(blocks)
        if node.get("type") == kind and isinstance(node.get("text"), str)
    ]


def _buttons(blocks: list[Block]) -> list[dict[str, Any]]:
    return [node for node in _walk(blocks) if node.get("type") == "button"]


def _all_mrkdwn(text: str, blocks: list[Block]) -> str:
    return "\n".join([_as_fallback(text), *_texts(blocks, "mrkdwn")])


def _several(count: int) -> DropRequest:
    calls = tuple(
        replace(
            CALL,
            conversation_id=f"00000000-0000-4000-8000-00000000000{i}",
            participant_id=f"p-{i}",
            agent_names=(f"Agent {i}",),
        )
        for i in range(count)
    )
    return replace(PENDING, candidates=calls)


def test_confirmation_card_shows_the_call() -> None:
    """One candidate: the card shows number, conversation id, agent, queue and requester."""
    text, blocks = confirmation_card(PENDING, NOW)
    shown = _all_mrkdwn(text, blocks)
    assert "+1 555-123-4567" in text
    assert "+1 555-123-4567" in shown
    assert CALL.conversation_id in shown
    assert "Ann Agent" in shown
    assert "Support" in shown
    assert "Pat Caller" in shown
    assert f"<@{REQUESTER}>" in shown
    assert REQUEST_ID in shown


@pytest.mark.parametrize(
    ("connected_at", "expected"),
    [
        (NOW - timedelta(seconds=5), "5 s (since 11:59:55 UTC)"),
        (NOW - timedelta(minutes=2, seconds=5), "2 min 05 s (since 11:57:55 UTC)"),
        (NOW - timedelta(hours=1, minutes=2, seconds=9), "1 h 02 min (since 10:57:51 UTC)"),
        (NOW + timedelta(seconds=3), "0 s (since 12:00:03 UTC)"),
        (None, "not connected yet"),
    ],
)
def test_connected_for_is_computed_from_the_injected_now(
    connected_at: datetime | None, expected: str
) -> None:
    """The "Connected" field is the time from connected_at to now (never negative), in UTC."""
    request = replace(PENDING, candidates=(replace(CALL, connected_at=connected_at),))
    _, blocks = confirmation_card(request, NOW)
    assert f"*Connected*\n{expected}" in _texts(blocks, "mrkdwn")


def test_disconnect_button_is_dangerous_and_confirmed_within_slack_limits() -> None:
    """The Disconnect button is style danger with a confirm dialog inside Slack's length limits."""
    _, blocks = confirmation_card(PENDING, NOW)
    disconnect = [
        b for b in _buttons(blocks) if b["action_id"].startswith(DISCONNECT_ACTION_PREFIX)
    ]
    assert len(disconnect) == 1
    button = disconnect[0]
    assert button["style"] == "danger"
    assert button["value"] == REQUEST_ID
    confirm = button["confirm"]
    assert 0 < len(confirm["title"]["text"]) <= 100
    assert 0 < len(confirm["text"]["text"]) <= 300
    assert 0 < len(confirm["confirm"]["text"]) <= 30
    assert 0 < len(confirm["deny"]["text"]) <= 30
    assert "+1 555-123-4567" in confirm["text"]["text"]
    assert 0 < len(button["text"]["text"]) <= 75


def test_confirm_dialog_stays_within_300_characters_for_long_agent_lists() -> None:
    """However many agents Genesys names, the confirm text is cut to Slack's 300 characters."""
    crowd = tuple(f"Agent With A Rather Long Name Number {i}" for i in range(40))
    request = replace(PENDING, candidates=(replace(CALL, agent_names=crowd),))
    _, blocks = confirmation_card(request, NOW)
    for button in _buttons(blocks):
        if "confirm" in button:
            assert len(button["confirm"]["text"]["text"]) <= 300


def test_every_button_value_is_the_request_id_only() -> None:
    """No button carries call or participant ids: its value is exactly the request id."""
    _, blocks = confirmation_card(_several(3), NOW)
    assert {b["value"] for b in _buttons(blocks)} == {REQUEST_ID}


def test_confirmation_card_has_a_cancel_button() -> None:
    """A Cancel button (not dangerous) sits next to the Disconnect button."""
    _, blocks = confirmation_card(PENDING, NOW)
    cancel = [b for b in _buttons(blocks) if b["action_id"] == CANCEL_ACTION]
    assert len(cancel) == 1
    assert cancel[0]["text"]["text"] == "Cancel"
    assert "style" not in cancel[0]
    assert "confirm" not in cancel[0]


def test_several_candidates_get_one_disconnect_button_each() -> None:
    """Three live calls: three Disconnect buttons with distinct action ids, plus Cancel."""
    request = _several(3)
    _, blocks = confirmation_card(request, NOW)
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    elements = actions[0]["elements"]
    action_ids = [e["action_id"] for e in elements]
    assert len(set(action_ids)) == len(action_ids) == 4
    disconnect = [a for a in action_ids if a.startswith(DISCONNECT_ACTION_PREFIX)]
    assert len(disconnect) == 3
    assert [e["text"]["text"] for e in elements[:3]] == [
        "Disconnect call 1",
        "Disconnect call 2",
        "Disconnect call 3",
    ]
    assert all(e["style"] == "danger" and "confirm" in e for e in elements[:3])
    shown = _all_mrkdwn("", blocks)
    assert "3 live calls" in shown
    for position, call in enumerate(request.candidates):
        assert call.conversation_id in shown
        assert f"*Call {position + 1}*" in shown


def _hostile_request() -> DropRequest:
    call = replace(
        CALL,
        participant_name=HOSTILE,
        agent_names=(HOSTILE, "<!everyone>"),
        queue_names=("<https://x|y>", HOSTILE),
        purpose="<!subteam^S123|ops>",
    )
    return replace(PENDING, candidates=(call, replace(call, participant_id="p-2")))


def _assert_no_markup_but_own_mentions(text: str, allowed: tuple[str, ...]) -> None:
    for mention in allowed:
        text = text.replace(f"<@{mention}>", "")
    assert "<!" not in text
    assert "<" not in text, text
    assert ">" not in text, text


def test_genesys_names_cannot_ping_or_link_in_the_confirmation_card() -> None:
    """Names holding <!channel> or <https://x|y> are escaped; only the bot's mentions remain."""
    text, blocks = confirmation_card(_hostile_request(), NOW)
    shown = _all_mrkdwn(text, blocks)
    assert "&lt;!channel&gt;" in shown
    _assert_no_markup_but_own_mentions(shown, (REQUESTER,))


def test_plain_text_objects_are_never_mrkdwn() -> None:
    """Button labels and confirm dialogs are plain_text, which Slack shows literally."""
    _, blocks = confirmation_card(_hostile_request(), NOW)
    for button in _buttons(blocks):
        assert button["text"]["type"] == "plain_text"
        if "confirm" in button:
            for key in ("title", "text", "confirm", "deny"):
                assert button["confirm"][key]["type"] == "plain_text"


def _decided(state: RequestState, outcome: str | None, detail: str | None) -> DropRequest:
    return replace(
        PENDING,
        state=state,
        decided_by=DECIDER,
        decided_at=NOW - timedelta(seconds=30),
        chosen_position=0 if state in (RequestState.DONE, RequestState.FAILED) else None,
        outcome=Outcome(outcome) if outcome else None,
        outcome_detail=detail,
    )


OUTCOMES = [
    (RequestState.DONE, "disconnected", "The caller left the call.", "Disconnected"),
    (RequestState.DONE, "already_gone", "The caller had already hung up.", "Nothing to disconnect"),
    (RequestState.DONE, "unconfirmed", "Genesys accepted it.", "not yet confirmed"),
    (RequestState.FAILED, "failed", "Genesys said no.", "Not disconnected"),
    (RequestState.CANCELLED, None, None, "Cancelled"),
]


@pytest.mark.parametrize(("state", "outcome", "detail", "headline"), OUTCOMES)
def test_outcome_card_names_the_decider_and_a_utc_time(
    state: RequestState, outcome: str | None, detail: str | None, headline: str
) -> None:
    """Each final card has no buttons, says what happened, who decided and when (UTC)."""
    request = _decided(state, outcome, detail)
    text, blocks = outcome_card(request, NOW)
    assert not [b for b in blocks if b["type"] == "actions"]
    assert not _buttons(blocks)
    shown = _all_mrkdwn(text, blocks)
    assert headline in shown
    assert f"<@{DECIDER}>" in shown
    assert "11:59:30 UTC" in shown
    if detail:
        assert detail in shown
    assert "+1 555-123-4567" in text
    assert CALL.conversation_id in shown


def test_expired_outcome_card_has_no_buttons_and_the_utc_expiry_time() -> None:
    """An expired card has no buttons, says nothing was disconnected and when (UTC) it expired."""
    request = replace(PENDING, state=RequestState.EXPIRED)
    text, blocks = outcome_card(request, NOW + timedelta(minutes=10))
    assert not [b for b in blocks if b["type"] == "actions"]
    assert not _buttons(blocks)
    shown = _all_mrkdwn(text, blocks)
    assert "Expired at 12:04:50 UTC" in shown
    assert "nothing was disconnected" in shown
    assert f"<@{REQUESTER}>" in shown


def test_outcome_card_times_are_shown_in_utc_whatever_the_offset() -> None:
    """A decided_at in another time zone is shown converted to UTC."""
    decided_at = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    request = replace(_decided(RequestState.CANCELLED, None, None), decided_at=decided_at)
    text, blocks = outcome_card(request, NOW)
    assert "12:00:00 UTC" in _all_mrkdwn(text, blocks)


def test_outcome_card_shows_only_the_chosen_call() -> None:
    """After a choice among several calls, the final card shows the chosen one only."""
    request = replace(
        _several(3),
        state=RequestState.DONE,
        decided_by=DECIDER,
        decided_at=NOW,
        chosen_position=1,
        outcome=Outcome.DISCONNECTED,
        outcome_detail="Gone.",
    )
    _, blocks = outcome_card(request, NOW)
    shown = _all_mrkdwn("", blocks)
    assert request.candidates[1].conversation_id in shown
    assert request.candidates[0].conversation_id not in shown
    assert request.candidates[2].conversation_id not in shown


@pytest.mark.parametrize(("state", "outcome", "detail", "headline"), OUTCOMES)
def test_outcome_card_escapes_genesys_text(
    state: RequestState, outcome: str | None, detail: str | None, headline: str
) -> None:
    """Hostile names and outcome details cannot ping or link in any final card."""
    request = replace(
        _decided(state, outcome, HOSTILE if detail else None),
        candidates=_hostile_request().candidates,
    )
    text, blocks = outcome_card(request, NOW)
    _assert_no_markup_but_own_mentions(_all_mrkdwn(text, blocks), (REQUESTER, DECIDER))


def test_card_texts_fit_slack_block_limits() -> None:
    """Section texts stay under 3000 characters and fields under 2000 for ordinary calls."""
    _, blocks = confirmation_card(_several(3), NOW)
    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10


def test_mentions_use_slack_user_id_syntax() -> None:
    """The requester is mentioned as <@U…>, the only angle-bracket markup on the card."""
    text, blocks = confirmation_card(PENDING, NOW)
    shown = _all_mrkdwn(text, blocks)
    assert re.findall(r"<[^>]*>", shown) == [f"<@{REQUESTER}>"]


STUCK_CALL = replace(
    CALL,
    participant_id="",
    number="",
    purpose="conversation",
    participant_name=None,
    connected_at=NOW - timedelta(hours=3),
    stuck=Stuck(
        connected=(
            StillConnected("agent", HOSTILE, NOW - timedelta(hours=2, minutes=59)),
            StillConnected("acd", None, NOW - timedelta(hours=3)),
        ),
        caller_left_at=NOW - timedelta(hours=2),
        opened_at=NOW - timedelta(hours=3),
    ),
)
STUCK = replace(
    PENDING,
    number="",
    candidates=(STUCK_CALL,),
    target_kind=TargetKind.CONVERSATION,
    target=STUCK_CALL.conversation_id,
)


@pytest.mark.parametrize("allow_teardown", [True, False])
def test_a_stuck_conversation_card_says_who_is_left_and_offers_teardown_only_when_on(
    allow_teardown: bool,
) -> None:
    """The stuck card names who is still connected (escaped), since when, when the caller
    left and how long it has been open; End whole conversation only with teardown on, whose
    confirm dialog names everyone who will be disconnected; otherwise it says why not."""
    text, blocks = confirmation_card(STUCK, NOW, allow_teardown=allow_teardown)
    shown = _all_mrkdwn(text, blocks)

    assert "which is stuck" in shown
    assert "left at 10:00:00 UTC" in shown
    assert "3 h 00 min" in shown
    assert "&lt;!channel&gt;" in shown
    # mrkdwn escapes it; plain_text (the confirm dialog) shows text as it is, pinging nobody.
    assert "<!channel>" not in shown
    actions = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    if allow_teardown:
        assert actions == ["drop_caller_end_0", "drop_caller_cancel"]
        confirm = blocks_button(blocks, "drop_caller_end_0")["confirm"]["text"]["text"]
        assert "agents included" in confirm
        assert "queue (queue)" in confirm
        assert len(confirm) <= 300
        assert "a supervisor other than" in shown
    else:
        assert actions == ["drop_caller_cancel"]
        assert "DROP_CALLER_ALLOW_TEARDOWN=true" in shown


def test_a_teardown_outcome_card_says_the_conversation_ended() -> None:
    """After End whole conversation, the card says so, with who approved it."""
    done = replace(
        STUCK,
        state=RequestState.DONE,
        decided_by=DECIDER,
        decided_at=NOW,
        chosen_position=0,
        outcome=Outcome.ENDED,
        outcome_detail="Every participant has left the conversation.",
    )
    text, blocks = outcome_card(done, NOW)
    shown = _all_mrkdwn(text, blocks)
    assert f"Conversation ended, approved by <@{DECIDER}>" in shown
    assert not any(b["type"] == "actions" for b in blocks)


def blocks_button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    return next(
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )

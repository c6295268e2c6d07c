"""Every card the bot can build fits Slack's published Block Kit limits, however long or
strange what Genesys and people put in it; names cannot change a card's formatting; times
are in Slack's date formatting."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.cards import (
    Block,
    audit_line,
    confirmation_card,
    escape,
    outcome_card,
    progress_card,
    requester_notice,
    unblock_card,
)
from bot.domain import DropRequest, Outcome, RequestState, TargetKind
from genesys.models import CallMatch, StillConnected, Stuck
from sandbox import block_kit

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
# 60 agents with long names, each trying its own formatting.
AGENTS = tuple(f"*Agent* _number_ ~{i}~ `{'x' * 40}` <!channel> & co" for i in range(60))
# What a Genesys error message can look like at its worst: long, with markup in it.
MESSAGE = ("Genesys said *no* to `PATCH` for _reasons_ <https://evil.example|here> & more. " * 70)[
    :5000
]
QUEUE = "*VIP* _urgent_ ~old~ `queue`"

CALL = CallMatch(
    conversation_id="3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718",
    participant_id="9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    number="+15551234567",
    purpose="customer",
    participant_name="P" * 500,
    agent_names=AGENTS,
    queue_names=(QUEUE, *AGENTS),
    direction="inbound",
    connected_at=NOW - timedelta(minutes=2),
)
STUCK = replace(
    CALL,
    participant_id="",
    number="",
    stuck=Stuck(
        connected=tuple(StillConnected("agent", name, NOW - timedelta(hours=3)) for name in AGENTS),
        caller_left_at=NOW - timedelta(hours=2),
        opened_at=NOW - timedelta(hours=3),
    ),
)
REQUEST = DropRequest(
    id="0123456789abcdef01234567",
    team_id="T0001",
    channel_id="C0001",
    requester_id="UREQ0001",
    number="+15551234567",
    state=RequestState.PENDING,
    created_at=NOW - timedelta(seconds=10),
    expires_at=NOW + timedelta(seconds=290),
    message_ts="1.2",
    response_url=None,
    decided_by=None,
    decided_at=None,
    chosen_position=None,
    outcome=None,
    outcome_detail=None,
    candidates=(CALL,),
    reason="r" * 200,
)


def _requests() -> list[DropRequest]:
    """Requests of every shape: each target, one and ten calls, stuck ones, long texts."""
    shapes: list[DropRequest] = []
    for kind, candidates in itertools.product(
        (TargetKind.NUMBER, TargetKind.CONVERSATION, TargetKind.AGENT),
        ((CALL,), (STUCK,), tuple([CALL] * 5 + [STUCK] * 5)),
    ):
        target = None if kind == TargetKind.NUMBER else "x" * 300
        shapes.append(
            replace(REQUEST, target_kind=kind, target=target, candidates=candidates, dry_run=True)
        )
    shapes.append(replace(REQUEST, target_kind=TargetKind.UNBLOCK, candidates=()))
    return shapes


def _cards() -> list[tuple[str, str, list[Block]]]:
    """Every card the bot can build from those requests, named for the failure message."""
    cards: list[tuple[str, str, list[Block]]] = []
    for index, request in enumerate(_requests()):
        if request.target_kind == TargetKind.UNBLOCK:
            cards.append((f"{index} unblock", *unblock_card(request, NOW, two_person=True)))
        else:
            for two_person, teardown, block_for in itertools.product(
                (False, True), (False, True), (None, "for 7 days")
            ):
                card = confirmation_card(
                    request,
                    NOW,
                    two_person=two_person,
                    allow_teardown=teardown,
                    block_for=block_for,
                )
                cards.append((f"{index} confirm {two_person} {teardown} {block_for}", *card))
        for state, outcome in [
            (RequestState.APPROVING, None),
            (RequestState.CANCELLED, None),
            (RequestState.EXPIRED, None),
            *((RequestState.DONE, o) for o in Outcome if o.succeeded),
            *((RequestState.FAILED, o) for o in Outcome if not o.succeeded),
        ]:
            decided = replace(
                request,
                state=state,
                outcome=outcome,
                outcome_detail=MESSAGE,
                decided_by="UDEC0002",
                decided_at=NOW,
                chosen_position=0 if request.candidates else None,
                block=True,
            )
            build = progress_card if state == RequestState.APPROVING else outcome_card
            cards.append((f"{index} {state} {outcome}", *build(decided, NOW)))
    return cards


CARDS = _cards()


@pytest.mark.parametrize(("name", "text", "blocks"), CARDS, ids=[name for name, _, _ in CARDS])
def test_every_card_fits_slacks_limits(name: str, text: str, blocks: list[Block]) -> None:
    """No card can be refused by Slack for its size: checked against the published limits."""
    assert block_kit.problems(blocks) == []
    assert block_kit.text_problem(text) is None
    assert len(text) <= 3000  # a notification's text, read at a glance


def test_the_check_itself_catches_what_slack_refuses() -> None:
    """The checker is not a rubber stamp: each limit it knows, broken once, is reported."""
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 2001}]}
    button = {
        "type": "button",
        "action_id": "a",
        "text": {"type": "plain_text", "text": "x" * 76},
        "value": "v",
        "confirm": {
            "title": {"type": "plain_text", "text": "x" * 101},
            "text": {"type": "plain_text", "text": "x" * 301},
            "confirm": {"type": "plain_text", "text": "x" * 31},
            "deny": {"type": "plain_text", "text": "ok"},
        },
    }
    actions = {"type": "actions", "elements": [button]}
    found = block_kit.problems([section, fields, context, actions])
    assert len(found) == 7, found
    assert block_kit.problems([context] * 51)[0].startswith("51 blocks")
    assert block_kit.problems([context] * 51, surface="home") != []


def _readable(blocks: list[Block]) -> str:
    parts: list[str] = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(field["text"] for field in block.get("fields", []))
        parts.extend(e.get("text", "") for e in block.get("elements", []) if "text" in e)
    return "\n".join(str(part) for part in parts)


def test_sixty_agents_and_a_long_genesys_message_are_cut_with_an_ellipsis() -> None:
    """The names end with how many more there are; the message is cut and says so."""
    _, blocks = confirmation_card(REQUEST, NOW)
    shown = _readable(blocks)
    assert re.search(r" and \d+ more", shown)
    decided = replace(
        REQUEST,
        state=RequestState.FAILED,
        outcome=Outcome.FAILED,
        outcome_detail=MESSAGE,
        decided_by="UDEC0002",
        decided_at=NOW,
        chosen_position=0,
    )
    _, blocks = outcome_card(decided, NOW)
    headline = next(b["text"]["text"] for b in blocks if "Not disconnected" in str(b))
    assert "…" in headline
    assert len(headline) <= 3000


def test_markup_in_names_is_neutralised() -> None:
    """A queue called "*VIP* _urgent_ ~old~ `queue`" shows as typed: no bold, italics,
    strike-through or code, and no `<`, `>` or `&` that Slack would read."""
    call = replace(CALL, queue_names=(QUEUE,), agent_names=("Ann",))
    _, blocks = confirmation_card(replace(REQUEST, candidates=(call,)), NOW)
    field = next(
        f["text"] for b in blocks for f in b.get("fields", []) if f["text"].startswith("*Queue*")
    )
    shown = field.removeprefix("*Queue*\n")
    for marker in "*_~`<>":
        assert marker not in shown
    assert shown == "\u2217VIP\u2217 \u02cdurgent\u02cd \u223cold\u223c \u02cbqueue\u02cb"
    assert escape("a & b") == "a &amp; b"


def test_times_use_slacks_date_formatting_with_utc_as_the_fallback() -> None:
    """Each reader sees their own local time; a client that cannot shows UTC."""
    expires = int(REQUEST.expires_at.timestamp())
    _, blocks = confirmation_card(REQUEST, NOW)
    assert f"<!date^{expires}^{{time_secs}}|12:04:50 UTC>" in _readable(blocks)
    decided = replace(REQUEST, state=RequestState.CANCELLED, decided_by="U2", decided_at=NOW)
    line = audit_line(decided)
    assert f"<!date^{int(NOW.timestamp())}^{{date_num}} {{time_secs}}|2026-12-06 12:00:00 UTC>" in (
        line
    )


def test_the_requester_notice_says_who_did_what() -> None:
    """Someone else's decision, or the expiry, is news; one's own decision is not."""
    cancelled = replace(REQUEST, state=RequestState.CANCELLED, decided_by="U2", decided_at=NOW)
    assert "<@U2> cancelled your request" in str(requester_notice(cancelled))
    own = replace(cancelled, decided_by=REQUEST.requester_id)
    assert requester_notice(own) is None
    expired = replace(REQUEST, state=RequestState.EXPIRED)
    assert "Nobody approved your request" in str(requester_notice(expired))
    done = replace(
        REQUEST,
        state=RequestState.DONE,
        outcome=Outcome.ALREADY_GONE,
        decided_by="U2",
        decided_at=NOW,
        chosen_position=0,
    )
    assert "Outcome: *already gone*" in str(requester_notice(done))

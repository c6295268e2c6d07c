"""Targets beyond a number, through the real request path: a conversation id (or a URL with
one), an agent's email, and stuck conversations ended whole.

Signed Slack requests into the real Bolt app, the real Genesys SDK against the simulator, a
fake Slack Web API, all over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.audit import audit_records
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack, Message
from tests.harness import (
    CHANNEL,
    NUMBER,
    SECOND_SUPERVISOR,
    SUPERVISOR,
    BotHarness,
    card_text,
    start_bot,
)

DISCONNECT = "drop_caller_disconnect_0"
END = "drop_caller_end_0"
TEARDOWN = r"^/api/v2/conversations/[^/]+/disconnect$"
OTHER = "+15557654321"
PROTECTED = "+15550009999"


@pytest.fixture
def teardown_bot(genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path) -> Iterator[BotHarness]:
    """The bot with ending whole conversations turned on, and one protected number."""
    env = {"DROP_CALLER_ALLOW_TEARDOWN": "true", "DROP_CALLER_PROTECTED_NUMBERS": PROTECTED}
    with start_bot(genesys, slack, tmp_path, env=env) as harness:
        yield harness


def _told(bot: BotHarness, fragment: str) -> str:
    return bot.slack.wait_for(
        lambda: next((t for t in bot.ephemeral_texts() if fragment in t), None)
    )


def _final(bot: BotHarness, card: Message, fragment: str) -> str:
    return bot.slack.wait_for(
        lambda: (
            text if fragment in (text := card_text(bot.slack.message(CHANNEL, card.ts))) else None
        )
    )


def _stuck_call(genesys: FakeGenesys, agent: str = "Jane Agent") -> str:
    """A conversation whose caller hung up ten minutes ago while the agent's leg stayed."""
    cid = genesys.add_inbound_call(NUMBER, agent_name=agent, connected_seconds_ago=3600)
    genesys.hang_up(cid, leave_stuck=True, seconds_ago=600)
    return cid


def _buttons(card: Message) -> list[str]:
    return [
        str(element.get("action_id"))
        for block in card.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


# ------------------------------------------------------------------ conversation ids


@pytest.mark.parametrize(
    "typed",
    [
        "{cid}",
        "https://apps.mypurecloud.com/directory/#/engage/admin/interactions/{cid}",
        "<https://apps.mypurecloud.com/directory/#/engage/admin/interactions/{cid}>",
    ],
    ids=["id", "url", "slack-link"],
)
def test_a_conversation_id_or_its_url_gets_a_card_for_its_caller(
    bot: BotHarness, typed: str
) -> None:
    """`/drop-caller <conversation id>` (or an interaction URL) reads that conversation and
    offers its live caller; Disconnect drops exactly the caller."""
    cid = bot.genesys.add_inbound_call(NUMBER, agent_name="Jane Agent")
    customer = bot.genesys.participant_id(cid, "customer")

    answer = bot.command(typed.format(cid=cid.upper() if typed == "{cid}" else cid))

    assert f"Reading conversation `{cid}`" in answer.body
    card = bot.wait_for_card()
    text = card_text(card)
    assert f"conversation `{cid}`" in text
    assert "+1 555-123-4567" in text
    assert "an agent (the live call does not name them)" in text
    assert "Billing" in text
    # Read directly: no search of any kind.
    assert bot.genesys.requests_to("POST", "/analytics/") == []
    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)
    assert bot.wait_for_state(card, "done").outcome == "disconnected"
    assert bot.genesys.patches() == [(cid, customer, {"state": "disconnected"})]


def test_an_ended_and_an_unknown_conversation_are_answered_privately(bot: BotHarness) -> None:
    """An ended conversation and an id Genesys does not know get a private answer each."""
    ended = bot.genesys.add_inbound_call(NUMBER)
    bot.genesys.end_call(ended)
    unknown = "0f0f0f0f-1111-4222-8333-444455556666"

    bot.command(ended)
    assert f"Conversation `{ended}` has ended" in _told(bot, "has ended")
    bot.command(unknown)
    assert f"has no conversation `{unknown}`" in _told(bot, "has no conversation")

    assert bot.slack.messages(CHANNEL) == []
    bot.slack.wait_for(
        lambda: (
            {"conversation_ended", "no_conversation"}
            <= {r["outcome"] for r in audit_records(bot.store) if r["event"] == "looked_up"}
        )
    )


# ------------------------------------------------------------------ agents


def test_an_agents_one_live_call_gets_a_card(bot: BotHarness) -> None:
    """`/drop-caller agent <email>` finds the user, then their live call, and offers its
    caller."""
    cid = bot.genesys.add_inbound_call(NUMBER, agent_name="Jane Agent")
    bot.genesys.add_inbound_call(OTHER, agent_name="Someone Else")
    email = bot.genesys.user("Jane Agent")["email"]

    answer = bot.command(f"agent {email}")

    assert f"live calls of agent *{email}*" in answer.body
    card = bot.wait_for_card()
    text = card_text(card)
    assert cid in text
    assert "+1 555-123-4567" in text
    assert "+1 555-765-4321" not in text
    [search] = bot.genesys.requests_to("POST", "/users/search")
    assert search.body["query"] == [{"type": "EXACT", "fields": ["email"], "value": email}]
    [details] = bot.genesys.requests_to("POST", "/details/query")
    predicates = [p for f in details.body["segmentFilters"] for p in f["predicates"]]
    user_id = bot.genesys.user("Jane Agent")["id"]
    assert {
        "type": "dimension",
        "dimension": "userId",
        "operator": "matches",
        "value": user_id,
    } in (predicates)
    assert details.body["conversationFilters"][0]["predicates"][0]["operator"] == "notExists"


def test_an_agents_two_live_calls_are_listed_newest_first(bot: BotHarness) -> None:
    """Two live calls of one agent: one card, each with its own button, the newest first."""
    older = bot.genesys.add_inbound_call(NUMBER, agent_name="Jane Agent", connected_seconds_ago=900)
    newer = bot.genesys.add_outbound_call(OTHER, agent_name="Jane Agent", connected_seconds_ago=60)
    external = bot.genesys.participant_id(newer, "external")

    bot.command("agent <mailto:jane.agent@example.com|jane.agent@example.com>")

    card = bot.wait_for_card()
    text = card_text(card)
    assert text.index(newer) < text.index(older)
    assert _buttons(card)[:2] == ["drop_caller_disconnect_0", "drop_caller_disconnect_1"]
    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)
    assert bot.wait_for_state(card, "done").outcome == "disconnected"
    assert bot.genesys.patches() == [(newer, external, {"state": "disconnected"})]


def test_an_unknown_email_and_an_agent_without_a_call_are_answered_privately(
    bot: BotHarness,
) -> None:
    """No such user, and a user with no live call, each get a private answer and no card."""
    cid = bot.genesys.add_inbound_call(NUMBER, agent_name="Idle Agent")
    bot.genesys.end_call(cid)

    bot.command("agent nobody@example.com")
    assert "no user with the email *nobody@example.com*" in _told(bot, "no user")
    bot.command("agent idle.agent@example.com")
    assert "has no live call" in _told(bot, "has no live call")
    assert bot.slack.messages(CHANNEL) == []


def test_a_malformed_agent_address_is_refused_before_anything_is_asked(bot: BotHarness) -> None:
    """`agent` followed by no email is answered at once, escaped, and Genesys hears nothing."""
    answer = bot.command("agent <!channel>")

    assert "give the agent's email address" in answer.body
    assert "<!channel>" not in answer.body
    assert bot.genesys.requests == []


# ------------------------------------------------------------------ stuck conversations


def test_a_stuck_conversation_with_teardown_off_is_explained_without_a_button(
    bot: BotHarness,
) -> None:
    """A stuck conversation's card says who is still connected, when the caller left and for
    how long it has been open; with teardown off it has no End button and says why."""
    cid = _stuck_call(bot.genesys)

    bot.command(cid)

    card = bot.wait_for_card()
    text = card_text(card)
    assert "stuck" in text
    assert "the caller has left" in text
    assert "*Still connected*\nagent (agent, for 59 min" in text
    assert "Open for" in text
    assert "1 h 00 min" in text
    assert "DROP_CALLER_ALLOW_TEARDOWN=true" in text
    assert _buttons(card) == ["drop_caller_cancel"]


def test_ending_a_stuck_conversation_needs_another_supervisor(teardown_bot: BotHarness) -> None:
    """The requester's own End click is refused (two-person rule or not); another
    supervisor's ends it: exactly one teardown, confirmed, and a final card."""
    bot = teardown_bot
    cid = _stuck_call(bot.genesys)
    bot.command(cid, user_id=SUPERVISOR)
    card = bot.wait_for_card()
    button = card.button(END)
    assert button["style"] == "danger"
    assert "agents included" in button["confirm"]["text"]["text"]

    bot.click(card, END, user_id=SUPERVISOR)
    assert "always needs a second supervisor" in _told(bot, "second supervisor")
    assert bot.genesys.requests_to("POST", TEARDOWN) == []
    assert bot.request_for(card).state.value == "pending"

    bot.click(card, END, user_id=SECOND_SUPERVISOR)

    request = bot.wait_for_state(card, "done")
    assert request.outcome == "ended"
    assert request.decided_by == SECOND_SUPERVISOR
    assert len(bot.genesys.requests_to("POST", TEARDOWN)) == 1
    assert not any(p["state"] == "connected" for p in bot.genesys.participants(cid))
    final = _final(bot, card, "Conversation ended")
    assert f"approved by <@{SECOND_SUPERVISOR}>" in final
    kinds = [event["kind"] for event in bot.store.events(request.id)]
    assert kinds == ["requested", "approved", "outcome"]


def test_a_caller_back_on_the_call_before_the_click_stops_the_teardown(
    teardown_bot: BotHarness,
) -> None:
    """If an outside party is live again at the click, nothing is torn down and the card says
    why."""
    bot = teardown_bot
    cid = _stuck_call(bot.genesys)
    bot.command(cid)
    card = bot.wait_for_card()
    bot.genesys.add_external_party(cid, OTHER)

    bot.click(card, END, user_id=SECOND_SUPERVISOR)

    assert bot.wait_for_state(card, "done").outcome == "not_stuck"
    assert bot.genesys.requests_to("POST", TEARDOWN) == []
    assert "not stuck after all" in _final(bot, card, "Not ended")


def test_a_conversation_with_a_protected_number_is_never_offered_or_torn_down(
    teardown_bot: BotHarness,
) -> None:
    """A conversation that includes a protected number gets no card; one that comes to
    include it after its card was posted is refused at the click."""
    bot = teardown_bot
    protected = bot.genesys.add_inbound_call(PROTECTED)
    bot.command(protected)
    assert "includes a protected number" in _told(bot, "protected number")
    assert bot.slack.messages(CHANNEL) == []

    cid = _stuck_call(bot.genesys)
    bot.command(cid)
    card = bot.wait_for_card()
    leg = bot.genesys.add_external_party(cid, PROTECTED)
    bot.genesys.hang_up(cid, leg, leave_stuck=True)  # stuck again, but the number was on it

    bot.click(card, END, user_id=SECOND_SUPERVISOR)

    request = bot.wait_for_state(card, "failed")
    assert request.outcome == "refused"
    assert bot.genesys.requests_to("POST", TEARDOWN) == []
    assert bot.genesys.patches() == []


def test_dry_run_ends_nothing(genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path) -> None:
    """With dry run, the teardown is checked and approved but never sent."""
    env = {"DROP_CALLER_ALLOW_TEARDOWN": "true", "DROP_CALLER_DRY_RUN": "true"}
    with start_bot(genesys, slack, tmp_path, env=env) as bot:
        cid = _stuck_call(genesys)
        bot.command(cid)
        card = bot.wait_for_card()

        bot.click(card, END, user_id=SECOND_SUPERVISOR)

        assert bot.wait_for_state(card, "done").outcome == "dry_run"
        assert genesys.requests_to("POST", TEARDOWN) == []
        assert any(p["state"] == "connected" for p in genesys.participants(cid))
        assert "would end conversation" in _final(bot, card, "Dry run")


def test_a_double_click_on_end_tears_down_once(teardown_bot: BotHarness) -> None:
    """Two End clicks at once (or two supervisors): one teardown."""
    bot = teardown_bot
    bot.genesys.teardown_delay = 0.3
    cid = _stuck_call(bot.genesys)
    bot.command(cid)
    card = bot.wait_for_card()

    clicks = [
        threading.Thread(target=bot.click, args=(card, END), kwargs={"user_id": SECOND_SUPERVISOR})
        for _ in range(2)
    ]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()

    assert bot.wait_for_state(card, "done").outcome == "ended"
    assert len(bot.genesys.requests_to("POST", TEARDOWN)) == 1


def test_a_teardown_genesys_never_applies_is_reported_unconfirmed(
    teardown_bot: BotHarness,
) -> None:
    """Genesys accepts the teardown but the participants stay: the card says requested, not
    yet confirmed, with Genesys' contextId for a support case."""
    bot = teardown_bot
    bot.genesys.ignore_teardowns = True
    cid = _stuck_call(bot.genesys)
    bot.command(cid)
    card = bot.wait_for_card()

    bot.click(card, END, user_id=SECOND_SUPERVISOR)

    assert bot.wait_for_state(card, "done").outcome == "teardown_unconfirmed"
    text = _final(bot, card, "not yet confirmed")
    assert "contextId is" in text
    assert "not known" not in text


def test_an_agents_stuck_conversation_is_listed_to_end(teardown_bot: BotHarness) -> None:
    """An agent held "on a call" whose caller left: their card offers to end it."""
    bot = teardown_bot
    cid = _stuck_call(bot.genesys, agent="Held Agent")

    bot.command("agent held.agent@example.com")

    card = bot.wait_for_card()
    assert cid in card_text(card)
    assert _buttons(card) == [END, "drop_caller_cancel"]

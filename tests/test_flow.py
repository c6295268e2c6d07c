"""End-to-end flows: signed Slack requests into the real Bolt app, the real Genesys SDK talking
to a fake Genesys Cloud, a fake Slack Web API, all over HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from bot.work import WorkQueue
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack
from tests.harness import (
    CHANNEL,
    NUMBER,
    OUTSIDER,
    SECOND_SUPERVISOR,
    SUPERVISOR,
    BotHarness,
    card_text,
    start_bot,
)

DISCONNECT = "drop_caller_disconnect_0"
CANCEL = "drop_caller_cancel"


def test_happy_path_drops_exactly_the_caller(bot: BotHarness) -> None:
    """A supervisor's command posts a full card; Disconnect drops the caller and says so."""
    cid = bot.genesys.add_inbound_call(
        NUMBER, agent_name="Jane Agent", queue_name="Billing", connected_seconds_ago=125
    )
    customer = bot.genesys.participant_id(cid, "customer")
    agent = bot.genesys.participant_id(cid, "agent")

    answer = bot.command("+1 555 123 4567")

    assert answer.status == 200
    assert "Looking for a live call with +1 555-123-4567" in answer.body
    card = bot.wait_for_card()
    text = card_text(card)
    for expected in ("+1 555-123-4567", cid, "Jane Agent", "Billing", "caller", f"<@{SUPERVISOR}>"):
        assert expected in text
    assert "2 min 0" in text  # connected for about 125 s
    button = card.button(DISCONNECT)
    assert button["style"] == "danger"
    assert "confirm" in button
    assert button["value"] == bot.request_for(card).id

    click = bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)

    assert click.status == 200
    request = bot.wait_for_state(card, "done")
    assert request.outcome == "disconnected"
    assert request.decided_by == SECOND_SUPERVISOR
    assert bot.genesys.patches() == [(cid, customer, {"state": "disconnected"})]
    assert all(pid != agent for _, pid, _ in bot.genesys.patches())
    final = bot.slack.wait_for(
        lambda: (
            "Disconnected" in card_text(bot.slack.message(CHANNEL, card.ts))
            and bot.slack.message(CHANNEL, card.ts)
        )
    )
    final_text = card_text(final)
    assert f"approved by <@{SECOND_SUPERVISOR}>" in final_text
    assert "UTC" in final_text
    assert not any(block["type"] == "actions" for block in final.blocks)
    kinds = [event["kind"] for event in bot.store.events(request.id)]
    assert kinds == ["requested", "approved", "outcome"]


@pytest.mark.parametrize(
    "typed",
    [
        "+1 (555) 123-4567",
        "15551234567",
        "555-123-4567",
        "tel:+15551234567",
        "<tel:+15551234567|+1 555 123 4567>",
    ],
)
def test_each_number_form_finds_the_call(bot: BotHarness, typed: str) -> None:
    """Every accepted way of writing the number looks up tel:+15551234567."""
    bot.genesys.add_inbound_call(NUMBER)

    assert bot.command(typed).status == 200

    card = bot.wait_for_card()
    assert "+1 555-123-4567" in card_text(card)
    query = bot.genesys.requests_to("POST", "/analytics/conversations/details/query")[0].body
    assert isinstance(query, dict)
    values = [p["value"] for f in query["segmentFilters"] for p in f["predicates"]]
    assert "tel:+15551234567" in values
    assert query["conversationFilters"][0]["predicates"][0] == {
        "type": "dimension",
        "dimension": "conversationEnd",
        "operator": "notExists",
    }


def test_not_a_number_is_refused_without_echoing_markup(bot: BotHarness) -> None:
    """Text that is no phone number gets an escaped ephemeral error and no Genesys call."""
    answer = bot.command("<!channel> call me")

    assert answer.status == 200
    assert "not a phone number" in answer.body
    assert "&lt;!channel&gt;" in answer.body
    assert "<!channel>" not in answer.body
    assert "/drop-caller +1 555 123 4567" in answer.body
    assert bot.genesys.requests == []


def test_empty_command_shows_usage(bot: BotHarness) -> None:
    """`/drop-caller` alone, or `help`, explains the command."""
    for text in ("", "help"):
        answer = bot.command(text)
        assert "Usage" in answer.body
    assert bot.genesys.requests == []


def test_non_supervisor_command_is_refused(bot: BotHarness) -> None:
    """Someone who is not a supervisor is told so, and Genesys is not asked anything."""
    bot.genesys.add_inbound_call(NUMBER)

    answer = bot.command(NUMBER, user_id=OUTSIDER)

    assert "Only supervisors" in answer.body
    assert bot.genesys.requests == []
    assert bot.slack.messages(CHANNEL) == []


def test_non_supervisor_click_is_refused_and_card_unchanged(bot: BotHarness) -> None:
    """A click by a non-supervisor gets an ephemeral refusal; nothing reaches Genesys."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()

    bot.click(card, DISCONNECT, user_id=OUTSIDER)

    bot.slack.wait_for(lambda: any("Only supervisors" in t for t in bot.ephemeral_texts()))
    assert bot.genesys.patches() == []
    assert bot.request_for(card).state.value == "pending"
    assert bot.slack.message(CHANNEL, card.ts).blocks == card.blocks


def test_no_active_call(bot: BotHarness) -> None:
    """A number with no live call gets an ephemeral 'no active call'."""
    bot.command(NUMBER)

    bot.slack.wait_for(
        lambda: any("No active call for +1 555-123-4567" in t for t in bot.ephemeral_texts())
    )
    assert bot.slack.messages(CHANNEL) == []


def test_two_calls_get_one_button_each(bot: BotHarness) -> None:
    """A number on two live calls: one card, one Disconnect button per call."""
    first = bot.genesys.add_inbound_call(NUMBER, agent_name="Ann", connected_seconds_ago=300)
    second = bot.genesys.add_inbound_call(NUMBER, agent_name="Bob", connected_seconds_ago=30)

    bot.command(NUMBER)
    card = bot.wait_for_card()

    text = card_text(card)
    assert first in text
    assert second in text
    card.button("drop_caller_disconnect_0")
    card.button("drop_caller_disconnect_1")
    bot.click(card, "drop_caller_disconnect_1")
    bot.wait_for_state(card, "done")
    customer = bot.genesys.participant_id(second, "customer")
    assert bot.genesys.patches() == [(second, customer, {"state": "disconnected"})]
    assert bot.genesys.participants(first)[0]["state"] == "connected"


def test_agent_leg_with_the_number_in_sip_form_is_never_chosen(bot: BotHarness) -> None:
    """The agent's leg carries the caller's number as sip:+1…; only the caller is offered."""
    cid = bot.genesys.add_inbound_call(NUMBER)
    agent = next(p for p in bot.genesys.participants(cid) if p["purpose"] == "agent")
    assert agent["ani"].startswith("sip:+15551234567@")

    bot.command(NUMBER)
    card = bot.wait_for_card()

    request = bot.request_for(card)
    assert len(request.candidates) == 1
    assert request.candidates[0].participant_id == bot.genesys.participant_id(cid, "customer")
    assert request.candidates[0].purpose == "customer"


def test_agent_only_match_is_no_call(bot: BotHarness) -> None:
    """When only the agent's leg still carries the number (caller gone), nothing is offered."""
    cid = bot.genesys.add_inbound_call(NUMBER)
    bot.genesys.add_call(
        [
            {
                "id": "agent-only-leg",
                "purpose": "agent",
                "state": "connected",
                "direction": "inbound",
                "ani": "sip:+15551234567@10.47.1.31;user=phone",
                "address": "sip:station@localhost",
            }
        ]
    )
    bot.genesys.hang_up(cid)

    bot.command(NUMBER)

    bot.slack.wait_for(lambda: any("No active call" in t for t in bot.ephemeral_texts()))


def test_outbound_call_drops_the_external_party(bot: BotHarness) -> None:
    """An outbound call (number in dnis, purpose external) is found and its external leg dropped."""
    cid = bot.genesys.add_outbound_call(NUMBER, agent_name="Olive")
    external = bot.genesys.participant_id(cid, "external")

    bot.command(NUMBER)
    card = bot.wait_for_card()
    assert "external party" in card_text(card)
    bot.click(card, DISCONNECT)

    assert bot.wait_for_state(card, "done").outcome == "disconnected"
    assert bot.genesys.patches() == [(cid, external, {"state": "disconnected"})]


def test_caller_hangs_up_between_card_and_click(bot: BotHarness) -> None:
    """If the caller already left, the card says so and nothing is sent to Genesys."""
    cid = bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.genesys.hang_up(cid)

    bot.click(card, DISCONNECT)

    request = bot.wait_for_state(card, "done")
    assert request.outcome == "already_gone"
    assert bot.genesys.patches() == []
    final = bot.slack.wait_for(
        lambda: (
            "already" in card_text(bot.slack.message(CHANNEL, card.ts))
            and bot.slack.message(CHANNEL, card.ts)
        )
    )
    assert "hung up" in card_text(final) or "ended" in card_text(final)


def test_double_click_disconnects_once(bot: BotHarness) -> None:
    """Two simultaneous clicks (two supervisors) send exactly one PATCH."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.genesys.latency = 0.05
    bot.command(NUMBER)
    card = bot.wait_for_card()
    start = threading.Barrier(4)

    def click(user: str) -> None:
        start.wait()
        bot.click(card, DISCONNECT, user_id=user)

    threads = [
        threading.Thread(target=click, args=(user,))
        for user in (SUPERVISOR, SECOND_SUPERVISOR, SUPERVISOR, SECOND_SUPERVISOR)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    bot.wait_for_state(card, "done")
    assert len(bot.genesys.patches()) == 1
    bot.slack.wait_for(
        lambda: (
            sum(
                "already approved this drop" in t or "Another card" in t
                for t in bot.ephemeral_texts()
            )
            == 3
        )
    )
    approvals = [e for e in bot.store.events(bot.request_for(card).id) if e["kind"] == "approved"]
    assert len(approvals) == 1


def test_expired_request_drops_nothing(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """A click after DROP_CALLER_REQUEST_TTL drops nothing and the card says it expired."""
    with start_bot(genesys, slack, tmp_path, env={"DROP_CALLER_REQUEST_TTL": "1"}) as bot:
        genesys.add_inbound_call(NUMBER)
        bot.command(NUMBER)
        card = bot.wait_for_card()
        time.sleep(1.2)

        bot.click(card, DISCONNECT)

        bot.wait_for_state(card, "expired")
        final = slack.wait_for(
            lambda: (
                "Expired" in card_text(slack.message(CHANNEL, card.ts))
                and slack.message(CHANNEL, card.ts)
            )
        )
        assert not any(block["type"] == "actions" for block in final.blocks)
        assert genesys.patches() == []
        slack.wait_for(lambda: any("expired" in t for t in bot.ephemeral_texts()))


def test_cancel_closes_the_card(bot: BotHarness) -> None:
    """Cancel updates the card to 'cancelled by …'; a later Disconnect does nothing."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()

    bot.click(card, CANCEL, user_id=SECOND_SUPERVISOR)

    bot.wait_for_state(card, "cancelled")
    final = bot.slack.wait_for(
        lambda: (
            "Cancelled by" in card_text(bot.slack.message(CHANNEL, card.ts))
            and bot.slack.message(CHANNEL, card.ts)
        )
    )
    assert f"<@{SECOND_SUPERVISOR}>" in card_text(final)
    bot.click(card, DISCONNECT)
    bot.slack.wait_for(
        lambda: any(
            f"This request was already cancelled by <@{SECOND_SUPERVISOR}>. Nothing more was done."
            in t
            for t in bot.ephemeral_texts()
        )
    )
    assert bot.genesys.patches() == []


def test_bad_signature_is_rejected_and_not_logged(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrongly signed request gets 401, and the body's phone number stays out of the logs."""
    from bot.redaction import RedactingFilter

    caplog.handler.addFilter(RedactingFilter())
    caplog.set_level(logging.DEBUG)
    body = b"command=%2Fdrop-caller&text=%2B1+555+123+4567&user_id=USUP1&channel_id=C0001"

    answer = bot.requester.post(
        body, content_type="application/x-www-form-urlencoded", signature="v0=deadbeef"
    )
    stale = bot.requester.post(
        body, content_type="application/x-www-form-urlencoded", timestamp=int(time.time()) - 600
    )

    assert answer.status == 401
    assert stale.status == 401
    assert bot.genesys.requests == []
    # Refused before Bolt parses (and would log) the body.
    assert caplog.text.count("missing, wrong or stale Slack signature") == 2
    assert "555 123 4567" not in caplog.text
    assert "5551234567" not in caplog.text.replace("+", "").replace(" ", "")


def test_forged_request_id_does_nothing(bot: BotHarness) -> None:
    """A click whose value is not a request of this channel is refused."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()

    bot.click(card, DISCONNECT, value="0" * 24)
    bot.click(card, DISCONNECT, channel_id="C0OTHER")

    bot.slack.wait_for(lambda: sum("no such request" in t for t in bot.ephemeral_texts()) == 2)
    assert bot.genesys.patches() == []


def test_unconfirmed_disconnect_is_reported_honestly(bot: BotHarness) -> None:
    """Genesys accepts the PATCH but the caller never leaves: the card says 'not yet confirmed'."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.genesys.ignore_disconnects = True
    bot.command(NUMBER)
    card = bot.wait_for_card()

    bot.click(card, DISCONNECT)

    assert bot.wait_for_state(card, "done").outcome == "unconfirmed"
    bot.slack.wait_for(
        lambda: "not yet confirmed" in card_text(bot.slack.message(CHANNEL, card.ts))
    )
    assert len(bot.genesys.patches()) == 1


def test_missing_permission_is_named(bot: BotHarness) -> None:
    """A 403 on the PATCH names the role permission to add."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.genesys.deny_permission("conversation:communication:disconnect")
    bot.command(NUMBER)
    card = bot.wait_for_card()

    bot.click(card, DISCONNECT)

    request = bot.wait_for_state(card, "failed")
    assert "Conversation > Communication > Disconnect" in (request.outcome_detail or "")
    bot.slack.wait_for(
        lambda: (
            "Conversation &gt; Communication &gt; Disconnect"
            in card_text(bot.slack.message(CHANNEL, card.ts))
        )
    )


def test_lookup_permission_is_named(bot: BotHarness) -> None:
    """A 403 on the analytics query tells the supervisor which permission is missing."""
    bot.genesys.deny_permission("analytics:conversationDetail:view")

    bot.command(NUMBER)

    bot.slack.wait_for(
        lambda: any(
            "Analytics &gt; Conversation Detail &gt; View" in t for t in bot.ephemeral_texts()
        )
    )


def test_genesys_down_gives_a_clear_message(bot: BotHarness) -> None:
    """Persistent 503s become 'unavailable, try again' after bounded retries."""
    bot.genesys.inject("POST", "/analytics/", status=503, times=10)

    answer = bot.command(NUMBER)

    assert answer.status == 200
    bot.slack.wait_for(lambda: any("unavailable" in t for t in bot.ephemeral_texts()))
    assert len(bot.genesys.requests_to("POST", "/details/query")) == 3


def test_bot_not_in_channel_falls_back_to_response_url(bot: BotHarness) -> None:
    """When chat.postMessage says not_in_channel, the card goes out through response_url."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.slack.not_in_channel.add(CHANNEL)

    bot.command(NUMBER)
    card = bot.wait_for_card()
    assert card.source == "response_url"
    bot.click(card, DISCONNECT)

    bot.wait_for_state(card, "done")
    bot.slack.wait_for(lambda: "Disconnected" in card_text(bot.slack.messages(CHANNEL)[0]))


def test_token_expiring_mid_flow_signs_in_again(bot: BotHarness) -> None:
    """A 401 on a previously valid token triggers exactly one new sign-in, and the drop works."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    assert bot.genesys.token_requests == 1
    bot.genesys.expire_all_tokens()

    bot.click(card, DISCONNECT)

    assert bot.wait_for_state(card, "done").outcome == "disconnected"
    assert bot.genesys.token_requests == 2


def test_health_check(bot: BotHarness) -> None:
    """GET /healthz answers 200 with a JSON report once the bot is up."""
    import json
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{bot.base_url}/healthz", timeout=5) as response:
        assert response.status == 200
        report = json.loads(response.read())
    assert report["ok"] is True
    assert report["store"] == "ok"


def test_no_full_number_or_secret_in_logs(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole flow logs the number only masked, and never a token or secret."""
    from bot.redaction import RedactingFilter

    caplog.handler.addFilter(RedactingFilter(bot.settings.secrets))
    caplog.set_level(logging.DEBUG)
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.click(card, DISCONNECT)
    bot.wait_for_state(card, "done")

    assert "+1555***4567" in caplog.text
    for secret in (*bot.settings.secrets, "5551234567", "555-123-4567"):
        assert secret not in caplog.text


def test_ack_is_immediate_even_when_genesys_hangs(bot: BotHarness) -> None:
    """A Genesys that never answers does not delay the acknowledgement; a clear message follows."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.genesys.latency = 5.0

    answer = bot.command(NUMBER)

    assert answer.status == 200
    assert answer.elapsed < 3.0  # Slack's limit
    assert "Looking for a live call" in answer.body
    bot.slack.wait_for(lambda: any("Try again" in t for t in bot.ephemeral_texts()), timeout=15)
    assert bot.slack.messages(CHANNEL) == []


def test_stale_card_never_drops_the_callers_new_call(bot: BotHarness) -> None:
    """The caller hangs up and calls again: the old card's click leaves the new call alone."""
    old = bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.genesys.hang_up(old)
    new = bot.genesys.add_inbound_call(NUMBER)

    bot.click(card, DISCONNECT)

    assert bot.wait_for_state(card, "done").outcome == "already_gone"
    assert bot.genesys.patches() == []
    assert bot.genesys.participants(new)[0]["state"] == "connected"


def test_requests_from_another_workspace_are_refused(bot: BotHarness) -> None:
    """A command or click signed for this app but from another team_id does nothing."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    foreign = bot.requester.click(
        action_id=DISCONNECT,
        value=card.button(DISCONNECT)["value"],
        channel_id=CHANNEL,
        message_ts=card.ts,
        response_url=bot.slack.new_response_url(channel=CHANNEL, message_ts=card.ts),
        team_id="T0THER",
    )
    assert foreign.status == 200
    bot.slack.wait_for(lambda: any("another Slack workspace" in t for t in bot.ephemeral_texts()))
    assert bot.genesys.patches() == []
    assert bot.request_for(card).state.value == "pending"


def test_two_cards_for_one_caller_disconnect_once(bot: BotHarness) -> None:
    """Two supervisors run the command for the same caller and click both cards at once."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.genesys.latency = 0.05
    bot.command(NUMBER)
    first = bot.wait_for_card()
    bot.command(NUMBER, user_id=SECOND_SUPERVISOR)
    bot.slack.wait_for(lambda: len(bot.slack.messages(CHANNEL)) == 2)
    cards = bot.slack.messages(CHANNEL)
    assert cards[0].ts == first.ts
    start = threading.Barrier(2)

    def click(card_index: int, user: str) -> None:
        start.wait()
        bot.click(cards[card_index], DISCONNECT, user_id=user)

    threads = [
        threading.Thread(target=click, args=(0, SECOND_SUPERVISOR)),
        threading.Thread(target=click, args=(1, SUPERVISOR)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    bot.slack.wait_for(
        lambda: (
            all(bot.request_for(card).state.value not in ("pending", "approving") for card in cards)
            or any("Another card" in t for t in bot.ephemeral_texts())
        )
    )
    time.sleep(0.5)
    assert len(bot.genesys.patches()) == 1


def test_nobody_may_act_when_no_supervisors_are_configured(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """With DROP_CALLER_SUPERVISORS empty, the command says how to configure it."""
    with start_bot(genesys, slack, tmp_path, env={"DROP_CALLER_SUPERVISORS": ""}) as bot:
        genesys.add_inbound_call(NUMBER)

        answer = bot.command(NUMBER)

        assert "no supervisors are configured" in answer.body
        assert "DROP_CALLER_SUPERVISORS" in answer.body
        assert genesys.requests == []


def test_command_outside_the_allowed_channels_is_refused(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """DROP_CALLER_CHANNELS restricts where the command and its buttons work."""
    with start_bot(genesys, slack, tmp_path, env={"DROP_CALLER_CHANNELS": "C0OPS"}) as bot:
        genesys.add_inbound_call(NUMBER)

        refused = bot.command(NUMBER, channel_id=CHANNEL)
        allowed = bot.command(NUMBER, channel_id="C0OPS")

        assert "can't be dropped from this channel" in refused.body
        assert "Looking for a live call" in allowed.body
        bot.wait_for_card("C0OPS")
        assert slack.messages(CHANNEL) == []


def test_database_down_gives_a_clear_answer_and_503_health(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the database unreachable the bot runs, says so to the user, and /healthz is 503.
    A look-up that finds no call is still answered; failing to record it is logged."""
    import json
    import urllib.error
    import urllib.request

    down = {"DATABASE_URL": "postgresql://drop@127.0.0.1:9/nowhere"}
    with start_bot(genesys, slack, tmp_path, env=down) as bot:
        genesys.add_inbound_call(NUMBER)

        answer = bot.command(NUMBER)

        assert answer.status == 200
        slack.wait_for(
            lambda: any("database is unavailable" in t for t in bot.ephemeral_texts()),
            timeout=10,
        )
        assert slack.messages(CHANNEL) == []
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as caught:
            opener.open(f"{bot.base_url}/healthz", timeout=10)
        assert caught.value.code == 503
        assert json.loads(caught.value.read())["store"] == "unavailable"

        with caplog.at_level(logging.ERROR, logger="bot.lookup"):
            bot.command("+15559876543")
            slack.wait_for(
                lambda: any("No active call" in t for t in bot.ephemeral_texts()), timeout=10
            )
            slack.wait_for(lambda: "Could not record the look-up" in caplog.text, timeout=10)
        assert "+1555***6543" in caplog.text
        assert "9876543" not in caplog.text


def test_status_command_summarises_health(bot: BotHarness) -> None:
    """`/drop-caller status` tells a supervisor about the database, Slack and Genesys."""
    bot.genesys.add_inbound_call(NUMBER)
    first = bot.command("status")
    assert "Checking the bot's health" in first.body
    # The start-up check of the real-time sources has already been answered.
    bot.slack.wait_for(
        lambda: any("Genesys Cloud: last answered" in t for t in bot.ephemeral_texts())
    )
    assert any(
        "Real-time lookup: on (calls in queues, callers in IVR flows)." in t
        for t in bot.ephemeral_texts()
    )
    bot.command(NUMBER)
    bot.wait_for_card()

    bot.command("status")

    summary = bot.slack.wait_for(
        lambda: next((t for t in bot.ephemeral_texts() if "last answered" in t), None)
    )
    assert "Ready." in summary
    assert "Database: ok." in summary
    assert "Requests in progress:" in summary
    assert "Only supervisors" in bot.command("status", user_id=OUTSIDER).body


@pytest.mark.parametrize(
    ("status", "error", "headers"),
    [(429, "ratelimited", {"Retry-After": "1"}), (503, "service_unavailable", {})],
    ids=["ratelimited", "5xx"],
)
def test_card_posting_is_retried_when_slack_asks(
    bot: BotHarness, status: int, error: str, headers: dict[str, str]
) -> None:
    """chat.postMessage answering 429 (with Retry-After) or 5xx is retried; the card arrives."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.slack.fail_next("chat.postMessage", error, status=status, headers=headers)

    bot.command(NUMBER)

    card = bot.wait_for_card()
    assert "+1 555-123-4567" in card_text(card)
    assert [c.error for c in bot.slack.calls_to("chat.postMessage")] == [error, None]


def test_card_posting_failing_for_good_is_said(bot: BotHarness) -> None:
    """Slack refusing the card every time: the supervisor is told; nothing can be approved."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.slack.fail_next("chat.postMessage", "service_unavailable", status=503, times=5)

    bot.command(NUMBER)

    bot.slack.wait_for(
        lambda: any("Could not post the confirmation card" in t for t in bot.ephemeral_texts())
    )
    assert bot.genesys.patches() == []


def test_a_full_work_queue_is_said_in_the_answer_itself(bot: BotHarness) -> None:
    """With the work queue full, /drop-caller is answered at once with a sentence saying so
    (not through response_url, which would hold the answer up), and nothing is looked up."""
    release = threading.Event()
    work = bot.bot.services.work
    try:
        _fill(work, release)
        bot.genesys.add_inbound_call(NUMBER)
        requests_before = len(bot.genesys.requests)

        answer = bot.command(NUMBER)
        status = bot.command("status")

        assert answer.status == 200
        assert "too many requests" in answer.body
        assert "too many requests" in status.body
        assert len(bot.genesys.requests) == requests_before
        assert bot.slack.response_posts == []
    finally:
        release.set()
    assert work.drain(10)


def test_a_click_with_the_work_queue_full_is_told_and_nothing_is_dropped(bot: BotHarness) -> None:
    """A click that finds the work queue full is answered at once; the supervisor is told
    through response_url, and the caller stays on the call."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    release = threading.Event()
    work = bot.bot.services.work
    try:
        _fill(work, release)

        click = bot.click(card, DISCONNECT)

        assert click.status == 200
        bot.slack.wait_for(
            lambda: any("too many requests" in t for t in bot.ephemeral_texts()), timeout=5
        )
        assert bot.genesys.patches() == []
    finally:
        release.set()
    assert work.drain(10)


def _fill(work: WorkQueue, release: threading.Event) -> None:
    """Queue jobs that wait for `release` until the queue refuses one."""

    def wait() -> None:
        release.wait(30)

    while work.submit(wait, on_error=lambda _: None):
        pass


def test_the_word_payload_in_a_command_does_not_break_it(bot: BotHarness) -> None:
    """Bolt reads a form body that contains the word "payload" anywhere as a click with no
    payload, and answers 404. A command typed as `/drop-caller payload`, or sent from a
    channel whose name has the word in it, is answered like any other."""
    bot.genesys.add_inbound_call(NUMBER)

    typed = bot.requester.command(
        "payload", response_url=bot.slack.new_response_url(channel=CHANNEL)
    )
    from_channel = bot.requester.command(
        NUMBER,
        channel_name="payload-desk",
        response_url=bot.slack.new_response_url(channel=CHANNEL),
    )

    assert typed.status == 200
    assert "I read `payload`" in typed.body
    assert from_channel.status == 200
    assert "Looking for a live call" in from_channel.body
    assert bot.wait_for_card()

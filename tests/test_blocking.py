"""Why a caller was dropped, written into Genesys too, and drop-and-block, through the real
request path: signed Slack requests into the real Bolt app, the real Genesys SDK against the
simulator (participant attributes, Architect data tables), a fake Slack Web API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from bot.audit import audit_records
from sandbox.genesys_simulator import TABLE_ADD_PERMISSION, FakeGenesys
from sandbox.slack_simulator import FakeSlack, Message
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
BLOCK = "drop_caller_block_0"
UNBLOCK = "drop_caller_unblock"
ATTRIBUTES = r"/participants/[^/]+/attributes$"
ROWS = r"^/api/v2/flows/datatables/[^/]+/rows"
ALL_COLUMNS = ["reason", "blockedBy", "expiresAt"]
KEYS = {"e164_no_plus": "15551234567", "e164": "+15551234567", "tel": "tel:+15551234567"}


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


def _events(bot: BotHarness, kind: str) -> list[dict[str, object]]:
    return [r for r in audit_records(bot.store) if r["event"] == kind]


def _table(genesys: FakeGenesys, columns: list[str] = ALL_COLUMNS) -> str:
    table_id = genesys.add_datatable("Blocked numbers", columns)
    genesys.flow_blocklist_table = table_id
    return table_id


@pytest.fixture
def table(genesys: FakeGenesys) -> str:
    return _table(genesys)


@pytest.fixture
def blocking_bot(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, table: str
) -> Iterator[BotHarness]:
    env = {"DROP_CALLER_BLOCKLIST_TABLE": table, "DROP_CALLER_TWO_PERSON": "true"}
    with start_bot(genesys, slack, tmp_path, env=env) as harness:
        yield harness


# ------------------------------------------------------------------ reasons and the note


def test_the_reason_is_on_the_card_in_the_audit_trail_and_in_genesys(bot: BotHarness) -> None:
    """Text after the number is the reason: shown on the card (escaped), kept in the audit
    export, and written into the interaction with who asked and approved, before the drop."""
    cid = bot.genesys.add_inbound_call(NUMBER)
    customer = bot.genesys.participant_id(cid, "customer")

    bot.command("+1 (555) 123-4567 abusive <language> & threats")

    card = bot.wait_for_card()
    assert "*Reason:* abusive &lt;language&gt; &amp; threats" in card_text(card)
    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)
    request = bot.wait_for_state(card, "done")
    assert request.outcome == "disconnected"
    [leg] = [p for p in bot.genesys.participants(cid) if p["id"] == customer]
    assert leg["attributes"] == {
        "dropCaller.requestId": request.id,
        "dropCaller.requestedBy": SUPERVISOR,
        "dropCaller.approvedBy": SECOND_SUPERVISOR,
        "dropCaller.reason": "abusive <language> & threats",
    }
    # The note went in before the disconnect, while the caller was still connected.
    note_at = bot.genesys.requests_to("PATCH", ATTRIBUTES)[0].at
    drop_at = bot.genesys.requests_to("PATCH", r"/participants/[^/]+$")[0].at
    assert note_at < drop_at
    [requested] = _events(bot, "requested")
    assert requested["reason"] == "abusive <language> & threats"
    [outcome] = _events(bot, "outcome")
    assert outcome["reason"] == "abusive <language> & threats"


@pytest.mark.parametrize("fault", ["403", "hang"])
def test_a_note_genesys_refuses_or_never_answers_does_not_stop_the_drop(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, fault: str
) -> None:
    """The note failing (a 403, or no answer) never stops the drop nor holds it up past its
    budget (0.5 s here); the card and the audit trail say it was not written."""
    with start_bot(genesys, slack, tmp_path, note_budget=0.5) as bot:
        cid = genesys.add_inbound_call(NUMBER)
        if fault == "403":
            genesys.inject("PATCH", ATTRIBUTES, status=403)
        else:
            genesys.inject("PATCH", ATTRIBUTES, status=202, delay=5.0)
        bot.command(f"{NUMBER} prank caller")
        card = bot.wait_for_card()

        clicked = time.monotonic()
        bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)
        request = bot.wait_for_state(card, "done")
        took = time.monotonic() - clicked

        assert request.outcome == "disconnected"
        assert genesys.patches()[0][0] == cid
        assert took < 1.8, f"the drop waited {took:.2f} s for the note"
        text = _final(bot, card, "Disconnected")
        assert "The note could not be written into Genesys" in text
        expected = "refused the bot access" if fault == "403" else "did not answer within 0.5 s"
        assert expected in text
        [outcome] = _events(bot, "outcome")
        assert str(outcome["detail"]).startswith("The caller was disconnected.")


def test_dry_run_writes_nothing_to_genesys(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, table: str
) -> None:
    """Dry run: no note, no disconnect, no block row."""
    env = {"DROP_CALLER_DRY_RUN": "true", "DROP_CALLER_BLOCKLIST_TABLE": table}
    with start_bot(genesys, slack, tmp_path, env=env) as bot:
        genesys.add_inbound_call(NUMBER)
        bot.command(f"{NUMBER} spam")
        card = bot.wait_for_card()

        bot.click(card, BLOCK, user_id=SECOND_SUPERVISOR)

        assert bot.wait_for_state(card, "done").outcome == "dry_run"
        assert genesys.requests_to("PATCH", ".") == []
        assert genesys.requests_to("POST", ROWS) == []
        assert genesys.rows(table) == {}
        assert "The number would also have been blocked." in _final(bot, card, "Dry run")


def test_a_reason_can_be_required(genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path) -> None:
    """With DROP_CALLER_REQUIRE_REASON, a command without one is refused privately, with an
    example; Genesys hears nothing."""
    with start_bot(genesys, slack, tmp_path, env={"DROP_CALLER_REQUIRE_REASON": "true"}) as bot:
        answer = bot.command("+1 555 123 4567")

        assert "Say why, after the target" in answer.body
        assert "abusive language" in answer.body
        assert genesys.requests == []
        assert "Looking" in bot.command("+1 555 123 4567 threats").body


# ------------------------------------------------------------------ drop and block


@pytest.mark.parametrize("key_format", sorted(KEYS))
@pytest.mark.parametrize("columns", [ALL_COLUMNS, []], ids=["all-columns", "key-only"])
def test_disconnect_and_block_writes_the_row_the_flow_checks(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, key_format: str, columns: list[str]
) -> None:
    """Approval drops the caller, then adds the row with the key in the configured form and
    the optional columns the table has; the simulated flow then refuses the number."""
    table = _table(genesys, columns)
    env = {
        "DROP_CALLER_BLOCKLIST_TABLE": table,
        "DROP_CALLER_BLOCKLIST_KEY_FORMAT": key_format,
        "DROP_CALLER_BLOCK_DAYS": "0.5",
    }
    with start_bot(genesys, slack, tmp_path, env=env) as bot:
        cid = genesys.add_inbound_call(NUMBER)
        bot.command(f"{NUMBER} keeps calling back")
        card = bot.wait_for_card()
        button = card.button(BLOCK)
        assert "for 0.5 days" in button["confirm"]["text"]["text"]

        bot.click(card, BLOCK, user_id=SECOND_SUPERVISOR)

        request = bot.wait_for_state(card, "done")
        assert request.outcome == "disconnected"
        assert [c for c, _, _ in genesys.patches()] == [cid]
        rows = genesys.rows(table)
        key = KEYS[key_format]
        assert list(rows) == [key]
        if columns:
            assert rows[key]["reason"] == "keeps calling back"
            assert rows[key]["blockedBy"] == SECOND_SUPERVISOR
            assert str(rows[key]["expiresAt"]).endswith("Z")
        else:
            assert rows[key] == {"key": key}
        assert "Blocked for 0.5 days" in _final(bot, card, "Disconnected")
        [blocked] = _events(bot, "blocked")
        assert blocked["request_id"] == request.id
        # The inbound flow now refuses the number.
        refused = genesys.add_inbound_call(NUMBER)
        assert all(p["state"] != "connected" for p in genesys.participants(refused))


def test_an_already_blocked_number_is_updated_not_added_twice(
    blocking_bot: BotHarness, table: str
) -> None:
    """A row that exists already (blocked by hand) is read first, then replaced with PUT."""
    bot = blocking_bot
    bot.genesys.add_inbound_call(NUMBER)  # before the row: the flow would refuse it after
    bot.genesys.put_row(table, {"key": "15551234567", "reason": "by hand"})
    bot.command(f"{NUMBER} again")
    card = bot.wait_for_card()

    bot.click(card, BLOCK, user_id=SECOND_SUPERVISOR)

    bot.wait_for_state(card, "done")
    assert bot.genesys.requests_to("POST", ROWS) == []
    assert len(bot.genesys.requests_to("PUT", ROWS)) == 1
    assert bot.genesys.rows(table)["15551234567"]["reason"] == "again"


def test_a_block_that_fails_never_undoes_the_drop(blocking_bot: BotHarness, table: str) -> None:
    """Without the Add permission the caller is still dropped; the card says not blocked and
    which permission to grant; the audit trail records block_failed."""
    bot = blocking_bot
    bot.genesys.deny_permission(TABLE_ADD_PERMISSION)
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()

    bot.click(card, BLOCK, user_id=SECOND_SUPERVISOR)

    assert bot.wait_for_state(card, "done").outcome == "disconnected"
    text = _final(bot, card, "Not blocked")
    assert "Architect &gt; Datatable Row &gt; Add" in text
    assert bot.genesys.rows(table) == {}
    [failed] = _events(bot, "block_failed")
    assert failed["context_id"]


def test_a_protected_number_is_never_blocked(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, table: str
) -> None:
    """A call that includes a protected number gets no card at all, so no block either; and
    an approval that finds one on the call at the click blocks nothing."""
    env = {"DROP_CALLER_BLOCKLIST_TABLE": table, "DROP_CALLER_PROTECTED_NUMBERS": "+15550009999"}
    with start_bot(genesys, slack, tmp_path, env=env) as bot:
        cid = genesys.add_inbound_call(NUMBER)
        bot.command(NUMBER)
        card = bot.wait_for_card()
        genesys.add_external_party(cid, "+15550009999")

        bot.click(card, BLOCK, user_id=SECOND_SUPERVISOR)

        assert bot.wait_for_state(card, "failed").outcome == "refused"
        assert genesys.rows(table) == {}
        assert genesys.patches() == []


def test_a_block_expires_once_with_two_instances(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, table: str
) -> None:
    """Two instances on one database sweep often: the expired block's row is deleted once,
    and block_expired is recorded once."""
    env = {
        "DROP_CALLER_BLOCKLIST_TABLE": table,
        "DROP_CALLER_BLOCK_DAYS": "0.00001",  # under a second
        "DROP_CALLER_SWEEP_INTERVAL": "0.1",
    }
    with ExitStack() as stack:
        first = stack.enter_context(start_bot(genesys, slack, tmp_path, env=env))
        stack.enter_context(start_bot(genesys, slack, tmp_path, env=env))
        genesys.add_inbound_call(NUMBER)
        first.command(NUMBER)
        card = first.wait_for_card()
        first.click(card, BLOCK, user_id=SECOND_SUPERVISOR)
        first.wait_for_state(card, "done")

        slack.wait_for(lambda: _events(first, "block_expired"), timeout=10)
        time.sleep(0.5)  # several more sweeps of both

        assert genesys.rows(table) == {}
        assert len(genesys.requests_to("DELETE", ROWS)) == 1
        assert len(_events(first, "block_expired")) == 1


def test_a_row_removed_by_hand_is_not_fought_over(blocking_bot: BotHarness, table: str) -> None:
    """Unblocking a number someone already removed by hand in Genesys records what it found
    and deletes nothing."""
    bot = blocking_bot
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.click(card, BLOCK, user_id=SECOND_SUPERVISOR)
    bot.wait_for_state(card, "done")
    bot.genesys.delete_row_by_hand(table, "15551234567")

    bot.command(f"unblock {NUMBER}")
    unblock = bot.slack.wait_for(
        lambda: next((m for m in bot.slack.messages(CHANNEL) if m.text.startswith("Unblock")), None)
    )
    bot.click(unblock, UNBLOCK, user_id=SECOND_SUPERVISOR)

    assert "was not on the block list" in _final(bot, unblock, "Nothing to unblock")
    assert bot.genesys.requests_to("DELETE", ROWS) == []
    assert len(_events(bot, "unblocked")) == 1
    found = [e for e in bot.store.events_between() if e.kind == "unblocked"]
    assert "no row" in found[0].detail


def test_unblock_is_approved_like_a_drop(blocking_bot: BotHarness, table: str) -> None:
    """`/drop-caller unblock <number>` posts a card; the requester (two-person rule) and
    someone who is not a supervisor are refused; another supervisor's approval deletes the
    row and the bot's block ends."""
    bot = blocking_bot
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(f"{NUMBER} threats")
    card = bot.wait_for_card()
    bot.click(card, BLOCK, user_id=SECOND_SUPERVISOR)
    bot.wait_for_state(card, "done")

    answer = bot.command(f"unblock {NUMBER} calmed down")
    assert "Asking to unblock +1 555-123-4567" in answer.body
    unblock = bot.slack.wait_for(
        lambda: next((m for m in bot.slack.messages(CHANNEL) if m.text.startswith("Unblock")), None)
    )
    assert "*Reason:* calmed down" in card_text(unblock)

    bot.click(unblock, UNBLOCK, user_id=OUTSIDER)
    _told(bot, "Only supervisors")
    bot.click(unblock, UNBLOCK, user_id=SUPERVISOR)
    _told(bot, "Two-person rule")
    assert bot.genesys.rows(table) != {}

    bot.click(unblock, UNBLOCK, user_id=SECOND_SUPERVISOR)

    assert bot.wait_for_state(unblock, "done").outcome == "unblocked"
    assert bot.genesys.rows(table) == {}
    assert "Unblocked, approved by" in _final(bot, unblock, "Unblocked")
    assert len(_events(bot, "unblocked")) == 1
    bot.command("blocked")
    assert "No number is blocked" in _told(bot, "No number is blocked")


def test_the_blocked_listing_shows_number_reason_who_and_until(
    blocking_bot: BotHarness,
) -> None:
    """`/drop-caller blocked` lists the active blocks, privately."""
    bot = blocking_bot
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(f"{NUMBER} <b>rude</b>")
    card = bot.wait_for_card()
    bot.click(card, BLOCK, user_id=SECOND_SUPERVISOR)
    bot.wait_for_state(card, "done")

    answer = bot.command("blocked")

    assert "Reading the block list" in answer.body
    listing = _told(bot, "Blocked numbers")
    assert "+1 555-123-4567" in listing
    assert "&lt;b&gt;rude&lt;/b&gt;" in listing
    assert f"<@{SECOND_SUPERVISOR}>" in listing
    assert "UTC" in listing


def test_a_missing_table_turns_blocking_off_and_says_why(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A table Genesys does not have: a start-up error naming the problem and the permission,
    no Disconnect and block button, dropping still works, status says blocking is off."""
    missing = "0b0b0b0b-1111-4222-8333-444455556666"
    caplog.set_level(logging.ERROR)
    with start_bot(genesys, slack, tmp_path, env={"DROP_CALLER_BLOCKLIST_TABLE": missing}) as bot:
        assert "Blocking is off" in caplog.text
        assert missing in caplog.text
        assert "Architect &gt; Datatable Row" not in caplog.text
        assert "Architect > Datatable Row" in caplog.text
        genesys.add_inbound_call(NUMBER)
        bot.command(NUMBER)
        card = bot.wait_for_card()
        assert BLOCK not in [
            e.get("action_id") for b in card.blocks if b["type"] == "actions" for e in b["elements"]
        ]
        bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)
        assert bot.wait_for_state(card, "done").outcome == "disconnected"
        bot.command("status")
        assert "Block list: off" in _told(bot, "Block list")

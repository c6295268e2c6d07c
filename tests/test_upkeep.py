"""What the bot does after the fact, through the real request path: catching up on card
updates and audit lines (bounded, oldest first, rate limits respected), which response_url
may update a card, the lease on a drop in progress, and the requester's private notices."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.drops import CATCH_UP_ATTEMPTS, lease_for
from genesys.config import GenesysConfig
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
CANCEL = "drop_caller_cancel"
AUDIT_CHANNEL = "C0AUDIT"
# Requests expire after a second; the sweeper looks every 0.2 s and catches up on what is
# still behind 0.2 s after the end (then 0.4 s, 0.8 s, … after each failure).
FAST = {"DROP_CALLER_SWEEP_INTERVAL": "0.2", "DROP_CALLER_REQUEST_TTL": "1"}
CATCH_UP = timedelta(seconds=0.2)


@pytest.fixture
def bot(genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path) -> Iterator[BotHarness]:
    """The bot with fast expiry and catch-up, and an audit channel."""
    env = FAST | {"DROP_CALLER_AUDIT_CHANNEL": AUDIT_CHANNEL}
    with start_bot(genesys, slack, tmp_path, env=env, catch_up_after=CATCH_UP) as harness:
        yield harness


@pytest.fixture
def patient(genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path) -> Iterator[BotHarness]:
    """The bot with requests that live long enough for a person to click."""
    with start_bot(genesys, slack, tmp_path) as harness:
        yield harness


def _card(bot: BotHarness, number: str = NUMBER) -> Message:
    before = len(bot.slack.messages(CHANNEL))
    bot.command(number)
    card = bot.slack.wait_for(
        lambda: len(bot.slack.messages(CHANNEL)) > before and bot.slack.messages(CHANNEL)[-1]
    )
    # The click path is not under test here; the ts is recorded just after the post.
    bot.slack.wait_for(lambda: bot.request_for(card).message_ts)
    return card


def _kinds(bot: BotHarness, request_id: str) -> list[str]:
    return [event["kind"] for event in bot.store.events(request_id)]


def _updates_of(slack: FakeSlack, ts: str) -> list[str | None]:
    return [call.error for call in slack.calls_to("chat.update") if call.args.get("ts") == ts]


def _gave_up_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "Gave up updating request" in r.getMessage()]


# ------------------------------------------------------------------------------ catching up


def test_an_error_that_cannot_heal_ends_catching_up_at_once(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """The card was deleted: its expiry cannot be shown. One more try (the first catch-up),
    then `announce_abandoned` with Slack's error, one warning, and no more chat.update."""
    caplog.set_level(logging.INFO)
    bot.genesys.add_inbound_call(NUMBER)
    card = _card(bot)
    request_id = bot.request_for(card).id
    bot.slack.delete_message(CHANNEL, card.ts)

    bot.slack.wait_for(lambda: "announce_abandoned" in _kinds(bot, request_id), timeout=10)
    time.sleep(1.0)  # several more sweeps

    assert _updates_of(bot.slack, card.ts) == ["message_not_found"] * 2  # expiry, one catch-up
    event = bot.store.events(request_id)[-1]
    assert event["kind"] == "announce_abandoned"
    assert event["detail"]["card"] == "message_not_found"
    assert event["detail"]["why"] == "an error that cannot heal"
    # The audit line still went out: only the card was lost.
    assert len(bot.slack.messages(AUDIT_CHANNEL)) == 1
    lines = _gave_up_lines(caplog)
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING
    assert "message_not_found" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a Slack answer"


def test_a_failure_that_may_heal_is_retried_with_back_off_then_given_up(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """chat.update keeps failing with a transient error: the sweeper tries CATCH_UP_ATTEMPTS
    times, each wait twice the last, then gives up with one warning and an audit event."""
    caplog.set_level(logging.INFO)
    bot.genesys.add_inbound_call(NUMBER)
    card = _card(bot)
    request_id = bot.request_for(card).id
    bot.slack.fail_next("chat.update", "internal_error", times=1000)
    started = time.monotonic()

    bot.slack.wait_for(lambda: "announce_abandoned" in _kinds(bot, request_id), timeout=30)
    took = time.monotonic() - started
    time.sleep(1.0)

    tries = _updates_of(bot.slack, card.ts)
    assert tries == ["internal_error"] * (1 + CATCH_UP_ATTEMPTS)  # the expiry, then catch-up
    times = [c.at for c in bot.slack.calls_to("chat.update") if c.args.get("ts") == card.ts]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[1:])]
    # Each wait twice the last: 0.2, 0.4, 0.8, 1.6 and 3.2 s (sweeps may add up to 0.2 s).
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= 0.2 * 2 ** (attempt - 1) - 0.05, gaps
    assert took >= 0.2 * (2 ** (CATCH_UP_ATTEMPTS - 1) - 1)
    detail = bot.store.events(request_id)[-1]["detail"]
    assert detail == {
        "card": "internal_error",
        "attempts": CATCH_UP_ATTEMPTS,
        "why": f"{CATCH_UP_ATTEMPTS} attempts",
    }
    assert len(_gave_up_lines(caplog)) == 1
    assert not [r for r in caplog.records if r.exc_info]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_rate_limit_postpones_catching_up_and_ends_the_sweep(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """Slack answers 429 with Retry-After: 30 to the oldest card's update: the bot waits at
    least that long before trying it again, and tries no other card in that sweep. (The
    test runs the sweeps itself, so that their order is known.)"""
    env = FAST | {"DROP_CALLER_SWEEP_INTERVAL": "3600"}
    with start_bot(genesys, slack, tmp_path, env=env, catch_up_after=CATCH_UP) as bot:
        genesys.add_inbound_call(NUMBER)
        genesys.add_inbound_call("+15559876543")
        first = _card(bot)
        second = _card(bot, "+15559876543")
        time.sleep(1.5)  # both expired, and due a catch-up should their expiry not show
        slack.fail_next("chat.update", "internal_error", times=2)  # both expiries
        slack.fail_next("chat.update", "ratelimited", status=429, headers={"Retry-After": "30"})

        bot.bot.sweeper.sweep_once()

        older, newer = bot.request_for(first), bot.request_for(second)
        assert older.created_at < newer.created_at
        assert _updates_of(slack, first.ts) == ["internal_error", "ratelimited"]
        assert _updates_of(slack, second.ts) == ["internal_error"]  # not tried after the 429
        assert (older.announce_attempts, newer.announce_attempts) == (1, 0)

        time.sleep(0.3)
        bot.bot.sweeper.sweep_once()

        assert _updates_of(slack, first.ts) == ["internal_error", "ratelimited"]  # waits 30 s
        assert _updates_of(slack, second.ts) == ["internal_error", None]
        assert "Expired" in card_text(slack.message(CHANNEL, second.ts))
        assert "Expired" not in card_text(slack.message(CHANNEL, first.ts))


# ------------------------------------------------------------------- which response_url


def test_a_posted_card_is_never_updated_through_the_commands_response_url(
    bot: BotHarness,
) -> None:
    """chat.update fails for a card the bot posted: the sweeper tries chat.update again and
    never posts to the command's response_url (whose message is the private reply)."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.slack.fail_next("chat.update", "internal_error", times=2)
    card = _card(bot)
    command_url = bot.request_for(card).response_url

    bot.slack.wait_for(lambda: "Expired" in card_text(bot.slack.message(CHANNEL, card.ts)))

    assert _updates_of(bot.slack, card.ts) == ["internal_error", "internal_error", None]
    assert [
        p
        for p in bot.slack.response_posts
        if p.url == command_url and p.body.get("replace_original")
    ] == []


def test_a_card_posted_through_the_response_url_is_updated_through_it(
    bot: BotHarness,
) -> None:
    """The bot is not in the channel, so the card went out through the command's
    response_url: its expiry is shown through that URL, and chat.update is never tried."""
    bot.genesys.add_inbound_call(NUMBER)
    bot.slack.not_in_channel.add(CHANNEL)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.slack.wait_for(lambda: bot.request_for(card).card_via == "response_url")
    request = bot.request_for(card)

    bot.slack.wait_for(lambda: "Expired" in card_text(bot.slack.message(CHANNEL, card.ts)))

    assert bot.slack.calls_to("chat.update") == []
    replaced = [p for p in bot.slack.response_posts if p.body.get("replace_original")]
    assert [(p.url, p.status) for p in replaced] == [(request.response_url, 200)]


# --------------------------------------------------------------------------------- leases


def test_the_lease_is_derived_from_the_bots_own_time_bounds() -> None:
    """Production's bounds: a 3 s connect, 10 s read, 8 s retry budget, 5 s confirming wait;
    the longest step is the retry budget then one last request (21 s), plus 4 s."""
    config = GenesysConfig(api_host="api.example", client_id="id", client_secret="secret")
    assert lease_for(config) == timedelta(seconds=25)
    slower = GenesysConfig(
        api_host="api.example", client_id="id", client_secret="secret", read_timeout=30.0
    )
    assert lease_for(slower) == timedelta(seconds=45)


def test_a_slow_but_live_instance_is_never_overtaken(
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A drop that takes three times its 1 s lease, with the sweeper looking every 0.2 s:
    the lease is renewed while it runs, so nothing recovers it, and its own outcome stands."""
    caplog.set_level(logging.INFO)
    with start_bot(
        genesys,
        slack,
        tmp_path,
        env=FAST | {"DROP_CALLER_REQUEST_TTL": "60"},
        lease=timedelta(seconds=1),
    ) as bot:
        genesys.add_inbound_call(NUMBER)
        card = _card(bot)
        genesys.latency = 1.0  # the re-read, the PATCH and the confirming read: ~3 s
        started = time.monotonic()

        bot.click(card, DISCONNECT)
        request = bot.wait_for_state(card, "done", timeout=20)

        assert time.monotonic() - started > 3 * 1.0
        assert request.outcome == "disconnected"
        assert _kinds(bot, request.id) == ["requested", "approved", "outcome"]
        assert "late" not in bot.store.events(request.id)[-1]["detail"]
        assert not [r for r in caplog.records if "Recovered interrupted" in r.getMessage()]
        # The card follows the record.
        bot.slack.wait_for(lambda: "Disconnected" in card_text(bot.slack.message(CHANNEL, card.ts)))


# ------------------------------------------------------------------------ the requester


def _notices(slack: FakeSlack, user: str) -> list[str]:
    return [e.text for e in slack.ephemerals if e.user == user]


def test_the_requester_is_told_when_someone_else_approves(patient: BotHarness) -> None:
    """Approved by another supervisor: the requester gets a private word with the outcome;
    the approver, who saw it happen, gets none."""
    bot = patient
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER, user_id=SUPERVISOR)
    card = bot.wait_for_card()
    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)
    request = bot.wait_for_state(card, "done")

    [notice] = bot.slack.wait_for(lambda: _notices(bot.slack, SUPERVISOR))
    assert f"<@{SECOND_SUPERVISOR}> approved your request" in notice
    assert "*disconnected*" in notice
    assert request.id in notice
    assert _notices(bot.slack, SECOND_SUPERVISOR) == []


def test_the_requester_is_told_when_someone_else_cancels(patient: BotHarness) -> None:
    """Cancelled by another supervisor: the requester is told who did it."""
    bot = patient
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER, user_id=SUPERVISOR)
    card = bot.wait_for_card()
    bot.click(card, CANCEL, user_id=SECOND_SUPERVISOR)
    bot.wait_for_state(card, "cancelled")

    [notice] = bot.slack.wait_for(lambda: _notices(bot.slack, SUPERVISOR))
    assert f"<@{SECOND_SUPERVISOR}> cancelled your request" in notice


def test_the_requester_is_not_told_what_they_did_themselves_but_is_told_of_expiry(
    bot: BotHarness,
) -> None:
    """Their own cancel: no notice. Their request expiring: one notice, once."""
    bot.genesys.add_inbound_call(NUMBER)
    cancelled = _card(bot)
    bot.click(cancelled, CANCEL, user_id=SUPERVISOR)
    assert bot.wait_for_state(cancelled, "cancelled").decided_by == SUPERVISOR
    expiring = _card(bot)

    bot.wait_for_state(expiring, "expired", timeout=5)
    [notice] = bot.slack.wait_for(lambda: _notices(bot.slack, SUPERVISOR))
    time.sleep(0.6)

    assert "Nobody approved your request" in notice
    assert bot.request_for(expiring).id in notice
    assert len(_notices(bot.slack, SUPERVISOR)) == 1

"""Approval policy, audit channel, expiry sweeper and crash recovery, end to end over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.audit import audit_records
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack
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


@pytest.fixture
def policy_bot(
    request: pytest.FixtureRequest, genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> Iterator[BotHarness]:
    """The bot with the environment given by `@pytest.mark.parametrize("policy_bot", [env])`."""
    env: dict[str, str] = getattr(request, "param", {})
    with start_bot(genesys, slack, tmp_path, env=env) as bot:
        yield bot


def _final_card_text(bot: BotHarness, ts: str, contains: str) -> str:
    return card_text(
        bot.slack.wait_for(
            lambda: (
                contains in card_text(bot.slack.message(CHANNEL, ts))
                and bot.slack.message(CHANNEL, ts)
            )
        )
    )


# ------------------------------------------------------------------------ two-person rule


@pytest.mark.parametrize("policy_bot", [{"DROP_CALLER_TWO_PERSON": "true"}], indirect=True)
def test_two_person_rule_refuses_self_approval(policy_bot: BotHarness) -> None:
    """The requester cannot approve their own request; the card says it awaits a second one."""
    bot = policy_bot
    cid = bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER, user_id=SUPERVISOR)
    card = bot.wait_for_card()
    assert "Awaits a second supervisor" in card_text(card)

    bot.click(card, DISCONNECT, user_id=SUPERVISOR)

    bot.slack.wait_for(lambda: any("Two-person rule" in t for t in bot.ephemeral_texts()))
    assert bot.request_for(card).state.value == "pending"
    assert bot.genesys.patches() == []

    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)

    assert bot.wait_for_state(card, "done").decided_by == SECOND_SUPERVISOR
    assert [c for c, _, _ in bot.genesys.patches()] == [cid]


@pytest.mark.parametrize("policy_bot", [{"DROP_CALLER_TWO_PERSON": "true"}], indirect=True)
def test_two_person_rule_still_lets_the_requester_cancel(policy_bot: BotHarness) -> None:
    """Under the two-person rule the requester may still cancel their own request."""
    bot = policy_bot
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER, user_id=SUPERVISOR)
    card = bot.wait_for_card()

    bot.click(card, CANCEL, user_id=SUPERVISOR)

    assert bot.wait_for_state(card, "cancelled").decided_by == SUPERVISOR


# ------------------------------------------------------------------- supervisors by group


def test_supervisor_groups_are_read_from_slack(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """A member of a user group in DROP_CALLER_SUPERVISORS may act; a non-member may not."""
    slack.usergroups["S0SUPERS"] = ["UGROUPIE"]
    env = {"DROP_CALLER_SUPERVISORS": f"{SUPERVISOR},S0SUPERS"}
    with start_bot(genesys, slack, tmp_path, env=env) as bot:
        genesys.add_inbound_call(NUMBER)

        member = bot.command(NUMBER, user_id="UGROUPIE")
        outsider = bot.command(NUMBER, user_id="UOUTSIDE")

        assert "Looking for a live call" in member.body
        assert "Only supervisors" in outsider.body
        assert slack.calls_to("usergroups.users.list")[0].args["usergroup"] == "S0SUPERS"
        card = bot.wait_for_card()
        bot.click(card, DISCONNECT, user_id="UGROUPIE")
        bot.wait_for_state(card, "done")


def test_groups_on_a_plan_without_them_are_reported_and_ids_still_work(
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """plan_upgrade_required is said clearly at start; the user IDs keep working."""
    caplog.set_level(logging.ERROR)
    slack.fail_next("usergroups.users.list", "plan_upgrade_required")
    env = {"DROP_CALLER_SUPERVISORS": f"{SUPERVISOR},S0SUPERS"}
    with start_bot(genesys, slack, tmp_path, env=env) as bot:
        genesys.add_inbound_call(NUMBER)

        assert "plan_upgrade_required" in caplog.text
        assert "only the user IDs" in caplog.text
        assert "Looking for a live call" in bot.command(NUMBER, user_id=SUPERVISOR).body
        assert "Only supervisors" in bot.command(NUMBER, user_id="UGROUPIE").body


# ---------------------------------------------------------------------- protected numbers


@pytest.mark.parametrize(
    "policy_bot",
    [{"DROP_CALLER_PROTECTED_NUMBERS": "(555) 123-4567, +44 20 7946 0000"}],
    indirect=True,
)
@pytest.mark.parametrize("typed", ["+1 555 123 4567", "15551234567", "+442079460000"])
def test_protected_numbers_are_never_dropped(policy_bot: BotHarness, typed: str) -> None:
    """A number on the protected list, in any format, is refused with the reason."""
    bot = policy_bot
    bot.genesys.add_inbound_call(NUMBER)

    answer = bot.command(typed)

    assert "is a protected number" in answer.body
    assert "DROP_CALLER_PROTECTED_NUMBERS" in answer.body
    assert bot.genesys.requests == []


@pytest.mark.parametrize(
    ("region", "typed"), [("US", "911"), ("US", "112"), ("GB", "999"), ("GB", "112")]
)
def test_emergency_numbers_are_protected_by_default(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, region: str, typed: str
) -> None:
    """The default region's emergency numbers are refused without any configuration."""
    with start_bot(genesys, slack, tmp_path, env={"DROP_CALLER_DEFAULT_REGION": region}) as bot:
        answer = bot.command(typed)

        assert "is an emergency number" in answer.body
        assert genesys.requests == []


def test_protected_numbers_are_checked_again_at_the_click(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """A card posted before the number was protected cannot drop it after a restart."""
    genesys.add_inbound_call(NUMBER)
    with start_bot(genesys, slack, tmp_path) as bot:
        bot.command(NUMBER)
        card = bot.wait_for_card()
    with start_bot(
        genesys, slack, tmp_path, env={"DROP_CALLER_PROTECTED_NUMBERS": NUMBER}
    ) as restarted:
        restarted.click(card, DISCONNECT)

        slack.wait_for(
            lambda: any("is a protected number" in t for t in restarted.ephemeral_texts())
        )
        assert genesys.patches() == []


# ------------------------------------------------------------------------------- dry run


@pytest.mark.parametrize("policy_bot", [{"DROP_CALLER_DRY_RUN": "true"}], indirect=True)
def test_dry_run_does_everything_but_the_disconnect(policy_bot: BotHarness) -> None:
    """In a dry run the card says so, the call is re-read, and no PATCH is ever sent."""
    bot = policy_bot
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    assert "Dry run" in card_text(card)

    bot.click(card, DISCONNECT)

    request = bot.wait_for_state(card, "done")
    assert request.outcome == "dry_run"
    assert request.dry_run is True
    assert "Dry run: would disconnect +1 555-123-4567" in _final_card_text(
        bot, card.ts, "would disconnect"
    )
    assert bot.genesys.patches() == []
    assert len(bot.genesys.requests_to("GET", r"/conversations/calls/")) >= 2
    outcome = bot.store.events(request.id)[-1]
    assert outcome["detail"]["outcome"] == "dry_run"

    # A look-up that finds nothing in a dry run is recorded as part of the dry run too.
    bot.command("+15559990000")
    looked_up = bot.slack.wait_for(
        lambda: next((r for r in audit_records(bot.store) if r["event"] == "looked_up"), None)
    )
    assert (looked_up["outcome"], looked_up["dry_run"]) == ("no_live_call", True)


# -------------------------------------------------------------------- expiry and recovery


@pytest.mark.parametrize(
    "policy_bot",
    [
        {
            "DROP_CALLER_REQUEST_TTL": "1",
            "DROP_CALLER_SWEEP_INTERVAL": "0.2",
            "DROP_CALLER_AUDIT_CHANNEL": AUDIT_CHANNEL,
        }
    ],
    indirect=True,
)
def test_expired_cards_are_closed_without_a_click(policy_bot: BotHarness) -> None:
    """When the TTL passes, the bot itself updates the card to 'expired' and audits it."""
    bot = policy_bot
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()

    text = _final_card_text(bot, card.ts, "Expired")

    assert "nothing was disconnected" in text
    assert not any(b["type"] == "actions" for b in bot.slack.message(CHANNEL, card.ts).blocks)
    assert bot.request_for(card).state.value == "expired"
    line = bot.slack.wait_for(lambda: next(iter(bot.slack.messages(AUDIT_CHANNEL)), None))
    assert "expired" in line.text
    assert len([c for c in bot.slack.calls_to("chat.update") if c.args["ts"] == card.ts]) == 1


def test_an_interrupted_drop_is_recovered_from_the_call_as_it_is(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """A request left 'approving' by a crash is finished by the sweeper and its card updated."""
    still_there = genesys.add_inbound_call(NUMBER)
    gone = genesys.add_inbound_call("+15559876543")
    env = {"DROP_CALLER_SWEEP_INTERVAL": "0.2", "DROP_CALLER_AUDIT_CHANNEL": AUDIT_CHANNEL}
    with start_bot(genesys, slack, tmp_path, env=env, lease=timedelta(0)) as bot:
        bot.command(NUMBER)
        first = bot.wait_for_card()
        bot.command("+15559876543")
        second = bot.slack.wait_for(
            lambda: len(slack.messages(CHANNEL)) == 2 and slack.messages(CHANNEL)[1]
        )
        # The crash: both were claimed (as a click does) but the process died before the
        # disconnect was sent; then the second caller hung up.
        bot.store.claim(bot.request_for(first).id, SUPERVISOR, 0)
        bot.store.claim(bot.request_for(second).id, SUPERVISOR, 0)
        genesys.hang_up(gone)

        interrupted = bot.wait_for_state(first, "failed")
        recovered = bot.wait_for_state(second, "done")

        assert interrupted.outcome == "interrupted"
        assert recovered.outcome == "recovered_gone"
        assert genesys.patches() == []
        assert "still on the call" in _final_card_text(bot, first.ts, "interrupted")
        assert "no longer on the call" in _final_card_text(bot, second.ts, "interrupted")
        slack.wait_for(lambda: len(slack.messages(AUDIT_CHANNEL)) == 2)
        assert genesys.participants(still_there)[0]["state"] == "connected"


# ------------------------------------------------------------------------- audit channel


@pytest.mark.parametrize(
    "policy_bot", [{"DROP_CALLER_AUDIT_CHANNEL": AUDIT_CHANNEL}], indirect=True
)
def test_every_outcome_is_posted_to_the_audit_channel(policy_bot: BotHarness) -> None:
    """A disconnect and a cancel each post one line naming who, what and the outcome."""
    bot = policy_bot
    cid = bot.genesys.add_inbound_call(NUMBER)
    bot.genesys.add_inbound_call("+15559876543")
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)
    bot.wait_for_state(card, "done")
    bot.command("+15559876543")
    other = bot.slack.wait_for(
        lambda: len(bot.slack.messages(CHANNEL)) == 2 and bot.slack.messages(CHANNEL)[1]
    )
    bot.click(other, CANCEL)
    bot.wait_for_state(other, "cancelled")

    lines = bot.slack.wait_for(
        lambda: len(bot.slack.messages(AUDIT_CHANNEL)) == 2 and bot.slack.messages(AUDIT_CHANNEL)
    )

    dropped, cancelled = (line.text for line in lines)
    assert "+1 555-123-4567" in dropped
    assert cid in dropped
    assert "*disconnected*" in dropped
    assert f"by <@{SECOND_SUPERVISOR}>" in dropped
    assert f"Asked by <@{SUPERVISOR}>" in dropped
    assert "*cancelled*" in cancelled


@pytest.mark.parametrize(
    "policy_bot", [{"DROP_CALLER_AUDIT_CHANNEL": AUDIT_CHANNEL}], indirect=True
)
def test_a_failing_audit_channel_loses_no_record(policy_bot: BotHarness) -> None:
    """chat.postMessage failing for the audit channel leaves the drop and its record intact."""
    bot = policy_bot
    bot.genesys.add_inbound_call(NUMBER)
    bot.command(NUMBER)
    card = bot.wait_for_card()
    bot.slack.not_in_channel.add(AUDIT_CHANNEL)

    bot.click(card, DISCONNECT)

    request = bot.wait_for_state(card, "done")
    assert request.outcome == "disconnected"
    assert [e["kind"] for e in bot.store.events(request.id)] == ["requested", "approved", "outcome"]
    assert "Disconnected" in _final_card_text(bot, card.ts, "Disconnected")
    assert not any(b["type"] == "actions" for b in bot.slack.message(CHANNEL, card.ts).blocks)
    assert bot.slack.messages(AUDIT_CHANNEL) == []


def test_lost_card_updates_and_audit_lines_are_caught_up(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """Slack failing right after a drop: the sweeper later updates the card and posts the line."""
    env = {"DROP_CALLER_SWEEP_INTERVAL": "0.2", "DROP_CALLER_AUDIT_CHANNEL": AUDIT_CHANNEL}
    with start_bot(genesys, slack, tmp_path, env=env, catch_up_after=timedelta(seconds=1)) as bot:
        genesys.add_inbound_call(NUMBER)
        bot.command(NUMBER)
        card = bot.wait_for_card()
        # Slack is down for the progress card, the outcome card, and the audit line.
        slack.fail_next("chat.update", "service_unavailable", times=2, status=503)
        slack.fail_next("chat.postMessage", "service_unavailable", times=1, status=503)
        slack.response_url_status = 503

        bot.click(card, DISCONNECT)

        request = bot.wait_for_state(card, "done")
        assert request.outcome == "disconnected"
        slack.response_url_status = 200
        assert "Disconnected" in _final_card_text(bot, card.ts, "Disconnected")
        line = slack.wait_for(lambda: next(iter(slack.messages(AUDIT_CHANNEL)), None))
        assert "*disconnected*" in line.text
        # Exactly one line, even though several sweeps ran since.
        slack.wait_for(lambda: bot.request_for(card).audit_posted)
        assert len(slack.messages(AUDIT_CHANNEL)) == 1


def test_database_lost_after_the_disconnect_is_shown_then_recovered(
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp_path: Path,
    postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The outcome cannot be written: the card still says what happened and that it was not
    recorded, the log says so at ERROR, and once the database is back the sweeper records it."""
    import psycopg

    from tests.postgres import ADMIN_URL

    name = postgres_url.rsplit("/", 1)[1]

    def allow_connections(allowed: bool) -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
            if not allowed:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )

    caplog.set_level(logging.ERROR)
    env = {"DATABASE_URL": postgres_url, "DROP_CALLER_SWEEP_INTERVAL": "0.2"}
    with start_bot(genesys, slack, tmp_path, env=env, lease=timedelta(seconds=1)) as bot:
        genesys.add_inbound_call(NUMBER)
        bot.command(NUMBER)
        card = bot.wait_for_card()
        request_id = bot.request_for(card).id
        genesys.disconnect_delay = 0.5  # time to take the database away mid-drop
        try:
            bot.click(card, DISCONNECT)
            slack.wait_for(lambda: genesys.patches())
            allow_connections(False)

            text = _final_card_text(bot, card.ts, "could not record")
            assert "Disconnected" in text
            assert "Could not record the outcome" in caplog.text
        finally:
            allow_connections(True)

        recovered = slack.wait_for(
            lambda: (r := bot.store.get(request_id)) is not None and r.state.value == "done" and r,
            timeout=15,
        )
        assert recovered.outcome == "recovered_gone"
        assert [e["kind"] for e in bot.store.events(request_id)] == [
            "requested",
            "approved",
            "outcome",
        ]
        assert len(genesys.patches()) == 1

"""Bot.start_background: a new process can let its first requests go before its background
work (auth.test, supervisor groups, the sweeper) starts, and stopping calls that off."""

from __future__ import annotations

import time
from pathlib import Path

from bot.app_factory import Bot, create_bot
from bot.settings import load_settings
from bot.store import RequestStore
from bot.supervisors import Membership
from genesys.client import GenesysCalls
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack
from tests.harness import bot_environment


def _bot(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path, supervisors: str | None = None
) -> Bot:
    environ = bot_environment(genesys, slack, tmp_path)
    if supervisors is not None:
        environ["DROP_CALLER_SUPERVISORS"] = supervisors
    settings = load_settings(environ)
    calls = GenesysCalls(settings.genesys_config())
    return create_bot(settings, calls, RequestStore.from_url(settings.database_url))


def test_background_work_learns_who_the_bot_is(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """Starting the background work asks Slack who the bot is (auth.test), once."""
    bot = _bot(genesys, slack, tmp_path)
    try:
        bot.start_background(check_realtime=False)
        slack.wait_for(lambda: bot.identity.team_id is not None, timeout=5.0)
        assert len(slack.calls_to("auth.test")) == 1
    finally:
        bot.stop_background()


def test_a_stopped_bot_starts_no_background_work(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """Background work asked for after the bot was stopped (a signal during start) does not
    start."""
    bot = _bot(genesys, slack, tmp_path)

    bot.stop_background()
    bot.start_background(check_realtime=False)
    time.sleep(0.3)

    assert slack.calls_to("auth.test") == []
    assert bot.identity.team_id is None


def test_supervisor_groups_are_read_before_start_background_returns(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """A supervisor listed only through a user group is known from the first request on:
    the groups are read before start_background returns."""
    slack.usergroups["S0SUPERS"] = ["UGROUPSUP"]
    bot = _bot(genesys, slack, tmp_path, supervisors="S0SUPERS")
    try:
        bot.start_background(check_realtime=False)
        assert len(slack.calls_to("usergroups.users.list")) == 1
        assert bot.supervisors.membership("UGROUPSUP") is Membership.YES
    finally:
        bot.stop_background()

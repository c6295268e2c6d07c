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
from tests.fakes.genesys import FakeGenesys
from tests.fakes.slack import FakeSlack
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


def test_background_work_starts_after_the_delay(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """auth.test (the first background step) reaches Slack once the delay has passed, and
    not before."""
    bot = _bot(genesys, slack, tmp_path)
    try:
        bot.start_background(after=0.5)
        assert slack.calls_to("auth.test") == []
        slack.wait_for(lambda: bot.identity.team_id is not None, timeout=5.0)
        assert len(slack.calls_to("auth.test")) == 1
    finally:
        bot.stop_background()


def test_stopping_before_the_delay_keeps_background_work_from_starting(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    bot = _bot(genesys, slack, tmp_path)

    bot.start_background(after=0.2)
    bot.stop_background()
    # The timer is over once it has been cancelled, or once it has started the work; in the
    # second case auth.test would reach Slack moments later, so give it those moments.
    starter = bot._starter
    assert starter is not None
    starter.join(5.0)
    time.sleep(0.3)

    assert slack.calls_to("auth.test") == []
    assert bot.identity.team_id is None


def test_supervisor_groups_are_read_before_start_background_returns(
    genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path
) -> None:
    """Whatever the delay, a supervisor listed only through a user group is known from the
    first request on: the groups are read at once."""
    slack.usergroups["S0SUPERS"] = ["UGROUPSUP"]
    bot = _bot(genesys, slack, tmp_path, supervisors="S0SUPERS")
    try:
        bot.start_background(after=30.0)
        assert len(slack.calls_to("usergroups.users.list")) == 1
        assert bot.supervisors.membership("UGROUPSUP") is Membership.YES
    finally:
        bot.stop_background()

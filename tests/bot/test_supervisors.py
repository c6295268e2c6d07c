"""bot.supervisors.SupervisorDirectory against the fake Slack Web API."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.supervisors import Membership, SupervisorDirectory
from sandbox.slack_simulator import FakeSlack


def _client(slack: FakeSlack) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)


def test_user_ids_need_no_slack_call(slack: FakeSlack) -> None:
    """Listed user IDs are supervisors without asking Slack anything."""
    directory = SupervisorDirectory(["U1"], client=_client(slack))

    assert directory.membership("U1") == Membership.YES
    assert directory.membership("U2") == Membership.NO
    assert slack.calls_to("usergroups.users.list") == []


def test_group_members_are_unknown_until_read_then_refreshed(slack: FakeSlack) -> None:
    """Before the groups are read the answer is UNKNOWN; each refresh picks up changes."""
    slack.usergroups["S1"] = ["UA"]
    directory = SupervisorDirectory(["U1"], ["S1"], client=_client(slack))
    assert directory.membership("UA") == Membership.UNKNOWN

    directory.refresh()
    assert directory.membership("UA") == Membership.YES
    assert directory.membership("UB") == Membership.NO

    slack.usergroups["S1"] = ["UB"]
    directory.refresh()
    assert directory.membership("UA") == Membership.NO
    assert directory.membership("UB") == Membership.YES


def test_a_failed_refresh_keeps_the_last_good_members(slack: FakeSlack) -> None:
    """Slack failing on a later refresh does not drop known group members."""
    slack.usergroups["S1"] = ["UA"]
    directory = SupervisorDirectory([], ["S1"], client=_client(slack))
    directory.refresh()
    slack.fail_next("usergroups.users.list", "internal_error")

    directory.refresh()

    assert directory.membership("UA") == Membership.YES


def test_plan_without_groups_falls_back_to_user_ids(slack: FakeSlack) -> None:
    """plan_upgrade_required: groups are given up for good, user IDs still count."""
    slack.fail_next("usergroups.users.list", "plan_upgrade_required")
    directory = SupervisorDirectory(["U1"], ["S1"], client=_client(slack))

    directory.refresh()
    directory.refresh()

    assert directory.membership("U1") == Membership.YES
    assert directory.membership("UA") == Membership.NO
    assert len(slack.calls_to("usergroups.users.list")) == 1

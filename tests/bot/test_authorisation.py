"""bot.authorisation.Authoriser.refusal: who may drop callers, and where."""

from __future__ import annotations

import pytest

from bot.authorisation import Authoriser

SUPERVISOR = "U012SUPER"
OTHER_SUPERVISOR = "W034SUPER"
OUTSIDER = "U099NOBODY"
ALLOWED_CHANNEL = "C0123OPS"
OTHER_CHANNEL = "C0456RANDOM"
HOME = "T0HOME"

ANYWHERE = Authoriser(supervisors=frozenset({SUPERVISOR, OTHER_SUPERVISOR}), channels=None)
OPS_ONLY = Authoriser(supervisors=frozenset({SUPERVISOR}), channels=frozenset({ALLOWED_CHANNEL}))


@pytest.mark.parametrize("user_id", [SUPERVISOR, OTHER_SUPERVISOR])
def test_a_supervisor_may_act(user_id: str) -> None:
    """A listed supervisor is not refused, in any channel when no channels are configured."""
    assert ANYWHERE.refusal(user_id=user_id, channel_id=OTHER_CHANNEL) is None
    assert ANYWHERE.refusal(user_id=user_id, channel_id="D0DIRECT") is None


def test_a_non_supervisor_is_refused_with_a_sentence_naming_the_setting() -> None:
    """Someone not on the list is told why, naming DROP_CALLER_SUPERVISORS."""
    refusal = ANYWHERE.refusal(user_id=OUTSIDER, channel_id=OTHER_CHANNEL)
    assert refusal is not None
    assert "DROP_CALLER_SUPERVISORS" in refusal
    assert "supervisor" in refusal.lower()
    assert refusal.endswith(".")
    assert OUTSIDER not in refusal


@pytest.mark.parametrize("user_id", ["", SUPERVISOR.lower(), f" {SUPERVISOR}"])
def test_near_misses_of_a_supervisor_id_are_refused(user_id: str) -> None:
    """Only exact user ids match: empty, lower-cased or padded ids are refused."""
    assert ANYWHERE.refusal(user_id=user_id, channel_id=OTHER_CHANNEL) is not None


def test_no_supervisors_configured_refuses_everyone_and_explains_how_to_configure() -> None:
    """With an empty supervisor list nobody may act, and the refusal says how to fix that."""
    nobody = Authoriser(supervisors=frozenset(), channels=None)
    refusal = nobody.refusal(user_id=SUPERVISOR, channel_id=ALLOWED_CHANNEL)
    assert refusal is not None
    assert "no supervisors are configured" in refusal
    assert "DROP_CALLER_SUPERVISORS" in refusal
    assert "U012ABCDEF" in refusal  # an example of the expected format
    assert "restart" in refusal


def test_channel_restriction_allows_only_the_configured_channels() -> None:
    """With channels configured, a supervisor is refused elsewhere and allowed there."""
    assert OPS_ONLY.refusal(user_id=SUPERVISOR, channel_id=ALLOWED_CHANNEL) is None
    refusal = OPS_ONLY.refusal(user_id=SUPERVISOR, channel_id=OTHER_CHANNEL)
    assert refusal is not None
    assert "channel" in refusal


def test_non_supervisor_in_an_allowed_channel_is_still_refused() -> None:
    """Being in an allowed channel does not make someone a supervisor."""
    refusal = OPS_ONLY.refusal(user_id=OUTSIDER, channel_id=ALLOWED_CHANNEL)
    assert refusal is not None
    assert "DROP_CALLER_SUPERVISORS" in refusal


@pytest.mark.parametrize("team_id", ["T0OTHER", None, ""])
def test_another_workspace_is_refused_when_the_home_team_is_given(team_id: str | None) -> None:
    """With home_team_id given, a request from any other (or no) workspace is refused."""
    refusal = ANYWHERE.refusal(
        user_id=SUPERVISOR, channel_id=OTHER_CHANNEL, team_id=team_id, home_team_id=HOME
    )
    assert refusal is not None
    assert "another Slack workspace" in refusal


def test_the_home_workspace_is_allowed() -> None:
    """A supervisor in the home workspace is not refused."""
    refusal = ANYWHERE.refusal(
        user_id=SUPERVISOR, channel_id=OTHER_CHANNEL, team_id=HOME, home_team_id=HOME
    )
    assert refusal is None


def test_without_a_home_team_any_workspace_is_accepted() -> None:
    """When no home_team_id is given, the team id is not checked."""
    assert ANYWHERE.refusal(user_id=SUPERVISOR, channel_id=OTHER_CHANNEL, team_id="T0ANY") is None

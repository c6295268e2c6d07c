"""Who may request and confirm a drop, and where."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.supervisors import Membership, SupervisorDirectory


class Authoriser:
    """Supervisors and, optionally, the channels the command may be used in."""

    def __init__(
        self, supervisors: SupervisorDirectory | Iterable[str], channels: frozenset[str] | None
    ) -> None:
        self.supervisors = (
            supervisors
            if isinstance(supervisors, SupervisorDirectory)
            else SupervisorDirectory(supervisors)
        )
        self.channels = channels

    def refusal(
        self,
        *,
        user_id: str,
        channel_id: str,
        team_id: str | None = None,
        home_team_id: str | None = None,
    ) -> str | None:
        """None when the user may act here; otherwise the sentence that says why not.

        `home_team_id` is the bot's own workspace; a request from any other is refused.
        """
        if home_team_id is not None and team_id != home_team_id:
            return "This request comes from another Slack workspace; nothing was done."
        if not self.supervisors.configured:
            return (
                "Nobody may drop callers yet: no supervisors are configured. An admin sets "
                "DROP_CALLER_SUPERVISORS to a comma-separated list of Slack user IDs "
                "(such as U012ABCDEF) and restarts the bot."
            )
        membership = self.supervisors.membership(user_id)
        if membership == Membership.UNKNOWN:
            return (
                "The bot could not read the supervisors' Slack user groups yet, so it cannot "
                "tell whether you are one. Try again in a minute."
            )
        if membership == Membership.NO:
            return (
                "Only supervisors can drop callers, and you are not on the list. "
                "Ask an admin to add your Slack user ID to DROP_CALLER_SUPERVISORS."
            )
        if self.channels is not None and channel_id not in self.channels:
            return (
                "Callers can't be dropped from this channel. Use one of the channels set up for it."
            )
        return None


def home_team_id(context: Any) -> str | None:
    """The bot's own workspace, as Bolt's authorisation (auth.test) found it."""
    result = getattr(context, "authorize_result", None)
    team = getattr(result, "team_id", None)
    return team if isinstance(team, str) and team else None

"""Who may request and confirm a drop, and where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Authoriser:
    """Supervisors (Slack user ids) and, optionally, the channels the command may be used in."""

    supervisors: frozenset[str]
    channels: frozenset[str] | None

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
        if not self.supervisors:
            return (
                "Nobody may drop callers yet: no supervisors are configured. An admin sets "
                "DROP_CALLER_SUPERVISORS to a comma-separated list of Slack user IDs "
                "(such as U012ABCDEF) and restarts the bot."
            )
        if user_id not in self.supervisors:
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

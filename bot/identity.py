"""Who the bot is in Slack, learnt in the background so no request waits for it.

Bolt's default single-workspace authorisation calls `auth.test` on the first request (and
again on every request while that fails), before the listener can acknowledge: a slow or
unreachable Slack would then cost the 3-second acknowledgement. Here `auth.test` runs in a
background thread, and `authorize` answers from memory at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger(__name__)


class BotIdentity:
    """The bot's workspace and user, from auth.test, retried until Slack answers."""

    def __init__(self, client: WebClient, *, retry_seconds: float = 15.0) -> None:
        self._client = client
        self._retry_seconds = retry_seconds
        self._stop = threading.Event()
        self.team_id: str | None = None
        self.user_id: str | None = None
        self.bot_id: str | None = None
        # The workspace's address (https://<name>.slack.com/), for links to messages.
        self.url: str | None = None

    def refresh(self) -> bool:
        """Ask Slack who the bot is; True once it has answered."""
        try:
            answer = self._client.auth_test()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "unknown"
            logger.error("Slack refused SLACK_BOT_TOKEN (auth.test: %s)", error)
            return False
        except OSError as exc:
            logger.warning("Slack is unreachable (auth.test: %s); retrying", exc)
            return False
        self.team_id = answer.get("team_id")
        self.user_id = answer.get("user_id")
        self.bot_id = answer.get("bot_id")
        self.url = answer.get("url")
        logger.info("Connected to Slack workspace %s as %s", self.team_id, self.user_id)
        return True

    def start(self) -> None:
        """Learn the identity in the background, retrying until Slack answers."""
        thread = threading.Thread(target=self._learn, name="slack-identity", daemon=True)
        thread.start()

    def stop(self) -> None:
        """Stop retrying."""
        self._stop.set()

    def authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        """Bolt's authorize function: the bot token, with the bot's own workspace if known.

        Until auth.test has answered, the workspace is reported unknown (None), and the
        other-workspace check (`bot.authorisation`) is skipped rather than blocking.
        """
        token = self._client.token
        assert token is not None
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=self.team_id,
            bot_token=token,
            bot_user_id=self.user_id,
            bot_id=self.bot_id,
        )

    def _learn(self) -> None:
        while not self.refresh():
            if self._stop.wait(self._retry_seconds):
                return


def authorize_with(identity: BotIdentity) -> Any:
    """`identity.authorize` in the shape Bolt inspects (it injects arguments by name)."""

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return identity.authorize(enterprise_id, team_id)

    return authorize

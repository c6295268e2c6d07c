"""What the bot posts after the fact: the card updated in place, and the audit channel line."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    RetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from bot.cards import Block, audit_line, outcome_card
from bot.domain import DropRequest
from bot.errors import BotError
from bot.store import RequestStore

logger = logging.getLogger(__name__)

# Seconds to wait for Slack; its own default of 30 s would hold a listener thread too long.
SLACK_TIMEOUT = 5


# A 429 asking to wait longer than this is not retried: the caller reports it instead.
MAX_SLACK_RETRY_AFTER = 10


class _BoundedRateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (it sleeps Retry-After), but never for long."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        for name, values in response.headers.items():
            if name.lower() == "retry-after" and values:
                try:
                    return int(values[0]) <= MAX_SLACK_RETRY_AFTER
                except ValueError:
                    return False
        return True


def slack_retries() -> list[RetryHandler]:
    """Retry what Slack asks to be retried, a little: a connection error once, and 429
    (honouring a short Retry-After) and 5xx twice each."""
    return [
        ConnectionErrorRetryHandler(max_retry_count=1),
        _BoundedRateLimitRetry(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def post_to_response_url(url: str, **message: Any) -> int:
    """POST a message to a response_url with the bot's timeout and retries; the HTTP status.

    Bolt's own `respond()` waits up to 30 s for an answer, too long for a worker thread.
    """
    client = WebhookClient(url, timeout=SLACK_TIMEOUT, retry_handlers=slack_retries())
    return int(client.send(**message).status_code)


# An audit line claimed this long ago but never posted (its poster died) is posted again.
AUDIT_RETRY = timedelta(minutes=1)


class CardPublisher:
    """Updates cards in place and writes one line per outcome to the audit channel.

    With a store, it records what each card shows and which audit lines are out, so that the
    sweeper can finish either after a crash.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        audit_channel: str | None = None,
        store: RequestStore | None = None,
    ) -> None:
        self._client = client
        self._audit_channel = audit_channel
        self._store = store

    @property
    def audits(self) -> bool:
        """True when outcomes are also posted to an audit channel."""
        return self._audit_channel is not None

    def show_outcome(
        self, request: DropRequest, now: datetime, respond: Respond | None = None
    ) -> bool:
        """Replace the card with the request's current state (no buttons)."""
        shown = self.replace(request, *outcome_card(request, now), respond=respond)
        if shown and self._store is not None:
            try:
                self._store.mark_card_shown(request.id, request.state)
            except BotError:
                logger.warning("Could not record that request %s's card is up to date", request.id)
        return shown

    def replace(
        self,
        request: DropRequest,
        text: str,
        blocks: list[Block],
        *,
        respond: Respond | None = None,
    ) -> bool:
        """Replace the card: chat.update where the bot posted it, else a response_url.

        A click's own response_url is used when there is one; the sweeper, which has none,
        uses the command's (valid for 30 minutes). Returns whether Slack took the update.
        """
        if request.message_ts:
            try:
                self._client.chat_update(
                    channel=request.channel_id, ts=request.message_ts, text=text, blocks=blocks
                )
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                logger.warning("chat.update failed for request %s: %s", request.id, error)
            except OSError as exc:
                logger.warning("chat.update failed for request %s: %s", request.id, exc)
            else:
                return True
        status = 0
        try:
            url = respond.response_url if respond is not None else request.response_url
            if url:
                status = post_to_response_url(url, text=text, blocks=blocks, replace_original=True)
        except OSError as exc:
            logger.warning("response_url update failed for request %s: %s", request.id, exc)
        if status != 200:
            logger.error("Could not update the card of request %s (HTTP %s)", request.id, status)
        return status == 200

    def notify(
        self, user_id: str, channel_id: str, text: str, respond: Respond | None = None
    ) -> bool:
        """An ephemeral note to one person: through `respond`, else chat.postEphemeral."""
        if respond is not None and respond.response_url:
            try:
                status = post_to_response_url(
                    respond.response_url,
                    text=text,
                    response_type="ephemeral",
                    replace_original=False,
                )
            except OSError as exc:
                logger.warning("response_url post failed: %s", exc)
            else:
                if status == 200:
                    return True
                logger.warning("response_url answered HTTP %s", status)
        try:
            self._client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)
        except (SlackApiError, OSError) as exc:
            logger.error("Could not tell %s anything (%s): %s", user_id, exc, text[:80])
            return False
        return True

    def audit_text(self, text: str) -> None:
        """Post a line that belongs to no request (a block that expired) to the audit channel,
        if one is set; a failure is logged (the store holds the record)."""
        if not self._audit_channel:
            return
        try:
            self._client.chat_postMessage(channel=self._audit_channel, text=text)
        except (SlackApiError, OSError):
            logger.exception("Could not post to the audit channel")

    def audit(self, request: DropRequest) -> None:
        """Post the request's outcome to DROP_CALLER_AUDIT_CHANNEL, if one is set."""
        if not self._audit_channel:
            return
        try:
            if self._store is not None and not self._store.claim_audit_post(
                request.id, AUDIT_RETRY
            ):
                return  # already posted, or being posted by another instance
        except BotError:
            logger.warning("Audit line of request %s waits for the database", request.id)
            return
        try:
            self._client.chat_postMessage(channel=self._audit_channel, text=audit_line(request))
        except (SlackApiError, OSError):
            # The database holds the record; the sweeper posts the line once Slack answers.
            logger.exception("Could not post request %s to the audit channel", request.id)
            if self._store is not None:
                # If even that fails, the claim times out by itself (AUDIT_RETRY).
                with contextlib.suppress(BotError):
                    self._store.release_audit_claim(request.id)
            return
        if self._store is not None:
            try:
                self._store.mark_audit_posted(request.id)
            except BotError:
                logger.warning("Could not record that request %s's line is out", request.id)

"""What the bot posts after the fact: the card updated in place, and the audit channel line."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

# How long Slack accepts posts to a command's response_url.
RESPONSE_URL_LIFETIME = timedelta(minutes=30)

# Slack errors that waiting cannot heal: the message, the channel or the bot's place in it is
# gone, or the message itself is refused.
FINAL_ERRORS = frozenset(
    {
        "message_not_found",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "cant_update_message",
        "edit_window_closed",
        "msg_too_long",
        "invalid_blocks",
        "expired_url",
        "used_url",
    }
)


@dataclass(frozen=True)
class Delivery:
    """What Slack made of one card update or audit line."""

    error: str | None = None
    """None when Slack took it; else Slack's error code (or what went wrong on the way)."""
    final: bool = False
    """The error cannot heal: trying again later is pointless."""
    retry_after: float | None = None
    """Slack rate-limited the method and asked for this many seconds' wait."""

    @property
    def ok(self) -> bool:
        """True when Slack took it."""
        return self.error is None


DELIVERED = Delivery()


class CardPublisher:
    """Updates cards in place and writes one line per outcome to the audit channel.

    With a store, it records what each card shows and which audit lines are out, so that the
    sweeper can finish either after a crash. Failures are returned (`Delivery`) and logged
    at INFO; the caller decides what deserves a warning.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        audit_channel: str | None = None,
        store: RequestStore | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._audit_channel = audit_channel
        self._store = store
        self._now = now

    @property
    def audits(self) -> bool:
        """True when outcomes are also posted to an audit channel."""
        return self._audit_channel is not None

    def show_outcome(
        self, request: DropRequest, now: datetime, respond: Respond | None = None
    ) -> Delivery:
        """Replace the card with the request's current state (no buttons)."""
        delivery = self.replace(request, *outcome_card(request, now), respond=respond)
        if delivery.ok and self._store is not None:
            try:
                self._store.mark_card_shown(request.id, request.state)
            except BotError:
                logger.warning("Could not record that request %s's card is up to date", request.id)
        return delivery

    def replace(
        self,
        request: DropRequest,
        text: str,
        blocks: list[Block],
        *,
        respond: Respond | None = None,
    ) -> Delivery:
        """Replace the card where it was posted.

        A card the bot posted (chat.postMessage) is edited with chat.update; after a click,
        the click's own response_url (which belongs to the card) is the fallback. A card
        posted through the command's response_url is replaced through the click's
        response_url, else that command's, while Slack still accepts it. The command's
        response_url is never used for a posted card: its message is the private reply.
        """
        click_url = respond.response_url if respond is not None else None
        if not request.card_through_response_url:
            if request.message_ts:
                delivery = self._chat_update(request, request.message_ts, text, blocks)
            else:
                # The card went out but a crash kept its ts from the database.
                delivery = Delivery("the card's message was never recorded", final=True)
            if delivery.ok or not click_url:
                return delivery
            return self._post_replacement(request, click_url, text, blocks)
        if click_url:
            return self._post_replacement(request, click_url, text, blocks)
        if not request.response_url:
            return Delivery("the card has no response_url", final=True)
        if self._now() - request.created_at >= RESPONSE_URL_LIFETIME:
            return Delivery("expired_url", final=True)
        return self._post_replacement(request, request.response_url, text, blocks)

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
        delivery = self._post(self._audit_channel, text)
        if not delivery.ok:
            logger.warning("Could not post to the audit channel: %s", delivery.error)

    def audit(self, request: DropRequest) -> Delivery:
        """Post the request's outcome to DROP_CALLER_AUDIT_CHANNEL, if one is set."""
        if not self._audit_channel:
            return DELIVERED
        try:
            if self._store is not None and not self._store.claim_audit_post(
                request.id, AUDIT_RETRY
            ):
                return DELIVERED  # already posted, or being posted by another instance
        except BotError:
            logger.warning("Audit line of request %s waits for the database", request.id)
            return Delivery("the database did not answer")
        delivery = self._post(self._audit_channel, audit_line(request))
        if not delivery.ok:
            # The database holds the record; the sweeper posts the line once Slack answers.
            logger.info("Audit line of request %s not posted: %s", request.id, delivery.error)
            if self._store is not None:
                # If even that fails, the claim times out by itself (AUDIT_RETRY).
                with contextlib.suppress(BotError):
                    self._store.release_audit_claim(request.id)
            return delivery
        if self._store is not None:
            try:
                self._store.mark_audit_posted(request.id)
            except BotError:
                logger.warning("Could not record that request %s's line is out", request.id)
        return DELIVERED

    # ------------------------------------------------------------ internals

    def _chat_update(
        self, request: DropRequest, ts: str, text: str, blocks: list[Block]
    ) -> Delivery:
        try:
            self._client.chat_update(channel=request.channel_id, ts=ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            delivery = _slack_failure(exc)
        except OSError as exc:
            delivery = Delivery(f"Slack did not answer ({type(exc).__name__})")
        else:
            return DELIVERED
        logger.info("chat.update of request %s failed: %s", request.id, delivery.error)
        return delivery

    def _post(self, channel: str, text: str) -> Delivery:
        try:
            self._client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as exc:
            return _slack_failure(exc)
        except OSError as exc:
            return Delivery(f"Slack did not answer ({type(exc).__name__})")
        return DELIVERED

    def _post_replacement(
        self, request: DropRequest, url: str, text: str, blocks: list[Block]
    ) -> Delivery:
        try:
            status = post_to_response_url(url, text=text, blocks=blocks, replace_original=True)
        except (OSError, ValueError) as exc:
            delivery = Delivery(f"Slack did not answer ({type(exc).__name__})")
        else:
            if status == 200:
                return DELIVERED
            # Slack answers 404 (or 410) once a response_url has expired or been used up.
            delivery = Delivery(
                "expired_url" if status in (404, 410) else f"HTTP {status}",
                final=status in (404, 410),
            )
        logger.info("response_url update of request %s failed: %s", request.id, delivery.error)
        return delivery


def _slack_failure(exc: SlackApiError) -> Delivery:
    """A Slack Web API error as a Delivery: its code, whether it can heal, its Retry-After."""
    response = exc.response
    error = str(response.get("error") or "unknown_error") if response is not None else "error"
    retry_after = None
    if response is not None and response.status_code == 429:
        headers = {name.lower(): value for name, value in (response.headers or {}).items()}
        value = headers.get("retry-after")
        if isinstance(value, list):
            value = value[0] if value else None
        try:
            retry_after = float(value) if value is not None else 30.0
        except ValueError:
            retry_after = 30.0
    return Delivery(error, final=error in FINAL_ERRORS, retry_after=retry_after)

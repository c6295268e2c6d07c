"""Runs the real bot over loopback HTTP against the fakes, and drives it like Slack does."""

from __future__ import annotations

import os
import socketserver
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.app_factory import Bot, create_bot
from bot.domain import DropRequest
from bot.drops import lease_for
from bot.settings import Settings, load_settings
from bot.store import RequestStore
from genesys.client import GenesysCalls
from genesys.config import RetryPolicy
from sandbox.environment import simulated_environment
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_requests import SlackRequester, SlackResponse
from sandbox.slack_simulator import FakeSlack, Message

SIGNING_SECRET = "test-signing-secret"
SUPERVISOR = "USUP1"
SECOND_SUPERVISOR = "USUP2"
OUTSIDER = "UNOTSUP"
CHANNEL = "C0001"
NUMBER = "+15551234567"


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log in test output."""


def bot_environment(genesys: FakeGenesys, slack: FakeSlack, tmp: Path) -> dict[str, str]:
    """The environment a deployment would set, pointing at the fakes."""
    return simulated_environment(
        genesys,
        slack,
        signing_secret=SIGNING_SECRET,
        supervisors=f"{SUPERVISOR},{SECOND_SUPERVISOR}",
        database_url=f"sqlite:///{tmp / 'drop_caller.db'}",
    )


@dataclass
class BotHarness:
    """The running bot and the means to talk to it."""

    settings: Settings
    genesys: FakeGenesys
    slack: FakeSlack
    store: RequestStore
    calls: GenesysCalls
    base_url: str
    requester: SlackRequester
    bot: Bot

    def command(
        self, text: str, *, user_id: str = SUPERVISOR, channel_id: str = CHANNEL
    ) -> SlackResponse:
        """Send `/drop-caller text` as Slack would, with a fresh response_url."""
        return self.requester.command(
            text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=self.slack.new_response_url(channel=channel_id),
        )

    def wait_for_card(self, channel_id: str = CHANNEL) -> Message:
        """The card the bot posts in the channel."""
        return self.slack.wait_for(lambda: next(iter(self.slack.messages(channel_id)), None))

    def click(
        self,
        card: Message,
        action_id: str,
        *,
        user_id: str = SUPERVISOR,
        value: str | None = None,
        channel_id: str | None = None,
    ) -> SlackResponse:
        """Click a button of `card` (its real value unless `value` forges one)."""
        button = card.button(action_id)
        channel = channel_id or card.channel
        return self.requester.click(
            action_id=action_id,
            value=button["value"] if value is None else value,
            user_id=user_id,
            channel_id=channel,
            message_ts=card.ts,
            response_url=self.slack.new_response_url(channel=channel, message_ts=card.ts),
            message=card.to_payload(),
        )

    def request_for(self, card: Message) -> DropRequest:
        """The stored request behind a card."""
        request = self.store.get(card.button("drop_caller_cancel")["value"])
        assert request is not None
        return request

    def wait_for_state(self, card: Message, state: str, timeout: float = 5.0) -> DropRequest:
        """Poll the store until the card's request reaches `state`."""
        request_id = card.button("drop_caller_cancel")["value"]

        def reached() -> DropRequest | None:
            request = self.store.get(request_id)
            return request if request is not None and request.state.value == state else None

        return self.slack.wait_for(reached, timeout=timeout)

    def ephemeral_texts(self) -> list[str]:
        """Texts of every ephemeral response_url post so far."""
        return [
            str(post.body.get("text", ""))
            for post in self.slack.response_posts
            if post.body.get("response_type", "ephemeral") == "ephemeral"
            and not post.body.get("replace_original")
        ]


def card_text(card: Message) -> str:
    """All the text of a card's blocks, for assertions."""
    parts: list[str] = [card.text or ""]
    for block in card.blocks:
        if "text" in block:
            parts.append(str(block["text"].get("text", "")))
        for field in block.get("fields", []):
            parts.append(str(field.get("text", "")))
        for element in block.get("elements", []):
            if element.get("type") == "mrkdwn":
                parts.append(str(element.get("text", "")))
    return "\n".join(parts)


@contextmanager
def start_bot(
    genesys: FakeGenesys,
    slack: FakeSlack,
    tmp: os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    confirm_timeout: float = 1.0,
    lease: timedelta | None = None,
    catch_up_after: timedelta = timedelta(seconds=30),
    realtime_budget: float = 3.0,
    note_budget: float = 2.0,
    check_realtime: bool = True,
) -> Iterator[BotHarness]:
    """Build the bot exactly as app.py does and serve its WSGI app on 127.0.0.1:0."""
    environ = bot_environment(genesys, slack, Path(tmp))
    environ.update(env or {})
    settings = load_settings(environ)
    store = RequestStore.from_url(settings.database_url)
    config = settings.genesys_config(
        read_timeout=2.0,
        # Same policy shape as production, with short waits so tests stay fast.
        retry=RetryPolicy(max_attempts=3, max_total_seconds=3.0, base_delay=0.01, max_delay=0.05),
        confirm_timeout=confirm_timeout,
        confirm_interval=0.05,
        realtime_budget=realtime_budget,
        note_budget=note_budget,
    )
    calls = GenesysCalls(config)
    bot = create_bot(
        settings,
        calls,
        store,
        # The lease production would derive from these (shorter) bounds.
        lease=lease_for(config) if lease is None else lease,
        catch_up_after=catch_up_after,
    )
    bot.start_background(check_realtime=check_realtime)
    # As in production the identity is learnt in the background; tests want it settled.
    slack.wait_for(lambda: bot.identity.team_id is not None)
    # So is the start-up check of the real-time sources. Tests look at what their own
    # commands send to Genesys, so what the check sent is forgotten.
    assert bot.realtime_checked.wait(10), "the start-up check of real-time lookup never ended"
    genesys.forget_requests()
    application = bot.wsgi
    server = make_server(
        "127.0.0.1", 0, application, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield BotHarness(
            settings=settings,
            genesys=genesys,
            slack=slack,
            store=store,
            calls=calls,
            base_url=base_url,
            requester=SlackRequester(f"{base_url}/slack/events", SIGNING_SECRET),
            bot=bot,
        )
    finally:
        bot.stop_background()
        server.shutdown()
        server.server_close()

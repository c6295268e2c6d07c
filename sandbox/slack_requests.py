"""Send signed requests to the app the way Slack does (slash commands and button clicks).

Requests go through the real HTTP path (e.g. Bolt's WSGI adapter on a loopback port), signed
with ``slack_sdk.signature.SignatureVerifier``. Proxies from the environment are ignored.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

_TIMEOUT = 10.0
_API_APP_ID = "A0001"
_VERIFICATION_TOKEN = "verification-token"  # deprecated by Slack, still sent


@dataclass(frozen=True)
class SlackResponse:
    """What the app answered. ``headers`` names are lower-cased."""

    status: int
    body: str
    headers: dict[str, str]
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


def event_callback(
    team_id: str, event: dict[str, Any], event_id: str | None = None
) -> dict[str, Any]:
    """The Events API envelope Slack wraps an event in (over HTTP and Socket Mode alike)."""
    return {
        "token": _VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": _API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": "UBOT", "is_bot": True}],
    }


def app_home_opened(user_id: str, tab: str = "home") -> dict[str, Any]:
    """The ``app_home_opened`` event of ``user_id`` opening the app's ``tab``."""
    return {
        "type": "app_home_opened",
        "user": user_id,
        "channel": f"D{user_id[1:]}",
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }


def _trigger_id() -> str:
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def _action_ts() -> str:
    return f"{time.time():.6f}"


class SlackRequester:
    """Signs and posts Slack-shaped requests to ``events_url`` (e.g. ``.../slack/events``)."""

    def __init__(self, events_url: str, signing_secret: str, *, team_id: str = "T0001") -> None:
        if not events_url.startswith(("http://", "https://")):
            raise ValueError(f"events_url must be http(s): {events_url!r}")
        self.events_url = events_url
        self.team_id = team_id
        self.team_domain = "fake"
        self._verifier = SignatureVerifier(signing_secret)

    def sign(self, body: bytes, timestamp: int) -> str:
        """The ``X-Slack-Signature`` Slack would send for ``body`` at ``timestamp``."""
        signature = self._verifier.generate_signature(timestamp=str(timestamp), body=body)
        if signature is None:
            raise ValueError("could not sign the request")
        return signature

    def post(
        self,
        body: bytes,
        *,
        content_type: str,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SlackResponse:
        """POST ``body`` as is; ``timestamp`` defaults to now, ``signature=None`` signs it;
        ``headers`` are added (``X-Slack-Retry-Num``, say)."""
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": self.sign(body, ts) if signature is None else signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            **(headers or {}),
        }
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.events_url, data=body, headers=headers, method="POST"
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        started = time.perf_counter()
        try:
            with opener.open(request, timeout=_TIMEOUT) as response:
                status = int(response.status)
                raw = response.read()
                header_items = list(response.headers.items())
        except urllib.error.HTTPError as error:
            status = error.code
            raw = error.read()
            header_items = list(error.headers.items())
        elapsed = time.perf_counter() - started
        return SlackResponse(
            status=status,
            body=raw.decode("utf-8", "replace"),
            headers={k.lower(): v for k, v in header_items},
            elapsed=elapsed,
        )

    def post_form(
        self, fields: Mapping[str, str], *, timestamp: int | None = None
    ) -> SlackResponse:
        """Sign and POST ``fields`` form-encoded."""
        return self.post(
            urlencode(fields).encode("utf-8"),
            content_type="application/x-www-form-urlencoded",
            timestamp=timestamp,
        )

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
    ) -> SlackResponse:
        """An Events API ``event_callback`` carrying ``event``; with ``retry_num``, sent as
        Slack sends a retry (``X-Slack-Retry-Num``, ``X-Slack-Retry-Reason``)."""
        body = event_callback(self.team_id, event, event_id)
        retry = (
            {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
            if retry_num is not None
            else None
        )
        return self.post(json.dumps(body).encode(), content_type="application/json", headers=retry)

    def url_verification(self, challenge: str) -> SlackResponse:
        """The request Slack sends when an admin saves the Events request URL."""
        body = {"token": _VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return self.post(json.dumps(body).encode(), content_type="application/json")

    def command(
        self,
        text: str,
        *,
        user_id: str = "USUP1",
        channel_id: str = "C0001",
        response_url: str,
        command: str = "/drop-caller",
        user_name: str = "sup",
        channel_name: str = "supervisors",
        timestamp: int | None = None,
    ) -> SlackResponse:
        """A slash command, with exactly the form fields Slack sends."""
        fields = {
            "token": _VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": _API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": _trigger_id(),
        }
        return self.post_form(fields, timestamp=timestamp)

    def block_actions_payload(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str = "USUP1",
        channel_id: str = "C0001",
        message_ts: str,
        response_url: str,
        block_id: str = "b",
        team_id: str | None = None,
        user_name: str = "sup",
        channel_name: str = "supervisors",
        button_text: str = "Button",
        style: str | None = None,
        message: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``block_actions`` payload Slack sends for a button click."""
        team = self.team_id if team_id is None else team_id
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "text": {"type": "plain_text", "text": button_text, "emoji": True},
            "value": value,
            "type": "button",
            "action_ts": _action_ts(),
        }
        if style is not None:
            action["style"] = style
        clicked: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": "",
            "ts": message_ts,
            "bot_id": "B0001",
            "blocks": [],
        }
        if message is not None:
            clicked.update(message)
            clicked["ts"] = message_ts
        return {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team},
            "api_app_id": _API_APP_ID,
            "token": _VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": _trigger_id(),
            "team": {"id": team, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_name},
            "message": clicked,
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }

    def click(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str = "USUP1",
        channel_id: str = "C0001",
        message_ts: str,
        response_url: str,
        block_id: str = "b",
        team_id: str | None = None,
        user_name: str = "sup",
        channel_name: str = "supervisors",
        button_text: str = "Button",
        style: str | None = None,
        message: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> SlackResponse:
        """A button click, as form-encoded ``payload=<json>``.

        ``message``: the clicked message as Slack embeds it (e.g.
        ``fake.message(channel, ts).to_payload()``); by default an empty bot message.
        """
        payload = self.block_actions_payload(
            action_id=action_id,
            value=value,
            user_id=user_id,
            channel_id=channel_id,
            message_ts=message_ts,
            response_url=response_url,
            block_id=block_id,
            team_id=team_id,
            user_name=user_name,
            channel_name=channel_name,
            button_text=button_text,
            style=style,
            message=message,
        )
        return self.post_form({"payload": json.dumps(payload)}, timestamp=timestamp)

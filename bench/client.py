"""Signed Slack requests built beforehand, for timing many acknowledgements at once.

SlackRequester builds an opener and signs the body when it sends, all in Python on the
sending thread; with 100 threads released together that client-side work would queue on one
GIL and land in the measured times. Here the request is built and signed beforehand (by
SlackRequester's own code, so the fields and headers are the same) and sent by bench/burst.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from bench.botprocess import SIGNING_SECRET
from bench.burst import Prepared
from sandbox.slack_requests import SlackRequester, SlackResponse


class _Capture(SlackRequester):
    """A SlackRequester whose `post` keeps the signed request instead of sending it."""

    captured: Prepared | None = None

    def post(
        self,
        body: bytes,
        *,
        content_type: str,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SlackResponse:
        ts = int(time.time()) if timestamp is None else timestamp
        rest = self.events_url.split("://", 1)[1]
        authority, _, path = rest.partition("/")
        host, _, port = authority.partition(":")
        sent = {
            "Host": authority,
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": self.sign(body, ts) if signature is None else signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "Connection": "close",
            **(headers or {}),
        }
        head = f"POST /{path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items())
        self.captured = Prepared(host, int(port or 80), (head + "\r\n").encode() + body)
        return SlackResponse(status=0, body="", headers={}, elapsed=0.0)


def prepare_command(
    events_url: str, text: str, *, user_id: str, channel_id: str, response_url: str
) -> Prepared:
    """The signed `/drop-caller text` request exactly as `SlackRequester.command` sends it."""
    capture = _Capture(events_url, SIGNING_SECRET)
    capture.command(text, user_id=user_id, channel_id=channel_id, response_url=response_url)
    assert capture.captured is not None
    return capture.captured

"""A lean sender for signed Slack requests, for timing many acknowledgements at once.

SlackRequester builds an opener and signs the body when it sends, all in Python on the
sending thread; with 100 threads released together that client-side work queues on this
process's GIL and lands in the measured times. Here the request is built and signed
beforehand (by SlackRequester's own code, so the fields and headers are the same), and the
timed part is only connect, send and read.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from tests.fakes.slack_requests import SlackRequester, SlackResponse
from tests.harness import SIGNING_SECRET


@dataclass(frozen=True)
class Prepared:
    """A complete HTTP request, ready to send."""

    host: str
    port: int
    data: bytes


@dataclass(frozen=True)
class Answer:
    """Status and time from the start of connect to the last byte of the answer."""

    status: int
    elapsed: float


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
    ) -> SlackResponse:
        ts = int(time.time()) if timestamp is None else timestamp
        rest = self.events_url.split("://", 1)[1]
        authority, _, path = rest.partition("/")
        host, _, port = authority.partition(":")
        headers = {
            "Host": authority,
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": self.sign(body, ts) if signature is None else signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "Connection": "close",
        }
        head = f"POST /{path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
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


def send(request: Prepared, timeout: float = 30.0) -> Answer:
    """Send a prepared request; time it up to the last byte of the answer's body."""
    started = time.perf_counter()
    with socket.create_connection((request.host, request.port), timeout=timeout) as conn:
        conn.sendall(request.data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    elapsed = time.perf_counter() - started
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    return Answer(status, elapsed)

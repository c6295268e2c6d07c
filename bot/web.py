"""The WSGI application served in HTTP mode: Slack's endpoint plus a health check."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_bolt import App

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


# Slack's payloads are a few kilobytes; anything far larger is not Slack.
MAX_BODY = 1 << 20


def wsgi_app(app: App, health: Callable[[], dict[str, Any]], signing_secret: str) -> WsgiApp:
    """Route `POST /slack/events` to Bolt and `GET /healthz` to `health`.

    Requests are checked against Slack's signature before Bolt sees them: Bolt parses a body
    (and can fail on a malformed one) before checking, and logs the whole body of a request
    that fails the check. An unsigned request gets 401 here and is never parsed or logged.
    `health()` returns a JSON-able report whose `"ok"` key decides 200 or 503.
    """
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(signing_secret)
    bolt = SlackRequestHandler(app, path=EVENTS_PATH)

    def slack(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return _plain(start_response, "413 Content Too Large", b"Too large")
        body = environ["wsgi.input"].read(length) if length else b""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not (
            timestamp.isdigit() and signature and verifier.is_valid(body, timestamp, signature)
        ):
            logger.info("Refused a request with a missing, wrong or stale Slack signature")
            return _plain(start_response, "401 Unauthorized", b"invalid request")
        form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        readable = _without_the_word_payload(body) if form else body
        if readable is not body:
            body = readable
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["HTTP_X_SLACK_SIGNATURE"] = verifier.generate_signature(
                timestamp=timestamp, body=body
            )
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            return bolt(environ, start_response)
        except Exception:
            # A signed body Bolt cannot even parse (Slack never sends one).
            logger.exception("Could not parse a signed Slack request")
            return _plain(start_response, "400 Bad Request", b"bad request")

    return _route(slack, health)


def _without_the_word_payload(body: bytes) -> bytes:
    """A form `body`, with "payload" percent-encoded where it is not the `payload` field.

    Bolt reads any form body that contains the word "payload" anywhere as an interactive
    payload and, finding no `payload` field, as an empty request, which it answers 404: a
    slash command typed as `/drop-caller payload`, or sent from a channel whose name contains
    the word, failed that way. "%70" is "p" once the form is decoded, so the fields Bolt reads
    are unchanged. The body is returned as it is (the same object) when nothing needs it.
    The caller has already checked the signature, and signs the rewritten body afresh.
    """
    if b"payload" not in body or body.startswith(b"{"):
        return body
    if any(field.startswith(b"payload=") for field in body.split(b"&")):
        return body
    return body.replace(b"payload", b"%70ayload")


def _plain(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _route(slack: WsgiApp, health: Callable[[], dict[str, Any]]) -> WsgiApp:
    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == EVENTS_PATH:
            return slack(environ, start_response)
        if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            report = health()
            body = json.dumps(report).encode()
            status = "200 OK" if report.get("ok") else "503 Service Unavailable"
            start_response(
                status,
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found"]

    return application


def health_only_app(health: Callable[[], dict[str, Any]]) -> WsgiApp:
    """Just `GET /healthz`, for Socket Mode, where Slack's requests come over the socket."""

    def no_slack_endpoint(
        environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found"]

    return _route(no_slack_endpoint, health)

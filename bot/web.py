"""The WSGI application served in HTTP mode: Slack's endpoint plus a health check."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def wsgi_app(app: App, health: Callable[[], dict[str, Any]]) -> WsgiApp:
    """Route `POST /slack/events` to Bolt and `GET /healthz` to `health`.

    `health()` returns a JSON-able report whose `"ok"` key decides 200 or 503.
    """
    return _route(SlackRequestHandler(app, path=EVENTS_PATH), health)


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

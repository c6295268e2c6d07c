"""Run the bot: HTTP mode under gunicorn, or Socket Mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.web import WsgiApp

# Requests are short (listeners run on Bolt's own pool after the ack), so one process with
# threads serves concurrent Slack requests; one process also keeps SQLite writes in one place.
HTTP_THREADS = 32


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn driven from code, so `python app.py` stays the one entry point."""

    def __init__(self, build: Callable[[], WsgiApp], options: dict[str, Any]) -> None:
        self._build = build
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> WsgiApp:
        # Runs in the worker process, after the fork: build everything there.
        return self._build()


def serve_http(build: Callable[[], WsgiApp], *, host: str, port: int) -> None:
    """Serve the WSGI app built by `build` on host:port until stopped (SIGTERM/SIGINT)."""
    _Gunicorn(
        build,
        {
            "bind": f"{host}:{port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": HTTP_THREADS,
            "timeout": 60,
            "graceful_timeout": 30,
            "accesslog": None,
            "loglevel": "info",
            # gunicorn 27 otherwise opens a control socket in the working directory.
            "control_socket_disable": True,
        },
    ).run()


def serve_socket_mode(app: App, app_token: str) -> None:
    """Connect to Slack over Socket Mode and serve until stopped."""
    SocketModeHandler(app, app_token).start()  # type: ignore[no-untyped-call]

"""Run the bot: HTTP mode under gunicorn, or Socket Mode."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from bot.web import WsgiApp, health_only_app
from bot.work import Foreground

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from bot.app_factory import Bot

logger = logging.getLogger(__name__)

# Requests are short (listeners run on Bolt's own pool after the ack), so one process with
# threads serves concurrent Slack requests; one process also keeps SQLite writes in one place.
HTTP_THREADS = 32


class _Worker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's gthread worker, closing finished connections on the request's own thread.

    gunicorn 26+ closes a `Connection: close` connection by half-closing it and then reading
    until the client hangs up (at most 2 s, RFC 9112 section 9.6), and it does that on the
    worker's one main thread, which also accepts every new connection. One client that keeps
    its end open after reading the answer therefore stalls every other request for up to
    2 s (seen with gunicorn 27.0.1: a /healthz waited 1,957 ms behind such a client, 3 ms
    without it). Here the same graceful close runs on the pool thread that served the
    request, so only that thread waits; the main thread then only counts the connection as
    gone (`finish_request`), which keeps gunicorn's count of open connections right: its
    graceful stop waits on that count for the requests still in flight.

    It also counts the requests being answered for the bot's work queue (`Foreground`): from
    the moment a connection is handed to a thread until its answer is written.
    """

    _foreground = Foreground()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self._foreground = self.app.foreground()

    def enqueue_req(self, conn: Any) -> None:
        self._foreground.begin()
        try:
            super().enqueue_req(conn)
        except BaseException:
            self._foreground.end()
            raise

    def handle(self, conn: Any) -> Any:
        try:
            keep_alive = super().handle(conn)
        finally:
            self._foreground.end()
        if keep_alive is False:
            conn.close(graceful=True)
        return keep_alive

    def finish_request(self, conn: Any, fs: Future[Any]) -> None:
        if not fs.cancelled() and fs.exception() is None and fs.result() is False:
            # Closed by `handle`, on the pool thread; closing it again would fail and make
            # gunicorn count the connection twice.
            self.nr_conns -= 1
            return
        super().finish_request(conn, fs)


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn driven from code, so `python app.py` stays the one entry point."""

    def __init__(self, build: Callable[[], Bot], options: dict[str, Any]) -> None:
        self._build = build
        self._options = options
        self._bot: Bot | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)
        self.cfg.set("worker_exit", self._worker_exit)

    def load(self) -> WsgiApp:
        # Runs in the worker process, after the fork: build everything there.
        self._bot = self._build()
        return self._bot.wsgi

    def foreground(self) -> Foreground:
        """The bot's count of requests being answered (the worker keeps it)."""
        assert self._bot is not None, "load() builds the bot first"
        return self._bot.foreground

    def _worker_exit(self, server: Any, worker: Any) -> None:
        """On SIGTERM: requests are answered; now let accepted work (a drop) finish."""
        if self._bot is None:
            return
        logger.info("Stopping: finishing the requests in progress")
        self._bot.stop_background()
        if not self._bot.finish_work(timeout=25.0):
            logger.error("Some requests were still running after 25 s; they were cut off")


def serve_http(build: Callable[[], Bot], *, host: str, port: int) -> None:
    """Serve the bot built by `build` on host:port until stopped (SIGTERM/SIGINT)."""
    _Gunicorn(
        build,
        {
            "bind": f"{host}:{port}",
            "workers": 1,
            "worker_class": _Worker,
            "threads": HTTP_THREADS,
            "timeout": 60,
            "graceful_timeout": 30,
            "accesslog": None,
            "loglevel": "info",
            # gunicorn 27 otherwise opens a control socket in the working directory.
            "control_socket_disable": True,
        },
    ).run()


class AppTokenRejected(Exception):
    """Slack refused SLACK_APP_TOKEN: a configuration error, not an outage."""


# Errors from apps.connections.open that no amount of retrying will cure.
_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "not_allowed_token_type"}
)


def serve_socket_mode(bot: Bot, app_token: str, *, health_port: int | None = None) -> None:
    """Serve over Socket Mode until SIGTERM or SIGINT, then finish in-flight work and return.

    Slack being unreachable at start is retried (the bot keeps trying to connect); a token
    Slack refuses raises `AppTokenRejected`.
    """
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    handler = SocketModeHandler(bot.app, app_token)
    bot.services.health.slack_connected = lambda: bool(handler.client.is_connected())
    health_server = _serve_health(bot, health_port)
    delay = 1.0
    while not stop.is_set():
        try:
            handler.connect()  # type: ignore[no-untyped-call]
            break
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error in _TOKEN_ERRORS:
                raise AppTokenRejected(
                    f"Slack refused SLACK_APP_TOKEN ({error}). Create an app-level token with "
                    "the connections:write scope (Basic Information → App-Level Tokens)."
                ) from exc
            logger.warning("Slack did not open a Socket Mode connection (%s); retrying", error)
        except OSError as exc:
            logger.warning("Slack is unreachable (%s); retrying in %g s", exc, delay)
        stop.wait(delay)
        delay = min(delay * 2, 30.0)
    if not stop.is_set():
        logger.info("Connected to Slack over Socket Mode")
        stop.wait()
        logger.info("Stopping: no new requests; finishing those in progress")
        handler.close()  # type: ignore[no-untyped-call]
        bot.stop_background()
        if not bot.finish_work(timeout=30.0):
            logger.error("Some requests were still running after 30 s; they were cut off")
    if health_server is not None:
        health_server.shutdown()


def _serve_health(bot: Bot, port: int | None) -> WSGIServer | None:
    """In Socket Mode, `GET /healthz` on `port` reports the live Slack connection too."""
    if port is None:
        return None
    # Imported here: HTTP mode never needs them, and they cost its start about 50 ms.
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class _QuietThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class _QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """No access log for health checks."""

    try:
        server = make_server(
            "0.0.0.0",  # noqa: S104 - a health check is asked from outside the host
            port,
            health_only_app(bot.services.health.report),
            server_class=_QuietThreadingServer,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        logger.error("No /healthz in Socket Mode: port %s is not free (%s)", port, exc)
        return None
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    logger.info("Health check on port %s (GET /healthz)", port)
    return server

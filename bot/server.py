"""Run the bot: HTTP mode under granian, or Socket Mode.

HTTP mode serves the bot's WSGI app (`bot.web`) with granian, a well-kept HTTP server written
in Rust that runs WSGI apps unmodified; it was chosen over gunicorn by measurement (see
bench/README.md). One worker process, so the rate pacer and the OAuth token are shared by every
request and a SQLite file is written from one place; a pool of threads answers Slack.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.web import WsgiApp, health_only_app

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from bot.app_factory import Bot
    from bot.settings import Settings

logger = logging.getLogger(__name__)

# Threads answering Slack: an answer is a signature check and a few checks (the slow work
# runs on the work queue), so a few threads keep up with a burst on two cores; more would
# only share the interpreter lock.
HTTP_THREADS = 8
# On SIGTERM, work already accepted (a drop in flight) may take this long to finish...
DRAIN_SECONDS = 25.0
# ...and granian's parent kills a worker that is still running this long after SIGTERM.
KILL_AFTER_SECONDS = 35


def prepare_http(settings: Settings) -> None:
    """What the server's parent does before it starts the worker.

    The worker is forked from the parent, so what the parent imports here is shared and
    already loaded: the worker builds the bot in a few tens of milliseconds. A new database
    gets its schema here, once; a database that does not answer is left to the worker, which
    keeps trying. Last, everything the parent holds is frozen out of the garbage collector
    (`gc.freeze`, as Python's documentation advises before a fork), so the worker's full
    collections skip it and do not write to the pages the two processes share.
    """
    import gc

    import bot.app_factory  # noqa: F401 - imported for the worker to inherit
    import genesys.client  # noqa: F401 - likewise (the lean SDK loader and the client's modules)
    from bot.store import RequestStore

    RequestStore.from_url(settings.database_url).close()
    gc.freeze()


def serve_http(build: Callable[[], Bot], *, host: str, port: int) -> None:
    """Serve the bot built by `build` (in the worker) on host:port until SIGTERM or SIGINT.

    On either signal granian stops accepting, answers the requests it is reading, and lets
    the worker exit; the work already accepted then finishes (up to `DRAIN_SECONDS`).
    """
    import multiprocessing
    import multiprocessing.util

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces

    def load() -> WsgiApp:
        # Runs in the worker, after the fork.
        bot = build()
        # A forked worker ends through multiprocessing, which runs its finalizers (not
        # atexit): the hook for letting accepted work finish.
        multiprocessing.util.Finalize(None, _finisher(bot), exitpriority=100)
        return bot.wsgi

    # granian forks its worker (inheriting what `prepare_http` loaded); say so explicitly,
    # since Python's default start method is changing away from fork.
    multiprocessing.set_start_method("fork", force=True)
    server = Granian(
        "bot.web:unused",  # granian wants an import path; `load` provides the app instead
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=1,
        blocking_threads=HTTP_THREADS,
        http=HTTPModes.http1,
        workers_kill_timeout=KILL_AFTER_SECONDS,
        log_access=False,
    )
    server.serve(target_loader=load, wrap_loader=False)


def _finisher(bot: Bot) -> Callable[[], None]:
    def finish() -> None:
        logger.info("Stopping: finishing the requests in progress")
        bot.stop_background()
        if not bot.finish_work(timeout=DRAIN_SECONDS):
            logger.error(
                "Some requests were still running after %g s; they were cut off", DRAIN_SECONDS
            )

    return finish


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
    from slack_sdk.errors import SlackApiError

    from bot.socket_mode import SocketModeConnection

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    handler = SocketModeConnection(bot.app, app_token)
    bot.services.health.slack_connected = lambda: handler.connected
    health_server = _serve_health(bot, health_port)
    delay = 1.0
    while not stop.is_set():
        try:
            handler.connect()
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
        if not handler.close_within():
            logger.warning("Slack did not answer the close frame; stopping anyway")
        bot.stop_background()
        if not bot.finish_work(timeout=DRAIN_SECONDS):
            logger.error(
                "Some requests were still running after %g s; they were cut off", DRAIN_SECONDS
            )
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

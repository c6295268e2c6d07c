"""Build the Bolt app: one wiring point, no global app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from slack_bolt import App, Respond
from slack_sdk import WebClient

from bot import actions, commands
from bot.authorisation import Authoriser
from bot.services import CallDirectory, Services
from bot.settings import Settings
from bot.store import RequestStore

# Each listener holds a thread while it waits on Genesys; Bolt's default of 5 lets five slow
# lookups starve the sixth command's acknowledgement.
LISTENER_THREADS = 32


def create_app(
    settings: Settings,
    calls: CallDirectory,
    store: RequestStore,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> App:
    """A Bolt app with the command and button handlers attached."""
    client = WebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url or WebClient.BASE_URL
    )
    if not settings.supervisors:
        logging.getLogger(__name__).warning(
            "DROP_CALLER_SUPERVISORS is empty: nobody can drop callers "
            "until it lists Slack user IDs"
        )
    # Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the
    # client's token wins; it is the same token, so that warning only confuses operators.
    logging.getLogger("slack_bolt.App").addFilter(_drop_token_skipped_warning)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        # Socket Mode requests are not signed; HTTP requests always are.
        request_verification_enabled=settings.mode == "http",
        # Start even while Slack is unreachable; auth.test runs on the first request instead.
        token_verification_enabled=False,
        listener_executor=ThreadPoolExecutor(
            max_workers=LISTENER_THREADS, thread_name_prefix="bolt-listener"
        ),
    )
    services = Services(
        calls=calls,
        store=store,
        authoriser=Authoriser(supervisors=settings.supervisors, channels=settings.channels),
        default_region=settings.default_region,
        request_ttl=settings.request_ttl,
        now=now,
    )
    commands.register(app, services)
    actions.register(app, services)
    app.error(_report_unexpected_error)
    return app


def _report_unexpected_error(error: Exception, respond: Respond | None) -> None:
    """Log a bug with its traceback and tell the person it affected, instead of silence."""
    logging.getLogger(__name__).error("Unexpected error in a handler", exc_info=error)
    if respond is not None:
        respond(
            text=":x: The bot hit an internal error, which has been logged. "
            "Check the call in Genesys Cloud before trying again.",
            response_type="ephemeral",
            replace_original=False,
        )


def _drop_token_skipped_warning(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()

"""drop-caller: read the configuration, build the parts, start the chosen transport.

Heavy modules are imported where they are used. In HTTP mode, gunicorn's master imports the
Slack side (Bolt, SQLAlchemy) before it opens the port, so the worker it forks can answer the
first request at once; the Genesys SDK is loaded in the background in the worker, off the path
to readiness.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dotenv import find_dotenv, load_dotenv

from bot.redaction import configure_logging
from bot.settings import Mode, Settings, SettingsError, load_settings
from sandbox import slack_configured

if TYPE_CHECKING:
    from bot.app_factory import Bot
    from bot.store import RequestStore
    from genesys.client import GenesysCalls
    from genesys.deferred import DeferredGenesysCalls


# A new process gives its first quarter second to answering Slack: the Genesys client is
# built then (or as soon as a look-up needs it), and the background work starts then.
SETTLE_SECONDS = 0.25


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad configuration)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["audit"]:
        return audit(args_list[1:])
    parser = argparse.ArgumentParser(
        description="drop-caller Slack bot. `python app.py audit --help` exports the audit trail."
    )
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--http", dest="mode", action="store_const", const="http")
    transport.add_argument("--socket", dest="mode", action="store_const", const="socket")
    transport.add_argument(
        "--sandbox", action="store_true", help="simulated Slack and Genesys Cloud, in a browser"
    )
    args = parser.parse_args(args_list)
    mode: Mode | None = args.mode

    # The real environment wins over .env.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    # No Slack credentials at all (and no mode forced): show the sandbox instead of failing.
    if args.sandbox or (mode is None and not slack_configured(os.environ)):
        from sandbox.server import run_sandbox

        return run_sandbox()
    try:
        settings = load_settings(os.environ, mode=mode)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets)

    if settings.mode == "http":
        from bot.server import serve_http

        prepare_http(settings)
        # The master has prepared the schema, or found the database unreachable: either way
        # the worker does not wait for the database before it serves (its store tries again
        # on first use), so Slack's requests are answered even while the database is down.
        serve_http(
            lambda: build_bot(settings, prepare_schema=False),
            host="0.0.0.0",  # noqa: S104
            port=settings.port,
        )
        return 0

    from bot.server import AppTokenRejected, serve_socket_mode

    assert settings.slack_app_token is not None
    bot = build_bot(settings)
    try:
        serve_socket_mode(bot, settings.slack_app_token, health_port=settings.port)
    except AppTokenRejected as exc:
        print(f"drop-caller cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def audit(argv: Sequence[str]) -> int:
    """`python app.py audit`: print the audit trail; needs only DATABASE_URL."""
    from bot.audit import parse_moment, write_records
    from bot.errors import StoreUnavailable
    from bot.store import RequestStore

    parser = argparse.ArgumentParser(
        prog="app.py audit", description="Export the drop-caller audit trail to stdout."
    )
    parser.add_argument("--since", type=parse_moment, help="from this ISO date/time (UTC)")
    parser.add_argument("--until", type=parse_moment, help="before this ISO date/time (UTC)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    args = parser.parse_args(argv)
    load_dotenv(find_dotenv(usecwd=True), override=False)
    store = RequestStore.from_url(os.environ.get("DATABASE_URL") or "sqlite:///drop_caller.db")
    try:
        records = store.audit_records(args.since, args.until)
    except StoreUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    write_records(records, args.format, sys.stdout)
    return 0


def build_parts(
    settings: Settings, *, prepare_schema: bool = True
) -> tuple[RequestStore, DeferredGenesysCalls]:
    """The request store, and the Genesys client (built in the background).

    With `prepare_schema`, the store checks (or makes) the schema now, waiting for the
    database; without, on its first use.
    """
    from bot.store import RequestStore
    from genesys.deferred import DeferredGenesysCalls

    def genesys_client() -> GenesysCalls:
        from genesys.client import GenesysCalls

        return GenesysCalls(settings.genesys_config())

    calls = DeferredGenesysCalls(genesys_client, start_after=SETTLE_SECONDS)
    return RequestStore.from_url(settings.database_url, prepare=prepare_schema), calls


def prepare_http(settings: Settings) -> None:
    """What gunicorn's master does before it opens the port and forks the worker.

    The worker inherits these modules, so building the bot after the fork takes milliseconds
    and a command that arrives as the port opens is answered at once, not after the worker
    has spent half a second importing. A new database gets its schema here, once; a database
    that does not answer is left to the worker, which keeps trying.

    Last, everything the master holds is frozen out of the garbage collector (`gc.freeze`, as
    Python's documentation advises before a fork): the worker's full collections then skip
    those objects, which took one of them from 70-77 ms to 15 ms (a stall every request in
    flight waited through), and no longer write to the pages the two processes share.
    """
    import gc

    import bot.app_factory  # noqa: F401 - imported for the worker to inherit
    from bot.store import RequestStore

    RequestStore.from_url(settings.database_url).close()
    # No gc.collect() first: it would cost the start about 18 ms for a few kilobytes.
    gc.freeze()


def build_bot(settings: Settings, *, prepare_schema: bool = True) -> Bot:
    """The bot, with its background work started (see `build_parts` for `prepare_schema`)."""
    from bot.app_factory import create_bot

    store, calls = build_parts(settings, prepare_schema=prepare_schema)
    bot = create_bot(settings, calls, store)
    bot.start_background(after=SETTLE_SECONDS)
    return bot


if __name__ == "__main__":
    sys.exit(main())

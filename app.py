"""drop-caller: read the configuration, build the parts, start the chosen transport."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dotenv import find_dotenv, load_dotenv

from bot.app_factory import create_app
from bot.redaction import configure_logging
from bot.settings import Mode, Settings, SettingsError, load_settings
from bot.store import RequestStore
from bot.web import WsgiApp, health_report, wsgi_app

if TYPE_CHECKING:
    from genesys.client import GenesysCalls


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad configuration)."""
    parser = argparse.ArgumentParser(description="drop-caller Slack bot")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--http", dest="mode", action="store_const", const="http")
    transport.add_argument("--socket", dest="mode", action="store_const", const="socket")
    args = parser.parse_args(argv)
    mode: Mode | None = args.mode

    # The real environment wins over .env.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    try:
        settings = load_settings(os.environ, mode=mode)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets)

    from bot.server import serve_http, serve_socket_mode

    if settings.mode == "http":
        serve_http(lambda: build_http_app(settings), host="0.0.0.0", port=settings.port)  # noqa: S104
    else:
        assert settings.slack_app_token is not None
        store, calls = build_parts(settings)
        serve_socket_mode(create_app(settings, calls, store), settings.slack_app_token)
    return 0


def build_parts(settings: Settings) -> tuple[RequestStore, GenesysCalls]:
    """The request store and the Genesys client."""
    # Imported here: the SDK takes about two seconds to import, which a configuration
    # error should not have to wait for.
    from genesys.client import GenesysCalls, GenesysConfig

    store = RequestStore.from_url(settings.database_url)
    calls = GenesysCalls(
        GenesysConfig(
            api_host=settings.genesys_api_host,
            client_id=settings.genesys_client_id,
            client_secret=settings.genesys_client_secret,
            read_timeout=settings.genesys_timeout,
        )
    )
    return store, calls


def build_http_app(settings: Settings) -> WsgiApp:
    """The WSGI application for HTTP mode."""
    store, calls = build_parts(settings)
    app = create_app(settings, calls, store)
    return wsgi_app(app, lambda: health_report(store.ping, lambda: calls.last_contact))


if __name__ == "__main__":
    sys.exit(main())

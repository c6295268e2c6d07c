"""drop-caller: read the configuration, build the parts, start the chosen transport.

Wiring only: `bot.app_factory` builds the bot, `bot.server` serves it, `bot.check` checks
the configuration, `bot.audit` exports the audit trail, `sandbox.server` runs the sandbox.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dotenv import find_dotenv, load_dotenv

from bot.redaction import configure_logging
from bot.settings import Mode, SettingsError, load_settings
from sandbox import slack_configured


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad configuration)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The real environment wins over .env.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    if args_list[:1] == ["audit"]:
        from bot.audit import export

        return export(args_list[1:])
    if args_list[:1] == ["check"]:
        from bot.check import main as check

        return check(args_list[1:])
    parser = argparse.ArgumentParser(
        description="drop-caller Slack bot. `python app.py check` checks the configuration "
        "against the services; `python app.py audit --help` exports the audit trail."
    )
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--http", dest="mode", action="store_const", const="http")
    transport.add_argument("--socket", dest="mode", action="store_const", const="socket")
    transport.add_argument(
        "--sandbox", action="store_true", help="simulated Slack and Genesys Cloud, in a browser"
    )
    args = parser.parse_args(args_list)
    mode: Mode | None = args.mode

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

    from bot.app_factory import build_bot

    if settings.mode == "http":
        from bot.server import prepare_http, serve_http

        prepare_http(settings)
        # The parent has prepared the schema, or found the database unreachable: either way
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
    try:
        serve_socket_mode(build_bot(settings), settings.slack_app_token, health_port=settings.port)
    except AppTokenRejected as exc:
        print(f"drop-caller cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

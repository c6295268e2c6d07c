"""`python app.py check`: the configuration checked against the real services, before anyone
relies on it. Nothing is changed anywhere: no message is posted, no call is touched, no
schema is migrated.

Prints a table (each check, ✓ or ✗, and for each ✗ the fix), or JSON with `--json`; exits 0
when everything required passes, 1 otherwise. The Genesys probes are `genesys.probes`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.publisher import SLACK_TIMEOUT
from bot.schema import SCHEMA_HEAD, create_engine, schema_version
from bot.settings import Settings, SettingsError, load_settings
from genesys.probes import Features, Status

# Every revision this bot knows how to migrate from (bot/migrations/versions).
_KNOWN_REVISIONS = frozenset(
    path.name[:4]
    for path in (Path(__file__).parent / "migrations" / "versions").glob("[0-9]*_*.py")
)
_MARKS = {
    Status.OK: "✓",
    Status.FAIL: "✗",
    Status.WARN: "!",
    Status.NOT_CHECKABLE: "?",
}


@dataclass(frozen=True)
class Result:
    """One line of the table."""

    area: str
    check: str
    status: Status
    detail: str


def main(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> int:
    """Run every check, print the table (or JSON), and return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python app.py check",
        description="Check the configuration against Genesys Cloud, Slack and the database.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(list(argv))
    # The table says what the log would (a source refused, say), with the fix.
    logging.basicConfig(level=logging.ERROR)
    results = run_checks(environ)
    print(as_json(results) if args.json else as_table(results))
    return 1 if any(r.status == Status.FAIL for r in results) else 0


def run_checks(environ: Mapping[str, str]) -> list[Result]:
    """The configuration first (nothing else can be checked without it), then Genesys,
    Slack and the database."""
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        return [Result("Configuration", "settings", Status.FAIL, p) for p in exc.problems]
    mode = "Socket Mode" if settings.mode == "socket" else "HTTP mode"
    results = [Result("Configuration", "settings", Status.OK, f"every setting is valid ({mode})")]
    results += check_genesys(settings)
    results += check_slack(settings)
    results += check_database(settings.database_url)
    return results


def check_genesys(settings: Settings) -> list[Result]:
    """Sign in and probe each permission the enabled features need (`genesys.probes`)."""
    from genesys.client import GenesysCalls  # loads the SDK: only when checking

    features = Features(
        blocklist_table=settings.blocklist_table,
        teardown=settings.allow_teardown,
        write_back=settings.write_back and not settings.dry_run,
    )
    calls = GenesysCalls(settings.genesys_config())
    return [
        Result("Genesys Cloud", probe.check, probe.status, probe.detail)
        for probe in calls.probe_access(features)
    ]


def check_slack(settings: Settings) -> list[Result]:
    """The bot token, its scopes, the app token (Socket Mode) and the audit channel."""
    base_url = settings.slack_api_url or WebClient.BASE_URL
    client = WebClient(token=settings.slack_bot_token, base_url=base_url, timeout=SLACK_TIMEOUT)
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        return [_token_refused(_error(exc))]
    except OSError as exc:
        return [Result("Slack", "bot token", Status.FAIL, f"Slack did not answer ({exc}).")]
    results = [
        Result(
            "Slack",
            "bot token",
            Status.OK,
            f"valid: bot @{answer.get('user')} in {answer.get('team')}",
        )
    ]
    granted = _granted_scopes(answer.headers)
    needed = {"commands": "to receive /drop-caller", "chat:write": "to post and update cards"}
    if settings.supervisor_groups:
        needed["usergroups:read"] = "to read DROP_CALLER_SUPERVISORS' user groups"
    for scope, why in needed.items():
        if scope in granted:
            results.append(Result("Slack", f"scope {scope}", Status.OK, why))
        else:
            results.append(
                Result(
                    "Slack",
                    f"scope {scope}",
                    Status.FAIL,
                    f"missing ({why}). Add it under OAuth & Permissions → Bot Token Scopes "
                    "(manifest.yml lists it), then reinstall the app.",
                )
            )
    if settings.mode == "socket":
        results.append(_check_app_token(settings, base_url))
    else:
        results.append(
            Result(
                "Slack",
                "signing secret",
                Status.NOT_CHECKABLE,
                "only Slack's own requests can tell: run /drop-caller status once the bot "
                "runs (a wrong secret gets 401 and Slack says the command failed)",
            )
        )
    if settings.audit_channel:
        results.append(_check_audit_channel(client, settings.audit_channel, granted))
    return results


def check_database(url: str) -> list[Result]:
    """Reachable, and its schema one this bot uses or migrates at start (never migrated
    here)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            writable = os.access(path.parent if str(path.parent) else ".", os.W_OK)
            return [
                Result(
                    "Database",
                    "reachable",
                    Status.OK if writable else Status.FAIL,
                    f"{path} does not exist yet: the bot creates it at start"
                    if writable
                    else f"{path.parent} is not writable: the bot cannot create {path.name}",
                )
            ]
    engine = create_engine(url)
    try:
        version = schema_version(engine)
    except Exception as exc:  # noqa: BLE001 - any driver error means "not reachable"
        reason = str(exc).splitlines()[0][:200]
        return [
            Result(
                "Database",
                "reachable",
                Status.FAIL,
                f"no answer ({reason}). Check DATABASE_URL and that the server runs.",
            )
        ]
    finally:
        engine.dispose()
    results = [Result("Database", "reachable", Status.OK, "answers")]
    if version == SCHEMA_HEAD:
        results.append(Result("Database", "schema", Status.OK, f"current ({version})"))
    elif version is None or version in _KNOWN_REVISIONS:
        results.append(
            Result(
                "Database",
                "schema",
                Status.OK,
                f"at {version or 'none yet'}: the bot brings it to {SCHEMA_HEAD} at start, "
                "keeping every row",
            )
        )
    else:
        results.append(
            Result(
                "Database",
                "schema",
                Status.FAIL,
                f"at {version}, which this bot does not know (its newest is {SCHEMA_HEAD}): "
                "a newer drop-caller made it. Run that version, or a newer one.",
            )
        )
    return results


def as_table(results: list[Result]) -> str:
    """The human-readable table, with a summary line first."""
    counts = {status: sum(r.status == status for r in results) for status in Status}
    summary = (
        f"drop-caller check: {counts[Status.OK]} passed, {counts[Status.FAIL]} failed, "
        f"{counts[Status.WARN]} optional not working, {counts[Status.NOT_CHECKABLE]} not "
        "checkable"
    )
    width = max(len(f"{r.area}: {r.check}") for r in results)
    lines = [summary, ""]
    for result in results:
        name = f"{result.area}: {result.check}"
        lines.append(f"{_MARKS[result.status]}  {name:<{width}}  {result.detail}")
    verdict = (
        "Fix each ✗ above, then run the check again."
        if counts[Status.FAIL]
        else "Everything required works."
    )
    lines += ["", verdict, "✓ works  ✗ needs fixing  ! optional, not working  ? not checkable"]
    return "\n".join(lines)


def as_json(results: list[Result]) -> str:
    """The results for machines: {"ok": …, "checks": [{area, check, status, detail}]}."""
    return json.dumps(
        {
            "ok": not any(r.status == Status.FAIL for r in results),
            "checks": [asdict(r) | {"status": r.status.value} for r in results],
        },
        ensure_ascii=False,
        indent=2,
    )


# ---------------------------------------------------------------------------- internals


def _token_refused(error: str) -> Result:
    fixes: dict[str, str] = {
        "invalid_auth": "SLACK_BOT_TOKEN is not valid: copy the Bot User OAuth Token (xoxb-…) "
        "from the app's Install App page.",
        "not_authed": "SLACK_BOT_TOKEN is empty.",
        "account_inactive": "the app was uninstalled or its bot deactivated: reinstall it.",
        "token_revoked": "the token was revoked: reinstall the app and copy the new token.",
    }
    detail = fixes.get(error, f"Slack refused it ({error}).")
    return Result("Slack", "bot token", Status.FAIL, detail)


def _check_app_token(settings: Settings, base_url: str) -> Result:
    """apps.connections.open gives a Socket Mode URL for a good app token; the URL is not
    used, so no connection is opened (one would take a share of Slack's events)."""
    app = WebClient(token=settings.slack_app_token, base_url=base_url, timeout=SLACK_TIMEOUT)
    try:
        app.apps_connections_open(app_token=settings.slack_app_token or "")
    except SlackApiError as exc:
        error = _error(exc)
        fix = {
            "invalid_auth": "SLACK_APP_TOKEN is not valid: generate an app-level token with "
            "connections:write under Basic Information → App-Level Tokens.",
            "not_allowed_token_type": "SLACK_APP_TOKEN must be an app-level token (xapp-…).",
        }.get(error, f"Slack refused it ({error}): check that Socket Mode is enabled.")
        return Result("Slack", "Socket Mode (app token)", Status.FAIL, fix)
    except OSError as exc:
        return Result("Slack", "Socket Mode (app token)", Status.FAIL, f"no answer ({exc})")
    return Result("Slack", "Socket Mode (app token)", Status.OK, "Slack offers a connection")


def _check_audit_channel(client: WebClient, channel: str, granted: set[str]) -> Result:
    check = f"member of the audit channel {channel}"
    if not {"channels:read", "groups:read"} & granted:
        return Result(
            "Slack",
            check,
            Status.NOT_CHECKABLE,
            "grant channels:read (groups:read for a private channel) to check it; meanwhile "
            f"make sure the bot was invited: /invite @drop-caller in {channel}",
        )
    try:
        info = client.conversations_info(channel=channel)
    except SlackApiError as exc:
        error = _error(exc)
        if error == "channel_not_found":
            return Result(
                "Slack",
                check,
                Status.FAIL,
                f"Slack has no channel {channel} the bot can see. Check "
                "DROP_CALLER_AUDIT_CHANNEL (a channel ID, C…); for a private channel, invite "
                "the bot first (/invite @drop-caller).",
            )
        return Result("Slack", check, Status.NOT_CHECKABLE, f"Slack said {error}.")
    except OSError as exc:
        return Result("Slack", check, Status.FAIL, f"Slack did not answer ({exc}).")
    found: dict[str, Any] = info.get("channel") or {}
    if found.get("is_member"):
        return Result("Slack", check, Status.OK, "the bot is in it")
    return Result(
        "Slack",
        check,
        Status.FAIL,
        "the bot is not in it, so audit lines cannot be posted: type /invite @drop-caller "
        "in that channel.",
    )


def _granted_scopes(headers: Mapping[str, Any]) -> set[str]:
    for name, value in headers.items():
        if name.lower() == "x-oauth-scopes":
            text = value[0] if isinstance(value, list) else value
            return {scope.strip() for scope in str(text).split(",") if scope.strip()}
    return set()


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error")) if exc.response is not None else "error"

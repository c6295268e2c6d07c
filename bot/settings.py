"""Configuration, read once from an environment mapping into a typed object.

Every missing or invalid variable is reported together (`SettingsError`), and secrets never
appear in `repr()` or messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import phonenumbers

from bot.errors import PhoneNumberError
from bot.phone import parse_phone_number
from genesys.config import GenesysConfig
from genesys.regions import RegionError, resolve_api_host

SUPPORTED = phonenumbers.SUPPORTED_REGIONS

Mode = Literal["http", "socket"]

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_SUPERVISOR_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class SettingsError(Exception):
    """One or more configuration problems; `problems` lists each as a sentence."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"drop-caller cannot start; fix the configuration (.env):\n{lines}")


# How the block list's key writes a number: as the ani-blacklist blueprint does, or with "+"
# or "tel:+" (bot.blocking).
KEY_FORMATS = ("e164_no_plus", "e164", "tel")
_TABLE_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment."""

    mode: Mode
    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str | None = field(repr=False)
    slack_app_token: str | None = field(repr=False)
    slack_api_url: str | None
    genesys_api_host: str
    genesys_client_id: str
    genesys_client_secret: str = field(repr=False)
    genesys_timeout: float
    genesys_requests_per_minute: int
    supervisors: frozenset[str]
    supervisor_groups: frozenset[str]
    channels: frozenset[str] | None
    default_region: str
    request_ttl: int
    database_url: str = field(repr=False)
    port: int
    log_level: str
    two_person: bool = False
    allow_teardown: bool = False
    require_reason: bool = False
    write_back: bool = True
    blocklist_table: str | None = None
    blocklist_key_format: str = "e164_no_plus"
    block_days: float = 7.0
    dry_run: bool = False
    protected_numbers: frozenset[str] = frozenset()
    audit_channel: str | None = None
    sweep_interval: float = 15.0
    catch_up_after: float = 30.0

    def genesys_config(self, **changes: Any) -> GenesysConfig:
        """The Genesys client's configuration (the one place it is made from settings);
        `changes` override fields, for tests that want shorter waits."""
        return replace(
            GenesysConfig(
                api_host=self.genesys_api_host,
                client_id=self.genesys_client_id,
                client_secret=self.genesys_client_secret,
                read_timeout=self.genesys_timeout,
                requests_per_minute=self.genesys_requests_per_minute,
            ),
            **changes,
        )

    @property
    def secrets(self) -> list[str]:
        """Every secret value, for the log filter to blank out."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.genesys_client_secret,
            urlsplit(self.database_url).password,
        ]
        return [v for v in values if v]


def load_settings(environ: Mapping[str, str], *, mode: Mode | None = None) -> Settings:
    """Read and check the configuration; raise `SettingsError` naming every problem.

    `mode` forces a transport; without it Socket Mode is used when `SLACK_APP_TOKEN` is set,
    HTTP mode otherwise.
    """
    problems: list[str] = []

    def get(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    def require(name: str, what: str) -> str:
        value = get(name)
        if value is None:
            problems.append(f"{name} is not set: {what}.")
            return ""
        return value

    app_token = get("SLACK_APP_TOKEN")
    signing_secret = get("SLACK_SIGNING_SECRET")
    chosen: Mode = mode or ("socket" if app_token else "http")

    bot_token = require("SLACK_BOT_TOKEN", "the Bot User OAuth Token (xoxb-…) from the Slack app")
    if bot_token and not bot_token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
    if chosen == "socket":
        if app_token is None:
            problems.append(
                "SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-…) "
                "with the connections:write scope."
            )
        elif not app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-.")
    elif signing_secret is None:
        problems.append(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs the app's Signing Secret "
            "(or set SLACK_APP_TOKEN to use Socket Mode)."
        )

    client_id = require("GENESYS_CLIENT_ID", "the Genesys Cloud OAuth client id")
    client_secret = require("GENESYS_CLIENT_SECRET", "the Genesys Cloud OAuth client secret")
    api_host = ""
    try:
        api_host = resolve_api_host(get("GENESYS_REGION"), get("GENESYS_API_URL"))
    except RegionError as exc:
        problems.append(f"{exc}.")

    supervisors = _id_list(get("DROP_CALLER_SUPERVISORS"), _SUPERVISOR_ID)
    if supervisors.invalid:
        problems.append(
            "DROP_CALLER_SUPERVISORS must list Slack user IDs (U012ABCDEF) or user-group IDs "
            f"(S012ABCDEF), comma-separated; these are not: {', '.join(supervisors.invalid)}."
        )
    channels = _id_list(get("DROP_CALLER_CHANNELS"), _CHANNEL_ID)
    if channels.invalid:
        problems.append(
            "DROP_CALLER_CHANNELS must list Slack channel IDs such as C012ABCDEF, "
            f"comma-separated; these are not: {', '.join(channels.invalid)}."
        )

    default_region = (get("DROP_CALLER_DEFAULT_REGION") or "US").upper()
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(
            f"DROP_CALLER_DEFAULT_REGION {default_region!r} is not a two-letter region code "
            "such as US, GB or AU."
        )
    ttl = _positive_int(get("DROP_CALLER_REQUEST_TTL"), 300, "DROP_CALLER_REQUEST_TTL", problems)
    port = _positive_int(get("PORT"), 3000, "PORT", problems)
    if port > 65535:
        problems.append(f"PORT must be at most 65535, got {port}.")
    timeout = _positive_float(get("GENESYS_TIMEOUT"), 10.0, "GENESYS_TIMEOUT", problems)
    rate = _positive_int(
        get("GENESYS_REQUESTS_PER_MINUTE"), 300, "GENESYS_REQUESTS_PER_MINUTE", problems
    )
    log_level = (get("LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR.")
    two_person = _flag(get("DROP_CALLER_TWO_PERSON"), "DROP_CALLER_TWO_PERSON", problems)
    allow_teardown = _flag(
        get("DROP_CALLER_ALLOW_TEARDOWN"), "DROP_CALLER_ALLOW_TEARDOWN", problems
    )
    dry_run = _flag(get("DROP_CALLER_DRY_RUN"), "DROP_CALLER_DRY_RUN", problems)
    require_reason = _flag(
        get("DROP_CALLER_REQUIRE_REASON"), "DROP_CALLER_REQUIRE_REASON", problems
    )
    write_back = _flag(get("DROP_CALLER_WRITE_BACK") or "true", "DROP_CALLER_WRITE_BACK", problems)
    blocklist_table = get("DROP_CALLER_BLOCKLIST_TABLE")
    if blocklist_table and not _TABLE_ID.match(blocklist_table):
        problems.append(
            "DROP_CALLER_BLOCKLIST_TABLE must be a data table id (a UUID, from Architect > Data "
            f"Tables), got {blocklist_table!r}."
        )
    key_format = (get("DROP_CALLER_BLOCKLIST_KEY_FORMAT") or "e164_no_plus").lower()
    if key_format not in KEY_FORMATS:
        problems.append(
            "DROP_CALLER_BLOCKLIST_KEY_FORMAT must be e164_no_plus (15551234567), e164 "
            f"(+15551234567) or tel (tel:+15551234567), got {key_format!r}."
        )
    block_days = _non_negative_float(
        get("DROP_CALLER_BLOCK_DAYS"), 7.0, "DROP_CALLER_BLOCK_DAYS", problems
    )
    protected = _protected_numbers(get("DROP_CALLER_PROTECTED_NUMBERS"), default_region, problems)
    audit_channel = get("DROP_CALLER_AUDIT_CHANNEL")
    if audit_channel and not _CHANNEL_ID.match(audit_channel):
        problems.append(
            f"DROP_CALLER_AUDIT_CHANNEL must be a channel ID such as C012ABCDEF, "
            f"got {audit_channel!r}."
        )
    sweep_interval = _positive_float(
        get("DROP_CALLER_SWEEP_INTERVAL"), 15.0, "DROP_CALLER_SWEEP_INTERVAL", problems
    )
    catch_up_after = _positive_float(
        get("DROP_CALLER_CATCH_UP_AFTER"), 30.0, "DROP_CALLER_CATCH_UP_AFTER", problems
    )
    database_url = get("DATABASE_URL") or "sqlite:///drop_caller.db"
    if not database_url.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
        problems.append("DATABASE_URL must be a sqlite:/// or postgresql:// URL.")
    elif database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        folder = Path(database_url.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            problems.append(
                f"DATABASE_URL points into {str(folder)!r}, which is not an existing folder."
            )
    slack_api_url = get("SLACK_API_URL")
    if slack_api_url and not slack_api_url.startswith(("http://", "https://")):
        problems.append("SLACK_API_URL must be an http(s) URL such as https://slack.com/api/.")

    if problems:
        raise SettingsError(problems)
    return Settings(
        mode=chosen,
        slack_bot_token=bot_token,
        slack_signing_secret=signing_secret,
        slack_app_token=app_token,
        slack_api_url=_with_slash(slack_api_url),
        genesys_api_host=api_host,
        genesys_client_id=client_id,
        genesys_client_secret=client_secret,
        genesys_timeout=timeout,
        genesys_requests_per_minute=rate,
        supervisors=frozenset(i for i in supervisors.valid if _USER_ID.match(i)),
        supervisor_groups=frozenset(i for i in supervisors.valid if _GROUP_ID.match(i)),
        channels=frozenset(channels.valid) if channels.valid else None,
        default_region=default_region,
        request_ttl=ttl,
        database_url=database_url,
        port=port,
        log_level=log_level,
        two_person=two_person,
        allow_teardown=allow_teardown,
        require_reason=require_reason,
        write_back=write_back,
        blocklist_table=blocklist_table.lower() if blocklist_table else None,
        blocklist_key_format=key_format,
        block_days=block_days,
        dry_run=dry_run,
        protected_numbers=protected,
        audit_channel=audit_channel,
        sweep_interval=sweep_interval,
        catch_up_after=catch_up_after,
    )


@dataclass(frozen=True)
class _IdList:
    valid: list[str]
    invalid: list[str]


def _id_list(raw: str | None, pattern: re.Pattern[str]) -> _IdList:
    items = [item.strip() for item in (raw or "").split(",") if item.strip()]
    return _IdList(
        valid=[i for i in items if pattern.match(i)],
        invalid=[i for i in items if not pattern.match(i)],
    )


def _flag(raw: str | None, name: str, problems: list[str]) -> bool:
    if raw is None or raw.lower() in _FALSE:
        return False
    if raw.lower() in _TRUE:
        return True
    problems.append(f"{name} must be true or false, got {raw!r}.")
    return False


def _protected_numbers(raw: str | None, region: str, problems: list[str]) -> frozenset[str]:
    numbers: set[str] = set()
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        try:
            numbers.add(parse_phone_number(item, region if region in SUPPORTED else "US"))
        except PhoneNumberError:
            problems.append(
                f"DROP_CALLER_PROTECTED_NUMBERS has {item.strip()!r}, which is not a phone number."
            )
    return frozenset(numbers)


def _positive_int(raw: str | None, default: int, name: str, problems: list[str]) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number, got {raw!r}.")
        return default
    if value <= 0:
        problems.append(f"{name} must be greater than zero, got {value}.")
    return value


def _positive_float(raw: str | None, default: float, name: str, problems: list[str]) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number of seconds, got {raw!r}.")
        return default
    if value <= 0:
        problems.append(f"{name} must be greater than zero, got {value:g}.")
    return value


def _non_negative_float(raw: str | None, default: float, name: str, problems: list[str]) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number, got {raw!r}.")
        return default
    if value < 0 or value != value:  # NaN is not a duration
        problems.append(f"{name} must be zero or more, got {raw!r}.")
        return default
    return value


def _with_slash(url: str | None) -> str | None:
    if url is None:
        return None
    return url if url.endswith("/") else url + "/"

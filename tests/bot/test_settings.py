"""bot.settings.load_settings: typed configuration, every problem reported at once."""

from __future__ import annotations

import pytest

from bot.settings import Mode, SettingsError, load_settings

BOT_TOKEN = "xoxb-1111-2222-BotTokenSecretValue"
APP_TOKEN = "xapp-1-A0123-3333-AppTokenSecretValue"
SIGNING_SECRET = "signing-secret-value-0123456789ab"
CLIENT_SECRET = "genesys-client-secret-value-XYZ"
DB_PASSWORD = "db-password-value-987"
ALL_SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, CLIENT_SECRET, DB_PASSWORD)


def http_env(**overrides: str) -> dict[str, str]:
    """A complete HTTP-mode environment, with some variables replaced or added."""
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "GENESYS_CLIENT_ID": "genesys-client-id",
        "GENESYS_CLIENT_SECRET": CLIENT_SECRET,
        "DROP_CALLER_SUPERVISORS": "U012ABCDEF, W0XYZ123",
    }
    env.update(overrides)
    return env


def problems_of(env: dict[str, str], mode: Mode | None = None) -> list[str]:
    """The problems load_settings reports for this environment (it must refuse it)."""
    with pytest.raises(SettingsError) as caught:
        load_settings(env, mode=mode)
    return caught.value.problems


def test_complete_http_environment_loads_with_defaults() -> None:
    """A complete HTTP-mode env loads, with the documented defaults for everything else."""
    settings = load_settings(http_env())
    assert settings.mode == "http"
    assert settings.slack_bot_token == BOT_TOKEN
    assert settings.slack_signing_secret == SIGNING_SECRET
    assert settings.slack_app_token is None
    assert settings.default_region == "US"
    assert settings.request_ttl == 300
    assert settings.database_url == "sqlite:///drop_caller.db"
    assert settings.port == 3000
    assert settings.genesys_api_host == "https://api.mypurecloud.com"
    assert settings.genesys_timeout == 10.0
    assert settings.log_level == "INFO"
    assert settings.supervisors == frozenset({"U012ABCDEF", "W0XYZ123"})
    assert settings.channels is None
    assert settings.slack_api_url is None


def test_values_are_read_and_normalised() -> None:
    """Set values are read: region upper-cased, channels parsed, Slack API URL gets a slash."""
    settings = load_settings(
        http_env(
            DROP_CALLER_DEFAULT_REGION="gb",
            DROP_CALLER_REQUEST_TTL="120",
            DROP_CALLER_CHANNELS="C0123ABC,G0456DEF",
            PORT="8080",
            LOG_LEVEL="debug",
            GENESYS_TIMEOUT="2.5",
            SLACK_API_URL="http://127.0.0.1:9999/api",
            DATABASE_URL="postgresql://bot@db/drop",
        )
    )
    assert settings.default_region == "GB"
    assert settings.request_ttl == 120
    assert settings.channels == frozenset({"C0123ABC", "G0456DEF"})
    assert settings.port == 8080
    assert settings.log_level == "DEBUG"
    assert settings.genesys_timeout == 2.5
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"
    assert settings.database_url == "postgresql://bot@db/drop"


def test_app_token_selects_socket_mode() -> None:
    """With SLACK_APP_TOKEN set, Socket Mode is chosen and no signing secret is needed."""
    env = http_env(SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]
    settings = load_settings(env)
    assert settings.mode == "socket"
    assert settings.slack_app_token == APP_TOKEN
    assert settings.slack_signing_secret is None


def test_mode_argument_forces_http_even_with_an_app_token() -> None:
    """mode="http" wins over SLACK_APP_TOKEN, and then the signing secret is required."""
    assert load_settings(http_env(SLACK_APP_TOKEN=APP_TOKEN), mode="http").mode == "http"
    env = http_env(SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]
    problems = problems_of(env, mode="http")
    assert len(problems) == 1
    assert "SLACK_SIGNING_SECRET" in problems[0]


def test_mode_argument_forces_socket_mode_which_needs_an_app_token() -> None:
    """mode="socket" without SLACK_APP_TOKEN is a problem naming SLACK_APP_TOKEN."""
    problems = problems_of(http_env(), mode="socket")
    assert len(problems) == 1
    assert "SLACK_APP_TOKEN" in problems[0]
    assert load_settings(http_env(SLACK_APP_TOKEN=APP_TOKEN), mode="socket").mode == "socket"


def test_an_empty_environment_reports_every_missing_variable_at_once() -> None:
    """Nothing set: one SettingsError lists each missing variable."""
    with pytest.raises(SettingsError) as caught:
        load_settings({})
    problems = caught.value.problems
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "GENESYS_CLIENT_ID",
        "GENESYS_CLIENT_SECRET",
    ):
        assert sum(name in p for p in problems) == 1, name
        assert name in str(caught.value)
    assert len(problems) == 4


def test_blank_values_count_as_missing() -> None:
    """Whitespace-only values are reported as not set."""
    problems = problems_of(http_env(SLACK_BOT_TOKEN="   ", GENESYS_CLIENT_ID="\t"))
    assert len(problems) == 2
    assert any(p.startswith("SLACK_BOT_TOKEN is not set") for p in problems)
    assert any(p.startswith("GENESYS_CLIENT_ID is not set") for p in problems)


INVALID = [
    ("PORT", "abc", "PORT"),
    ("PORT", "0", "PORT"),
    ("PORT", "70000", "PORT"),
    ("DROP_CALLER_REQUEST_TTL", "0", "DROP_CALLER_REQUEST_TTL"),
    ("DROP_CALLER_REQUEST_TTL", "-5", "DROP_CALLER_REQUEST_TTL"),
    ("DROP_CALLER_REQUEST_TTL", "five minutes", "DROP_CALLER_REQUEST_TTL"),
    ("DROP_CALLER_DEFAULT_REGION", "ZZ", "DROP_CALLER_DEFAULT_REGION"),
    ("DROP_CALLER_DEFAULT_REGION", "USA", "DROP_CALLER_DEFAULT_REGION"),
    ("DROP_CALLER_SUPERVISORS", "bob", "DROP_CALLER_SUPERVISORS"),
    ("DROP_CALLER_SUPERVISORS", "U012ABC,<@U012ABC>", "DROP_CALLER_SUPERVISORS"),
    ("DROP_CALLER_CHANNELS", "general", "DROP_CALLER_CHANNELS"),
    ("DROP_CALLER_CHANNELS", "#ops", "DROP_CALLER_CHANNELS"),
    ("DROP_CALLER_CHANNELS", "U012ABCDEF", "DROP_CALLER_CHANNELS"),
    ("GENESYS_REGION", "not a region!", "GENESYS_REGION"),
    ("GENESYS_API_URL", "api.mypurecloud.com", "GENESYS_API_URL"),
    ("GENESYS_TIMEOUT", "soon", "GENESYS_TIMEOUT"),
    ("GENESYS_TIMEOUT", "0", "GENESYS_TIMEOUT"),
    ("SLACK_BOT_TOKEN", "xoxp-1111-2222-UserTokenValue", "SLACK_BOT_TOKEN"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
    ("DATABASE_URL", "mysql://db/drop", "DATABASE_URL"),
    ("SLACK_API_URL", "slack.com/api", "SLACK_API_URL"),
]


@pytest.mark.parametrize(("name", "value", "named"), INVALID)
def test_each_invalid_value_is_reported_by_name(name: str, value: str, named: str) -> None:
    """An invalid value gives exactly one problem, which names the variable."""
    problems = problems_of(http_env(**{name: value}))
    assert len(problems) == 1, problems
    assert named in problems[0]


def test_socket_mode_app_token_must_be_an_app_level_token() -> None:
    """A SLACK_APP_TOKEN that is not xapp-… is reported."""
    problems = problems_of(http_env(SLACK_APP_TOKEN="xoxb-9-9-not-an-app-token"))
    assert len(problems) == 1
    assert "SLACK_APP_TOKEN" in problems[0]


def test_many_invalid_values_are_all_reported_together() -> None:
    """Every invalid value and every missing variable appears in the same SettingsError."""
    env = {
        "SLACK_BOT_TOKEN": "xoxp-1111-2222-UserTokenValue",
        "PORT": "abc",
        "DROP_CALLER_REQUEST_TTL": "0",
        "DROP_CALLER_DEFAULT_REGION": "ZZ",
        "DROP_CALLER_SUPERVISORS": "bob",
        "DROP_CALLER_CHANNELS": "general",
        "GENESYS_REGION": "not a region!",
        "LOG_LEVEL": "LOUD",
    }
    problems = problems_of(env)
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "GENESYS_CLIENT_ID",
        "GENESYS_CLIENT_SECRET",
        "PORT",
        "DROP_CALLER_REQUEST_TTL",
        "DROP_CALLER_DEFAULT_REGION",
        "DROP_CALLER_SUPERVISORS",
        "DROP_CALLER_CHANNELS",
        "GENESYS_REGION",
        "LOG_LEVEL",
    ):
        assert any(name in p for p in problems), name
    assert len(problems) == 11


def test_secrets_never_appear_in_repr() -> None:
    """repr() and str() of Settings show no token, secret or database password."""
    settings = load_settings(
        http_env(
            SLACK_APP_TOKEN=APP_TOKEN,
            DATABASE_URL=f"postgresql://bot:{DB_PASSWORD}@db/drop",
        )
    )
    for shown in (repr(settings), str(settings)):
        for secret in ALL_SECRETS:
            assert secret not in shown
    assert "genesys-client-id" in repr(settings)


def test_secrets_never_appear_in_the_settings_error() -> None:
    """The SettingsError message and problems name variables but never show secret values."""
    env = http_env(
        SLACK_BOT_TOKEN="xoxp-1111-2222-UserTokenValue",
        SLACK_APP_TOKEN="xoxb-not-an-app-token-SecretValue",
        DATABASE_URL=f"mysql://bot:{DB_PASSWORD}@db/drop",
        PORT="abc",
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value) + repr(caught.value) + "".join(caught.value.problems)
    for secret in (
        "UserTokenValue",
        "SecretValue",
        DB_PASSWORD,
        CLIENT_SECRET,
        SIGNING_SECRET,
    ):
        assert secret not in message
    assert "SLACK_BOT_TOKEN" in message
    assert "DATABASE_URL" in message


def test_secrets_property_lists_every_secret_for_the_log_filter() -> None:
    """Settings.secrets holds each configured token and secret, for redaction."""
    settings = load_settings(http_env(SLACK_APP_TOKEN=APP_TOKEN))
    assert set(settings.secrets) == {BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, CLIENT_SECRET}


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("usw2.pure.cloud", "https://api.usw2.pure.cloud"),
        ("api.usw2.pure.cloud", "https://api.usw2.pure.cloud"),
        ("us_west_2", "https://api.usw2.pure.cloud"),
        ("us-west-2", "https://api.usw2.pure.cloud"),
        ("mypurecloud.ie", "https://api.mypurecloud.ie"),
        ("eu_west_1", "https://api.mypurecloud.ie"),
    ],
)
def test_genesys_region_gives_the_api_host(region: str, host: str) -> None:
    """GENESYS_REGION, as a domain or an SDK region name, resolves to the API host."""
    assert load_settings(http_env(GENESYS_REGION=region)).genesys_api_host == host


def test_genesys_api_url_wins_over_the_region() -> None:
    """GENESYS_API_URL is used as given (without a trailing slash), whatever the region says."""
    settings = load_settings(
        http_env(GENESYS_REGION="usw2.pure.cloud", GENESYS_API_URL="http://127.0.0.1:8123/")
    )
    assert settings.genesys_api_host == "http://127.0.0.1:8123"


def test_policy_settings_are_read() -> None:
    """Two-person rule, dry run, protected numbers (any format), audit channel and groups."""
    settings = load_settings(
        http_env(
            DROP_CALLER_TWO_PERSON="true",
            DROP_CALLER_DRY_RUN="yes",
            DROP_CALLER_PROTECTED_NUMBERS="(555) 123-4567, +44 20 7946 0000",
            DROP_CALLER_AUDIT_CHANNEL="C0AUDIT",
            DROP_CALLER_SUPERVISORS="U0SUP1,S0GROUP,W0ENT",
            DROP_CALLER_SWEEP_INTERVAL="0.5",
        )
    )

    assert settings.two_person is True
    assert settings.dry_run is True
    assert settings.protected_numbers == frozenset({"+15551234567", "+442079460000"})
    assert settings.audit_channel == "C0AUDIT"
    assert settings.supervisors == frozenset({"U0SUP1", "W0ENT"})
    assert settings.supervisor_groups == frozenset({"S0GROUP"})
    assert settings.sweep_interval == 0.5


def test_policy_defaults_are_off() -> None:
    """Without the policy variables: no two-person rule, no dry run, nothing protected."""
    settings = load_settings(http_env())

    assert settings.two_person is False
    assert settings.dry_run is False
    assert settings.protected_numbers == frozenset()
    assert settings.audit_channel is None
    assert settings.supervisor_groups == frozenset()


def test_invalid_policy_values_are_reported_together() -> None:
    """Bad flags, protected numbers that are not numbers, and a bad audit channel, at once."""
    found = problems_of(
        http_env(
            DROP_CALLER_TWO_PERSON="maybe",
            DROP_CALLER_DRY_RUN="2",
            DROP_CALLER_PROTECTED_NUMBERS="+15551234567, not-a-number",
            DROP_CALLER_AUDIT_CHANNEL="#audit",
        )
    )

    text = "\n".join(found)
    for name in (
        "DROP_CALLER_TWO_PERSON",
        "DROP_CALLER_DRY_RUN",
        "DROP_CALLER_PROTECTED_NUMBERS",
        "DROP_CALLER_AUDIT_CHANNEL",
    ):
        assert name in text
    assert "not-a-number" in text


def test_the_database_password_is_a_secret_for_the_log_filter() -> None:
    """A password in DATABASE_URL is blanked out of logs like the tokens are."""
    settings = load_settings(
        http_env(DATABASE_URL=f"postgresql://drop:{DB_PASSWORD}@db.internal:5432/drop")
    )

    assert DB_PASSWORD in settings.secrets

"""The environment that points the real bot at the simulators, as a deployment's would point
it at Slack and Genesys Cloud: one definition for the sandbox, the tests and the benchmark."""

from __future__ import annotations

from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack


def simulated_environment(
    genesys: FakeGenesys,
    slack: FakeSlack,
    *,
    signing_secret: str,
    supervisors: str,
    database_url: str,
) -> dict[str, str]:
    """The bot's variables for these simulators (their tokens and client credentials)."""
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": slack.api_url,
        "GENESYS_CLIENT_ID": genesys.client_id,
        "GENESYS_CLIENT_SECRET": genesys.client_secret,
        "GENESYS_API_URL": genesys.base_url,
        "DROP_CALLER_SUPERVISORS": supervisors,
        "DATABASE_URL": database_url,
    }

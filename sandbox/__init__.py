"""A credential-free sandbox: the real bot between a simulated Slack and Genesys Cloud.

`python app.py --sandbox` starts it (see `sandbox.server`). The simulators in this package
(`genesys_simulator`, `slack_simulator`, `slack_requests`) also serve the test suite.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Any of these set (in the environment or .env) means "run for real, not the sandbox".
SLACK_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")


def slack_configured(environ: Mapping[str, str]) -> bool:
    """True when at least one Slack credential is set (even if the configuration is incomplete)."""
    return any(environ.get(name, "").strip() for name in SLACK_VARIABLES)

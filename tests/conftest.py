"""Test-wide set-up: an isolated HOME for the Genesys SDK, no proxies, and shared fixtures."""

from __future__ import annotations

import os
import tempfile

# The Genesys SDK reads ~/.genesyscloudpython/config when it is first imported, and watches
# that folder; point it at an empty temporary home before anything imports it.
os.environ["HOME"] = tempfile.mkdtemp(prefix="drop-caller-home-")
# slack_sdk honours proxy variables and ignores NO_PROXY: the fakes are on loopback.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from sandbox.genesys_simulator import FakeGenesys  # noqa: E402
from sandbox.slack_simulator import FakeSlack  # noqa: E402
from tests.harness import BotHarness, start_bot  # noqa: E402
from tests.postgres import fresh_database, unavailable_reason  # noqa: E402


@pytest.fixture
def genesys() -> Iterator[FakeGenesys]:
    """A fake Genesys Cloud API on loopback."""
    with FakeGenesys() as fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API on loopback."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def bot(genesys: FakeGenesys, slack: FakeSlack, tmp_path: os.PathLike[str]) -> Iterator[BotHarness]:
    """The real bot (Bolt app, real Genesys SDK, SQLite store) served over HTTP on loopback."""
    with start_bot(genesys, slack, tmp_path) as harness:
        yield harness


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (skipped, with the reason, where there is none)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"PostgreSQL tests need a server: {reason}")
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """The same test on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{os.path.join(tmp_path, 'drop_caller.db')}"
    else:
        yield request.getfixturevalue("postgres_url")

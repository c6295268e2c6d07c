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

from tests.fakes.genesys import FakeGenesys  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import BotHarness, start_bot  # noqa: E402


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

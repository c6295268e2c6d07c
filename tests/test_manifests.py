"""manifest.yml (Socket Mode) and manifest.http.yml (HTTP) create an app the bot works with:
its command, its Home tab and event, the scopes it uses, and (HTTP) its request URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.commands import COMMAND
from bot.web import EVENTS_PATH
from sandbox.slack_simulator import DEFAULT_SCOPES

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = {"socket": REPO / "manifest.yml", "http": REPO / "manifest.http.yml"}


def _load(mode: str) -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFESTS[mode].read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_each_manifest_has_what_the_bot_uses(mode: str) -> None:
    """The command, interactivity, the Home tab with app_home_opened, and every scope."""
    manifest = _load(mode)
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert command["should_escape"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # The scopes the simulated Slack grants by default are the manifest's: the tests run
    # with exactly what an admin installs.
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == DEFAULT_SCOPES
    assert manifest["settings"]["socket_mode_enabled"] is (mode == "socket")


def test_the_socket_mode_manifest_needs_no_url() -> None:
    """Socket Mode: Slack reaches the bot over its WebSocket, so no request URL anywhere."""
    text = MANIFESTS["socket"].read_text(encoding="utf-8")
    assert "url:" not in text


def test_the_http_manifest_points_every_request_at_the_bots_endpoint() -> None:
    """HTTP: the command, the clicks and the events all go to https://<host>/slack/events,
    with one placeholder host to replace."""
    manifest = _load("http")
    urls = [
        manifest["features"]["slash_commands"][0]["url"],
        manifest["settings"]["interactivity"]["request_url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
    ]
    parts = [urlsplit(url) for url in urls]
    assert {p.scheme for p in parts} == {"https"}
    assert {p.path for p in parts} == {EVENTS_PATH}
    assert {p.netloc for p in parts} == {"drop-caller.example.com"}

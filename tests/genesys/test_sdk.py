"""genesys.sdk: the SDK loads lean, in a fresh interpreter, and still behaves as the SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys, time
started = time.perf_counter()
from genesys.client import GenesysCalls
from genesys.config import GenesysConfig
calls = GenesysCalls(GenesysConfig(api_host="http://127.0.0.1:9", client_id="a", client_secret="b"))
elapsed = time.perf_counter() - started
sdk_modules = sorted(k for k in sys.modules if k.startswith("PureCloudPlatformClientV2"))
from PureCloudPlatformClientV2 import ApiClient, PureCloudRegionHosts
from PureCloudPlatformClientV2.models import CallConversation
raw = {"id": "c1", "participants": [{"id": "p1", "purpose": "customer", "state": "connected",
       "connectedTime": "2026-03-02T14:58:54.319Z", "ani": "tel:+15551234567"}]}
call = ApiClient()._ApiClient__deserialize(raw, "CallConversation")
print(json.dumps({
    "seconds": elapsed,
    "sdk_modules": len(sdk_modules),
    "region": PureCloudRegionHosts.us_east_1.value,
    "state": call.participants[0].state,
    "connected": call.participants[0].connected_time.isoformat(),
    "is_model": isinstance(call, CallConversation),
}))
"""


def test_the_sdk_loads_only_what_the_bot_uses(tmp_path: Path) -> None:
    """Building the client imports a few hundred SDK modules, not its ~6,800, and the SDK's
    own classes, deserialisation and package exports work as before."""
    report = _run_probe(PROBE, tmp_path)

    assert report["sdk_modules"] < 600, report
    assert report["region"] == "https://api.mypurecloud.com"
    assert report["state"] == "connected"
    assert report["connected"] == "2026-03-02T14:58:54.319000+00:00"
    assert report["is_model"] is True


READY_PROBE = """
import json, sys
import app
import bot.app_factory
import genesys.errors, genesys.models, genesys.realtime, genesys.config
PACKAGE = "PureCloudPlatformClientV2"
print(json.dumps(sorted(k for k in sys.modules if k.startswith(PACKAGE))))
"""


def test_the_slack_side_loads_nothing_of_the_sdk(tmp_path: Path) -> None:
    """app, the Bolt app and the Genesys side's errors, models and config load nothing of
    the SDK, not even its lean stand-ins: only building a client does (genesys.sdk)."""
    assert _run_probe(READY_PROBE, tmp_path) == []


def _run_probe(code: str, home: Path) -> Any:
    """Run `code` in a fresh interpreter with a bare environment; its JSON output."""
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)

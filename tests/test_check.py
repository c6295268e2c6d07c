"""`python app.py check` against the simulated services: all green, and each ✗ with its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.check import main
from bot.schema import SCHEMA_HEAD
from bot.store import RequestStore
from sandbox.genesys_simulator import (
    DISCONNECT_PERMISSION,
    QUEUE_OBSERVATION_PERMISSION,
    TABLE_VIEW_PERMISSION,
    FakeGenesys,
)
from sandbox.slack_simulator import FakeSlack
from tests.harness import bot_environment

AUDIT_CHANNEL = "C0AUDIT"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(genesys: FakeGenesys, slack: FakeSlack, tmp_path: Path) -> dict[str, str]:
    """A configuration with every feature the check probes: Socket Mode, an audit channel,
    supervisor groups, the block list, teardown."""
    return bot_environment(genesys, slack, tmp_path) | {
        "SLACK_APP_TOKEN": slack.app_token,
        "DROP_CALLER_AUDIT_CHANNEL": AUDIT_CHANNEL,
        "DROP_CALLER_SUPERVISORS": "USUP1,S0SUPERS",
        "DROP_CALLER_BLOCKLIST_TABLE": genesys.add_datatable("Blocked", ["Reason"]),
        "DROP_CALLER_ALLOW_TEARDOWN": "true",
    }


def _check(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, dict[str, Any]]]:
    """Run the check (as JSON); the exit code and each check by its name."""
    code = main(["--json"], env)
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] == (code == 0)
    return code, {f"{c['area']}: {c['check']}": c for c in report["checks"]}


def _failed(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: c["detail"] for name, c in checks.items() if c["status"] == "fail"}


def test_everything_green_through_app_py(
    env: dict[str, str], genesys: FakeGenesys, slack: FakeSlack
) -> None:
    """`python app.py check` as an admin runs it: a table, every line ✓ but those that no
    harmless request can tell, exit 0; nothing changed in Genesys or Slack."""
    live = genesys.add_inbound_call("+15551234567")
    before = genesys.participants(live)
    process = subprocess.run(
        [sys.executable, "app.py", "check"],
        cwd=REPO,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert process.returncode == 0, process.stdout + process.stderr
    lines = process.stdout.splitlines()
    assert lines[0].startswith("drop-caller check: 15 passed, 0 failed")
    marks = [line[:1] for line in lines[2:-3] if line.strip()]
    assert set(marks) == {"✓", "?"}, process.stdout
    assert "Everything required works." in process.stdout
    assert "not checkable" in process.stdout
    # Nothing changed: the one PATCH (the disconnect probe) named a conversation that does
    # not exist, the live call is as it was, and nothing was posted to Slack.
    [(probed, _, _)] = genesys.patches()
    assert probed != live
    assert genesys.participants(live) == before
    assert not [r for r in genesys.requests if r.method in ("PUT", "DELETE")]
    assert slack.calls_to("chat.postMessage") == []


def test_json_lists_every_check(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """`--json`: one object per check, with its area, name, status and detail."""
    code, checks = _check(env, capsys)

    assert code == 0
    assert _failed(checks) == {}
    assert checks["Genesys Cloud: sign in"]["status"] == "ok"
    assert checks["Slack: scope usergroups:read"]["status"] == "ok"
    assert checks["Slack: Socket Mode (app token)"]["status"] == "ok"
    assert checks[f"Slack: member of the audit channel {AUDIT_CHANNEL}"]["status"] == "ok"
    assert "creates it at start" in checks["Database: reachable"]["detail"]
    uncheckable = {n for n, c in checks.items() if c["status"] == "not_checkable"}
    assert uncheckable == {
        "Genesys Cloud: Write the note into the interaction",
        "Genesys Cloud: Block list: add, edit and delete rows",
    }
    assert "Architect > Datatable Row > Add" in str(
        checks["Genesys Cloud: Block list: add, edit and delete rows"]["detail"]
    )


def test_a_missing_genesys_permission_is_named_with_its_fix(
    env: dict[str, str], genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """The role lacks the disconnect permission and the table view: two ✗, exit 1. A missing
    optional one (queue observation) is a warning and fails nothing."""
    genesys.deny_permission(DISCONNECT_PERMISSION)
    genesys.deny_permission(TABLE_VIEW_PERMISSION)
    genesys.deny_permission(QUEUE_OBSERVATION_PERMISSION)

    code, checks = _check(env, capsys)

    assert code == 1
    failed = _failed(checks)
    assert set(failed) == {
        "Genesys Cloud: Disconnect a caller and end stuck conversations",
        "Genesys Cloud: Block list: read the data table",
    }
    assert (
        "Grant Conversation > Communication > Disconnect"
        in failed["Genesys Cloud: Disconnect a caller and end stuck conversations"]
    )
    assert (
        "Architect > Datatable Row > View"
        in failed["Genesys Cloud: Block list: read the data table"]
    )
    queues = checks["Genesys Cloud: Find live calls: calls in queues"]
    assert queues["status"] == "warn"
    assert "Analytics > Queue Observation > View" in queues["detail"]


def test_a_missing_slack_scope_is_named_with_its_fix(
    env: dict[str, str], slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The token lacks chat:write (read from Slack's x-oauth-scopes header): ✗, exit 1."""
    slack.scopes.discard("chat:write")

    code, checks = _check(env, capsys)

    assert code == 1
    assert set(_failed(checks)) == {"Slack: scope chat:write"}
    assert "Bot Token Scopes" in checks["Slack: scope chat:write"]["detail"]
    assert "reinstall the app" in checks["Slack: scope chat:write"]["detail"]


def test_the_bot_not_in_the_audit_channel(
    env: dict[str, str], slack: FakeSlack, capsys: pytest.CaptureFixture[str]
) -> None:
    """conversations.info says is_member false: ✗ with the /invite to type."""
    slack.not_in_channel.add(AUDIT_CHANNEL)

    code, checks = _check(env, capsys)

    assert code == 1
    [(name, detail)] = _failed(checks).items()
    assert name == f"Slack: member of the audit channel {AUDIT_CHANNEL}"
    assert "/invite @drop-caller" in detail


def test_the_database_down(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Nothing listens where DATABASE_URL points: ✗ with what to check, exit 1."""
    env["DATABASE_URL"] = "postgresql://drop:caller@127.0.0.1:9/drop_caller"

    code, checks = _check(env, capsys)

    assert code == 1
    assert set(_failed(checks)) == {"Database: reachable"}
    assert "Check DATABASE_URL" in checks["Database: reachable"]["detail"]


def test_a_bad_region(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The org is in another region: that region's Genesys does not know the client. ✗ with
    the region named as a cause, and nothing else about Genesys is probed."""
    with FakeGenesys(client_id="another-region-client") as elsewhere:
        env["GENESYS_API_URL"] = elsewhere.base_url

        code, checks = _check(env, capsys)

    assert code == 1
    failed = _failed(checks)
    assert set(failed) == {"Genesys Cloud: sign in"}
    assert "GENESYS_REGION" in failed["Genesys Cloud: sign in"]
    assert not [n for n in checks if n.startswith("Genesys Cloud: Find")]


def test_every_configuration_problem_at_once(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Configuration problems are all listed, as at start, and nothing else is tried."""
    del env["SLACK_BOT_TOKEN"]
    env["DROP_CALLER_REQUEST_TTL"] = "soon"

    code = main([], env)
    out = capsys.readouterr().out

    assert code == 1
    assert "SLACK_BOT_TOKEN" in out
    assert "DROP_CALLER_REQUEST_TTL" in out
    assert "Genesys" not in out.split("\n", 2)[2]


def test_the_schema_is_current_or_migrated_at_start(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A database the bot made: reachable and current. One a newer bot made: ✗."""
    store = RequestStore.from_url(env["DATABASE_URL"])

    code, checks = _check(env, capsys)

    assert code == 0
    assert checks["Database: schema"]["detail"] == f"current ({SCHEMA_HEAD})"
    with store._engine.begin() as connection:  # a newer release's revision
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    code, checks = _check(env, capsys)
    assert code == 1
    assert "a newer drop-caller made it" in checks["Database: schema"]["detail"]
    store.close()

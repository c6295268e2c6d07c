"""The sandbox: the real bot between the Slack and Genesys Cloud simulators, and its page.

The API tests drive the sandbox's JSON endpoints (what the page calls); the browser tests drive
the page itself in headless Chromium (Debian's package) through Playwright, and are skipped
with the reason where either is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sandbox import slack_configured
from sandbox.server import (
    BANNER,
    CHANNEL_ID,
    CONFERENCE_NUMBERS,
    INBOUND_NUMBER,
    OUTBOUND_NUMBER,
    TWICE_NUMBER,
    Sandbox,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
# The README's picture. Tests write a fresh one beside the temp files, so `make test` leaves
# the work tree clean; DROP_CALLER_UPDATE_SCREENSHOT=1 writes it to docs/ instead.
SCREENSHOT = ROOT / "docs" / "sandbox-card.png"
CHROMIUM = "/usr/bin/chromium"
MARIA, SAM, ALEX = "USUPMARIA", "USUPSAM", "UALEX"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(disconnect_delay=0.2) as running:
        yield running


def _get(sandbox: Sandbox, path: str) -> Any:
    with _OPENER.open(sandbox.url + path, timeout=10) as response:
        return json.loads(response.read())


def _post(sandbox: Sandbox, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - the sandbox's own loopback address
        sandbox.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=10) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _timeline(sandbox: Sandbox, user: str) -> list[dict[str, Any]]:
    return list(_get(sandbox, f"/api/state?user={user}")["timeline"])


def _cards(sandbox: Sandbox, user: str = MARIA) -> list[dict[str, Any]]:
    return [item for item in _timeline(sandbox, user) if item["kind"] == "message"]


def _texts(item: dict[str, Any]) -> str:
    parts = [str(item["text"])]
    for block in item["blocks"]:
        parts.append(str(block.get("text", {}).get("text", "")))
        parts.extend(str(f.get("text", "")) for f in block.get("fields", []))
        parts.extend(str(e.get("text", "")) for e in block.get("elements", []) if "type" in e)
    return "\n".join(parts)


def _buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]


def _wait_for_card(sandbox: Sandbox, contains: str, user: str = MARIA) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((c for c in _cards(sandbox, user) if contains in _texts(c)), None)

    return sandbox.slack.wait_for(found, timeout=10)


def _call(sandbox: Sandbox, number: str, kind: str | None = None) -> dict[str, Any]:
    calls = _get(sandbox, f"/api/state?user={MARIA}")["calls"]
    return next(
        c
        for c in calls
        if any(p["number"] == number for p in c["parties"]) and kind in (None, c["kind"])
    )


# --- the sandbox's API ----------------------------------------------------------------------


def test_the_page_is_served_with_its_banner(sandbox: Sandbox) -> None:
    with _OPENER.open(sandbox.url + "/", timeout=10) as response:
        page = response.read().decode()
    assert BANNER in page
    state = _get(sandbox, f"/api/state?user={MARIA}")
    assert state["banner"] == BANNER
    assert [u["supervisor"] for u in state["users"]] == [True, True, False]
    kinds = sorted(c["kind"] for c in state["calls"])
    assert kinds == ["conference", "inbound", "inbound", "inbound", "outbound", "outbound"]
    # One seeded interaction is stuck: its caller left, its agent did not.
    [stuck] = [c for c in state["calls"] if c["stuck"]]
    assert not stuck["live"]
    conference = _call(sandbox, CONFERENCE_NUMBERS[0])
    assert {p["number"] for p in conference["parties"] if p["number"]} == set(CONFERENCE_NUMBERS)


def test_a_command_posts_the_bots_real_card(sandbox: Sandbox) -> None:
    status, _ = _post(
        sandbox, "/api/command", {"user": MARIA, "text": "/drop-caller +1 555 123 4567"}
    )
    assert status == 200

    card = _wait_for_card(sandbox, "asked to drop")
    # Exactly the blocks the bot sent to the Slack stand-in.
    assert card["blocks"] == sandbox.slack.messages(CHANNEL_ID)[0].blocks
    # The sandbox has a block list, so the card also offers Disconnect and block.
    disconnect, block, cancel = _buttons(card)
    assert disconnect["text"]["text"] == "Disconnect caller"
    assert disconnect["style"] == "danger"
    assert disconnect["confirm"]["title"]["text"] == "Disconnect this caller?"
    assert block["text"]["text"] == "Disconnect and block"
    assert "blocked for 7 days" in block["confirm"]["text"]["text"]
    assert cancel["action_id"] == "drop_caller_cancel"
    # The "looking" acknowledgement is Maria's alone.
    mine = [i["text"] for i in _timeline(sandbox, MARIA) if i["kind"] == "ephemeral"]
    assert any("Looking for a live call" in t for t in mine)
    theirs = [i for i in _timeline(sandbox, SAM) if i["kind"] != "message"]
    assert theirs == []


def test_disconnect_drops_the_caller_in_the_simulator(sandbox: Sandbox) -> None:
    _post(sandbox, "/api/command", {"user": MARIA, "text": INBOUND_NUMBER})
    card = _wait_for_card(sandbox, "Disconnect caller")
    assert _call(sandbox, INBOUND_NUMBER)["live"] is True

    status, _ = _post(
        sandbox,
        "/api/click",
        {"user": SAM, "ts": card["ts"], "action_id": "drop_caller_disconnect_0"},
    )

    assert status == 200
    done = _wait_for_card(sandbox, "Disconnected, approved by <@USUPSAM>")
    assert _buttons(done) == []
    call = _call(sandbox, INBOUND_NUMBER)
    assert call["live"] is False
    caller = next(p for p in call["parties"] if p["purpose"] == "customer")
    assert caller["state"] == "disconnected"
    assert len(sandbox.genesys.patches()) == 1


def test_a_non_supervisor_is_refused_and_only_they_see_it(sandbox: Sandbox) -> None:
    _post(sandbox, "/api/command", {"user": ALEX, "text": OUTBOUND_NUMBER})

    refusal = sandbox.slack.wait_for(
        lambda: [i for i in _timeline(sandbox, ALEX) if i["kind"] == "ephemeral"]
    )
    assert "Only supervisors" in refusal[0]["text"]
    assert _cards(sandbox) == []
    assert [i for i in _timeline(sandbox, MARIA) if i["kind"] != "message"] == []

    # Alex clicking a supervisor's card is refused too, and only Alex is told.
    _post(sandbox, "/api/command", {"user": MARIA, "text": OUTBOUND_NUMBER})
    card = _wait_for_card(sandbox, "Disconnect caller")
    _post(
        sandbox,
        "/api/click",
        {"user": ALEX, "ts": card["ts"], "action_id": "drop_caller_disconnect_0"},
    )
    sandbox.slack.wait_for(
        lambda: len([i for i in _timeline(sandbox, ALEX) if i["kind"] == "ephemeral"]) == 2
    )
    assert not any("Only supervisors" in i["text"] for i in _timeline(sandbox, MARIA))
    assert _call(sandbox, OUTBOUND_NUMBER)["live"] is True
    assert sandbox.genesys.patches() == []


def test_cancel_closes_the_card_and_keeps_the_call(sandbox: Sandbox) -> None:
    _post(sandbox, "/api/command", {"user": MARIA, "text": INBOUND_NUMBER})
    card = _wait_for_card(sandbox, "Disconnect caller")

    _post(
        sandbox, "/api/click", {"user": MARIA, "ts": card["ts"], "action_id": "drop_caller_cancel"}
    )

    _wait_for_card(sandbox, "Cancelled by <@USUPMARIA>")
    assert _call(sandbox, INBOUND_NUMBER)["live"] is True
    assert sandbox.genesys.patches() == []


def test_a_number_on_two_calls_gets_two_disconnect_buttons(sandbox: Sandbox) -> None:
    _post(sandbox, "/api/command", {"user": SAM, "text": TWICE_NUMBER})

    card = _wait_for_card(sandbox, "2 live calls")
    labels = [b["text"]["text"] for b in _buttons(card)]
    assert labels == [
        "Disconnect call 1",
        "Disconnect and block call 1",
        "Disconnect call 2",
        "Disconnect and block call 2",
        "Cancel",
    ]


def test_calls_can_be_added_and_hung_up(sandbox: Sandbox) -> None:
    status, added = _post(
        sandbox, "/api/calls", {"kind": "inbound", "numbers": ["+1 555 010 9999"], "agent": "Ann"}
    )
    assert status == 200
    call = _call(sandbox, "+15550109999")
    assert call["id"] == added["id"]
    assert call["live"] is True

    status, _ = _post(sandbox, "/api/hangup", {"call_id": call["id"]})

    assert status == 200
    assert _call(sandbox, "+15550109999")["live"] is False
    _post(sandbox, "/api/command", {"user": MARIA, "text": "+1 555 010 9999"})
    sandbox.slack.wait_for(
        lambda: any("No active call" in i["text"] for i in _timeline(sandbox, MARIA))
    )


def test_a_call_just_added_is_found_before_the_index_lists_it(sandbox: Sandbox) -> None:
    """A caller added from the page (here, one still in the IVR) is found at once through the
    real-time sources, while the simulated index still lags by a few seconds."""
    status, added = _post(sandbox, "/api/calls", {"kind": "ivr", "numbers": ["+15550108888"]})
    assert status == 200

    _post(sandbox, "/api/command", {"user": MARIA, "text": "+1 555 010 8888"})

    card = _wait_for_card(sandbox, "IVR Main Line IVR")
    assert added["id"] in json.dumps(card["blocks"])
    index_answers = sandbox.genesys.requests_to("POST", "/details/query")
    assert index_answers, "the conversation index was asked too"
    assert sandbox.genesys.index_delay >= 3.0


def test_a_blocked_caller_is_refused_by_the_simulated_flow(sandbox: Sandbox) -> None:
    """Disconnect and block puts the number in the sandbox's block-list table, which the
    "Blocked numbers" panel shows; the caller's next call is refused at the IVR; the note
    the bot wrote into the interaction shows on the dropped caller."""
    _post(sandbox, "/api/command", {"user": MARIA, "text": f"{INBOUND_NUMBER} prank calls"})
    card = _wait_for_card(sandbox, "Disconnect and block")
    _post(
        sandbox, "/api/click", {"user": SAM, "ts": card["ts"], "action_id": "drop_caller_block_0"}
    )
    _wait_for_card(sandbox, "Blocked for 7 days")

    blocked = _get(sandbox, f"/api/state?user={MARIA}")["blocked"]
    assert [row["key"] for row in blocked] == [INBOUND_NUMBER.removeprefix("+")]
    assert blocked[0]["reason"] == "prank calls"
    caller = next(p for p in _call(sandbox, INBOUND_NUMBER)["parties"] if p["number"])
    assert caller["attributes"]["dropCaller.reason"] == "prank calls"
    _post(sandbox, "/api/calls", {"kind": "inbound", "numbers": [INBOUND_NUMBER]})
    assert all(
        c["live"] is False
        for c in _get(sandbox, f"/api/state?user={MARIA}")["calls"]
        if any(p["number"] == INBOUND_NUMBER for p in c["parties"])
    )


def test_a_visitor_can_make_a_stuck_interaction_and_clear_it(sandbox: Sandbox) -> None:
    """A caller who leaves while the agent stays makes a stuck interaction; its id in the
    command gets the stuck card, whose End whole conversation (teardown is on in the sandbox)
    a second supervisor approves."""
    _post(sandbox, "/api/calls", {"kind": "inbound", "numbers": ["+15550107777"], "agent": "Bo"})
    call = _call(sandbox, "+15550107777")
    caller = next(p for p in call["parties"] if p["purpose"] == "customer")
    status, _ = _post(
        sandbox,
        "/api/hangup",
        {"call_id": call["id"], "participant_id": caller["id"], "leave_stuck": True},
    )
    assert status == 200
    assert _call(sandbox, "+15550107777")["stuck"] is True

    _post(sandbox, "/api/command", {"user": MARIA, "text": f"/drop-caller {call['id']}"})
    card = _wait_for_card(sandbox, "which is stuck")
    end = next(b for b in _buttons(card) if b["action_id"] == "drop_caller_end_0")
    status, _ = _post(
        sandbox, "/api/click", {"user": SAM, "ts": card["ts"], "action_id": end["action_id"]}
    )
    assert status == 200
    _wait_for_card(sandbox, "Conversation ended")
    assert _call(sandbox, "+15550107777")["stuck"] is False


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/calls", {"kind": "inbound", "numbers": ["not a number"]}),
        ("/api/calls", {"kind": "teleport", "numbers": ["+15550109999"]}),
        ("/api/hangup", {"call_id": "no-such-call"}),
        ("/api/command", {"user": "UNKNOWN", "text": "/drop-caller help"}),
        ("/api/click", {"user": MARIA, "ts": "1.0", "action_id": "drop_caller_cancel"}),
        ("/api/nothing", {}),
    ],
)
def test_bad_requests_get_a_reason(sandbox: Sandbox, path: str, body: dict[str, Any]) -> None:
    status, answer = _post(sandbox, path, body)
    assert status == 400
    assert answer["error"]


# --- python app.py ----------------------------------------------------------------------------


def test_slack_configured_means_any_slack_variable() -> None:
    assert not slack_configured({})
    assert not slack_configured({"SLACK_BOT_TOKEN": "  ", "GENESYS_CLIENT_ID": "x"})
    assert slack_configured({"SLACK_SIGNING_SECRET": "s"})
    assert slack_configured({"SLACK_APP_TOKEN": "xapp-1"})


def _bare_env(tmp_path: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {"HOME": str(tmp_path), "PYTHONUNBUFFERED": "1", "PORT": "0"}
    return env


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        ((), {}),  # nothing configured: the sandbox instead of a failure
        (("--sandbox",), {"SLACK_BOT_TOKEN": "xoxb-real", "SLACK_SIGNING_SECRET": "real"}),
    ],
    ids=["no-credentials", "forced"],
)
@pytest.mark.slow
def test_app_starts_the_sandbox(
    tmp_path: Path, args: tuple[str, ...], extra: dict[str, str]
) -> None:
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(APP), *args],
        cwd=tmp_path,
        env=_bare_env(tmp_path) | extra,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Open http" in line:
                break
        output = "".join(lines)
        assert BANNER in output, output
        url = output.split("Open ", 1)[1].split()[0]
        with _OPENER.open(url + "/api/state?user=USUPMARIA", timeout=10) as response:
            assert json.loads(response.read())["banner"] == BANNER
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- in a browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, sandbox: Sandbox) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    opened.goto(f"{sandbox.url}/?user={MARIA}")
    yield opened
    context.close()


def _send(page: Page, command: str) -> None:
    box = page.get_by_label("Message the channel")
    box.fill(command)
    box.press("Enter")


@pytest.mark.slow
def test_browser_command_confirm_disconnect(page: Page, sandbox: Sandbox, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    screenshot = (
        SCREENSHOT
        if os.environ.get("DROP_CALLER_UPDATE_SCREENSHOT") == "1"
        else tmp_path / SCREENSHOT.name
    )
    expect(page.get_by_text(BANNER)).to_be_visible()
    _send(page, f"/drop-caller {INBOUND_NUMBER}")

    card = page.locator("li.msg.message").filter(has_text="asked to drop")
    expect(card).to_be_visible()
    expect(card).to_contain_text("@maria asked to drop +1 555-123-4567.")
    expect(card).to_contain_text("Jane Agent")
    expect(page.locator("li.msg.ephemeral")).to_contain_text("Looking for a live call")
    screenshot.parent.mkdir(exist_ok=True)
    card.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 1000

    card.get_by_role("button", name="Disconnect caller").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Disconnect this caller?")
    expect(dialog).to_contain_text("will be disconnected from the call with Jane Agent")
    dialog.get_by_role("button", name="Disconnect", exact=True).click()

    expect(card).to_contain_text("Disconnected, approved by @maria")
    expect(card.get_by_role("button")).to_have_count(0)
    call_id = _call(sandbox, INBOUND_NUMBER)["id"]
    panel = page.locator(f'li.call[data-call-id="{call_id}"]')
    expect(panel).to_have_attribute("data-live", "false")
    expect(panel.locator('.party[data-purpose="customer"]')).to_have_attribute(
        "data-state", "disconnected"
    )


@pytest.mark.slow
def test_browser_refusal_is_only_for_the_non_supervisor(page: Page) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.get_by_label("Viewing as").select_option(ALEX)
    _send(page, f"/drop-caller {OUTBOUND_NUMBER}")

    expect(page.locator("li.msg.ephemeral")).to_contain_text("Only supervisors")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_label("Viewing as").select_option(MARIA)
    expect(page.locator("li.msg")).to_have_count(0)
    page.get_by_label("Viewing as").select_option(ALEX)
    expect(page.locator("li.msg.ephemeral")).to_contain_text("Only supervisors")


@pytest.mark.slow
def test_browser_cancel(page: Page, sandbox: Sandbox) -> None:
    from playwright.sync_api import expect

    _send(page, f"/drop-caller {INBOUND_NUMBER}")
    card = page.locator("li.msg.message")
    card.get_by_role("button", name="Cancel").click()

    expect(card).to_contain_text("Cancelled by @maria")
    assert _call(sandbox, INBOUND_NUMBER)["live"] is True


@pytest.mark.slow
def test_browser_two_calls_and_keeping_the_call(page: Page, sandbox: Sandbox) -> None:
    from playwright.sync_api import expect

    _send(page, f"/drop-caller {TWICE_NUMBER}")
    card = page.locator("li.msg.message")
    expect(card.get_by_role("button", name="Disconnect call 1")).to_be_visible()
    expect(card.get_by_role("button", name="Disconnect call 2")).to_be_visible()

    card.get_by_role("button", name="Disconnect call 2").click()
    page.locator("dialog#confirm").get_by_role("button", name="Keep the call").click()

    expect(page.locator("dialog#confirm")).to_be_hidden()
    expect(card.get_by_role("button", name="Disconnect call 2")).to_be_enabled()
    assert sandbox.genesys.patches() == []


@pytest.mark.slow
def test_browser_calls_panel_adds_and_hangs_up(page: Page, sandbox: Sandbox) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Number(s)").fill("+1 555 010 9999")
    page.get_by_label("Number(s)").press("Enter")
    added = page.locator("li.call").filter(has_text="+1 555-010-9999")
    expect(added).to_have_attribute("data-live", "true")

    added.get_by_role("button", name="+1 555-010-9999 hangs up").click()

    expect(added).to_have_attribute("data-live", "false")
    expect(added.locator(".badge")).to_have_text("ended")
    assert _call(sandbox, "+15550109999")["live"] is False

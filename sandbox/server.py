"""The sandbox server: simulated Genesys Cloud and Slack around the real bot, plus a web page.

Three loopback HTTP servers run in this process:

- the Genesys Cloud simulator (`sandbox.genesys_simulator.FakeGenesys`), seeded with live calls;
- the Slack stand-in (`sandbox.slack_simulator.FakeSlack`): it receives the bot's Web API calls
  and `response_url` posts;
- the real bot, built by `bot.app_factory.create_bot` with settings pointing at the two
  simulators, serving its WSGI app (`/slack/events`, `/healthz`).

The sandbox's own server serves `page.html` (a stand-in for a Slack channel) and a small JSON
API. The page never talks to the bot: the sandbox turns each of its actions into the request
Slack would send, signed with the bot's signing secret (`sandbox.slack_requests`), and reads
back what the bot sent to the Slack stand-in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socketserver
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.app_factory import Bot, create_bot
from bot.errors import PhoneNumberError
from bot.phone import display_number, parse_phone_number
from bot.settings import load_settings
from bot.store import RequestStore
from genesys.client import GenesysCalls
from sandbox.environment import simulated_environment
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_requests import SlackRequester, SlackResponse
from sandbox.slack_simulator import FakeSlack, Message

logger = logging.getLogger(__name__)

BANNER = "Sandbox: simulated Slack and Genesys Cloud; no real calls are touched."
SIGNING_SECRET = "sandbox-signing-secret"
GENESYS_CLIENT_ID = "sandbox-client"
GENESYS_CLIENT_SECRET = "sandbox-client-secret"
TEAM_ID = "TSANDBOX"
CHANNEL_ID = "CSANDBOX"
CHANNEL_NAME = "supervisors"
PAGE = Path(__file__).with_name("page.html")

_CALLER_PURPOSES = frozenset({"customer", "external"})
_ENDED = frozenset({"disconnected", "terminated"})
_KINDS = ("inbound", "outbound", "conference", "ivr")
# A new call reaches the simulated conversation index this many seconds after it starts, as
# Genesys builds it asynchronously: a call added from the page is found at first only through
# the real-time sources, as a call that has just started is in a real org.
INDEX_DELAY = 5.0
_MAX_BODY = 64 * 1024

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class SandboxUser:
    """A person in the simulated workspace."""

    id: str
    name: str
    supervisor: bool


USERS: tuple[SandboxUser, ...] = (
    SandboxUser("USUPMARIA", "maria", supervisor=True),
    SandboxUser("USUPSAM", "sam", supervisor=True),
    SandboxUser("UALEX", "alex", supervisor=False),
)
_USERS_BY_ID = {user.id: user for user in USERS}

# Seeded calls: (kind, numbers, agent, queue).
INBOUND_NUMBER = "+15551234567"
OUTBOUND_NUMBER = "+15557654321"
CONFERENCE_NUMBERS = ("+15550001111", "+15550002222")
TWICE_NUMBER = "+15553334444"
STUCK_NUMBER = "+15558887777"


class SandboxError(ValueError):
    """A request from the page that cannot be carried out; its message is shown to the user."""


@dataclass
class _Note:
    """Something shown only to one user that the Slack stand-in does not record."""

    id: str
    user: str
    at: float
    kind: str  # "command" (what they typed) or "ephemeral" (the bot's answer to it)
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _SimulatedCall:
    id: str
    kind: str
    agents: tuple[str, ...]
    queue: str | None
    created: float


class _SandboxSlack(FakeSlack):
    """The Slack stand-in, with message timestamps from the clock, as real Slack's are.

    The page orders channel messages and ephemeral notes together by time.
    """

    def __init__(self) -> None:
        super().__init__(team_id=TEAM_ID, bot_token="xoxb-sandbox-token")
        self._last_ts = 0.0

    def _next_ts(self) -> str:
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the page polls twice a second."""


def _serve(app: Any, host: str, port: int, name: str) -> tuple[WSGIServer, str]:
    server = make_server(
        host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    shown_host = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104
    return server, f"http://{shown_host}:{server.server_port}"


class Sandbox:
    """Everything the sandbox runs; `start()` it, read `url`, `stop()` it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        disconnect_delay: float = 0.5,
        index_delay: float = INDEX_DELAY,
        seed: bool = True,
    ) -> None:
        self._host = host
        self._port = port
        self._disconnect_delay = disconnect_delay
        self._index_delay = index_delay
        self._seed = seed
        self._lock = threading.Lock()
        self._notes: list[_Note] = []
        self._hook_users: dict[str, str] = {}  # response_url -> the user whose action made it
        self._calls: list[_SimulatedCall] = []
        self._servers: list[WSGIServer] = []
        self._dir: str | None = None
        self.genesys = FakeGenesys(client_id=GENESYS_CLIENT_ID, client_secret=GENESYS_CLIENT_SECRET)
        # The org's block list, as Genesys' ani-blacklist blueprint makes it; the simulated
        # inbound flow refuses the calls of the numbers in it.
        self.blocklist_table = self.genesys.add_datatable(
            "Blocked numbers", ["reason", "blockedBy", "expiresAt"]
        )
        self.genesys.flow_blocklist_table = self.blocklist_table
        self.slack = _SandboxSlack()
        self.bot: Bot | None = None
        self.store: RequestStore | None = None
        self.requester: SlackRequester | None = None
        self.url = ""
        self.bot_url = ""

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Start the simulators, the bot and the page; on failure, stop what started."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="drop-caller-sandbox-")
        self.genesys.start()
        self.genesys.disconnect_delay = self._disconnect_delay
        self.slack.start()
        settings = load_settings(self.bot_environment(), mode="http")
        self.store = RequestStore.from_url(settings.database_url)
        calls = GenesysCalls(settings.genesys_config())
        self.bot = create_bot(settings, calls, self.store)
        self.bot.start_background()
        # The bot learns its workspace with auth.test in the background; clicks need it.
        self.slack.wait_for(lambda: self.bot is not None and self.bot.identity.team_id, 10.0)
        bot_server, self.bot_url = _serve(self.bot.wsgi, "127.0.0.1", 0, "sandbox-bot")
        self._servers.append(bot_server)
        self.requester = SlackRequester(
            f"{self.bot_url}/slack/events", SIGNING_SECRET, team_id=TEAM_ID
        )
        if self._seed:
            self.seed()
        # The seeded calls have been going for minutes; only calls added from now on lag.
        self.genesys.index_delay = self._index_delay
        page_server, self.url = _serve(self.wsgi, self._host, self._port, "sandbox-page")
        self._servers.append(page_server)

    def bot_environment(self) -> dict[str, str]:
        """The configuration the bot gets: the simulators' addresses, sandbox-only secrets."""
        assert self._dir is not None
        return simulated_environment(
            self.genesys,
            self.slack,
            signing_secret=SIGNING_SECRET,
            supervisors=",".join(user.id for user in USERS if user.supervisor),
            database_url=f"sqlite:///{Path(self._dir) / 'drop_caller.db'}",
        ) | {
            "DROP_CALLER_ALLOW_TEARDOWN": "true",
            "DROP_CALLER_BLOCKLIST_TABLE": self.blocklist_table,
        }

    def stop(self) -> None:
        """Stop everything and remove the temporary database."""
        if self.bot is not None:
            self.bot.stop_background()
            self.bot.finish_work(timeout=5.0)
        for server in reversed(self._servers):
            server.shutdown()
            server.server_close()
        self._servers.clear()
        if self.bot is not None:
            self.bot.executor.shutdown(wait=False)
            self.bot = None
        self.genesys.stop()
        with contextlib.suppress(RuntimeError):
            self.slack.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- simulated calls --------------------------------------------------------------------

    def seed(self) -> None:
        """The calls a newcomer finds: one of each kind, and one number on two calls."""
        self.add_call("inbound", [INBOUND_NUMBER], agent="Jane Agent", queue="Billing")
        self.add_call("outbound", [OUTBOUND_NUMBER], agent="Omar Agent")
        self.add_call("conference", list(CONFERENCE_NUMBERS), agent="Priya Agent", queue="Sales")
        self.add_call("inbound", [TWICE_NUMBER], agent="Lee Agent", queue="Support")
        self.add_call("outbound", [TWICE_NUMBER], agent="Kim Agent", queue="Support")
        # A stuck ("ghost") interaction: the caller left half an hour ago, the agent did not.
        stuck = self.add_call("inbound", [STUCK_NUMBER], agent="Ari Agent", queue="Support")
        self.genesys.hang_up(stuck, leave_stuck=True, seconds_ago=1800)

    def add_call(
        self, kind: str, numbers: list[str], *, agent: str, queue: str | None = None
    ) -> str:
        """Start a live call in the simulator; numbers in E.164. Returns its conversation id."""
        if kind not in _KINDS:
            raise SandboxError(f"A call is {', '.join(_KINDS)}, not {kind!r}.")
        if not numbers or (kind != "conference" and len(numbers) != 1):
            raise SandboxError("A call has one number; a conference two.")
        if kind == "inbound":
            call_id = self.genesys.add_inbound_call(
                numbers[0], agent_name=agent, queue_name=queue or "Billing"
            )
        elif kind == "outbound":
            call_id = self.genesys.add_outbound_call(numbers[0], agent_name=agent, queue_name=queue)
        elif kind == "ivr":
            call_id = self.genesys.add_ivr_call(numbers[0])
        else:
            call_id = self.genesys.add_conference(
                numbers, agent_name=agent, queue_name=queue or "Billing"
            )
        with self._lock:
            in_ivr = kind == "ivr"
            self._calls.append(
                _SimulatedCall(
                    call_id,
                    kind,
                    () if in_ivr else (agent,),
                    None if in_ivr else queue,
                    time.time(),
                )
            )
        return call_id

    def hang_up(
        self, call_id: str, participant_id: str | None = None, *, leave_stuck: bool = False
    ) -> None:
        """The caller (or one external party) hangs up; with `leave_stuck`, the agent's leg
        stays connected, as in a stuck interaction."""
        if not any(call.id == call_id for call in self._snapshot_calls()):
            raise SandboxError(f"No simulated call {call_id!r}.")
        try:
            self.genesys.hang_up(call_id, participant_id, leave_stuck=leave_stuck)
        except KeyError as exc:
            raise SandboxError(str(exc)) from None

    def calls_state(self) -> list[dict[str, Any]]:
        """Every simulated call, newest first, with its parties' live state."""
        answer = []
        for call in reversed(self._snapshot_calls()):
            parties = []
            for leg in self.genesys.participants(call.id):
                purpose = str(leg.get("purpose", ""))
                if purpose not in (*_CALLER_PURPOSES, "agent"):
                    continue
                state = str(leg.get("state", ""))
                number = str(leg.get("address", "")).removeprefix("tel:")
                caller = purpose in _CALLER_PURPOSES
                parties.append(
                    {
                        "id": leg["id"],
                        "purpose": purpose,
                        "role": "caller" if purpose == "customer" else purpose,
                        "name": display_number(number) if caller else ", ".join(call.agents),
                        "number": number if caller else None,
                        "state": state,
                        "live": state not in _ENDED,
                        # What the bot wrote into the interaction (dropCaller.*).
                        "attributes": dict(leg.get("attributes") or {}),
                    }
                )
            live = any(p["live"] for p in parties if p["purpose"] in _CALLER_PURPOSES)
            answer.append(
                {
                    "id": call.id,
                    "kind": call.kind,
                    "queue": call.queue,
                    "live": live,
                    # The callers have gone but another leg (the agent's) is still on it.
                    "stuck": not live and any(p["live"] for p in parties),
                    "started": call.created,
                    "parties": parties,
                }
            )
        return answer

    def _snapshot_calls(self) -> list[_SimulatedCall]:
        with self._lock:
            return list(self._calls)

    # --- Slack's side -----------------------------------------------------------------------

    def command(self, user_id: str, text: str) -> SlackResponse:
        """`/drop-caller text` typed by `user_id`: sent to the bot as Slack would, signed."""
        user = self._user(user_id)
        assert self.requester is not None
        response_url = self.slack.new_response_url(channel=CHANNEL_ID)
        self._remember(response_url, user.id)
        self._note(user.id, "command", f"/drop-caller {text}".rstrip())
        response = self.requester.command(
            text,
            user_id=user.id,
            user_name=user.name,
            channel_id=CHANNEL_ID,
            channel_name=CHANNEL_NAME,
            response_url=response_url,
        )
        self._note_answer(user.id, response, "/drop-caller")
        return response

    def click(self, user_id: str, message_ts: str, action_id: str) -> SlackResponse:
        """`user_id` clicks a button of a channel message (and, if it asks, confirmed)."""
        user = self._user(user_id)
        assert self.requester is not None
        try:
            message = self.slack.message(CHANNEL_ID, message_ts)
        except KeyError:
            raise SandboxError("That message is gone.") from None
        block_id, button = _find_button(message, action_id)
        response_url = self.slack.new_response_url(channel=CHANNEL_ID, message_ts=message_ts)
        self._remember(response_url, user.id)
        response = self.requester.click(
            action_id=action_id,
            value=str(button.get("value", "")),
            user_id=user.id,
            user_name=user.name,
            channel_id=CHANNEL_ID,
            channel_name=CHANNEL_NAME,
            message_ts=message_ts,
            response_url=response_url,
            block_id=block_id,
            button_text=str(button.get("text", {}).get("text", "")),
            style=button.get("style"),
            message=message.to_payload(),
        )
        self._note_answer(user.id, response, "The button")
        return response

    def timeline(self, user_id: str) -> list[dict[str, Any]]:
        """The channel as `user_id` sees it: its messages plus what only they may see."""
        user = self._user(user_id)
        items: list[dict[str, Any]] = []
        for message in self.slack.messages(CHANNEL_ID):
            items.append(
                {
                    "id": f"m{message.ts}",
                    "kind": "message",
                    "ts": message.ts,
                    "at": float(message.ts),
                    "text": message.text,
                    "blocks": message.blocks,
                    "edited": message.edits > 0,
                }
            )
        with self._lock:
            hook_users = dict(self._hook_users)
            notes = [note for note in self._notes if note.user == user.id]
        for index, post in enumerate(self.slack.response_posts):
            body = post.body
            if (
                post.status != 200
                or hook_users.get(post.url) != user.id
                or body.get("replace_original") is True
                or body.get("delete_original") is True
                or body.get("response_type") == "in_channel"
            ):
                continue
            items.append(_ephemeral(f"r{index}", post.at, body))
        for ephemeral in self.slack.ephemerals:
            if ephemeral.user == user.id and ephemeral.channel == CHANNEL_ID:
                item = {"text": ephemeral.text, "blocks": ephemeral.blocks}
                items.append(_ephemeral(f"e{ephemeral.ts}", ephemeral.at, item))
        for note in notes:
            items.append(
                {
                    "id": note.id,
                    "kind": note.kind,
                    "at": note.at,
                    "text": note.text,
                    "blocks": note.blocks,
                }
            )
        items.sort(key=lambda item: (item["at"], item["id"]))
        return items

    def state(self, user_id: str) -> dict[str, Any]:
        """Everything the page shows, for `user_id`."""
        user = self._user(user_id)
        return {
            "banner": BANNER,
            "channel": {"id": CHANNEL_ID, "name": CHANNEL_NAME},
            "user": user.id,
            "users": [{"id": u.id, "name": u.name, "supervisor": u.supervisor} for u in USERS],
            "bot": {"id": self.slack.bot_user_id, "name": "drop-caller"},
            "timeline": self.timeline(user.id),
            "calls": self.calls_state(),
            "blocked": self.blocked_state(),
        }

    def blocked_state(self) -> list[dict[str, Any]]:
        """The rows of the simulated block-list table, as an admin sees them in Architect."""
        rows = self.genesys.rows(self.blocklist_table)
        return [{"key": key, **row} for key, row in sorted(rows.items())]

    def _user(self, user_id: str) -> SandboxUser:
        user = _USERS_BY_ID.get(user_id)
        if user is None:
            raise SandboxError(f"No user {user_id!r} in the sandbox.")
        return user

    def _remember(self, response_url: str, user_id: str) -> None:
        with self._lock:
            self._hook_users[response_url] = user_id

    def _note(
        self, user_id: str, kind: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        with self._lock:
            note_id = f"n{len(self._notes)}"
            self._notes.append(_Note(note_id, user_id, time.time(), kind, text, blocks or []))

    def _note_answer(self, user_id: str, response: SlackResponse, what: str) -> None:
        """The body of the bot's HTTP answer is what Slack shows the user, and only them."""
        if response.status != 200:
            self._note(
                user_id,
                "ephemeral",
                f"{what} failed: the app answered HTTP {response.status} "
                "(Slack would show an error like this one).",
            )
            return
        if not response.body.strip():
            return
        try:
            body = json.loads(response.body)
        except ValueError:
            body = {"text": response.body}
        if isinstance(body, dict) and (body.get("text") or body.get("blocks")):
            self._note(user_id, "ephemeral", str(body.get("text", "")), body.get("blocks") or [])

    # --- the page's HTTP API -----------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The page and its JSON API."""
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        try:
            if method == "GET" and path in ("/", "/index.html"):
                return _reply(start_response, 200, PAGE.read_bytes(), "text/html; charset=utf-8")
            if method == "GET" and path == "/api/state":
                query = parse_qs(environ.get("QUERY_STRING", ""))
                user = (query.get("user") or [USERS[0].id])[0]
                return _json(start_response, 200, self.state(user))
            if method == "POST" and path.startswith("/api/"):
                body = _read_json(environ)
                return _json(start_response, 200, self._post(path, body))
            return _json(start_response, 404, {"error": "Not found."})
        except SandboxError as exc:
            return _json(start_response, 400, {"error": str(exc)})
        except Exception:
            logger.exception("Sandbox request %s %s failed", method, path)
            return _json(start_response, 500, {"error": "The sandbox hit an error; see its log."})

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == "/api/command":
            text = _text(body, "text")
            text = text.removeprefix("/drop-caller").strip() if text.startswith("/") else text
            response = self.command(_text(body, "user"), text)
            return {"status": response.status}
        if path == "/api/click":
            response = self.click(_text(body, "user"), _text(body, "ts"), _text(body, "action_id"))
            return {"status": response.status}
        if path == "/api/calls":
            kind = _text(body, "kind")
            raw = body.get("numbers")
            texts = [str(n) for n in raw] if isinstance(raw, list) else [_text(body, "number")]
            numbers = [_phone(n) for n in texts if n.strip()]
            agent = str(body.get("agent") or "").strip()[:60] or "Jane Agent"
            queue = str(body.get("queue") or "").strip()[:60] or None
            return {"id": self.add_call(kind, numbers, agent=agent, queue=queue)}
        if path == "/api/hangup":
            participant = body.get("participant_id")
            self.hang_up(
                _text(body, "call_id"),
                str(participant) if participant else None,
                leave_stuck=body.get("leave_stuck") is True,
            )
            return {"ok": True}
        raise SandboxError(f"No such action: {path}.")


def _ephemeral(item_id: str, at: float, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item_id,
        "kind": "ephemeral",
        "at": at,
        "text": str(body.get("text") or ""),
        "blocks": body.get("blocks") or [],
    }


def _find_button(message: Message, action_id: str) -> tuple[str, dict[str, Any]]:
    for block in message.blocks:
        if block.get("type") != "actions":
            continue
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(block.get("block_id", "")), dict(element)
    raise SandboxError("That button is no longer on the message.")


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise SandboxError(f"Missing {name!r}.")
    return value[:500]


def _phone(text: str) -> str:
    try:
        return parse_phone_number(text, "US")
    except PhoneNumberError as exc:
        raise SandboxError(f"{text!r} is not a phone number: {exc}") from None


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > _MAX_BODY:
        raise SandboxError("The request is too large.")
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise SandboxError("The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise SandboxError("The request body must be a JSON object.")
    return body


def _reply(
    start_response: StartResponse, status: int, data: bytes, content_type: str
) -> list[bytes]:
    reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
    start_response(
        f"{status} {reasons.get(status, 'Error')}",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [data]


def _json(start_response: StartResponse, status: int, payload: Any) -> list[bytes]:
    return _reply(start_response, status, json.dumps(payload).encode(), "application/json")


# --- `python app.py --sandbox` ------------------------------------------------------------


def run_sandbox(*, host: str = "127.0.0.1", port: int | None = None) -> int:
    """Run the sandbox until Ctrl+C or SIGTERM; print its address. Returns the exit code."""
    from bot.redaction import configure_logging

    # Everything the sandbox talks to is on loopback; slack_sdk would send it to a proxy.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        os.environ.pop(name, None)
    configure_logging(os.environ.get("LOG_LEVEL", "INFO").upper(), [SIGNING_SECRET])
    wanted = port if port is not None else int(os.environ.get("PORT") or 3000)
    try:
        sandbox = Sandbox(host=host, port=wanted).start()
    except OSError as exc:
        logger.warning("Port %s is not free (%s); using another", wanted, exc)
        sandbox = Sandbox(host=host, port=0).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    started = datetime.now(UTC).strftime("%H:%M:%S UTC")
    print(f"\n  {BANNER}\n  Open {sandbox.url}  (started {started}; Ctrl+C stops it)\n", flush=True)
    stop.wait()
    sandbox.stop()
    return 0

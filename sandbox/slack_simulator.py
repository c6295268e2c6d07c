"""A fake Slack Web API and response_url endpoint, served over real HTTP on loopback.

Point the app's client at it with ``WebClient(token=..., base_url=fake.api_url)`` and give
slash commands / clicks a ``response_url`` from :meth:`FakeSlack.new_response_url`.

What slack-sdk 3.48 actually sends (and so what this fake parses):

* ``chat.postMessage``, ``chat.postEphemeral``, ``chat.update`` (and the other chat.* methods
  that take blocks) always go as a JSON body (``application/json;charset=utf-8``), with or
  without blocks; the token is never in the body.
* Most other methods (``auth.test``, ``usergroups.users.list``, ...) go as
  ``application/x-www-form-urlencoded``. Methods the SDK calls with ``http_verb="GET"`` are still
  sent as POST with a form body; booleans become ``"1"``/``"0"``. ``api_call(data=...)`` sends
  ``multipart/form-data``. All three are accepted here, plus query-string arguments.
* The token travels as ``Authorization: Bearer <token>``.
* ``respond()`` (``WebhookClient``) POSTs a JSON body to the response_url with no
  Authorization header, and does not raise on HTTP errors.

Socket Mode (what slack-sdk 3.48's *builtin* client, the one Bolt's ``SocketModeHandler`` uses,
does; see ``slack_sdk/socket_mode/builtin/connection.py`` and ``internals.py``):

* It calls ``apps.connections.open`` through the app's ``WebClient`` (so ``base_url`` applies),
  with the app-level token as ``Authorization: Bearer xapp-...`` and an empty form body.
* It never looks at the URL scheme, only the port: 443 (given, or the default for ``wss``)
  means TLS, any other port a plain TCP socket. So ``ws://127.0.0.1:<port>`` needs no TLS.
  A proxy (``proxy=`` or ``HTTPS_PROXY``) would wrap the socket in TLS whatever the port.
* Its handshake is ``GET /link/?ticket=... HTTP/1.1`` with ``Host`` (no port), ``Upgrade``,
  ``Connection``, ``Sec-WebSocket-Key`` and ``Sec-WebSocket-Version: 13``, and nothing else; it
  checks ``Sec-WebSocket-Accept``. It pings (payload ``<session id>:<time>``) right after the
  handshake and then every ``ping_interval`` seconds (Bolt: 10), and drops the connection as
  stale if no pong came back for 4 intervals. It answers pings, and acks every envelope with
  ``{"envelope_id", "payload"?}`` in a masked text frame.
* It never sends a close frame: it just closes the socket. After a close frame from the server
  it reconnects (a new ``apps.connections.open``) only at its next ping tick (up to 10 s with
  Bolt); after Slack's ``{"type": "disconnect"}`` message it reconnects at once.
* Its frame reader waits for more bytes whenever a frame starts with 2 bytes or fewer in hand,
  and loses them if nothing else comes within its 3 s socket timeout: so every frame this fake
  sends has a payload (pings carry text, closes carry a status code).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import hashlib
import io
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from sandbox import block_kit
from sandbox.slack_requests import event_callback

T = TypeVar("T")

# Form-encoded arguments that Slack expects as JSON text.
_JSON_ARGS = frozenset({"blocks", "attachments", "metadata", "users", "channels", "view"})
_TS_BASE = 1_700_000_000
DEFAULT_BOT_TOKEN = "xoxb-test-token"
#: The bot scopes manifest.yml asks for.
DEFAULT_SCOPES = frozenset(
    {"commands", "chat:write", "usergroups:read", "channels:read", "groups:read"}
)
DEFAULT_APP_TOKEN = "xapp-test-token"
APP_ID = "A0001"
_VERIFICATION_TOKEN = "verification-token"  # deprecated by Slack, still sent
# RFC 6455: the GUID the server appends to Sec-WebSocket-Key to prove it speaks WebSocket.
_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(frozen=True)
class ApiCall:
    """One Web API request, as received (after auth)."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    #: The error answered (``invalid_auth``, a scripted failure, ...), None if ``ok`` was true.
    error: str | None = None


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url."""

    token: str
    url: str
    body: dict[str, Any]
    at: float
    #: The HTTP status the fake answered.
    status: int = 200


@dataclass(frozen=True)
class Message:
    """A snapshot of a channel message (a deep copy: mutating it changes nothing)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str
    attachments: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    #: ``"chat.postMessage"`` or ``"response_url"``.
    source: str = "chat.postMessage"
    #: How many times it was replaced (chat.update or replace_original).
    edits: int = 0

    def button(self, action_id: str) -> dict[str, Any]:
        """The button with ``action_id`` in the message's actions blocks (``LookupError`` if
        there is none)."""
        for block in self.blocks:
            for element in block.get("elements", []):
                if element.get("action_id") == action_id:
                    return dict(element)
        raise LookupError(f"no button {action_id!r} in {self.blocks!r}")

    def to_payload(self) -> dict[str, Any]:
        """The message as Slack embeds it in a ``block_actions`` payload (``body["message"]``)."""
        payload: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": self.text,
            "ts": self.ts,
            "user": self.user,
            "bot_id": "B0001",
            "blocks": copy.deepcopy(self.blocks),
        }
        if self.attachments:
            payload["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts is not None:
            payload["thread_ts"] = self.thread_ts
        return payload


@dataclass(frozen=True)
class Ephemeral:
    """A message sent with chat.postEphemeral (only ``user`` would see it)."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    at: float


@dataclass
class _StoredMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    user: str
    thread_ts: str | None
    source: str
    edits: int = 0

    def snapshot(self) -> Message:
        return Message(
            channel=self.channel,
            ts=self.ts,
            text=self.text,
            blocks=copy.deepcopy(self.blocks),
            user=self.user,
            attachments=copy.deepcopy(self.attachments),
            thread_ts=self.thread_ts,
            source=self.source,
            edits=self.edits,
        )

    def to_api(self) -> dict[str, Any]:
        return {
            "type": "message",
            "user": self.user,
            "bot_id": "B0001",
            "text": self.text,
            "blocks": copy.deepcopy(self.blocks),
            "attachments": copy.deepcopy(self.attachments),
            "ts": self.ts,
        }


@dataclass
class _ResponseHook:
    channel: str | None
    #: The message this response_url replaces/deletes (given, or created through it).
    message_ts: str | None
    uses: int = 0


@dataclass
class _Failure:
    error: str
    times: int
    status: int
    headers: dict[str, str]


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(payload: dict[str, Any], status: int = 200, **headers: str) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)


def _text_reply(text: str, status: int = 200) -> _Reply:
    return _Reply(status, text.encode(), "text/plain; charset=utf-8")


def _refused(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Slack's answer to a message that breaks its limits, or None."""
    if block_kit.text_problem(text):
        return {"ok": False, "error": "msg_too_long"}
    found = block_kit.problems(blocks)
    if found:
        return {"ok": False, "error": "invalid_blocks", "errors": found}
    return None


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return cast("list[dict[str, Any]]", copy.deepcopy(value))
    raise ValueError(f"expected a JSON array, got {value!r}")


class _WebSocketClosed(Exception):
    """The peer went away, or broke the protocol (then ``code`` is the close code to send)."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code


class _WebSocket:
    """The server end of one RFC 6455 connection: unfragmented frames, as the SDK sends them."""

    TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA

    def __init__(self, sock: socket.socket, reader: io.BufferedIOBase) -> None:
        self._sock = sock
        # The HTTP server's buffered reader: it may already hold bytes sent after the handshake.
        self._reader = reader
        self._send_lock = threading.Lock()
        #: How the server is ending this connection without a close frame, if it is:
        #: "fin" (the TCP connection simply ends) or "reset" (a TCP RST).
        self.abort: str | None = None

    @staticmethod
    def accept_key(key: str) -> str:
        """The ``Sec-WebSocket-Accept`` answering ``Sec-WebSocket-Key: key``."""
        digest = hashlib.sha1((key + _WEBSOCKET_GUID).encode()).digest()  # noqa: S324 - RFC 6455
        return base64.b64encode(digest).decode()

    def send(self, opcode: int, payload: bytes) -> None:
        """One final, unmasked frame (servers never mask)."""
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        with self._send_lock:
            self._sock.sendall(header + payload)

    def receive(self) -> tuple[int, bytes]:
        """The next frame's opcode and unmasked payload; ``_WebSocketClosed`` at the end."""
        first, second = self._read(2)
        if not first & 0x80:
            raise _WebSocketClosed("fragmented frames are not supported", 1003)
        if not second & 0x80:
            raise _WebSocketClosed("client frames must be masked", 1002)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._read(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._read(8))
        mask = self._read(4)
        data = self._read(size)
        return first & 0x0F, bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (best effort), then shut the socket down both ways."""
        with contextlib.suppress(OSError):
            self.send(self.CLOSE, struct.pack("!H", code) + reason.encode())
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def end(self, *, reset: bool) -> None:
        """End the connection with no close frame: a FIN both ways, as a proxy dropping an
        idle connection does; or with `reset`, an RST. (For the RST the socket is made to
        linger 0 and its reader woken; the reader closes it, see `_serve_socket`.)"""
        self.abort = "reset" if reset else "fin"
        with contextlib.suppress(OSError):
            if reset:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self._sock.shutdown(socket.SHUT_RD)
            else:
                self._sock.shutdown(socket.SHUT_RDWR)

    def close_now(self) -> None:
        """Close the reader and the socket (after `end(reset=True)`: sends the RST)."""
        with contextlib.suppress(OSError, ValueError):
            self._reader.close()
        with contextlib.suppress(OSError):
            self._sock.close()

    def _read(self, size: int) -> bytes:
        try:
            data = self._reader.read(size) if size else b""
        except OSError as exc:
            raise _WebSocketClosed(f"read failed: {exc!r}") from exc
        if len(data) < size:
            raise _WebSocketClosed("the client closed the connection")
        return data


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeSlack/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/link/":
            self._websocket()
        else:
            self._dispatch()

    def _websocket(self) -> None:
        """The Socket Mode endpoint: check the ticket, do the RFC 6455 handshake, hand over."""
        fake = cast(_Server, self.server).fake
        self.close_connection = True  # whatever happens, this is no longer HTTP afterwards
        ticket = parse_qs(urlsplit(self.path).query).get("ticket", [""])[-1]
        key = self.headers.get("Sec-WebSocket-Key", "")
        if not fake._known_ticket(ticket):
            self._plain_error(401, "invalid_ticket")
            return
        if (
            self.headers.get("Upgrade", "").lower() != "websocket"
            or "upgrade" not in self.headers.get("Connection", "").lower()
            or self.headers.get("Sec-WebSocket-Version") != "13"
            or not key
        ):
            self._plain_error(400, "not a WebSocket handshake")
            return
        self.protocol_version = "HTTP/1.1"  # RFC 6455 wants "HTTP/1.1 101"; only this request
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", _WebSocket.accept_key(key))
        self.end_headers()
        fake._serve_socket(_WebSocket(self.connection, self.rfile))

    def _plain_error(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self) -> None:
        fake = cast(_Server, self.server).fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            reply = fake._handle(
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=raw,
            )
        except Exception as exc:  # noqa: BLE001 - a fake must answer, and show what broke
            reply = _json_reply(
                {"ok": False, "error": "fake_slack_crashed", "detail": repr(exc)}, 500
            )
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)


class FakeSlack:
    """A fake Slack (Web API + response_url + Socket Mode) on ``127.0.0.1:<free port>``.

    Thread-safe. Knobs (set them any time): ``not_in_channel``, ``usergroups``,
    ``response_url_status``, ``response_url_max_uses``, ``response_url_delay``,
    :meth:`fail_next`.

    Socket Mode: ``apps.connections.open`` with ``app_token`` answers a ``ws://`` URL on the
    same port; a client connecting there gets Slack's ``hello``, then whatever the test pushes
    with :meth:`send_socket_command` / :meth:`send_socket_click`; its acks are in
    :attr:`socket_acks`.
    """

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        #: Channels where chat.postMessage answers ``not_in_channel`` (and conversations.info
        #: says ``is_member: false``).
        self.not_in_channel: set[str] = set()
        #: The scopes granted to the bot token, sent back in every answer's
        #: ``x-oauth-scopes`` header as Slack does; by default what manifest.yml asks for.
        self.scopes: set[str] = set(DEFAULT_SCOPES)
        #: Channels conversations.info does not know (``channel_not_found``).
        self.unknown_channels: set[str] = set()
        #: usergroup id -> user ids, for usergroups.users.list (unknown ids: ``no_such_subteam``).
        self.usergroups: dict[str, list[str]] = {}
        #: HTTP status for every response_url post; anything but 200 makes them all fail.
        self.response_url_status: int = 200
        #: Slack accepts 5 posts per response_url; later ones get 404 ``used_url``.
        self.response_url_max_uses: int = 5
        #: Seconds every response_url post waits before it is answered (a slow or hung Slack);
        #: :meth:`stop` cuts the wait short.
        self.response_url_delay: float = 0.0
        self._stopping = threading.Event()

        self._lock = threading.RLock()
        self._calls: list[ApiCall] = []
        self._response_posts: list[ResponsePost] = []
        self._messages: dict[tuple[str, str], _StoredMessage] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, list[dict[str, Any]]] = {}
        self._hooks: dict[str, _ResponseHook] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._ts_seq = 0
        # Socket Mode: tickets handed out, open connections (newest last), what went each way.
        self._tickets: set[str] = set()
        self._sockets: list[_WebSocket] = []
        self._socket_connections = 0
        self._socket_sent: list[dict[str, Any]] = []
        self._socket_received: list[Any] = []
        self._socket_ack_times: dict[str, float] = {}
        self._socket_pongs: list[bytes] = []
        self._socket_changed = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        if self._server is not None:
            raise RuntimeError("FakeSlack already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeSlack:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # release response_url posts held by response_url_delay
        self.close_socket_connections(1001, "going away")
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """What ``WebClient(base_url=...)`` takes (with the trailing slash)."""
        return self.base_url + "/api/"

    # ------------------------------------------------------------------ scripting

    def new_response_url(self, channel: str | None = None, *, message_ts: str | None = None) -> str:
        """A fresh response_url; posts to it are recorded in :attr:`response_posts`.

        ``channel``: where ``response_type="in_channel"`` posts appear (needed for them to show
        up in :meth:`messages`). ``message_ts``: the message the interaction came from, which
        ``replace_original``/``delete_original`` act on (for a click, the card's ts). Without it,
        they act on the last message created through this URL, if any.
        """
        token = uuid.uuid4().hex
        with self._lock:
            self._hooks[token] = _ResponseHook(channel=channel, message_ts=message_ts)
        return f"{self.base_url}/response/{token}"

    def fail_next(
        self,
        method: str,
        error: str,
        *,
        times: int = 1,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``.

        E.g. ``fail_next("chat.update", "ratelimited", status=429, headers={"Retry-After": "1"})``.
        Failures queue up in order. Calls with a bad token fail with ``invalid_auth`` first and
        do not consume a scripted failure.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._failures.setdefault(method, []).append(
                _Failure(error=error, times=times, status=status, headers=dict(headers or {}))
            )

    # ------------------------------------------------------------------ Socket Mode scripting

    def send_socket_command(
        self,
        text: str,
        *,
        user_id: str = "USUP1",
        channel_id: str = "C0001",
        response_url: str | None = None,
        command: str = "/drop-caller",
        user_name: str = "sup",
        channel_name: str = "supervisors",
    ) -> str:
        """Push a ``slash_commands`` envelope (the HTTP form fields, as a JSON object).

        Without ``response_url``, a fresh one for ``channel_id``. Returns the envelope id.
        """
        payload = {
            "token": _VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": "fake",
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url or self.new_response_url(channel=channel_id),
            "trigger_id": f"{time.time_ns()}.{uuid.uuid4().hex}",
        }
        return self.send_socket_envelope("slash_commands", payload, accepts_response_payload=True)

    def send_socket_click(
        self, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> str:
        """Push an ``interactive`` envelope carrying ``payload`` (e.g. a ``block_actions`` one,
        as ``SlackRequester.block_actions_payload`` builds). Slack sends block_actions with
        ``accepts_response_payload: false`` (true is for view submissions). Returns the id.
        """
        return self.send_socket_envelope(
            "interactive", payload, accepts_response_payload=accepts_response_payload
        )

    def send_socket_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_attempt: int | None = None,
    ) -> str:
        """Push an ``events_api`` envelope carrying ``event``; with ``retry_attempt``, as Slack
        resends an event it got no ack for. Returns the envelope id."""
        payload = event_callback(self.team_id, event, event_id)
        envelope_id = str(uuid.uuid4())
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": "events_api",
            "accepts_response_payload": False,
        }
        if retry_attempt is not None:
            message |= {"retry_attempt": retry_attempt, "retry_reason": "timeout"}
        self.send_socket_message(message)
        return envelope_id

    def send_socket_envelope(
        self, envelope_type: str, payload: dict[str, Any], *, accepts_response_payload: bool
    ) -> str:
        """Push ``{"envelope_id", "payload", "type", "accepts_response_payload"}`` down the
        newest open connection; return the new envelope id.
        """
        envelope_id = str(uuid.uuid4())
        self.send_socket_message(
            {
                "envelope_id": envelope_id,
                "payload": payload,
                "type": envelope_type,
                "accepts_response_payload": accepts_response_payload,
            }
        )
        return envelope_id

    def send_socket_message(self, message: dict[str, Any]) -> None:
        """Push any JSON message down the newest open connection, e.g. Slack's
        ``{"type": "disconnect", "reason": "refresh_requested"}`` (the SDK then reconnects).
        """
        self._socket_send(_WebSocket.TEXT, json.dumps(message).encode())
        with self._lock:
            self._socket_sent.append(copy.deepcopy(message))

    def send_socket_ping(self, payload: bytes = b"fake-slack-ping") -> None:
        """Ping the newest connection; its pong lands in :attr:`socket_pongs`."""
        self._socket_send(_WebSocket.PING, payload or b"-")  # see the module docstring

    def close_socket_connections(self, code: int = 1001, reason: str = "going away") -> int:
        """Close every open Socket Mode connection (close frame, then the socket); the SDK
        reconnects through ``apps.connections.open``. Returns how many were open.
        """
        with self._socket_changed:
            sockets, self._sockets = self._sockets, []
            self._socket_changed.notify_all()
        for ws in sockets:
            ws.close(code, reason)
        return len(sockets)

    def end_socket_connections(self, *, reset: bool = False) -> int:
        """End every open Socket Mode connection WITHOUT a close frame: the TCP connection
        just ends (an edge process dying, a proxy dropping an idle connection), or with
        `reset`, is reset. Returns how many were open."""
        with self._socket_changed:
            sockets, self._sockets = self._sockets, []
            self._socket_changed.notify_all()
        for ws in sockets:
            ws.end(reset=reset)
        return len(sockets)

    def wait_for_socket_connection(self, timeout: float = 5.0) -> None:
        """Block until a client has completed the WebSocket handshake (and got ``hello``)."""
        deadline = time.monotonic() + timeout
        with self._socket_changed:
            while not self._sockets:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no Socket Mode connection within {timeout}s.\n{self.describe()}"
                    )
                self._socket_changed.wait(remaining)

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[ApiCall]:
        """Every Web API call so far (a copy), oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    @property
    def response_posts(self) -> list[ResponsePost]:
        """Every response_url post so far (a copy), oldest first."""
        with self._lock:
            return list(self._response_posts)

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message as a person would (later updates get ``message_not_found``)."""
        with self._lock:
            del self._messages[(channel, ts)]

    def home_views(self, user_id: str) -> list[dict[str, Any]]:
        """Every Home tab view published for ``user_id`` (views.publish), oldest first."""
        with self._lock:
            return copy.deepcopy(self._views.get(user_id, []))

    @property
    def ephemerals(self) -> list[Ephemeral]:
        """Every chat.postEphemeral that succeeded, oldest first."""
        with self._lock:
            return list(self._ephemerals)

    def messages(self, channel: str) -> list[Message]:
        """Current messages of ``channel`` (after updates/deletes), oldest first."""
        with self._lock:
            found = [m for (c, _), m in self._messages.items() if c == channel]
            return [m.snapshot() for m in sorted(found, key=lambda m: float(m.ts))]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            stored = self._messages.get((channel, ts))
            if stored is None:
                known = sorted(t for c, t in self._messages if c == channel)
                raise KeyError(f"no message {ts!r} in channel {channel!r} (have: {known})")
            return stored.snapshot()

    def wait_for(
        self,
        predicate: Callable[[], T | bool | None],
        timeout: float = 5.0,
        interval: float = 0.02,
    ) -> T:
        """Poll ``predicate`` until it returns something truthy and return that.

        ``AssertionError`` and ``LookupError`` raised by the predicate count as "not yet".
        On timeout, raise ``AssertionError`` describing the last result and the fake's state.
        """
        deadline = time.monotonic() + timeout
        last: object = None
        last_exc: BaseException | None = None
        while True:
            try:
                last = predicate()
                last_exc = None
            except (AssertionError, LookupError) as exc:
                last, last_exc = None, exc
            if last:
                return cast(T, last)
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        name = getattr(predicate, "__qualname__", repr(predicate))
        outcome = f"raised {last_exc!r}" if last_exc is not None else f"returned {last!r}"
        raise AssertionError(
            f"wait_for({name}) timed out after {timeout}s; it last {outcome}.\n{self.describe()}"
        )

    @property
    def socket_acks(self) -> list[dict[str, Any]]:
        """Every Socket Mode ack received (``{"envelope_id", "payload"?}``), oldest first."""
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self._socket_received
                if isinstance(m, dict) and "envelope_id" in m
            ]

    @property
    def socket_ack_times(self) -> dict[str, float]:
        """When each ack arrived (``time.monotonic()``), by envelope id."""
        with self._lock:
            return dict(self._socket_ack_times)

    def socket_ack(self, envelope_id: str) -> dict[str, Any]:
        """The ack of ``envelope_id``; ``LookupError`` until it arrives (see :meth:`wait_for`)."""
        for ack in self.socket_acks:
            if ack["envelope_id"] == envelope_id:
                return ack
        raise LookupError(f"no ack for envelope {envelope_id!r} yet")

    @property
    def socket_sent(self) -> list[dict[str, Any]]:
        """Every message pushed to a client so far (not the ``hello``s), oldest first."""
        with self._lock:
            return copy.deepcopy(self._socket_sent)

    @property
    def socket_pongs(self) -> list[bytes]:
        """Payloads of the pongs answering :meth:`send_socket_ping`, oldest first."""
        with self._lock:
            return list(self._socket_pongs)

    @property
    def socket_connections(self) -> int:
        """How many WebSocket handshakes succeeded so far (open or since closed)."""
        with self._lock:
            return self._socket_connections

    @property
    def open_socket_connections(self) -> int:
        """How many Socket Mode connections are open now."""
        with self._lock:
            return len(self._sockets)

    def describe(self, limit: int = 20) -> str:
        """A short summary of what the fake saw (the last ``limit`` of each kind)."""
        with self._lock:
            calls = [c.method + (f"[{c.error}]" if c.error else "") for c in self._calls]
            messages = sorted(self._messages.values(), key=lambda m: float(m.ts))
            lines = ["FakeSlack state:"]
            lines.append(f"  {len(calls)} calls: " + (", ".join(calls[-limit:]) or "(none)"))
            lines.append(f"  {len(self._response_posts)} response_url posts")
            for post in self._response_posts[-limit:]:
                lines.append(f"    {post.token[:8]} -> {post.status}: {post.body}")
            lines.append(f"  {len(messages)} channel messages")
            for stored in messages[-limit:]:
                where = f"{stored.channel}/{stored.ts}"
                how = f"{stored.source}, edits={stored.edits}"
                lines.append(f"    {where} ({how}): {stored.text!r}")
            lines.append(
                f"  Socket Mode: {len(self._sockets)} open of {self._socket_connections} accepted,"
                f" {len(self._socket_sent)} messages sent, {len(self._socket_received)} received"
            )
            for received in self._socket_received[-limit:]:
                shown = repr(received)
                lines.append(f"    <- {shown[:200]}{'...' if len(shown) > 200 else ''}")
            return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP handling

    def _handle(self, *, path: str, headers: dict[str, str], body: bytes) -> _Reply:
        parts = urlsplit(path)
        if parts.path.startswith("/api/"):
            return self._handle_api(parts.path[len("/api/") :], parts.query, headers, body)
        if parts.path.startswith("/response/"):
            return self._handle_response_url(parts.path[len("/response/") :], headers, body)
        return _text_reply("not found", 404)

    def _next_ts(self) -> str:
        with self._lock:
            self._ts_seq += 100
            return f"{_TS_BASE + self._ts_seq // 1_000_000}.{self._ts_seq % 1_000_000:06d}"

    @staticmethod
    def _parse_args(query: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        args: dict[str, Any] = {
            k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()
        }
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            loaded = json.loads(body.decode("utf-8")) if body else {}
            if not isinstance(loaded, dict):
                raise ValueError("JSON body must be an object")
            args.update(loaded)
        elif content_type == "multipart/form-data":
            head = f"Content-Type: {headers['content-type']}\r\n\r\n".encode()
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if isinstance(name, str):
                    payload = part.get_payload(decode=True)
                    data = payload if isinstance(payload, bytes) else b""
                    args[name] = data if part.get_filename() else data.decode("utf-8")
        elif body:
            decoded = body.decode("utf-8")
            args.update({k: v[-1] for k, v in parse_qs(decoded, keep_blank_values=True).items()})
        for key in _JSON_ARGS:
            value = args.get(key)
            if isinstance(value, str) and value[:1] in ("[", "{"):
                args[key] = json.loads(value)
        return args

    def _handle_api(self, method: str, query: str, headers: dict[str, str], body: bytes) -> _Reply:
        now = time.time()
        try:
            args = self._parse_args(query, headers, body)
        except (ValueError, UnicodeDecodeError) as exc:
            with self._lock:
                raw = {"_raw": body.decode("utf-8", "replace")}
                self._calls.append(ApiCall(method, raw, None, now, "invalid_form_data"))
            return _json_reply({"ok": False, "error": "invalid_form_data", "detail": str(exc)})

        auth = headers.get("authorization", "")
        token: str | None = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        body_token = args.pop("token", None)
        if token is None and isinstance(body_token, str):
            token = body_token

        with self._lock:
            # apps.connections.open is the one method that takes the app-level token.
            expected = self.app_token if method == "apps.connections.open" else self.bot_token
            if token != expected:
                reply = _json_reply({"ok": False, "error": "invalid_auth"})
            else:
                reply = self._scripted_failure(method) or self._run_method(method, args)
                if token == self.bot_token:
                    reply.headers["x-oauth-scopes"] = ",".join(sorted(self.scopes))
            error = None
            parsed = json.loads(reply.body)
            if not parsed.get("ok"):
                error = str(parsed.get("error"))
            self._calls.append(ApiCall(method, copy.deepcopy(args), token, now, error))
            return reply

    def _scripted_failure(self, method: str) -> _Reply | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return _json_reply({"ok": False, "error": failure.error}, failure.status, **failure.headers)

    def _run_method(self, method: str, args: dict[str, Any]) -> _Reply:
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "conversations.info": self._conversations_info,
            "usergroups.users.list": self._usergroups_users_list,
            "views.publish": self._views_publish,
        }
        handler = handlers.get(method)
        if handler is None:
            return _json_reply({"ok": True})
        try:
            return _json_reply(handler(args))
        except ValueError as exc:
            return _json_reply({"ok": False, "error": "invalid_arguments", "detail": str(exc)})

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        port = self.base_url.rsplit(":", 1)[1]
        return {"ok": True, "url": f"ws://127.0.0.1:{port}/link/?ticket={ticket}&app_id={APP_ID}"}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "drop-caller",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0001",
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.not_in_channel:
            return {"ok": False, "error": "not_in_channel"}
        text = str(args.get("text") or "")
        blocks = _as_list(args.get("blocks"))
        attachments = _as_list(args.get("attachments"))
        if not text and not blocks and not attachments:
            return {"ok": False, "error": "no_text"}
        refused = _refused(text, blocks)
        if refused is not None:
            return refused
        thread_ts = args.get("thread_ts")
        stored = _StoredMessage(
            channel=channel,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            attachments=attachments,
            user=self.bot_user_id,
            thread_ts=str(thread_ts) if thread_ts else None,
            source="chat.postMessage",
        )
        self._messages[(channel, stored.ts)] = stored
        return {"ok": True, "channel": channel, "ts": stored.ts, "message": stored.to_api()}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        ts = str(args.get("ts") or "")
        stored = self._messages.get((channel, ts))
        if stored is None:
            return {"ok": False, "error": "message_not_found"}
        refused = _refused(str(args.get("text") or ""), _as_list(args.get("blocks")))
        if refused is not None:
            return refused
        # Like Slack: fields left out keep their old value; [] clears blocks/attachments.
        if "text" in args:
            stored.text = str(args["text"] or "")
        if "blocks" in args:
            stored.blocks = _as_list(args["blocks"])
        if "attachments" in args:
            stored.attachments = _as_list(args["attachments"])
        stored.edits += 1
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": stored.text,
            "message": stored.to_api(),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        ts = str(args.get("ts") or "")
        if self._messages.pop((channel, ts), None) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        user = str(args.get("user") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        ts = self._next_ts()
        self._ephemerals.append(
            Ephemeral(
                channel=channel,
                user=user,
                ts=ts,
                text=str(args.get("text") or ""),
                blocks=_as_list(args.get("blocks")),
                at=time.time(),
            )
        )
        return {"ok": True, "message_ts": ts}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel or channel in self.unknown_channels:
            return {"ok": False, "error": "channel_not_found"}
        if not {"channels:read", "groups:read"} & self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": "channels:read"}
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_channel": True,
                "is_archived": False,
                "is_member": channel not in self.not_in_channel,
            },
        }

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user_id") or "")
        view = args.get("view")
        if not user:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments", "detail": "view.type must be home"}
        blocks = _as_list(view.get("blocks"))
        found = block_kit.problems(blocks, surface="home")
        if found:
            return {"ok": False, "error": "invalid_blocks", "errors": found}
        self._views.setdefault(user, []).append(copy.deepcopy(view))
        return {"ok": True, "view": {"id": f"V{len(self._views[user])}", **view}}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        users = self.usergroups.get(str(args.get("usergroup") or ""))
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    # ------------------------------------------------------------------ Socket Mode serving

    def _known_ticket(self, ticket: str) -> bool:
        with self._lock:
            return ticket in self._tickets

    def _socket_send(self, opcode: int, payload: bytes) -> None:
        with self._lock:
            if not self._sockets:
                raise RuntimeError(
                    "no open Socket Mode connection (call wait_for_socket_connection first)"
                )
            ws = self._sockets[-1]
        ws.send(opcode, payload)

    def _serve_socket(self, ws: _WebSocket) -> None:
        """Run one connection, on its HTTP handler thread, until either side closes it."""
        hello = {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {
                "host": "applink-fake-slack",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        }
        try:
            ws.send(_WebSocket.TEXT, json.dumps(hello).encode())
            with self._socket_changed:
                self._sockets.append(ws)
                self._socket_connections += 1
                self._socket_changed.notify_all()
            while True:
                opcode, data = ws.receive()
                if opcode == _WebSocket.TEXT:
                    self._socket_text(data)
                elif opcode == _WebSocket.PING:
                    ws.send(_WebSocket.PONG, data)
                elif opcode == _WebSocket.PONG:
                    with self._lock:
                        self._socket_pongs.append(data)
                elif opcode == _WebSocket.CLOSE:
                    (code,) = struct.unpack("!H", data[:2]) if len(data) >= 2 else (1000,)
                    ws.close(code)  # echo it, as RFC 6455 asks
                    return
                else:
                    ws.close(1003, f"unsupported opcode {opcode:#x}")
                    return
        except _WebSocketClosed as exc:
            if exc.code is not None and ws.abort is None:
                ws.close(exc.code, str(exc))
        except OSError:
            pass  # the socket was shut down under us (close_socket_connections, stop)
        finally:
            if ws.abort == "reset":
                ws.close_now()
            with self._socket_changed:
                if ws in self._sockets:
                    self._sockets.remove(ws)
                self._socket_changed.notify_all()

    def _socket_text(self, data: bytes) -> None:
        arrived = time.monotonic()
        try:
            message: Any = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            message = {"_raw": data.decode("utf-8", "replace")}
        with self._socket_changed:
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                self._socket_ack_times[message["envelope_id"]] = arrived
            self._socket_received.append(message)
            self._socket_changed.notify_all()

    def _handle_response_url(self, token: str, headers: dict[str, str], body: bytes) -> _Reply:
        now = time.time()
        url = f"{self.base_url}/response/{token}"
        if self.response_url_delay > 0:
            self._stopping.wait(self.response_url_delay)
        try:
            loaded = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            loaded = None
        with self._lock:
            if not isinstance(loaded, dict):
                raw = {"_raw": body.decode("utf-8", "replace")}
                self._response_posts.append(ResponsePost(token, url, raw, now, 400))
                return _text_reply("invalid_payload", 400)
            payload = cast("dict[str, Any]", loaded)
            hook = self._hooks.get(token)
            status, answer = 200, "ok"
            if self.response_url_status != 200:
                status, answer = self.response_url_status, "fake_failure"
            elif hook is None:
                status, answer = 404, "no_service"
            elif hook.uses >= self.response_url_max_uses:
                status, answer = 404, "used_url"
            elif _refused(str(payload.get("text") or ""), _as_list(payload.get("blocks"))):
                status, answer = 400, "invalid_blocks"
            self._response_posts.append(
                ResponsePost(token, url, copy.deepcopy(payload), now, status)
            )
            if status != 200 or hook is None:
                return _text_reply(answer, status)
            hook.uses += 1
            self._apply_response(hook, payload)
            return _text_reply(answer)

    def _apply_response(self, hook: _ResponseHook, payload: dict[str, Any]) -> None:
        target = (
            self._messages.get((hook.channel, hook.message_ts))
            if hook.channel is not None and hook.message_ts is not None
            else None
        )
        if payload.get("delete_original") is True:
            if target is not None:
                del self._messages[(target.channel, target.ts)]
            return
        if payload.get("replace_original") is True:
            if target is not None:
                target.text = str(payload.get("text") or "")
                target.blocks = _as_list(payload.get("blocks"))
                target.attachments = _as_list(payload.get("attachments"))
                target.edits += 1
            return
        if payload.get("response_type") == "in_channel" and hook.channel is not None:
            stored = _StoredMessage(
                channel=hook.channel,
                ts=self._next_ts(),
                text=str(payload.get("text") or ""),
                blocks=_as_list(payload.get("blocks")),
                attachments=_as_list(payload.get("attachments")),
                user=self.bot_user_id,
                thread_ts=None,
                source="response_url",
            )
            self._messages[(stored.channel, stored.ts)] = stored
            if hook.message_ts is None:
                hook.message_ts = stored.ts

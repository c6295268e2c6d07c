"""A fake Genesys Cloud Platform API served over real HTTP on 127.0.0.1, for tests.

It serves what drop-caller uses, with the real paths and JSON shapes (see genesys-api.md and
examples/ in the shared reference folder):

- ``POST /oauth/token`` (client credentials, HTTP Basic);
- ``POST /api/v2/analytics/conversations/details/query``, answered from the live calls once
  they are indexed (``index_delay`` seconds after they start, as Genesys builds it
  asynchronously);
- ``POST /api/v2/analytics/conversations/activity/query`` (real-time queue observation: calls
  waiting in, alerting from or talking through a queue) and
  ``POST /api/v2/analytics/flows/activity/query`` (callers in an IVR flow), with no lag;
- ``GET /api/v2/conversations/calls/{conversationId}``;
- ``PATCH /api/v2/conversations/calls/{conversationId}/participants/{participantId}``;
- ``POST /api/v2/conversations/{conversationId}/disconnect`` (the whole conversation, applied
  ``teardown_delay`` seconds later, as Genesys applies it asynchronously);
- ``POST /api/v2/users/search`` (an exact match on ``email``; every agent seeded by name is
  a user, with the email ``first.last@example.com``);
- ``PATCH /api/v2/conversations/calls/{id}/participants/{id}/attributes`` (kept on the leg,
  accepted only while it is connected);
- Architect data tables: ``GET /api/v2/flows/datatables/{id}?expand=schema`` and their rows
  (``POST .../rows``, ``GET|PUT|DELETE .../rows/{key}``). A table named as
  ``flow_blocklist_table`` is the one the simulated inbound flow checks: a call from a number
  in it (its key in any of the three forms) is refused at the IVR.

Tests seed live calls, script failures with ``inject``, hide calls from the OAuth client
(``restrict_call``, a 403 as for a division its role does not cover) and read back what was
received. ``number_form`` chooses how analytics records numbers (``tel:+1…`` or bare ``+1…``:
orgs differ) and ``not_found_code`` which of Genesys' 404 codes an unknown call gets.
Standard library only; all state sits behind one lock.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

DISCONNECT_PERMISSION = "conversation:communication:disconnect"
ANALYTICS_PERMISSION = "analytics:conversationDetail:view"
QUEUE_OBSERVATION_PERMISSION = "analytics:queueObservation:view"
FLOW_OBSERVATION_PERMISSION = "analytics:flowObservation:view"
ORG_NUMBER = "tel:+18005550100"
DIVISION_ID = "0edd806a-1a02-45f9-bc3a-32f430151b65"

_ENDED_STATES = frozenset({"disconnected", "terminated"})
_CALLER_PURPOSES = frozenset({"customer", "external"})
_CALL_PATH = re.compile(r"^/api/v2/conversations/calls/([^/]+)$")
_TEARDOWN_PATH = re.compile(r"^/api/v2/conversations/([^/]+)/disconnect$")
_ATTRIBUTES_PATH = re.compile(
    r"^/api/v2/conversations/calls/([^/]+)/participants/([^/]+)/attributes$"
)
_TABLE_PATH = re.compile(r"^/api/v2/flows/datatables/([^/]+)$")
_ROWS_PATH = re.compile(r"^/api/v2/flows/datatables/([^/]+)/rows$")
_ROW_PATH = re.compile(r"^/api/v2/flows/datatables/([^/]+)/rows/([^/]+)$")
USER_VIEW_PERMISSION = "directory:user:view"
TABLE_VIEW_PERMISSION = "architect:datatableRow:view"
TABLE_ADD_PERMISSION = "architect:datatableRow:add"
TABLE_EDIT_PERMISSION = "architect:datatableRow:edit"
TABLE_DELETE_PERMISSION = "architect:datatableRow:delete"
_USERS_SEARCH_PATH = "/api/v2/users/search"
_PARTICIPANT_PATH = re.compile(r"^/api/v2/conversations/calls/([^/]+)/participants/([^/]+)$")
_ANALYTICS_PATH = "/api/v2/analytics/conversations/details/query"
_CONVERSATION_ACTIVITY_PATH = "/api/v2/analytics/conversations/activity/query"
_FLOW_ACTIVITY_PATH = "/api/v2/analytics/flows/activity/query"
# The dimensions the SDK's activity query predicates allow (ConversationActivityQueryPredicate
# and FlowActivityQueryPredicate).
_ACTIVITY_DIMENSIONS = frozenset(
    {
        "activeRouting",
        "addressFrom",
        "addressTo",
        "agentScore",
        "ani",
        "conversationId",
        "convertedFrom",
        "convertedTo",
        "direction",
        "dnis",
        "mediaType",
        "participantName",
        "queueId",
        "requestedLanguageId",
        "requestedRouting",
        "requestedRoutingSkillId",
        "routingPriority",
        "scoredAgentId",
        "sessionId",
        "teamId",
        "usedRouting",
        "userId",
    }
)
_FLOW_DIMENSIONS = _ACTIVITY_DIMENSIONS | {"flowId", "flowType"}
_CONVERSATION_METRICS = frozenset(
    {"oAlerting", "oInteracting", "oLongestInteracting", "oLongestWaiting", "oWaiting"}
)
_FLOW_METRICS = frozenset({"oFlow"})
_SIP_NUMBER = re.compile(r"^sip:(\+\d+)@")
_CONVERSATION_DIMENSIONS = frozenset(
    {"conversationEnd", "conversationId", "conversationStart", "divisionId", "originatingDirection"}
)
_SEGMENT_DIMENSIONS = frozenset(
    {
        "ani",
        "conversationId",
        "direction",
        "dnis",
        "mediaType",
        "participantId",
        "participantName",
        "provider",
        "purpose",
        "queueId",
        "segmentType",
        "sessionId",
        "userId",
    }
)
_ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "bad.request",
        "The request could not be understood by the server due to malformed syntax.",
    ),
    401: ("bad.credentials", "Invalid login credentials."),
    403: ("not.authorized", "You are not authorized to perform the requested action."),
    404: ("not.found", "The requested resource was not found."),
    408: ("request.timeout", "The request timed out."),
    409: ("conflict", "The request could not be completed due to a conflict."),
    429: (
        "too.many.requests",
        "Rate limit exceeded the maximum [300] requests within [60] seconds",
    ),
    500: (
        "internal.server.error",
        "The server encountered an unexpected condition which prevented it from fulfilling the "
        "request.",
    ),
    502: ("bad.gateway", "The server received an invalid response from an upstream server."),
    503: (
        "service.unavailable",
        "Service Unavailable - The server is currently unavailable (because it is overloaded or "
        "down for maintenance).",
    ),
    504: ("gateway.timeout", "The server did not receive a timely response from upstream."),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, a form dict, the raw text if unparseable, or None if empty
    at: float  # time.monotonic() on arrival


@dataclass
class _Injection:
    method: str
    path: re.Pattern[str]
    status: int
    json_body: Any
    headers: dict[str, str]
    times: int
    delay: float
    raw_body: bytes | None = None
    reset: bool = False


@dataclass
class _Call:
    id: str
    participants: list[dict[str, Any]]
    analytics_names: dict[str, str]
    start: datetime
    direction: str
    seq: int
    session_ids: dict[str, str] = field(default_factory=dict)
    zombie: bool = False
    indexed_at: float = 0.0  # time.monotonic() from which the details query lists the call
    restricted: Any = None  # a 403 body for GET: the OAuth client may not read this call


@dataclass
class _Reply:
    status: int
    body: Any = None  # None means an empty body
    headers: dict[str, str] = field(default_factory=lambda: {"inin-correlation-id": _new_id()})
    raw: bytes | None = None  # sent as is instead of `body` (an injected raw_body)
    reset: bool = False  # send the head and part of the body, then reset the connection


class _BadQueryError(ValueError):
    """An analytics query the fake (or Genesys) would reject with 400."""


def _iso(ts: float) -> str:
    """Epoch seconds -> ISO 8601 UTC with milliseconds and "Z", as Genesys writes times."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def _ref(kind: str, entity_id: str) -> dict[str, str]:
    return {"id": entity_id, "selfUri": f"/api/v2/{kind}/{entity_id}"}


def _row_problem(table: dict[str, Any], row: Any) -> str | None:
    """Why a row does not fit the table's schema, or None."""
    if not isinstance(row, dict) or not isinstance(row.get("key"), str) or not row["key"]:
        return "A row needs a string key."
    unknown = sorted(set(row) - set(table["columns"]))
    if unknown:
        return f"Unknown columns: {', '.join(unknown)}."
    return None


def _user_record(name: str, user_id: str) -> dict[str, str]:
    """A user as the users search answers it; the email is made from the name."""
    email = ".".join(name.lower().split()) + "@example.com"
    return {"id": user_id, "name": name, "email": email, "state": "active"}


def _is_live(participant: dict[str, Any]) -> bool:
    return participant.get("state") not in _ENDED_STATES


def _analytics_address(value: Any, form: str = "tel") -> Any:
    """Analytics normalises ``sip:+NNN@host;...``, ``tel:+NNN`` and bare ``+NNN`` to one form:
    ``tel:+NNN`` in most orgs, the bare ``+NNN`` in some (``form``)."""
    if not isinstance(value, str):
        return value
    if match := _SIP_NUMBER.match(value):
        number = match.group(1)
    elif re.fullmatch(r"(tel:)?\+\d+", value):
        number = value.removeprefix("tel:")
    else:
        return value
    return number if form == "bare" else f"tel:{number}"


def _error(
    status: int,
    code: str | None = None,
    message: str | None = None,
    params: dict[str, Any] | None = None,
) -> _Reply:
    """A reply with the Genesys error body."""
    fallback = _ERRORS[500] if status >= 500 else _ERRORS[400]
    default_code, default_message = _ERRORS.get(status, fallback)
    context_id = _new_id()
    body = {
        "message": message or default_message,
        "code": code or default_code,
        "status": status,
        "contextId": context_id,
        "messageParams": params or {},
        "details": [],
        "errors": [],
    }
    return _Reply(status, body, {"inin-correlation-id": context_id})


def _missing_permission(permission: str) -> _Reply:
    message = (
        "Unable to perform the requested action. "
        f"You are missing the following permission(s): [{permission}]"
    )
    return _error(403, "missing.any.permissions", message, {"permissions": permission})


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(text, keep_blank_values=True))
    try:
        return json.loads(text)
    except ValueError:
        return text


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _eval_filter(flt: Any, row: dict[str, Any], dimensions: frozenset[str]) -> bool:
    """Evaluate one query filter (``type`` and/or, ``predicates``, optional ``clauses``)."""
    if not isinstance(flt, dict) or flt.get("type") not in ("and", "or"):
        raise _BadQueryError("Each filter needs a type of 'and' or 'or'.")
    results = [_eval_predicate(p, row, dimensions) for p in flt.get("predicates") or []]
    results += [_eval_filter(c, row, dimensions) for c in flt.get("clauses") or []]
    if not results:
        raise _BadQueryError("Each filter needs predicates or clauses.")
    return all(results) if flt["type"] == "and" else any(results)


def _eval_predicate(pred: Any, row: dict[str, Any], dimensions: frozenset[str]) -> bool:
    if not isinstance(pred, dict) or pred.get("type", "dimension") != "dimension":
        raise _BadQueryError("Only dimension predicates are supported by this fake.")
    dimension = pred.get("dimension")
    if dimension not in dimensions:
        raise _BadQueryError(f"Unsupported dimension for this filter: {dimension!r}.")
    operator = pred.get("operator", "matches")
    actual = row.get(dimension)
    if operator == "exists":
        return actual is not None
    if operator == "notExists":
        return actual is None
    if operator != "matches" or "value" not in pred:
        raise _BadQueryError(f"Unsupported operator {operator!r} or missing value.")
    return pred["value"] in actual if isinstance(actual, list) else actual == pred["value"]


def _valid_interval(value: Any) -> bool:
    if not isinstance(value, str) or value.count("/") != 1:
        return False
    start, end = (_parse_time(part) for part in value.split("/"))
    return start is not None and end is not None and start < end


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeGenesys) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.connections: set[socket.socket] = set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API; urllib3 pools connections
    # Headers and body go out in two writes; without this, Nagle and delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        server = cast(_Server, self.server)
        with server.fake._lock:
            server.connections.add(self.connection)

    def finish(self) -> None:
        server = cast(_Server, self.server)
        with server.fake._lock:
            server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = cast(_Server, self.server).fake._handle(self.command, self.path, headers, raw)
            if reply is None:  # the fake is stopping: hang up without an answer
                self.close_connection = True
                return
            if reply.raw is not None:
                data = reply.raw
            else:
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
            if reply.reset and not data:
                data = json.dumps({"id": _new_id(), "selfUri": "/api/v2/cut-off"}).encode()
            self.send_response(reply.status)
            if reply.raw is not None:
                if "content-type" not in {name.lower() for name in reply.headers}:
                    self.send_header("Content-Type", "application/json")
            elif reply.body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.reset:
                self._reset_midway(data)
                return
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. a timeout)
            self.close_connection = True

    def _reset_midway(self, data: bytes) -> None:
        """Send half the body, then close with SO_LINGER 0 so the peer gets a TCP RST."""
        self.close_connection = True
        self.wfile.write(data[: max(1, len(data) // 2)])
        # Let the head and the partial body reach the client before the reset.
        cast(_Server, self.server).fake._stopping.wait(0.05)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


class FakeGenesys:
    """A fake Genesys Cloud org on 127.0.0.1: seed calls, then point the real SDK at base_url."""

    disconnect_delay: float = 0.0  # seconds before a PATCHed participant reaches "disconnected"
    ignore_disconnects: bool = False  # PATCH answers 202 but the participant never leaves
    latency: float = 0.0  # seconds to wait before answering every request
    index_delay: float = 0.0  # seconds before a new call is listed by the details query
    number_form: str = "tel"  # how analytics records numbers: "tel" (tel:+1…) or "bare" (+1…)
    not_found_code: str = "not.found"  # Genesys' code on a 404 for an unknown call
    teardown_delay: float = 0.0  # seconds before a conversation disconnect takes effect
    flow_blocklist_table: str | None = None  # the data table the inbound flow checks
    ignore_teardowns: bool = False  # the disconnect answers 202 but nobody ever leaves

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str = "test-secret",  # noqa: S107
        token_lifetime: int = 86400,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._token_lifetime = token_lifetime
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._denied: set[str] = set()
        self._calls: dict[str, _Call] = {}
        self._injections: list[_Injection] = []
        self._timers: list[threading.Timer] = []
        self._queue_ids: dict[str, str] = {}
        self._user_ids: dict[str, str] = {}
        self._tables: dict[str, dict[str, Any]] = {}  # id -> {"name", "columns", "rows"}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.token_requests = 0
        self.requests: list[RecordedRequest] = []

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeGenesys:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        self._stopping.clear()
        self._server = _Server(self)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="FakeGenesys", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections, cancel pending disconnects."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        with self._lock:
            timers, self._timers = self._timers, []
            connections = list(server.connections)
        for timer in timers:
            timer.cancel()
        server.shutdown()
        server.server_close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGenesys:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- seeding live calls -----------------------------------------------------------------

    def add_inbound_call(
        self,
        number: str,
        *,
        agent_name: str = "Jane Agent",
        queue_name: str = "Billing",
        connected_seconds_ago: float = 125.0,
        customer_name: str | None = None,
    ) -> str:
        """Customer -> IVR -> queue -> agent, customer and agent connected; or, for a number
        the inbound flow blocks, a call the IVR ends at once."""
        if self.blocked_by_flow(number):
            return self._refused_by_flow(number)
        t0 = time.time() - connected_seconds_ago
        step = min(4.0, max(connected_seconds_ago, 0.0) / 4)
        queue_id = self._queue_id(queue_name)
        customer = self._customer_leg(
            number, t0, name=customer_name, queue=_ref("routing/queues", queue_id)
        )
        ivr_address = f"sip:{_new_id()}@127.0.0.1;language=en-US;user=ivr"
        ivr = self._leg(
            name="Main Line IVR",
            address=ivr_address,
            start=t0,
            connected=t0,
            end=t0 + step,
            purpose="ivr",
            state="terminated",
            direction="inbound",
            disconnectType="transfer",
            ani=f"tel:{number}",
            dnis=ivr_address,
        )
        acd = self._acd_leg(queue_name, number, t0 + step, t0 + 2 * step)
        agent_address = self._agent_address()
        agent = self._leg(
            address=agent_address,
            start=t0 + 2 * step,
            connected=t0 + 2 * step,
            purpose="agent",
            state="connected",
            direction="inbound",
            wrapupRequired=True,
            wrapupPrompt="optional",
            user=_ref("users", self._user_id(agent_name)),
            queue=_ref("routing/queues", queue_id),
            alertingTimeoutMs=8000,
            ani=f"sip:{number}@10.47.1.31;user=phone",
            dnis=agent_address,
        )
        names = {acd["id"]: queue_name, agent["id"]: agent_name}
        return self.add_call([customer, ivr, acd, agent], analytics_names=names)

    def add_outbound_call(
        self,
        number: str,
        *,
        agent_name: str = "Jane Agent",
        queue_name: str | None = None,
        connected_seconds_ago: float = 60.0,
    ) -> str:
        """Agent dials an external party; with queue_name, on behalf of that queue."""
        t0 = time.time() - connected_seconds_ago
        queue = _ref("routing/queues", self._queue_id(queue_name)) if queue_name else None
        agent_address = self._agent_address()
        agent = self._leg(
            address=agent_address,
            start=t0,
            connected=t0,
            purpose="agent",
            state="connected",
            direction="outbound",
            wrapupRequired=True,
            wrapupPrompt="optional",
            user=_ref("users", self._user_id(agent_name)),
            queue=queue,
            ani=agent_address,
            dnis=f"tel:{number}",
        )
        external = self._external_leg(number, t0)
        legs = [agent, external]
        names = {agent["id"]: agent_name}
        if queue_name:
            acd = self._acd_leg(queue_name, number, t0, t0)
            legs.append(acd)
            names[acd["id"]] = queue_name
        return self.add_call(legs, analytics_names=names)

    def add_conference(
        self, numbers: list[str], *, agent_name: str = "Jane Agent", queue_name: str = "Billing"
    ) -> str:
        """One agent, a finished queue leg and one connected external leg per number."""
        t0 = time.time() - 180.0
        agent_address = self._agent_address()
        agent = self._leg(
            address=agent_address,
            start=t0,
            connected=t0,
            purpose="agent",
            state="connected",
            direction="outbound",
            wrapupRequired=True,
            wrapupPrompt="optional",
            user=_ref("users", self._user_id(agent_name)),
            queue=_ref("routing/queues", self._queue_id(queue_name)),
            ani=agent_address,
            dnis=f"tel:{numbers[0]}" if numbers else agent_address,
        )
        acd = self._acd_leg(queue_name, numbers[0] if numbers else "", t0, t0 + 1)
        externals = [self._external_leg(number, t0 + 2) for number in numbers]
        names = {agent["id"]: agent_name, acd["id"]: queue_name}
        return self.add_call([agent, acd, *externals], analytics_names=names)

    def add_call(
        self,
        participants: list[dict[str, Any]],
        *,
        conversation_id: str | None = None,
        analytics_names: dict[str, str] | None = None,
    ) -> str:
        """Seed a call from live CallMediaParticipant dicts (a missing "id" gets a uuid4)."""
        legs = [
            {"id": _new_id(), **copy.deepcopy(p)} if "id" not in p else copy.deepcopy(p)
            for p in participants
        ]
        starts = [t for t in (_parse_time(p.get("startTime")) for p in legs) if t is not None]
        direction = next((p["direction"] for p in legs if p.get("direction")), "inbound")
        cid = conversation_id or _new_id()
        with self._lock:
            self._calls[cid] = _Call(
                id=cid,
                participants=legs,
                analytics_names=dict(analytics_names or {}),
                start=min(starts) if starts else datetime.now(UTC),
                direction=direction,
                seq=len(self._calls),
                indexed_at=time.monotonic() + self.index_delay,
            )
        return cid

    def _refused_by_flow(self, number: str) -> str:
        """The call of a blocked number: the flow disconnects it before any queue or agent."""
        now = time.time()
        customer = self._customer_leg(number, now)
        self._drop(customer, "system")
        ivr_address = f"sip:{_new_id()}@127.0.0.1;language=en-US;user=ivr"
        ivr = self._leg(
            name="Main Line IVR (blocked caller)",
            address=ivr_address,
            start=now,
            connected=now,
            end=now,
            purpose="ivr",
            state="terminated",
            direction="inbound",
            ani=f"tel:{number}",
            dnis=ivr_address,
        )
        return self.add_call([customer, ivr])

    def add_ivr_call(
        self, number: str, *, flow_name: str = "Main Line IVR", seconds_ago: float = 20.0
    ) -> str:
        """A caller still in an IVR flow: customer and IVR legs connected, no queue, no agent."""
        t0 = time.time() - seconds_ago
        ivr_address = f"sip:{_new_id()}@127.0.0.1;language=en-US;user=ivr"
        customer = self._customer_leg(number, t0)
        ivr = self._leg(
            name=flow_name,
            address=ivr_address,
            start=t0,
            connected=t0,
            purpose="ivr",
            state="connected",
            direction="inbound",
            ani=f"tel:{number}",
            dnis=ivr_address,
        )
        return self.add_call([customer, ivr])

    def participants(self, conversation_id: str) -> list[dict[str, Any]]:
        """A copy of the call's current participants."""
        with self._lock:
            return copy.deepcopy(self._call(conversation_id).participants)

    def participant_id(self, conversation_id: str, purpose: str, index: int = 0) -> str:
        """The id of the index-th participant with this purpose."""
        with self._lock:
            legs = self._call(conversation_id).participants
            return str([p for p in legs if p.get("purpose") == purpose][index]["id"])

    def hang_up(
        self,
        conversation_id: str,
        participant_id: str | None = None,
        *,
        leave_stuck: bool = False,
        seconds_ago: float = 0.0,
    ) -> None:
        """The caller (every customer/external leg, or just participant_id) hangs up.

        Normally the call then ends for everyone. With ``leave_stuck`` the other legs stay
        connected, as in a stuck ("ghost") interaction; ``seconds_ago`` backdates the hang-up.
        """
        with self._lock:
            call = self._call(conversation_id)
            for leg in call.participants:
                chosen = (
                    leg.get("id") == participant_id
                    if participant_id
                    else leg.get("purpose") in _CALLER_PURPOSES
                )
                if chosen and _is_live(leg):
                    self._drop(leg, "endpoint")
                    if seconds_ago:
                        leg["endTime"] = _iso(time.time() - seconds_ago)
            if not leave_stuck:
                self._settle(call)

    def end_call(self, conversation_id: str) -> None:
        """End the whole call: every leg disconnected or terminated."""
        with self._lock:
            self._end(self._call(conversation_id))

    def add_datatable(self, name: str, columns: list[str], *, table_id: str | None = None) -> str:
        """An Architect data table with these columns (`key` is always one); its id."""
        table_id = table_id or _new_id()
        with self._lock:
            self._tables[table_id] = {
                "name": name,
                "columns": ["key", *[c for c in columns if c != "key"]],
                "rows": {},
            }
        return table_id

    def rows(self, table_id: str) -> dict[str, dict[str, Any]]:
        """A copy of a data table's rows, by key."""
        with self._lock:
            return copy.deepcopy(self._tables[table_id]["rows"])

    def put_row(self, table_id: str, row: dict[str, Any]) -> None:
        """Add or replace a row by hand, as an admin would in Architect."""
        with self._lock:
            self._tables[table_id]["rows"][row["key"]] = dict(row)

    def delete_row_by_hand(self, table_id: str, key: str) -> None:
        """Remove a row by hand, as an admin would in Architect."""
        with self._lock:
            self._tables[table_id]["rows"].pop(key, None)

    def blocked_by_flow(self, number: str) -> bool:
        """Whether the simulated inbound flow refuses calls from `number` (E.164)."""
        table_id = self.flow_blocklist_table
        if table_id is None:
            return False
        with self._lock:
            rows = self._tables.get(table_id, {}).get("rows", {})
            bare = number.removeprefix("+")
            return any(key in rows for key in (bare, f"+{bare}", f"tel:+{bare}"))

    def add_external_party(self, conversation_id: str, number: str) -> str:
        """An agent brings an external party onto the call (connected now); its id."""
        leg = self._external_leg(number, time.time())
        with self._lock:
            self._call(conversation_id).participants.append(leg)
        return str(leg["id"])

    def restrict_call(self, conversation_id: str, body: dict[str, Any] | None = None) -> None:
        """The OAuth client may no longer read this call: GET answers 403, as for a call in a
        division its role does not cover. `body`: Genesys' error body (default: the generic
        `not.authorized`, which names no permission)."""
        with self._lock:
            self._call(conversation_id).restricted = body or _error(403).body

    def remove_call(self, conversation_id: str) -> None:
        """Forget the call, as Genesys does long after it ends: GET answers 404."""
        with self._lock:
            del self._calls[self._call(conversation_id).id]

    def make_zombie(self, conversation_id: str) -> None:
        """End the live call, but keep analytics reporting it as not ended."""
        with self._lock:
            call = self._call(conversation_id)
            self._end(call)
            call.zombie = True

    # --- auth control -----------------------------------------------------------------------

    def expire_all_tokens(self) -> None:
        """Every token issued so far now gets 401."""
        with self._lock:
            self._tokens.clear()

    def deny_permission(self, permission: str) -> None:
        """Remove a role permission from the OAuth client (see the *_PERMISSION constants)."""
        with self._lock:
            self._denied.add(permission)

    def grant_permission(self, permission: str) -> None:
        """Undo deny_permission."""
        with self._lock:
            self._denied.discard(permission)

    # --- scripted answers -------------------------------------------------------------------

    def inject(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
        raw_body: bytes | None = None,
        reset: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with this instead (after `delay` s).

        `raw_body`: send exactly these bytes with `status` (malformed JSON, an HTML page); a
        `Content-Type` in `headers` overrides the default `application/json`.
        `reset`: send the status line, the headers and part of the body, then reset the
        connection (a connection dropped mid-response). The request is not carried out.
        """
        injection = _Injection(
            method.upper(),
            re.compile(path_regex),
            status,
            json_body,
            dict(headers or {}),
            times,
            delay,
            raw_body,
            reset,
        )
        with self._lock:
            self._injections.append(injection)

    # --- what was received ------------------------------------------------------------------

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """Received requests with this method whose path matches re.search(path_regex)."""
        pattern = re.compile(path_regex)
        with self._lock:
            return [
                r for r in self.requests if r.method == method.upper() and pattern.search(r.path)
            ]

    def forget_requests(self) -> None:
        """Forget what was received so far (not the tokens issued)."""
        with self._lock:
            self.requests.clear()

    def patches(self) -> list[tuple[str, str, Any]]:
        """(conversation_id, participant_id, body) of every participant PATCH received."""
        with self._lock:
            found = [
                (_PARTICIPANT_PATH.match(r.path), r) for r in self.requests if r.method == "PATCH"
            ]
        return [(m.group(1), m.group(2), r.body) for m, r in found if m]

    # --- request handling (runs on the server's threads) ------------------------------------

    def _handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> _Reply | None:
        """Record the request and compute its reply; None once stop() has begun."""
        url = urlsplit(target)
        request = RecordedRequest(
            method=method,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=headers,
            body=_parse_body(raw, headers.get("content-type", "")),
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(request)
        if self.latency > 0:
            self._stopping.wait(self.latency)
        if self._stopping.is_set():
            return None
        with self._lock:
            injection = self._take_injection(method, url.path)
            if injection is None:
                return self._route(request)
        if injection.delay > 0 and self._stopping.wait(injection.delay):
            return None
        if injection.raw_body is not None:
            reply = _Reply(injection.status, raw=injection.raw_body)
        elif injection.json_body is not None:
            reply = _Reply(injection.status, injection.json_body)
        elif injection.status >= 400:
            reply = _error(injection.status)
        else:
            reply = _Reply(injection.status)
        reply.headers.update(injection.headers)
        reply.reset = injection.reset
        return reply

    def _take_injection(self, method: str, path: str) -> _Injection | None:
        for injection in self._injections:
            if injection.method == method and injection.path.search(path):
                injection.times -= 1
                if injection.times <= 0:
                    self._injections.remove(injection)
                return injection
        return None

    def _route(self, request: RecordedRequest) -> _Reply:
        path, method = request.path, request.method
        if path == "/oauth/token" and method == "POST":
            return self._issue_token(request)
        if not path.startswith("/api/v2/"):
            return _error(404)
        if not self._authorized(request.headers.get("authorization", "")):
            return _error(401)
        if path == _ANALYTICS_PATH and method == "POST":
            return self._analytics_query(request.body)
        if path == _CONVERSATION_ACTIVITY_PATH and method == "POST":
            return self._activity_query(request, flows=False)
        if path == _FLOW_ACTIVITY_PATH and method == "POST":
            return self._activity_query(request, flows=True)
        if (match := _CALL_PATH.match(path)) and method == "GET":
            return self._get_call(match.group(1))
        if (match := _TEARDOWN_PATH.match(path)) and method == "POST":
            return self._teardown(match.group(1))
        if (match := _ATTRIBUTES_PATH.match(path)) and method == "PATCH":
            return self._set_attributes(match.group(1), match.group(2), request.body)
        if (match := _TABLE_PATH.match(path)) and method == "GET":
            return self._get_table(match.group(1))
        if (match := _ROWS_PATH.match(path)) and method == "POST":
            return self._add_row(match.group(1), request.body)
        if match := _ROW_PATH.match(path):
            return self._row(method, match.group(1), unquote(match.group(2)), request.body)
        if path == _USERS_SEARCH_PATH and method == "POST":
            return self._users_search(request.body)
        if (match := _PARTICIPANT_PATH.match(path)) and method == "PATCH":
            return self._patch_participant(match.group(1), match.group(2), request.body)
        return _error(404)

    def _issue_token(self, request: RecordedRequest) -> _Reply:
        credentials = _basic_credentials(request.headers.get("authorization", ""))
        body: dict[str, Any]
        if credentials != (self.client_id, self.client_secret):
            body = {
                "error": "invalid_client",
                "description": "client not found",
                "error_description": "client not found",
            }
            return _Reply(401, body)
        form = request.body if isinstance(request.body, dict) else {}
        if form.get("grant_type") != "client_credentials":
            message = "grant type is not supported"
            body = {
                "error": "unsupported_grant_type",
                "description": message,
                "error_description": message,
            }
            return _Reply(400, body)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = time.monotonic() + self._token_lifetime
        self.token_requests += 1
        body = {"access_token": token, "token_type": "bearer", "expires_in": self._token_lifetime}
        return _Reply(200, body)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        expiry = self._tokens.get(token.strip())
        return scheme.lower() == "bearer" and expiry is not None and expiry > time.monotonic()

    def _analytics_query(self, body: Any) -> _Reply:
        if ANALYTICS_PERMISSION in self._denied:
            return _missing_permission(ANALYTICS_PERMISSION)
        if not isinstance(body, dict):
            return _error(400, message="The request body must be a JSON object.")
        if not _valid_interval(body.get("interval")):
            return _error(400, message="A valid 'interval' (start/end, ISO 8601) is required.")
        paging = body.get("paging") or {}
        size, number = paging.get("pageSize", 25), paging.get("pageNumber", 1)
        if not (_positive_int(size) and _positive_int(number) and size <= 100):
            return _error(400, message="paging.pageSize must be 1..100 and pageNumber >= 1.")
        indexed = time.monotonic()
        calls = sorted(
            (call for call in self._calls.values() if call.indexed_at <= indexed),
            key=lambda c: (c.start, c.seq),
        )
        if body.get("order", "desc") != "asc":
            calls.reverse()
        try:
            hits = [view for view in map(self._analytics_view, calls) if self._matches(view, body)]
        except _BadQueryError as exc:
            return _error(400, message=str(exc))
        page = hits[(number - 1) * size : number * size]
        answer: dict[str, Any] = {"totalHits": len(hits)}
        if page:
            answer["conversations"] = page
        return _Reply(200, answer)

    @staticmethod
    def _matches(view: dict[str, Any], query: dict[str, Any]) -> bool:
        row = {
            "conversationId": view["conversationId"],
            "conversationStart": view["conversationStart"],
            "conversationEnd": view.get("conversationEnd"),
            "originatingDirection": view["originatingDirection"],
            "divisionId": view["divisionIds"],
        }
        for flt in query.get("conversationFilters") or []:
            if not _eval_filter(flt, row, _CONVERSATION_DIMENSIONS):
                return False
        sessions = [
            {
                "conversationId": view["conversationId"],
                "participantId": participant["participantId"],
                "participantName": participant.get("participantName"),
                "purpose": participant["purpose"],
                "userId": participant.get("userId"),
                "queueId": session["segments"][0].get("queueId"),
                "segmentType": session["segments"][0]["segmentType"],
                **{k: v for k, v in session.items() if k != "segments"},
            }
            for participant in view["participants"]
            for session in participant["sessions"]
        ]
        for flt in query.get("segmentFilters") or []:
            # Evaluate every session (not any() on a generator) so a bad filter always raises.
            results = [_eval_filter(flt, s, _SEGMENT_DIMENSIONS) for s in sessions]
            if not any(results):
                return False
        return True

    def _analytics_view(self, call: _Call) -> dict[str, Any]:
        """The call as the analytics details query reports it."""
        ended = not call.zombie and not any(_is_live(p) for p in call.participants)
        start = _iso(call.start.timestamp())
        view: dict[str, Any] = {"conversationId": call.id, "conversationStart": start}
        if ended:
            view["conversationEnd"] = max(
                (p["endTime"] for p in call.participants if p.get("endTime")), default=start
            )
        view["originatingDirection"] = call.direction
        view["divisionIds"] = [DIVISION_ID]
        view["participants"] = [
            self._analytics_participant(call, p, self.number_form) for p in call.participants
        ]
        return view

    @staticmethod
    def _analytics_participant(call: _Call, leg: dict[str, Any], form: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"participantId": leg["id"]}
        name = call.analytics_names.get(leg["id"], leg.get("name"))
        if name:
            entry["participantName"] = name
        entry["purpose"] = leg.get("purpose")
        if isinstance(leg.get("user"), dict):
            entry["userId"] = leg["user"]["id"]
        segment: dict[str, Any] = {
            "segmentStart": leg.get("connectedTime") or leg.get("startTime"),
            "segmentType": "interact",
        }
        if leg.get("endTime") and not call.zombie:
            segment["segmentEnd"] = leg["endTime"]
        if isinstance(leg.get("queue"), dict):
            segment["queueId"] = leg["queue"]["id"]
        segment["conference"] = False
        session: dict[str, Any] = {
            "sessionId": call.session_ids.setdefault(leg["id"], _new_id()),
            "mediaType": "voice",
            "direction": leg.get("direction"),
            "ani": _analytics_address(leg.get("ani"), form),
            "dnis": _analytics_address(leg.get("dnis"), form),
            "provider": "Edge",
            "segments": [segment],
        }
        entry["sessions"] = [{k: v for k, v in session.items() if v is not None}]
        return entry

    def _activity_query(self, request: RecordedRequest, *, flows: bool) -> _Reply:
        """The conversation or flow activity query: real-time observations, no index lag."""
        permission = FLOW_OBSERVATION_PERMISSION if flows else QUEUE_OBSERVATION_PERMISSION
        if permission in self._denied:
            return _missing_permission(permission)
        body = request.body
        if not isinstance(body, dict):
            return _error(400, message="The request body must be a JSON object.")
        allowed = _FLOW_METRICS if flows else _CONVERSATION_METRICS
        metrics = body.get("metrics")
        if not isinstance(metrics, list) or not metrics:
            return _error(400, message="At least one metric is required.")
        wanted = {m.get("metric") for m in metrics if isinstance(m, dict)}
        if not wanted or not wanted <= allowed or len(wanted) != len(metrics):
            return _error(400, message=f"Unknown or repeated metric in {sorted(map(str, wanted))}.")
        group_by = body.get("groupBy")
        dimensions = _FLOW_DIMENSIONS if flows else _ACTIVITY_DIMENSIONS
        if not isinstance(group_by, list) or not group_by or not set(group_by) <= dimensions:
            return _error(400, message="groupBy needs at least one valid dimension.")
        size = request.query.get("pageSize", "100")
        if not size.isdigit() or not 1 <= int(size) <= 100:
            return _error(400, message="pageSize must be 1..100.")
        entities = [
            entity
            for call in self._calls.values()
            for entity in (self._flow_entities(call) if flows else self._queue_entities(call))
            if entity["metric"] in wanted
        ]
        flt = body.get("filter")
        if flt is not None:
            try:
                entities = [e for e in entities if _eval_filter(flt, e, dimensions)]
            except _BadQueryError as exc:
                return _error(400, message=str(exc))
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for entity in entities:
            groups.setdefault(tuple(entity.get(d) for d in group_by), []).append(entity)
        results = []
        for key, members in groups.items():
            counts: dict[str, int] = {}
            for entity in members:
                counts[entity["metric"]] = counts.get(entity["metric"], 0) + 1
            results.append(
                {
                    "group": {d: v for d, v in zip(group_by, key, strict=True) if v is not None},
                    "data": [{"metric": m, "count": n} for m, n in counts.items()],
                    "truncated": False,
                    "entities": [{k: v for k, v in e.items() if v is not None} for e in members],
                }
            )
        return _Reply(200, {"results": results, "entityIdDimension": "conversationId"})

    def _queue_entities(self, call: _Call) -> list[dict[str, Any]]:
        """What queue observation reports for a call now: one entity per live outside party,
        while the call waits in a queue, alerts an agent from one or talks through one."""
        legs = call.participants
        queue_ids = [
            leg["queue"]["id"]
            for leg in legs
            if isinstance(leg.get("queue"), dict)
            and leg.get("purpose") in ("acd", "agent", "customer")
        ]
        if not queue_ids:
            return []  # a call with no queue is not in queue observation
        waiting = any(leg.get("purpose") == "acd" and _is_live(leg) for leg in legs)
        agent = next(
            (leg for leg in legs if leg.get("purpose") in ("agent", "user") and _is_live(leg)),
            None,
        )
        if waiting:
            metric = "oWaiting"
        elif agent is not None:
            metric = "oAlerting" if agent.get("state") == "alerting" else "oInteracting"
        else:
            return []
        return [
            self._entity(call, leg, metric, agent, queueId=queue_ids[0])
            for leg in legs
            if leg.get("purpose") in _CALLER_PURPOSES and _is_live(leg)
        ]

    def _flow_entities(self, call: _Call) -> list[dict[str, Any]]:
        """What flow observation reports for a call now: its caller, while an IVR leg is live."""
        ivr = next(
            (leg for leg in call.participants if leg.get("purpose") == "ivr" and _is_live(leg)),
            None,
        )
        if ivr is None:
            return []
        flow_id = call.session_ids.setdefault(f"flow:{ivr['id']}", _new_id())
        return [
            self._entity(call, leg, "oFlow", None, flowId=flow_id, flowType="INBOUNDCALL")
            for leg in call.participants
            if leg.get("purpose") in _CALLER_PURPOSES and _is_live(leg)
        ]

    def _entity(
        self,
        call: _Call,
        leg: dict[str, Any],
        metric: str,
        agent: dict[str, Any] | None,
        **extra: Any,
    ) -> dict[str, Any]:
        user = agent.get("user") if agent is not None else None
        return {
            "activityDate": (agent or leg).get("connectedTime") or leg.get("startTime"),
            "metric": metric,
            "ani": _analytics_address(leg.get("ani"), self.number_form),
            "dnis": _analytics_address(leg.get("dnis"), self.number_form),
            "conversationId": call.id,
            "direction": leg.get("direction"),
            "mediaType": "voice",
            "sessionId": call.session_ids.setdefault(leg["id"], _new_id()),
            "userId": user["id"] if isinstance(user, dict) else None,
            **extra,
        }

    def _teardown(self, conversation_id: str) -> _Reply:
        if DISCONNECT_PERMISSION in self._denied:
            return _missing_permission(DISCONNECT_PERMISSION)
        call = self._calls.get(conversation_id)
        if call is None:
            return self._not_found()
        if call.restricted is not None:
            return _error(403, call.restricted.get("code"), call.restricted.get("message"))
        if not self.ignore_teardowns:
            if self.teardown_delay > 0:
                timer = threading.Timer(self.teardown_delay, self._end_later, (conversation_id,))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
            else:
                self._end(call, "system")
        return _Reply(202)

    def _end_later(self, conversation_id: str) -> None:
        with self._lock:
            call = self._calls.get(conversation_id)
            if call is not None:
                self._end(call, "system")

    def _set_attributes(self, conversation_id: str, participant_id: str, body: Any) -> _Reply:
        call = self._calls.get(conversation_id)
        if call is None:
            return self._not_found()
        if call.restricted is not None:
            return _error(403, call.restricted.get("code"), call.restricted.get("message"))
        leg = next((p for p in call.participants if p.get("id") == participant_id), None)
        if leg is None:
            return _error(404, "conversation.error.not.conversation.participant")
        attributes = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            return _error(400, message="attributes must be an object of strings.")
        if not _is_live(leg):
            return _error(
                400,
                "conversation.error.participant.not.connected",
                "The participant is no longer connected.",
            )
        leg.setdefault("attributes", {}).update(attributes)
        return _Reply(202)

    def _get_table(self, table_id: str) -> _Reply:
        if TABLE_VIEW_PERMISSION in self._denied:
            return _missing_permission(TABLE_VIEW_PERMISSION)
        table = self._tables.get(table_id)
        if table is None:
            return _error(404, "flows.datatables.not.found", "Datatable not found.")
        properties = {
            name: {"title": name, "type": "string", "$id": f"/properties/{name}"}
            for name in table["columns"]
        }
        body = {
            "id": table_id,
            "name": table["name"],
            "division": {"id": DIVISION_ID, "name": "Home"},
            "schema": {
                "$schema": "http://json-schema.org/draft-04/schema#",
                "type": "object",
                "additionalProperties": False,
                "properties": properties,
                "required": ["key"],
            },
            "selfUri": f"/api/v2/flows/datatables/{table_id}",
        }
        return _Reply(200, body)

    def _add_row(self, table_id: str, body: Any) -> _Reply:
        if TABLE_ADD_PERMISSION in self._denied:
            return _missing_permission(TABLE_ADD_PERMISSION)
        table = self._tables.get(table_id)
        if table is None:
            return _error(404, "flows.datatables.not.found", "Datatable not found.")
        problem = _row_problem(table, body)
        if problem:
            return _error(400, "flows.datatables.schema.exception", problem)
        if body["key"] in table["rows"]:
            return _error(409, "flows.datatables.row.already.exists", "The key already exists.")
        table["rows"][body["key"]] = dict(body)
        return _Reply(200, dict(body))

    def _row(self, method: str, table_id: str, key: str, body: Any) -> _Reply:
        table = self._tables.get(table_id)
        needed = {
            "GET": TABLE_VIEW_PERMISSION,
            "PUT": TABLE_EDIT_PERMISSION,
            "DELETE": TABLE_DELETE_PERMISSION,
        }.get(method)
        if needed is None:
            return _error(404)
        if needed in self._denied:
            return _missing_permission(needed)
        if table is None:
            return _error(404, "flows.datatables.not.found", "Datatable not found.")
        if key not in table["rows"]:
            return _error(404, "flows.datatables.row.not.found", "Row not found.")
        if method == "GET":
            return _Reply(200, dict(table["rows"][key]))
        if method == "DELETE":
            del table["rows"][key]
            return _Reply(204)
        problem = _row_problem(table, body)
        if problem or body.get("key") != key:
            return _error(400, "flows.datatables.schema.exception", problem or "key mismatch")
        table["rows"][key] = dict(body)
        return _Reply(200, dict(body))

    def _users_search(self, body: Any) -> _Reply:
        if USER_VIEW_PERMISSION in self._denied:
            return _missing_permission(USER_VIEW_PERMISSION)
        criteria = body.get("query") if isinstance(body, dict) else None
        if not isinstance(criteria, list) or not criteria:
            return _error(400, message="A users search needs a query.")
        # Runs with the lock held (every route does).
        users = [_user_record(name, user_id) for name, user_id in self._user_ids.items()]
        for criterion in criteria:
            if not isinstance(criterion, dict) or criterion.get("type") != "EXACT":
                return _error(400, message="This simulator supports EXACT criteria only.")
            fields, value = criterion.get("fields") or [], criterion.get("value")
            users = [u for u in users if any(u.get(f) == value for f in fields)]
        size = body.get("pageSize") or 25
        answer = {
            "total": len(users),
            "pageCount": 1,
            "pageSize": size,
            "pageNumber": 1,
            "results": users[:size],
        }
        return _Reply(200, answer)

    def _not_found(self) -> _Reply:
        if self.not_found_code == "not.found":
            return _error(404)
        return _error(404, self.not_found_code, "The conversation could not be found.")

    def _get_call(self, conversation_id: str) -> _Reply:
        call = self._calls.get(conversation_id)
        if call is None:
            return self._not_found()
        if call.restricted is not None:
            reply = _error(403)
            reply.body = {**call.restricted, "contextId": reply.headers["inin-correlation-id"]}
            return reply
        body = {
            "id": call.id,
            "participants": copy.deepcopy(call.participants),
            "otherMediaUris": [],
            "recordingState": "none",
            "selfUri": f"/api/v2/conversations/calls/{call.id}",
        }
        return _Reply(200, body)

    def _patch_participant(self, conversation_id: str, participant_id: str, body: Any) -> _Reply:
        if DISCONNECT_PERMISSION in self._denied:
            return _missing_permission(DISCONNECT_PERMISSION)
        call = self._calls.get(conversation_id)
        if call is None:
            return self._not_found()
        if call.restricted is not None:
            return _error(403, call.restricted.get("code"), call.restricted.get("message"))
        leg = next((p for p in call.participants if p.get("id") == participant_id), None)
        if leg is None:
            return _error(
                404,
                "conversation.error.not.conversation.participant",
                "The participant is not part of this conversation.",
            )
        if not isinstance(body, dict) or body.get("state") != "disconnected":
            return _error(400, message='This fake only supports {"state": "disconnected"}.')
        if not _is_live(leg):
            return _error(
                400, "conversation.error.call.disconnected", "The call is already disconnected."
            )
        if not self.ignore_disconnects:
            if self.disconnect_delay > 0:
                timer = threading.Timer(
                    self.disconnect_delay, self._disconnect_later, (conversation_id, participant_id)
                )
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
            else:
                self._drop(leg, "client")
                self._settle(call)
        return _Reply(202)

    def _disconnect_later(self, conversation_id: str, participant_id: str) -> None:
        with self._lock:
            call = self._calls[conversation_id]
            for leg in call.participants:
                if leg.get("id") == participant_id and _is_live(leg):
                    self._drop(leg, "client")
            self._settle(call)

    # --- state helpers (call with the lock held) ---------------------------------------------

    def _call(self, conversation_id: str) -> _Call:
        try:
            return self._calls[conversation_id]
        except KeyError:
            raise KeyError(f"FakeGenesys has no call {conversation_id!r}") from None

    @staticmethod
    def _drop(leg: dict[str, Any], disconnect_type: str, state: str = "disconnected") -> None:
        leg["state"] = state
        leg["endTime"] = _iso(time.time())
        leg["disconnectType"] = disconnect_type
        if leg.get("purpose") == "agent":
            leg["wrapupRequired"] = True

    def _settle(self, call: _Call) -> None:
        """With no live customer/external leg left, the call is over for everyone."""
        if not any(p.get("purpose") in _CALLER_PURPOSES and _is_live(p) for p in call.participants):
            self._end(call)

    @staticmethod
    def _end(call: _Call, disconnect_type: str = "peer") -> None:
        for leg in call.participants:
            if _is_live(leg):
                talking = leg.get("purpose") in {"agent", "user", *_CALLER_PURPOSES}
                FakeGenesys._drop(leg, disconnect_type, "disconnected" if talking else "terminated")

    # --- seeding helpers ---------------------------------------------------------------------

    def _queue_id(self, queue_name: str) -> str:
        with self._lock:
            return self._queue_ids.setdefault(queue_name, _new_id())

    def _user_id(self, agent_name: str) -> str:
        with self._lock:
            return self._user_ids.setdefault(agent_name, _new_id())

    def user(self, agent_name: str) -> dict[str, str]:
        """The Genesys user behind an agent's name (seeded with any call of theirs):
        ``{"id", "name", "email", "state"}``."""
        return _user_record(agent_name, self._user_id(agent_name))

    @staticmethod
    def _agent_address() -> str:
        return (
            f"sip:{uuid.uuid4().hex[:24]}+acme.orgspan.com;tgrp={_new_id()};"
            "trunk-context=acme@localhost"
        )

    @staticmethod
    def _leg(
        *,
        start: float,
        connected: float | None = None,
        end: float | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A CallMediaParticipant dict; None-valued fields are left out."""
        leg: dict[str, Any] = {"id": _new_id()}
        if fields.get("name") is not None:
            leg["name"] = fields.pop("name")
        leg["address"] = fields.pop("address")
        leg["startTime"] = _iso(start)
        if connected is not None:
            leg["connectedTime"] = _iso(connected)
        if end is not None:
            leg["endTime"] = _iso(end)
        leg.update({"held": False, "wrapupRequired": False, "attributes": {}, "provider": "Edge"})
        leg.update({k: v for k, v in fields.items() if v is not None})
        leg.update(
            {"muted": False, "confined": False, "recording": False, "recordingState": "none"}
        )
        return leg

    def _acd_leg(self, queue_name: str, number: str, start: float, end: float) -> dict[str, Any]:
        queue_id = self._queue_id(queue_name)
        address = f"sip:{queue_id}@127.0.0.1;language=en-US;user=acd"
        queue = _ref("routing/queues", queue_id)
        return self._leg(
            name=queue_name,
            address=address,
            start=start,
            connected=start,
            end=end,
            purpose="acd",
            state="terminated",
            direction="inbound",
            disconnectType="transfer",
            queue=queue,
            conversationRoutingData={
                "queue": queue,
                "priority": 0,
                "skills": [],
                "scoredAgents": [],
            },
            ani=f"tel:{number}" if number else None,
            dnis=address,
        )

    def _customer_leg(
        self,
        number: str,
        connected: float,
        *,
        name: str | None = None,
        queue: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """An inbound caller, connected since `connected` (epoch seconds)."""
        return self._leg(
            name=name or number,
            address=f"tel:{number}",
            start=connected,
            connected=connected,
            purpose="customer",
            state="connected",
            direction="inbound",
            queue=queue,
            ani=f"tel:{number}",
            dnis=ORG_NUMBER,
        )

    def _external_leg(self, number: str, connected: float) -> dict[str, Any]:
        return self._leg(
            name=number,
            address=f"tel:{number}",
            start=connected,
            connected=connected,
            purpose="external",
            state="connected",
            direction="outbound",
            ani=ORG_NUMBER,
            dnis=f"tel:{number}",
        )

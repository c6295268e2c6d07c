"""Self-test of the fake Genesys over plain urllib (no SDK), so the fake itself is trusted."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.genesys_simulator import (
    ANALYTICS_PERMISSION,
    DISCONNECT_PERMISSION,
    FLOW_OBSERVATION_PERMISSION,
    QUEUE_OBSERVATION_PERMISSION,
    FakeGenesys,
)

NUMBER = "+15551234567"
OTHER = "+15557654321"


@pytest.fixture
def fake() -> Iterator[FakeGenesys]:
    with FakeGenesys() as running:
        yield running


def call(
    fake: FakeGenesys,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    """Send one request; return (status, headers, parsed JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(fake.base_url + path, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    return status, headers, json.loads(raw) if raw else None


def get_token(fake: FakeGenesys, secret: str) -> tuple[int, Any]:
    basic = base64.b64encode(f"test-client:{secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310
        fake.base_url + "/oauth/token",
        data=b"grant_type=client_credentials",
        method="POST",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def token(fake: FakeGenesys) -> str:
    status, body = get_token(fake, "test-secret")
    assert status == 200
    return str(body["access_token"])


def query(number: str, page: int = 1, size: int = 25) -> dict[str, Any]:
    """The bot's query: live voice conversations where the number is ani or dnis."""
    return {
        "interval": "2026-03-01T15:04:05Z/2026-03-02T15:05:05Z",
        "order": "desc",
        "orderBy": "conversationStart",
        "conversationFilters": [
            {
                "type": "and",
                "predicates": [
                    {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}
                ],
            }
        ],
        "segmentFilters": [
            {
                "type": "and",
                "predicates": [
                    {
                        "type": "dimension",
                        "dimension": "mediaType",
                        "operator": "matches",
                        "value": "voice",
                    }
                ],
            },
            {
                "type": "or",
                "predicates": [
                    {
                        "type": "dimension",
                        "dimension": d,
                        "operator": "matches",
                        "value": f"tel:{number}",
                    }
                    for d in ("ani", "dnis")
                ],
            },
        ],
        "paging": {"pageSize": size, "pageNumber": page},
    }


def analytics(fake: FakeGenesys, tok: str, body: Any) -> tuple[int, Any]:
    status, _, answer = call(
        fake, "POST", "/api/v2/analytics/conversations/details/query", body, token=tok
    )
    return status, answer


def patch(
    fake: FakeGenesys, tok: str, cid: str, pid: str, state: str = "disconnected"
) -> tuple[int, Any]:
    path = f"/api/v2/conversations/calls/{cid}/participants/{pid}"
    status, _, answer = call(fake, "PATCH", path, {"state": state}, token=tok)
    return status, answer


def states(fake: FakeGenesys, cid: str) -> dict[str, str]:
    return {p["purpose"]: p["state"] for p in fake.participants(cid)}


def test_token_and_auth(fake: FakeGenesys) -> None:
    status, body = get_token(fake, secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")
    tok = token(fake)
    assert fake.token_requests == 1
    cid = fake.add_inbound_call(NUMBER)
    assert call(fake, "GET", f"/api/v2/conversations/calls/{cid}")[2]["code"] == "bad.credentials"
    assert call(fake, "GET", f"/api/v2/conversations/calls/{cid}", token=tok)[0] == 200
    fake.expire_all_tokens()
    status, headers, body = call(fake, "GET", f"/api/v2/conversations/calls/{cid}", token=tok)
    assert (status, body["code"], body["message"]) == (
        401,
        "bad.credentials",
        "Invalid login credentials.",
    )
    assert headers["Content-Type"] == "application/json"
    assert call(fake, "GET", "/nowhere")[2]["code"] == "not.found"


def test_analytics_finds_live_calls_by_number(fake: FakeGenesys) -> None:
    tok = token(fake)
    inbound = fake.add_inbound_call(NUMBER, agent_name="Ann", queue_name="Sales")
    outbound = fake.add_outbound_call(NUMBER, agent_name="Bob")
    fake.add_inbound_call(OTHER)
    ended = fake.add_inbound_call(NUMBER)
    fake.end_call(ended)
    status, answer = analytics(fake, tok, query(NUMBER))
    assert status == 200
    assert answer["totalHits"] == 2
    found = {c["conversationId"]: c for c in answer["conversations"]}
    assert set(found) == {inbound, outbound}
    assert answer["conversations"][0]["conversationId"] == outbound  # newest start first
    names = {p["purpose"]: p.get("participantName") for p in found[inbound]["participants"]}
    assert names["agent"] == "Ann"
    assert names["acd"] == "Sales"
    assert names["customer"] == NUMBER
    agent = next(p for p in found[inbound]["participants"] if p["purpose"] == "agent")
    assert agent["participantId"] == fake.participant_id(inbound, "agent")
    assert agent["sessions"][0]["ani"] == f"tel:{NUMBER}"  # sip: form normalised
    assert found[outbound]["originatingDirection"] == "outbound"

    assert analytics(fake, tok, query(NUMBER, page=2))[1] == {"totalHits": 2}
    assert analytics(fake, tok, {"paging": {"pageSize": 25}})[1]["code"] == "bad.request"


def test_zombie_stays_in_analytics(fake: FakeGenesys) -> None:
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER)
    fake.make_zombie(cid)
    assert analytics(fake, tok, query(NUMBER))[1]["conversations"][0]["conversationId"] == cid
    assert "connected" not in states(fake, cid).values()


def test_get_call_shape(fake: FakeGenesys) -> None:
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER, customer_name="Pat Caller")
    status, _, body = call(fake, "GET", f"/api/v2/conversations/calls/{cid}", token=tok)
    assert status == 200
    assert body["selfUri"] == f"/api/v2/conversations/calls/{cid}"
    assert [p["purpose"] for p in body["participants"]] == ["customer", "ivr", "acd", "agent"]
    customer, _, _, agent = body["participants"]
    assert (customer["name"], customer["ani"], customer["state"]) == (
        "Pat Caller",
        f"tel:{NUMBER}",
        "connected",
    )
    assert customer["connectedTime"].endswith("Z")
    assert agent["ani"] == f"sip:{NUMBER}@10.47.1.31;user=phone"
    assert "name" not in agent
    status, _, body = call(fake, "GET", "/api/v2/conversations/calls/nope", token=tok)
    assert (status, body["code"]) == (404, "not.found")


def test_patch_customer_ends_two_party_call(fake: FakeGenesys) -> None:
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER)
    customer = fake.participant_id(cid, "customer")
    status, body = patch(fake, tok, cid, customer)
    assert (status, body) == (202, None)
    assert states(fake, cid)["customer"] == "disconnected"
    agent = fake.participants(cid)[3]
    assert (agent["state"], agent["wrapupRequired"]) == ("disconnected", True)
    status, body = patch(fake, tok, cid, customer)
    assert (status, body["code"]) == (400, "conversation.error.call.disconnected")
    assert (
        patch(fake, tok, cid, "nobody")[1]["code"]
        == "conversation.error.not.conversation.participant"
    )
    assert patch(fake, tok, "nothing", customer)[1]["code"] == "not.found"
    assert fake.patches()[0] == (cid, customer, {"state": "disconnected"})
    assert len(fake.patches()) == 4


def test_patch_in_conference_keeps_others(fake: FakeGenesys) -> None:
    tok = token(fake)
    cid = fake.add_conference([NUMBER, OTHER])
    assert patch(fake, tok, cid, fake.participant_id(cid, "external", 0))[0] == 202
    legs = fake.participants(cid)
    assert [p["state"] for p in legs if p["purpose"] == "external"] == ["disconnected", "connected"]
    assert states(fake, cid)["agent"] == "connected"


def test_patch_bad_body_and_permissions(fake: FakeGenesys) -> None:
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER)
    customer = fake.participant_id(cid, "customer")
    assert patch(fake, tok, cid, customer, state="connected")[1]["code"] == "bad.request"
    fake.deny_permission(DISCONNECT_PERMISSION)
    fake.deny_permission(ANALYTICS_PERMISSION)
    status, body = patch(fake, tok, cid, customer)
    assert (status, body["code"]) == (403, "missing.any.permissions")
    assert DISCONNECT_PERMISSION in body["message"]
    assert analytics(fake, tok, query(NUMBER))[1]["messageParams"] == {
        "permissions": ANALYTICS_PERMISSION
    }


def test_delayed_and_ignored_disconnects(fake: FakeGenesys) -> None:
    tok = token(fake)
    fake.disconnect_delay = 0.2
    cid = fake.add_inbound_call(NUMBER)
    assert patch(fake, tok, cid, fake.participant_id(cid, "customer"))[0] == 202
    assert states(fake, cid)["customer"] == "connected"
    time.sleep(0.5)
    assert states(fake, cid)["customer"] == "disconnected"

    fake.disconnect_delay = 0.0
    fake.ignore_disconnects = True
    cid = fake.add_outbound_call(NUMBER)
    assert patch(fake, tok, cid, fake.participant_id(cid, "external"))[0] == 202
    assert states(fake, cid)["external"] == "connected"


def test_hang_up(fake: FakeGenesys) -> None:
    cid = fake.add_inbound_call(NUMBER)
    fake.hang_up(cid)
    assert states(fake, cid) == {
        "customer": "disconnected",
        "ivr": "terminated",
        "acd": "terminated",
        "agent": "disconnected",
    }


def test_inject(fake: FakeGenesys) -> None:
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER)
    path = f"/api/v2/conversations/calls/{cid}"
    fake.inject("GET", r"/conversations/calls/", status=429, headers={"Retry-After": "3"}, times=2)
    for _ in range(2):
        status, headers, body = call(fake, "GET", path, token=tok)
        assert (status, headers["Retry-After"], body["code"]) == (429, "3", "too.many.requests")
    assert call(fake, "GET", path, token=tok)[0] == 200
    fake.inject("GET", r"/conversations/calls/", status=503)
    assert call(fake, "GET", path, token=tok)[2]["code"] == "service.unavailable"
    fake.inject("GET", r"/conversations/calls/", status=200, json_body={"hello": 1}, delay=0.1)
    assert call(fake, "GET", path, token=tok)[2] == {"hello": 1}
    assert len(fake.requests_to("GET", r"/conversations/calls/")) == 5
    recorded = fake.requests[-1]
    assert recorded.headers["authorization"] == f"Bearer {tok}"


def activity_query(number: str, *, flows: bool = False) -> dict[str, Any]:
    """The bot's real-time query: voice calls whose ani or dnis is the number, either form."""
    metrics = ["oFlow"] if flows else ["oWaiting", "oAlerting", "oInteracting"]
    return {
        "metrics": [{"metric": m, "details": True} for m in metrics],
        "groupBy": ["flowId" if flows else "queueId"],
        "filter": {
            "type": "and",
            "predicates": [
                {
                    "type": "dimension",
                    "dimension": "mediaType",
                    "operator": "matches",
                    "value": "voice",
                }
            ],
            "clauses": [
                {
                    "type": "or",
                    "predicates": [
                        {"type": "dimension", "dimension": d, "operator": "matches", "value": v}
                        for d in ("ani", "dnis")
                        for v in (f"tel:{number}", number)
                    ],
                }
            ],
        },
    }


def activity(fake: FakeGenesys, tok: str, body: Any, *, flows: bool = False) -> tuple[int, Any]:
    kind = "flows" if flows else "conversations"
    status, _, answer = call(
        fake, "POST", f"/api/v2/analytics/{kind}/activity/query", body, token=tok
    )
    return status, answer


def entity_ids(answer: Any) -> set[str]:
    return {e["conversationId"] for r in answer["results"] for e in r["entities"]}


def test_conversation_activity_lists_queue_calls_at_once(fake: FakeGenesys) -> None:
    """Queue observation lists calls talking through a queue, grouped by queue, with no lag;
    calls with no queue, ended calls and zombies are not in it."""
    fake.index_delay = 60.0
    tok = token(fake)
    inbound = fake.add_inbound_call(NUMBER, queue_name="Sales")
    outbound_no_queue = fake.add_outbound_call(NUMBER)
    fake.add_inbound_call(OTHER)
    zombie = fake.add_inbound_call(NUMBER)
    fake.make_zombie(zombie)

    status, answer = activity(fake, tok, activity_query(NUMBER))

    assert status == 200
    assert entity_ids(answer) == {inbound}
    [result] = answer["results"]
    [entity] = result["entities"]
    assert result["group"] == {"queueId": entity["queueId"]}
    assert result["data"] == [{"metric": "oInteracting", "count": 1}]
    assert (entity["ani"], entity["mediaType"], entity["metric"]) == (
        f"tel:{NUMBER}",
        "voice",
        "oInteracting",
    )
    assert entity["userId"]
    assert outbound_no_queue not in entity_ids(answer)
    # The details index has not caught up yet.
    assert analytics(fake, tok, query(NUMBER))[1] == {"totalHits": 0}


def test_flow_activity_lists_callers_in_an_ivr(fake: FakeGenesys) -> None:
    """Flow observation lists a caller whose IVR leg is live, and nobody else."""
    tok = token(fake)
    in_ivr = fake.add_ivr_call(NUMBER, flow_name="Main Line IVR")
    with_agent = fake.add_inbound_call(NUMBER)  # past its IVR, talking to an agent

    status, answer = activity(fake, tok, activity_query(NUMBER, flows=True), flows=True)

    assert status == 200
    assert entity_ids(answer) == {in_ivr}
    [result] = answer["results"]
    assert result["entities"][0]["metric"] == "oFlow"
    assert result["group"] == {"flowId": result["entities"][0]["flowId"]}
    # The caller in the IVR is not in queue observation: there is no queue yet.
    assert entity_ids(activity(fake, tok, activity_query(NUMBER))[1]) == {with_agent}


def test_activity_queries_check_their_body_and_permission(fake: FakeGenesys) -> None:
    """No groupBy or an unknown metric is a 400; a denied observation permission is a 403
    naming it."""
    tok = token(fake)
    no_group = {**activity_query(NUMBER), "groupBy": []}
    assert activity(fake, tok, no_group)[0] == 400
    bad_metric = {**activity_query(NUMBER), "metrics": [{"metric": "oFlow"}]}
    assert activity(fake, tok, bad_metric)[0] == 400
    fake.deny_permission(QUEUE_OBSERVATION_PERMISSION)
    status, answer = activity(fake, tok, activity_query(NUMBER))
    assert (status, answer["code"]) == (403, "missing.any.permissions")
    assert QUEUE_OBSERVATION_PERMISSION in answer["message"]
    fake.deny_permission(FLOW_OBSERVATION_PERMISSION)
    assert activity(fake, tok, activity_query(NUMBER, flows=True), flows=True)[0] == 403


def test_bare_number_form(fake: FakeGenesys) -> None:
    """An org whose analytics records bare +E164 numbers matches only that form."""
    fake.number_form = "bare"
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER)
    tel_only = query(NUMBER)
    assert analytics(fake, tok, tel_only)[1] == {"totalHits": 0}
    bare = query(NUMBER)
    bare["segmentFilters"][1]["predicates"][0]["value"] = NUMBER
    assert analytics(fake, tok, bare)[1]["conversations"][0]["conversationId"] == cid
    assert entity_ids(activity(fake, tok, activity_query(NUMBER))[1]) == {cid}


def test_restricted_and_forgotten_calls(fake: FakeGenesys) -> None:
    """A restricted call answers 403 to GET and PATCH; a forgotten one 404 with the chosen code."""
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER)
    customer = fake.participant_id(cid, "customer")
    fake.restrict_call(cid)
    status, _, body = call(fake, "GET", f"/api/v2/conversations/calls/{cid}", token=tok)
    assert (status, body["code"]) == (403, "not.authorized")
    assert body["contextId"]
    assert patch(fake, tok, cid, customer)[0] == 403
    assert states(fake, cid)["customer"] == "connected"

    fake.not_found_code = "conversation.error.conversation.not.found"
    fake.remove_call(cid)
    status, _, body = call(fake, "GET", f"/api/v2/conversations/calls/{cid}", token=tok)
    assert (status, body["code"]) == (404, "conversation.error.conversation.not.found")


def test_users_search_finds_an_agent_by_exact_email(fake: FakeGenesys) -> None:
    """Every agent seeded by name is a user; the search matches the email exactly."""
    tok = token(fake)
    fake.add_inbound_call(NUMBER, agent_name="Jane Agent")
    search = {"query": [{"type": "EXACT", "fields": ["email"], "value": "jane.agent@example.com"}]}

    status, _, answer = call(fake, "POST", "/api/v2/users/search", search, token=tok)

    assert status == 200
    assert answer["total"] == 1
    assert answer["results"][0] == fake.user("Jane Agent")
    search["query"][0]["value"] = "jane@example.com"
    assert call(fake, "POST", "/api/v2/users/search", search, token=tok)[2]["total"] == 0


def test_a_stuck_call_and_its_teardown(fake: FakeGenesys) -> None:
    """The caller leaves and the agent stays (stuck); the conversation disconnect ends every
    leg, after `teardown_delay`."""
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER)
    fake.hang_up(cid, leave_stuck=True)
    assert states(fake, cid)["customer"] == "disconnected"
    assert states(fake, cid)["agent"] == "connected"
    fake.teardown_delay = 0.2

    status, headers, body = call(fake, "POST", f"/api/v2/conversations/{cid}/disconnect", token=tok)

    assert (status, body) == (202, None)
    assert headers["inin-correlation-id"]
    assert states(fake, cid)["agent"] == "connected"
    time.sleep(0.4)
    assert "connected" not in states(fake, cid).values()
    fake.deny_permission(DISCONNECT_PERMISSION)
    assert call(fake, "POST", f"/api/v2/conversations/{cid}/disconnect", token=tok)[0] == 403


def test_participant_attributes_are_kept_while_the_leg_is_connected(fake: FakeGenesys) -> None:
    """PATCH .../attributes merges strings into the leg's attributes; an ended leg refuses."""
    tok = token(fake)
    cid = fake.add_inbound_call(NUMBER)
    pid = fake.participant_id(cid, "customer")
    path = f"/api/v2/conversations/calls/{cid}/participants/{pid}/attributes"

    assert call(fake, "PATCH", path, {"attributes": {"a": "1"}}, token=tok)[0] == 202
    assert call(fake, "PATCH", path, {"attributes": {"b": "2"}}, token=tok)[0] == 202
    assert fake.participants(cid)[0]["attributes"] == {"a": "1", "b": "2"}
    assert call(fake, "PATCH", path, {"attributes": {"c": 3}}, token=tok)[0] == 400
    fake.hang_up(cid)
    status, _, body = call(fake, "PATCH", path, {"attributes": {"c": "3"}}, token=tok)
    assert (status, body["code"]) == (400, "conversation.error.participant.not.connected")


def test_data_tables_and_the_flow_that_checks_one(fake: FakeGenesys) -> None:
    """A table's schema, its rows (add, read, replace, delete, with the schema checked), and
    the inbound flow refusing a number in the table it checks."""
    tok = token(fake)
    table = fake.add_datatable("Blocked numbers", ["reason"])
    base = f"/api/v2/flows/datatables/{table}"
    status, _, body = call(fake, "GET", f"{base}?expand=schema", token=tok)
    assert status == 200
    assert set(body["schema"]["properties"]) == {"key", "reason"}
    row = {"key": "15551234567", "reason": "spam"}
    assert call(fake, "POST", f"{base}/rows", row, token=tok)[0] == 200
    assert call(fake, "POST", f"{base}/rows", row, token=tok)[0] == 409
    assert call(fake, "POST", f"{base}/rows", {"key": "1", "color": "red"}, token=tok)[0] == 400
    assert call(fake, "GET", f"{base}/rows/15551234567", token=tok)[2] == row
    changed = {"key": "15551234567", "reason": "threats"}
    assert call(fake, "PUT", f"{base}/rows/15551234567", changed, token=tok)[0] == 200
    assert fake.rows(table) == {"15551234567": changed}

    fake.flow_blocklist_table = table
    refused = fake.add_inbound_call(NUMBER)
    assert "connected" not in states(fake, refused).values()

    assert call(fake, "DELETE", f"{base}/rows/15551234567", token=tok)[0] == 204
    assert call(fake, "GET", f"{base}/rows/15551234567", token=tok)[0] == 404
    assert call(fake, "GET", "/api/v2/flows/datatables/nope?expand=schema", token=tok)[0] == 404

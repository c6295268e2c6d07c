"""GenesysCalls against the fake Genesys Cloud, over real HTTP through the real SDK.

Time is injected: a `FakeClock` stands in for the monotonic clock and for `sleep`, so retry
and confirmation waits are recorded instead of slept. Only the tests that need the fake's own
timers (a delayed disconnect, a slow answer) use real time, with short timeouts.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from genesys.client import GenesysCalls
from genesys.config import GenesysConfig, RetryPolicy
from genesys.errors import (
    GenesysAuthenticationError,
    GenesysError,
    GenesysPermissionError,
    GenesysRateLimited,
    GenesysRequestRejected,
    GenesysUnavailable,
)
from genesys.models import DisconnectOutcome
from sandbox.genesys_simulator import (
    ANALYTICS_PERMISSION,
    DISCONNECT_PERMISSION,
    FLOW_OBSERVATION_PERMISSION,
    ORG_NUMBER,
    QUEUE_OBSERVATION_PERMISSION,
    FakeGenesys,
)

NUMBER = "+15551234567"
OTHER = "+15557654321"
ORG = ORG_NUMBER.removeprefix("tel:")  # "+18005550100"
NOW = datetime(2026, 3, 2, 15, 4, 5, 678_901, tzinfo=UTC)

ANALYTICS = r"^/api/v2/analytics/conversations/details/query$"
CALL = r"^/api/v2/conversations/calls/[^/]+$"
PARTICIPANT = r"^/api/v2/conversations/calls/[^/]+/participants/[^/]+$"
TOKEN = r"^/oauth/token$"


class FakeClock:
    """A monotonic clock that moves only when the client sleeps or a test advances it."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.time

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock on by it, without waiting."""
        with self._lock:
            self.sleeps.append(seconds)
            self.time += seconds

    def advance(self, seconds: float) -> None:
        """Let time pass, as if the bot had been idle."""
        with self._lock:
            self.time += seconds


def make_config(api_host: str, **changes: Any) -> GenesysConfig:
    """The production config shape with short network timeouts, plus `changes`."""
    config = GenesysConfig(
        api_host=api_host,
        client_id="test-client",
        client_secret="test-secret",
        connect_timeout=1.0,
        read_timeout=2.0,
        retry=RetryPolicy(max_attempts=3, max_total_seconds=8.0, base_delay=0.25, max_delay=2.0),
        confirm_timeout=1.0,
        confirm_interval=0.25,
        lookup_page_size=25,
    )
    return dataclasses.replace(config, **changes)


def make_calls(api_host: str, clock: FakeClock, **changes: Any) -> GenesysCalls:
    """A client on the fake clock and a fixed `now`."""
    return GenesysCalls(
        make_config(api_host, **changes), clock=clock, sleep=clock.sleep, now=lambda: NOW
    )


def make_real_time_calls(api_host: str, **changes: Any) -> GenesysCalls:
    """A client on the real clock, for tests that wait for the fake's own timers."""
    return GenesysCalls(make_config(api_host, **changes), now=lambda: NOW)


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def analytics_conversation(conversation_id: str, agent_name: str = "Jane Agent") -> dict[str, Any]:
    """A conversation as the analytics details query reports it (only what the client reads)."""
    return {
        "conversationId": conversation_id,
        "conversationStart": "2026-03-02T14:58:54.319Z",
        "originatingDirection": "inbound",
        "participants": [
            {"participantId": "p-agent", "participantName": agent_name, "purpose": "agent"}
        ],
    }


def operations(
    calls: GenesysCalls, cid: str, participant_id: str
) -> dict[str, Callable[[], object]]:
    """The client's three public operations on one call, by name, ready to run."""
    return {
        "lookup": lambda: calls.find_active_calls(NUMBER).matches,
        "read": lambda: calls.get_live_call(cid),
        "disconnect": lambda: calls.disconnect_participant(cid, participant_id, NUMBER),
    }


def error_body(status: int, code: str, message: str, context_id: str) -> dict[str, Any]:
    """The Genesys error body (see shared examples/error-body.json)."""
    return {
        "message": message,
        "code": code,
        "status": status,
        "contextId": context_id,
        "messageParams": {},
        "details": [],
        "errors": [],
    }


@pytest.fixture
def clock() -> FakeClock:
    """The injected monotonic clock and sleep."""
    return FakeClock()


@pytest.fixture
def calls(genesys: FakeGenesys, clock: FakeClock) -> GenesysCalls:
    """A client pointed at the fake, on the fake clock."""
    return make_calls(genesys.base_url, clock)


# ------------------------------------------------------------------------------------ lookup


def test_lookup_sends_the_documented_analytics_query(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """The analytics query asks for not-ended voice calls whose ani or dnis is tel:+E164 or
    the bare +E164 (orgs differ in which their trunks record)."""
    genesys.add_inbound_call(NUMBER)

    calls.find_active_calls(NUMBER)

    [request] = genesys.requests_to("POST", ANALYTICS)
    body = request.body
    assert body["conversationFilters"] == [
        {
            "type": "and",
            "predicates": [
                {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}
            ],
        }
    ]
    assert body["segmentFilters"] == [
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
                {"type": "dimension", "dimension": dimension, "operator": "matches", "value": value}
                for dimension in ("ani", "dnis")
                for value in ("tel:+15551234567", "+15551234567")
            ],
        },
    ]
    assert body["interval"] == "2026-03-01T15:04:05.678Z/2026-03-02T15:05:05.678Z"
    assert body["paging"] == {"pageSize": 25, "pageNumber": 1}
    assert request.headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize("code", ["not.found", "conversation.error.conversation.not.found"])
def test_lookup_skips_a_candidate_that_is_over_whatever_its_404_code(
    genesys: FakeGenesys, calls: GenesysCalls, code: str
) -> None:
    """A candidate whose live read is a 404, with either of Genesys' codes, is over: skipped,
    not reported as unreadable, and the other call is still found."""
    live = genesys.add_inbound_call(NUMBER)
    gone = genesys.add_inbound_call(NUMBER)
    genesys.make_zombie(gone)
    genesys.inject(
        "GET",
        f"/conversations/calls/{gone}$",
        status=404,
        json_body=error_body(404, code, "x", "c"),
    )

    lookup = calls.find_active_calls(NUMBER)

    assert [m.conversation_id for m in lookup.matches] == [live]
    assert lookup.unreadable == ()


def test_lookup_reports_a_candidate_it_may_not_read_and_keeps_the_others(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """A 403 on one candidate's read skips that candidate, keeping Genesys' error for the
    sentence; a readable call beside it is still matched."""
    readable = genesys.add_inbound_call(NUMBER)
    hidden = genesys.add_inbound_call(NUMBER)
    genesys.restrict_call(hidden)

    lookup = calls.find_active_calls(NUMBER)

    assert [m.conversation_id for m in lookup.matches] == [readable]
    [error] = lookup.unreadable
    assert isinstance(error, GenesysPermissionError)
    assert (error.status, error.code, error.permission) == (403, "not.authorized", None)
    assert error.reason == "You are not authorized to perform the requested action."
    assert error.context_id


def test_lookup_whose_only_reads_fail_for_an_outage_is_unavailable(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """When the only candidate cannot be read because Genesys is down (not because it
    refuses), the look-up fails as unavailable rather than saying anything about the role."""
    genesys.add_inbound_call(NUMBER)
    genesys.inject("GET", CALL, status=503, times=10)

    with pytest.raises(GenesysUnavailable):
        calls.find_active_calls(NUMBER)


def test_lookup_merges_real_time_candidates_not_yet_indexed(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """Calls the details index does not list yet come from the activity sources, each read
    once, and `realtime` says a real-time source answered."""
    genesys.index_delay = 60.0
    queued = genesys.add_inbound_call(NUMBER)
    in_ivr = genesys.add_ivr_call(NUMBER)

    lookup = calls.find_active_calls(NUMBER)

    assert {m.conversation_id for m in lookup.matches} == {queued, in_ivr}
    assert lookup.realtime
    assert len(genesys.requests_to("GET", CALL)) == 2


def test_lookup_without_real_time_answers_says_so(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """With both activity queries refused, the look-up still answers from the index, and
    `realtime` is False so the supervisor can be told the index may lag."""
    genesys.deny_permission(QUEUE_OBSERVATION_PERMISSION)
    genesys.deny_permission(FLOW_OBSERVATION_PERMISSION)
    cid = genesys.add_inbound_call(NUMBER)

    lookup = calls.find_active_calls(NUMBER)

    assert [m.conversation_id for m in lookup.matches] == [cid]
    assert not lookup.realtime
    assert {s.state.value for s in calls.realtime_statuses()} == {"no_permission"}


def test_lookup_interval_is_written_in_utc(genesys: FakeGenesys, clock: FakeClock) -> None:
    """An injected `now` in another time zone still gives a UTC interval of -1 day/+1 min."""
    sydney = timezone(timedelta(hours=10))
    calls = GenesysCalls(
        make_config(genesys.base_url),
        clock=clock,
        sleep=clock.sleep,
        now=lambda: datetime(2026, 3, 3, 1, 4, 5, tzinfo=sydney),
    )

    calls.find_active_calls(NUMBER)

    [request] = genesys.requests_to("POST", ANALYTICS)
    assert request.body["interval"] == "2026-03-01T15:04:05.000Z/2026-03-02T15:05:05.000Z"


def test_lookup_fetches_every_page(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """30 matching calls with 25 per page take two pages; the short second page ends paging."""
    conversation_ids = {genesys.add_inbound_call(NUMBER) for _ in range(30)}

    matches = calls.find_active_calls(NUMBER).matches

    pages = [r.body["paging"] for r in genesys.requests_to("POST", ANALYTICS)]
    assert pages == [{"pageSize": 25, "pageNumber": 1}, {"pageSize": 25, "pageNumber": 2}]
    assert {m.conversation_id for m in matches} == conversation_ids
    assert len(matches) == 30


def test_lookup_stops_on_an_empty_page(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """Exactly one full page of calls is followed by one empty page, then paging stops."""
    for _ in range(25):
        genesys.add_inbound_call(NUMBER)

    matches = calls.find_active_calls(NUMBER).matches

    assert [r.body["paging"]["pageNumber"] for r in genesys.requests_to("POST", ANALYTICS)] == [
        1,
        2,
    ]
    assert len(matches) == 25


def test_lookup_stops_at_the_page_limit(genesys: FakeGenesys, clock: FakeClock) -> None:
    """Paging the details query never goes beyond lookup_max_pages, however many calls match."""
    for _ in range(12):
        genesys.add_inbound_call(NUMBER)
    calls = make_calls(genesys.base_url, clock, lookup_page_size=5, lookup_max_pages=2)

    matches = calls.find_active_calls(NUMBER).matches

    assert len(genesys.requests_to("POST", ANALYTICS)) == 2
    # The real-time queue source lists all twelve, so none is missed for the page limit.
    assert len(matches) == 12


def test_conversation_on_two_pages_is_returned_once(genesys: FakeGenesys, clock: FakeClock) -> None:
    """A conversation that analytics repeats on the next page is read and returned once."""
    first = genesys.add_inbound_call(NUMBER)
    second = genesys.add_inbound_call(NUMBER)
    page_one = {
        "totalHits": 3,
        "conversations": [analytics_conversation(first), analytics_conversation(second)],
    }
    page_two = {"totalHits": 3, "conversations": [analytics_conversation(second)]}
    genesys.inject("POST", ANALYTICS, status=200, json_body=page_one)
    genesys.inject("POST", ANALYTICS, status=200, json_body=page_two)
    calls = make_calls(genesys.base_url, clock, lookup_page_size=2)

    matches = calls.find_active_calls(NUMBER).matches

    assert len(genesys.requests_to("POST", ANALYTICS)) == 2
    assert sorted(m.conversation_id for m in matches) == sorted([first, second])
    assert len(genesys.requests_to("GET", CALL)) == 2


def test_zombie_conversation_is_skipped(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """A conversation analytics still reports but whose live call has ended is not returned."""
    live = genesys.add_inbound_call(NUMBER)
    zombie = genesys.add_inbound_call(NUMBER)
    genesys.make_zombie(zombie)

    matches = calls.find_active_calls(NUMBER).matches

    assert [m.conversation_id for m in matches] == [live]
    read = {r.path.rsplit("/", 1)[1] for r in genesys.requests_to("GET", CALL)}
    assert read == {live, zombie}  # the zombie was a candidate, confirmed dead


def test_conversation_unknown_to_the_live_api_is_skipped(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """An analytics hit the live API answers 404 for is dropped, not an error."""
    live = genesys.add_inbound_call(NUMBER)
    answer = {
        "totalHits": 2,
        "conversations": [analytics_conversation(live), analytics_conversation("gone-long-ago")],
    }
    genesys.inject("POST", ANALYTICS, status=200, json_body=answer)

    matches = calls.find_active_calls(NUMBER).matches

    assert [m.conversation_id for m in matches] == [live]


def test_match_carries_names_from_analytics(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """Agent and queue names come from analytics participantName; the match is the caller."""
    cid = genesys.add_inbound_call(
        NUMBER, agent_name="Ada Lovelace", queue_name="Support", customer_name="Pat Caller"
    )
    # The live call has no names for the agent: they can only come from analytics.
    agent_leg = next(p for p in genesys.participants(cid) if p["purpose"] == "agent")
    assert "name" not in agent_leg

    [match] = calls.find_active_calls(NUMBER).matches

    assert match.conversation_id == cid
    assert match.participant_id == genesys.participant_id(cid, "customer")
    assert match.number == NUMBER
    assert match.purpose == "customer"
    assert match.participant_name == "Pat Caller"
    assert match.agent_names == ("Ada Lovelace",)
    assert match.queue_names == ("Support",)
    assert match.direction == "inbound"
    assert match.connected_at is not None


def test_agent_leg_with_the_number_is_never_returned(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """The agent's leg carries the caller's number in SIP form but is never a match."""
    started = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    ended = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    agent_station = (
        "sip:5f2e8c0a1b3d4e6f7a8b9c0d+acme.orgspan.com;tgrp=x;trunk-context=acme@localhost"
    )
    customer = {
        "purpose": "customer",
        "state": "disconnected",
        "direction": "inbound",
        "address": f"tel:{NUMBER}",
        "ani": f"tel:{NUMBER}",
        "dnis": ORG_NUMBER,
        "startTime": started,
        "connectedTime": started,
        "endTime": ended,
    }
    agent = {
        "purpose": "agent",
        "state": "connected",
        "direction": "inbound",
        "address": agent_station,
        "ani": f"sip:{NUMBER}@10.47.1.31;user=phone",
        "dnis": agent_station,
        "startTime": started,
        "connectedTime": started,
        "user": {"id": "u-1", "selfUri": "/api/v2/users/u-1"},
    }
    # The caller has hung up but the agent is still on the line (for example in wrap-up).
    cid = genesys.add_call([customer, agent], analytics_names={})

    assert calls.find_active_calls(NUMBER).matches == ()
    assert len(genesys.requests_to("GET", CALL)) == 1  # analytics found it; the live call ruled

    # In a normal call, the caller is the only match, never the agent.
    normal = genesys.add_inbound_call(NUMBER)
    assert [m.participant_id for m in calls.find_active_calls(NUMBER).matches] == [
        genesys.participant_id(normal, "customer")
    ]
    assert cid != normal


def test_outbound_call_matches_the_external_party(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """An agent's outbound call matches through dnis, returning the external party."""
    cid = genesys.add_outbound_call(NUMBER, agent_name="Bob Dialer", queue_name="Sales")

    [match] = calls.find_active_calls(NUMBER).matches

    assert match.conversation_id == cid
    assert match.participant_id == genesys.participant_id(cid, "external")
    assert match.purpose == "external"
    assert match.direction == "outbound"
    assert match.agent_names == ("Bob Dialer",)
    assert match.queue_names == ("Sales",)


def test_conference_returns_only_the_matching_external(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """In a conference with two external numbers, each number matches only its own leg."""
    cid = genesys.add_conference([OTHER, NUMBER])

    [match] = calls.find_active_calls(NUMBER).matches
    [other] = calls.find_active_calls(OTHER).matches

    assert match.participant_id == genesys.participant_id(cid, "external", 1)
    assert other.participant_id == genesys.participant_id(cid, "external", 0)


def test_org_number_matches_no_caller(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """Typing the contact center's own number matches nobody, though analytics hits it."""
    genesys.add_inbound_call(NUMBER)
    genesys.add_outbound_call(OTHER)
    genesys.add_conference(["+15550001111", "+15550002222"])

    assert calls.find_active_calls(ORG).matches == ()
    # Analytics did hit all three (org number as inbound dnis / outbound ani): the live
    # participants' own numbers ruled them out.
    assert len(genesys.requests_to("GET", CALL)) == 3


def test_matches_are_sorted_by_connected_time(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """Matches come oldest connection first, whatever order analytics used."""
    recent = genesys.add_inbound_call(NUMBER, connected_seconds_ago=10)
    oldest = genesys.add_inbound_call(NUMBER, connected_seconds_ago=300)
    middle = genesys.add_outbound_call(NUMBER, connected_seconds_ago=60)

    matches = calls.find_active_calls(NUMBER).matches

    assert [m.conversation_id for m in matches] == [oldest, middle, recent]


def test_no_analytics_hit_means_no_live_call_reads(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """A number with no call gives an empty list after one query and no call reads."""
    genesys.add_inbound_call(OTHER)

    assert calls.find_active_calls(NUMBER).matches == ()
    assert len(genesys.requests_to("POST", ANALYTICS)) == 1
    assert genesys.requests_to("GET", CALL) == []


# -------------------------------------------------------------------------------- disconnect


def test_disconnect_patches_the_participant_and_confirms(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """The PATCH body is {"state": "disconnected"} on that participant; confirmed → DISCONNECTED."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")

    result = calls.disconnect_participant(cid, customer, NUMBER)

    assert result.outcome is DisconnectOutcome.DISCONNECTED
    assert (result.conversation_id, result.participant_id) == (cid, customer)
    assert genesys.patches() == [(cid, customer, {"state": "disconnected"})]
    [patch] = genesys.requests_to("PATCH", PARTICIPANT)
    assert patch.path == f"/api/v2/conversations/calls/{cid}/participants/{customer}"
    states = {p["id"]: p["state"] for p in genesys.participants(cid)}
    assert states[customer] == "disconnected"


def test_disconnect_external_party_of_outbound_call(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """The external party of an outbound call is dropped like a caller."""
    cid = genesys.add_outbound_call(NUMBER)
    external = genesys.participant_id(cid, "external")

    result = calls.disconnect_participant(cid, external, NUMBER)

    assert result.outcome is DisconnectOutcome.DISCONNECTED
    assert genesys.patches() == [(cid, external, {"state": "disconnected"})]


def test_caller_who_already_hung_up_is_not_patched(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """A caller who hung up before the click gives ALREADY_GONE and no PATCH is sent."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    genesys.hang_up(cid)

    result = calls.disconnect_participant(cid, customer, NUMBER)

    assert result.outcome is DisconnectOutcome.ALREADY_GONE
    assert genesys.patches() == []


def test_unknown_conversation_is_already_gone(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """A conversation Genesys answers 404 for gives ALREADY_GONE and no PATCH is sent."""
    result = calls.disconnect_participant("no-such-conversation", "no-such-participant", NUMBER)

    assert result.outcome is DisconnectOutcome.ALREADY_GONE
    assert len(genesys.requests_to("GET", CALL)) == 1
    assert genesys.patches() == []


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "conversation.error.call.disconnected"),
        (404, "conversation.error.not.conversation.participant"),
    ],
)
def test_patch_answering_already_gone_is_already_gone(
    genesys: FakeGenesys, calls: GenesysCalls, status: int, code: str
) -> None:
    """A PATCH refused because the caller left in the meantime gives ALREADY_GONE, once."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    body = error_body(status, code, "The call is already disconnected.", "ctx-gone")
    genesys.inject("PATCH", PARTICIPANT, status=status, json_body=body)

    result = calls.disconnect_participant(cid, customer, NUMBER)

    assert result.outcome is DisconnectOutcome.ALREADY_GONE
    assert len(genesys.requests_to("PATCH", PARTICIPANT)) == 1


def test_agent_is_never_disconnected(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """Asking to drop the agent's leg, which carries the number, is refused with no PATCH."""
    cid = genesys.add_inbound_call(NUMBER)
    agent = genesys.participant_id(cid, "agent")

    with pytest.raises(GenesysRequestRejected, match="nothing was disconnected"):
        calls.disconnect_participant(cid, agent, NUMBER)

    assert genesys.patches() == []


def test_participant_without_the_number_is_refused(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """A caller who does not carry the requested number is refused with no PATCH."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")

    with pytest.raises(GenesysRequestRejected, match="nothing was disconnected"):
        calls.disconnect_participant(cid, customer, OTHER)

    assert genesys.patches() == []


def test_org_number_never_disconnects_a_caller(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """Asking to drop a caller by the contact center's own number is refused with no PATCH."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")

    with pytest.raises(GenesysRequestRejected):
        calls.disconnect_participant(cid, customer, ORG)

    assert genesys.patches() == []


def test_disconnect_not_seen_is_unconfirmed_after_confirm_timeout(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """A PATCH Genesys accepts but never applies gives UNCONFIRMED once confirm_timeout passes."""
    genesys.ignore_disconnects = True
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    calls = make_calls(genesys.base_url, clock, confirm_timeout=1.0, confirm_interval=0.25)

    result = calls.disconnect_participant(cid, customer, NUMBER)

    assert result.outcome is DisconnectOutcome.UNCONFIRMED
    assert "1 s" in result.detail
    assert len(genesys.patches()) == 1
    # Waited within confirm_timeout, backing off: 0.25 s, then 0.5 s (a further 1 s would
    # overrun it).
    assert clock.sleeps == [0.25, 0.5]
    # One read before the PATCH, then one at once and one after each wait.
    assert len(genesys.requests_to("GET", CALL)) == 1 + 3


def test_disconnect_applied_later_is_confirmed(genesys: FakeGenesys) -> None:
    """A disconnect Genesys applies within confirm_timeout is confirmed as DISCONNECTED."""
    genesys.disconnect_delay = 0.2
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    calls = make_real_time_calls(genesys.base_url, confirm_timeout=3.0, confirm_interval=0.05)

    started = time.monotonic()
    result = calls.disconnect_participant(cid, customer, NUMBER)
    elapsed = time.monotonic() - started

    assert result.outcome is DisconnectOutcome.DISCONNECTED
    assert 0.2 <= elapsed < 2.0
    assert len(genesys.requests_to("GET", CALL)) >= 3  # it polled until the caller left


def test_confirming_read_failing_after_an_accepted_patch_is_unconfirmed(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """Confirming reads failing after Genesys accepted the PATCH give UNCONFIRMED, not an error."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    # The read before the PATCH is answered normally; every read after it fails.
    live = {"id": cid, "participants": genesys.participants(cid)}
    genesys.inject("GET", CALL, status=200, json_body=live)
    genesys.inject("GET", CALL, status=503, times=50)
    calls = make_calls(genesys.base_url, clock)

    result = calls.disconnect_participant(cid, customer, NUMBER)

    assert len(genesys.patches()) == 1
    assert result.outcome is DisconnectOutcome.UNCONFIRMED


# -------------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", TOKEN, "lookup"),
        ("POST", ANALYTICS, "lookup"),
        ("GET", CALL, "read"),
        ("PATCH", PARTICIPANT, "disconnect"),
    ],
)
def test_every_request_has_a_timeout(
    genesys: FakeGenesys, method: str, path: str, operation: str
) -> None:
    """An answer slower than read_timeout gives GenesysUnavailable quickly, for every request."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    genesys.inject(method, path, status=200, delay=5.0)
    calls = make_real_time_calls(
        genesys.base_url,
        read_timeout=0.3,
        retry=RetryPolicy(max_attempts=1),
    )

    run = operations(calls, cid, customer)[operation]

    started = time.monotonic()
    with pytest.raises(GenesysUnavailable, match="no answer in time") as raised:
        run()
    elapsed = time.monotonic() - started

    assert elapsed < 2.0, "the client waited for the slow answer instead of timing out"
    assert "could not be reached" in str(raised.value)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", ANALYTICS, 503),
        ("POST", ANALYTICS, 429),
        ("PATCH", PARTICIPANT, 503),
        ("POST", TOKEN, 503),
    ],
)
def test_urllib3_hidden_retries_are_off(
    genesys: FakeGenesys, clock: FakeClock, method: str, path: str, status: int
) -> None:
    """A 429/503 with Retry-After reaches the fake exactly once when the policy allows one try."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    genesys.inject(method, path, status=status, headers={"Retry-After": "0"})
    calls = make_calls(genesys.base_url, clock, retry=RetryPolicy(max_attempts=1))
    run = operations(calls, cid, customer)["disconnect" if method == "PATCH" else "lookup"]

    with pytest.raises(GenesysRateLimited if status == 429 else GenesysUnavailable):
        run()

    assert len(genesys.requests_to(method, path)) == 1
    assert clock.sleeps == []


def test_rate_limit_honours_retry_after(
    genesys: FakeGenesys, clock: FakeClock, calls: GenesysCalls
) -> None:
    """A 429 is retried after exactly the Retry-After delay, then the lookup succeeds."""
    cid = genesys.add_inbound_call(NUMBER)
    genesys.inject("POST", ANALYTICS, status=429, headers={"Retry-After": "3"})

    matches = calls.find_active_calls(NUMBER).matches

    assert [m.conversation_id for m in matches] == [cid]
    assert clock.sleeps == [3.0]
    assert len(genesys.requests_to("POST", ANALYTICS)) == 2


def test_rate_limit_without_retry_after_uses_backoff(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """A 429 without Retry-After is retried after the policy's own backoff."""
    genesys.inject("POST", ANALYTICS, status=429)
    calls = make_calls(genesys.base_url, clock)

    assert calls.find_active_calls(NUMBER).matches == ()
    assert clock.sleeps == [0.25]
    assert len(genesys.requests_to("POST", ANALYTICS)) == 2


def test_persistent_rate_limit_gives_up_after_max_attempts(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """Genesys answering 429 every time gives GenesysRateLimited after max_attempts tries."""
    genesys.inject("POST", ANALYTICS, status=429, headers={"Retry-After": "1"}, times=10)
    calls = make_calls(genesys.base_url, clock)

    with pytest.raises(GenesysRateLimited) as raised:
        calls.find_active_calls(NUMBER)

    assert len(genesys.requests_to("POST", ANALYTICS)) == 3
    assert clock.sleeps == [1.0, 1.0]
    assert raised.value.status == 429
    assert raised.value.retry_after == 1.0
    assert "rate-limiting" in str(raised.value)


def test_retry_after_beyond_the_time_budget_gives_up_without_sleeping(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """A Retry-After longer than max_total_seconds gives up at once instead of waiting."""
    genesys.inject("POST", ANALYTICS, status=429, headers={"Retry-After": "30"})
    calls = make_calls(
        genesys.base_url, clock, retry=RetryPolicy(max_attempts=5, max_total_seconds=8.0)
    )

    with pytest.raises(GenesysRateLimited, match="in 30 seconds"):
        calls.find_active_calls(NUMBER)

    assert clock.sleeps == []
    assert len(genesys.requests_to("POST", ANALYTICS)) == 1


def test_retries_stop_when_the_time_budget_would_be_exceeded(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """Backoff retries stop before the total time spent would pass max_total_seconds."""
    genesys.inject("GET", CALL, status=503, times=20)
    policy = RetryPolicy(max_attempts=10, max_total_seconds=5.0, base_delay=1.0, max_delay=4.0)
    calls = make_calls(genesys.base_url, clock, retry=policy)

    with pytest.raises(GenesysUnavailable, match="HTTP 503"):
        calls.get_live_call("any-conversation")

    # 1 s then 2 s of backoff; a further 4 s would bring the total to 7 s > 5 s.
    assert clock.sleeps == [1.0, 2.0]
    assert len(genesys.requests_to("GET", CALL)) == 3


def test_server_errors_are_retried_then_succeed(genesys: FakeGenesys, clock: FakeClock) -> None:
    """Two 5xx answers are retried with backoff and the third attempt's answer is used."""
    cid = genesys.add_inbound_call(NUMBER)
    genesys.inject("GET", CALL, status=502)
    genesys.inject("GET", CALL, status=503)
    calls = make_calls(genesys.base_url, clock)

    live = calls.get_live_call(cid)

    assert live.conversation_id == cid
    assert len(genesys.requests_to("GET", CALL)) == 3
    assert clock.sleeps == [0.25, 0.5]


def test_connection_refused_is_unavailable(clock: FakeClock) -> None:
    """Nothing listening gives GenesysUnavailable with a sentence, after bounded retries."""
    calls = make_calls(closed_port_url(), clock)

    with pytest.raises(GenesysUnavailable) as raised:
        calls.find_active_calls(NUMBER)

    message = str(raised.value)
    assert message.startswith("Genesys Cloud's sign-in service could not be reached (")
    assert message.endswith("). Try again in a minute.")
    assert "object at 0x" not in message
    assert len(clock.sleeps) == 2  # three attempts in all


def test_connection_refused_says_connection_refused(clock: FakeClock) -> None:
    """A refused connection is reported as "connection refused", not as a timeout."""
    calls = make_calls(closed_port_url(), clock)

    with pytest.raises(GenesysUnavailable, match="connection refused"):
        calls.find_active_calls(NUMBER)


def test_genesys_going_away_after_sign_in_is_unavailable(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """Genesys stopping between requests gives GenesysUnavailable with a readable sentence."""
    genesys.add_inbound_call(NUMBER)
    assert len(calls.find_active_calls(NUMBER).matches) == 1
    genesys.stop()

    with pytest.raises(GenesysUnavailable) as raised:
        calls.find_active_calls(NUMBER)

    message = str(raised.value)
    assert message.startswith("Genesys Cloud could not be reached while looking up calls (")
    assert message.endswith("). Try again in a minute.")
    assert "object at 0x" not in message
    assert "Error" not in message  # a reason in words, not an exception class name


@pytest.mark.parametrize(
    "body",
    [
        {"conversations": 5},
        {"conversations": [{"conversationId": None}]},
        {"conversations": "none"},
    ],
)
def test_analytics_answer_of_the_wrong_shape_is_unavailable(
    genesys: FakeGenesys, clock: FakeClock, body: dict[str, Any]
) -> None:
    """An analytics answer of the wrong shape gives GenesysUnavailable, not a crash."""
    genesys.inject("POST", ANALYTICS, status=200, json_body=body, times=5)
    calls = make_calls(genesys.base_url, clock)

    with pytest.raises(GenesysUnavailable, match="could not read"):
        calls.find_active_calls(NUMBER)


@pytest.mark.parametrize(
    "body",
    [
        {"id": "c-1", "participants": "none"},
        {"id": 7, "participants": []},
        {"id": "c-1", "participants": [5]},
        {"id": "c-1", "participants": [{"purpose": "customer"}]},
        [],
    ],
)
def test_live_call_answer_of_the_wrong_shape_is_unavailable(
    genesys: FakeGenesys, clock: FakeClock, body: Any
) -> None:
    """A live-call answer of the wrong shape gives GenesysUnavailable: nothing is dropped."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    genesys.inject("GET", CALL, status=200, json_body=body, times=5)
    calls = make_calls(genesys.base_url, clock)

    with pytest.raises(GenesysUnavailable, match="could not read"):
        calls.disconnect_participant(cid, customer, NUMBER)
    assert genesys.patches() == []


def test_live_call_fields_are_read_from_the_json(genesys: FakeGenesys, clock: FakeClock) -> None:
    """The call is read from Genesys's JSON as sent: the connected time (with its "Z"), the
    caller's own numbers, and states and purposes whatever their case."""
    customer = {
        "purpose": "Customer",
        "state": "CONNECTED",
        "direction": "inbound",
        "name": "Pat Caller",
        "address": f"tel:{NUMBER}",
        "ani": f"tel:{NUMBER}",
        "dnis": ORG_NUMBER,
        "connectedTime": "2026-03-02T14:58:54.319Z",
    }
    agent = {"purpose": "agent", "state": "connected", "direction": "inbound"}
    cid = genesys.add_call([customer, agent], analytics_names={})
    calls = make_calls(genesys.base_url, clock)

    live = calls.get_live_call(cid)

    party = live.party(genesys.participant_id(cid, "Customer"))
    assert party is not None
    assert (party.purpose, party.state, party.name) == ("customer", "connected", "Pat Caller")
    assert party.numbers == frozenset({NUMBER})  # the dialled number is not the caller's
    assert party.connected_at == datetime(2026, 3, 2, 14, 58, 54, 319000, tzinfo=UTC)
    assert party.is_droppable_for(NUMBER)


# The fake always JSON-encodes its body, but a JSON string decodes to the same `str` the SDK
# keeps when a body is not JSON at all (its deserialiser falls back to the raw text), so
# these stand for an HTML page from a proxy or an error page answered with 200.
NOT_JSON = "<html><body>Service Temporarily Unavailable</body></html>"


def test_analytics_answer_that_is_not_json_is_unavailable(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """A 200 analytics answer that is not JSON gives GenesysUnavailable, not 'no call'."""
    genesys.add_inbound_call(NUMBER)
    genesys.inject("POST", ANALYTICS, status=200, json_body=NOT_JSON, times=5)
    calls = make_calls(genesys.base_url, clock)

    with pytest.raises(GenesysUnavailable):
        calls.find_active_calls(NUMBER)


def test_live_call_answer_that_is_not_json_is_unavailable(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """A 200 live-call answer that is not JSON gives GenesysUnavailable, not ALREADY_GONE."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    genesys.inject("GET", CALL, status=200, json_body=NOT_JSON, times=5)
    calls = make_calls(genesys.base_url, clock)

    with pytest.raises(GenesysUnavailable):
        calls.disconnect_participant(cid, customer, NUMBER)


@pytest.mark.parametrize(
    "body",
    [
        "not a token",
        {"token_type": "bearer"},
        {"access_token": "t", "expires_in": "soon"},
    ],
)
def test_unreadable_token_answer_is_unavailable(
    genesys: FakeGenesys, clock: FakeClock, body: Any
) -> None:
    """A sign-in answer without a usable token, every time, gives GenesysUnavailable."""
    genesys.inject("POST", TOKEN, status=200, json_body=body, times=5)
    calls = make_calls(genesys.base_url, clock)

    with pytest.raises(GenesysUnavailable, match="sign-in service sent an answer"):
        calls.find_active_calls(NUMBER)


# ------------------------------------------------------------------------------------ token


def test_one_token_serves_many_requests(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """One sign-in serves every request while the token is valid."""
    cid = genesys.add_inbound_call(NUMBER)
    for _ in range(3):
        calls.find_active_calls(NUMBER)
    calls.get_live_call(cid)

    assert genesys.token_requests == 1
    assert calls.tokens_fetched == 1
    api = [r for r in genesys.requests if r.path.startswith("/api/v2/")]
    # Each look-up: the details query, two real-time queries and the live read.
    assert len(api) == 3 * (3 + 1) + 1
    assert len({r.headers["authorization"] for r in api}) == 1


def test_token_is_renewed_shortly_before_it_expires(clock: FakeClock) -> None:
    """A token is renewed once its lifetime minus the margin has passed, before it expires."""
    with FakeGenesys(token_lifetime=600) as genesys:
        calls = make_calls(genesys.base_url, clock)
        calls.find_active_calls(NUMBER)
        assert genesys.token_requests == 1

        # The margin is a tenth of a 600 s lifetime: renewal is due at 540 s.
        clock.advance(539)
        calls.find_active_calls(NUMBER)
        assert genesys.token_requests == 1

        clock.advance(2)
        calls.find_active_calls(NUMBER)
        assert genesys.token_requests == 2

        tokens = [r.headers["authorization"] for r in genesys.requests_to("POST", ANALYTICS)]
        assert len(tokens) == 3  # renewed ahead of time: no request was refused and repeated
        assert tokens[0] == tokens[1] != tokens[2]


def test_long_lived_token_is_renewed_five_minutes_early(clock: FakeClock) -> None:
    """A 24 h token is renewed token_renew_margin (300 s) before it expires."""
    with FakeGenesys(token_lifetime=86400) as genesys:
        calls = make_calls(genesys.base_url, clock)
        calls.find_active_calls(NUMBER)
        clock.advance(86400 - 300 - 1)
        calls.find_active_calls(NUMBER)
        assert genesys.token_requests == 1
        clock.advance(2)
        calls.find_active_calls(NUMBER)
        assert genesys.token_requests == 2


def test_401_signs_in_again_once_and_succeeds(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """A 401 on a valid-looking token triggers exactly one new sign-in and the call succeeds."""
    cid = genesys.add_inbound_call(NUMBER)
    calls.find_active_calls(NUMBER)
    first = len(genesys.requests)
    genesys.expire_all_tokens()

    matches = calls.find_active_calls(NUMBER).matches

    assert [m.conversation_id for m in matches] == [cid]
    assert genesys.token_requests == 2
    # The look-up's requests run concurrently: whichever was refused first signed in again,
    # and every request sent with the old token was repeated with the new one.
    second = [r for r in genesys.requests[first:] if r.path.startswith("/api/v2/")]
    old_token = genesys.requests[first - 1].headers["authorization"]
    refused = [r.path for r in second if r.headers["authorization"] == old_token]
    repeated = [r.path for r in second if r.headers["authorization"] != old_token]
    assert refused
    assert set(refused) <= set(repeated)
    assert len(repeated) == 4  # details query, two activity queries, the live read


def test_persistent_401_signs_in_again_only_once(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """A 401 that persists after a fresh sign-in gives GenesysAuthenticationError, no loop."""
    genesys.inject("POST", ANALYTICS, status=401, times=10)

    with pytest.raises(GenesysAuthenticationError) as raised:
        calls.find_active_calls(NUMBER)

    assert genesys.token_requests == 2
    assert len(genesys.requests_to("POST", ANALYTICS)) == 2
    assert raised.value.status == 401
    assert raised.value.code == "bad.credentials"


def test_concurrent_401s_in_one_lookup_sign_in_once(genesys: FakeGenesys, clock: FakeClock) -> None:
    """Many lookup threads refused with 401 at once share one new sign-in."""
    conversation_ids = [genesys.add_inbound_call(NUMBER) for _ in range(8)]
    calls = make_calls(genesys.base_url, clock, lookup_concurrency=8)
    calls.find_active_calls(OTHER)  # signs in
    genesys.expire_all_tokens()
    # An injected analytics answer skips the fake's token check, so the first refusals are
    # the eight concurrent reads of the live calls.
    answer = {"conversations": [analytics_conversation(c) for c in conversation_ids]}
    genesys.inject("POST", ANALYTICS, status=200, json_body=answer)

    matches = calls.find_active_calls(NUMBER).matches

    assert sorted(m.conversation_id for m in matches) == sorted(conversation_ids)
    assert genesys.token_requests == 2


def test_bad_client_secret_names_the_settings(genesys: FakeGenesys, clock: FakeClock) -> None:
    """A refused client secret gives GenesysAuthenticationError naming the two settings."""
    calls = make_calls(genesys.base_url, clock, client_secret="wrong-secret")

    with pytest.raises(GenesysAuthenticationError) as raised:
        calls.find_active_calls(NUMBER)

    assert "GENESYS_CLIENT_ID" in str(raised.value)
    assert "GENESYS_CLIENT_SECRET" in str(raised.value)
    assert "wrong-secret" not in str(raised.value)
    assert len(genesys.requests_to("POST", TOKEN)) == 1  # not retried
    assert genesys.requests_to("POST", ANALYTICS) == []


def test_sign_in_service_unavailable_is_unavailable(genesys: FakeGenesys, clock: FakeClock) -> None:
    """The OAuth endpoint answering 503 gives GenesysUnavailable after bounded retries."""
    genesys.inject("POST", TOKEN, status=503, times=10)
    calls = make_calls(genesys.base_url, clock)

    with pytest.raises(GenesysUnavailable, match="HTTP 503"):
        calls.find_active_calls(NUMBER)

    assert len(genesys.requests_to("POST", TOKEN)) == 3
    assert genesys.requests_to("POST", ANALYTICS) == []


def test_sign_in_recovers_after_one_503(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """One 503 from the OAuth endpoint is retried and the lookup then succeeds."""
    cid = genesys.add_inbound_call(NUMBER)
    genesys.inject("POST", TOKEN, status=503)

    assert [m.conversation_id for m in calls.find_active_calls(NUMBER).matches] == [cid]
    assert genesys.token_requests == 1


# ----------------------------------------------------------------------------------- errors


def test_403_on_disconnect_names_the_disconnect_permission(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """A 403 on the PATCH gives GenesysPermissionError naming Communication > Disconnect."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    genesys.deny_permission(DISCONNECT_PERMISSION)

    with pytest.raises(GenesysPermissionError) as raised:
        calls.disconnect_participant(cid, customer, NUMBER)

    assert "Conversation > Communication > Disconnect" in str(raised.value)
    assert raised.value.permission == DISCONNECT_PERMISSION
    assert raised.value.status == 403
    assert raised.value.code == "missing.any.permissions"
    assert raised.value.context_id
    assert len(genesys.requests_to("PATCH", PARTICIPANT)) == 1  # not retried


def test_403_on_lookup_names_the_analytics_permission(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """A 403 on the analytics query gives GenesysPermissionError naming Conversation Detail."""
    genesys.deny_permission(ANALYTICS_PERMISSION)

    with pytest.raises(GenesysPermissionError) as raised:
        calls.find_active_calls(NUMBER)

    assert "Analytics > Conversation Detail > View" in str(raised.value)
    assert raised.value.permission == ANALYTICS_PERMISSION


@pytest.mark.parametrize(
    ("operation", "readable"),
    [
        ("disconnect", "Conversation > Communication > Disconnect"),
        ("lookup", "Analytics > Conversation Detail > View"),
    ],
)
def test_403_without_a_named_permission_is_not_called_a_missing_permission(
    genesys: FakeGenesys, calls: GenesysCalls, operation: str, readable: str
) -> None:
    """A bare 403 (no permission in the body) says Genesys refused access, with its code and
    contextId, points at the divisions, and only mentions what the operation needs."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    path = PARTICIPANT if operation == "disconnect" else ANALYTICS
    genesys.inject(
        "PATCH" if operation == "disconnect" else "POST",
        path,
        status=403,
        json_body=error_body(403, "not.authorized", "You are not authorized.", "ctx-bare"),
    )
    run = operations(calls, cid, customer)[operation]

    with pytest.raises(GenesysPermissionError) as raised:
        run()

    sentence = str(raised.value)
    assert raised.value.permission is None
    assert "missing" not in sentence
    assert "refused the bot access" in sentence
    assert "not.authorized" in sentence
    assert "contextId ctx-bare" in sentence
    assert "division" in sentence
    assert f"also needs {readable}" in sentence


@pytest.mark.parametrize(
    ("listed", "named"),
    [
        # Several permissions that would each do: the least-privileged one for the action.
        (
            "conversation:call:disconnect, conversation:communication:disconnect",
            "Conversation > Communication > Disconnect",
        ),
        # Only others: relay the first, as Genesys named it.
        (
            "conversation:call:disconnect, conversation:email:disconnect",
            "conversation:call:disconnect",
        ),
    ],
)
def test_403_listing_several_permissions_names_the_least_privileged(
    genesys: FakeGenesys, calls: GenesysCalls, listed: str, named: str
) -> None:
    """A 403 that lists several permissions names the one the disconnect needs least."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    genesys.inject(
        "PATCH",
        PARTICIPANT,
        status=403,
        json_body=error_body(
            403,
            "missing.any.permissions",
            f"You are missing the following permission(s): [{listed}]",
            "ctx-several",
        ),
    )

    with pytest.raises(GenesysPermissionError, match="missing the permission") as raised:
        calls.disconnect_participant(cid, customer, NUMBER)

    assert named in str(raised.value)


def test_403_naming_another_permission_relays_it(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """A 403 whose body names a permission tells the admin that permission, not a guess."""
    body = error_body(
        403,
        "missing.any.permissions",
        "Unable to perform the requested action. You are missing the following "
        "permission(s): [conversation:call:view]",
        "ctx-403",
    )
    body["messageParams"] = {"permissions": "conversation:call:view"}
    genesys.inject("GET", CALL, status=403, json_body=body)

    with pytest.raises(GenesysPermissionError) as raised:
        calls.get_live_call("any-conversation")

    assert raised.value.permission == "conversation:call:view"
    assert "conversation:call:view" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (400, "conversation.error.cannot.disconnect.call", GenesysRequestRejected),
        (403, "missing.any.permissions", GenesysPermissionError),
        (409, "conflict", GenesysRequestRejected),
        (503, "service.unavailable", GenesysUnavailable),
    ],
)
def test_error_keeps_genesys_code_and_context_id(
    genesys: FakeGenesys,
    clock: FakeClock,
    status: int,
    code: str,
    error_type: type[GenesysError],
) -> None:
    """The error raised keeps Genesys' status, code and contextId from the error body."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    body = error_body(status, code, "Genesys says no.", "ctx-7f3e")
    genesys.inject("PATCH", PARTICIPANT, status=status, json_body=body)
    calls = make_calls(genesys.base_url, clock, retry=RetryPolicy(max_attempts=1))

    with pytest.raises(error_type) as raised:
        calls.disconnect_participant(cid, customer, NUMBER)

    assert type(raised.value) is error_type
    assert raised.value.status == status
    assert raised.value.code == code
    assert raised.value.context_id == "ctx-7f3e"


def test_rejected_request_says_what_genesys_said(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """Any other 4xx gives GenesysRequestRejected quoting Genesys' message and code."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    body = error_body(
        400, "conversation.error.cannot.disconnect.call", "Cannot disconnect call.", "ctx-1"
    )
    genesys.inject("PATCH", PARTICIPANT, status=400, json_body=body)

    with pytest.raises(GenesysRequestRejected) as raised:
        calls.disconnect_participant(cid, customer, NUMBER)

    assert str(raised.value) == (
        "Genesys Cloud refused the request while disconnecting the caller: "
        "Cannot disconnect call. (conversation.error.cannot.disconnect.call)."
    )
    assert len(genesys.requests_to("PATCH", PARTICIPANT)) == 1  # a 4xx is not retried


def test_last_contact_is_recorded(genesys: FakeGenesys, calls: GenesysCalls) -> None:
    """A successful request records when Genesys last answered, using the injected now."""
    assert calls.last_contact is None
    calls.find_active_calls(NUMBER)
    assert calls.last_contact == NOW


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    """Lookups run on a short-lived pool: no worker thread outlives a test."""
    yield
    lingering = [t for t in threading.enumerate() if t.name.startswith("genesys-lookup")]
    assert lingering == []


# ------------------------------------------------------------------------ review follow-ups


def test_patch_unanswered_but_caller_gone_is_disconnected(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """A PATCH whose answers are all 5xx, after which the caller is gone, reports DISCONNECTED."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    calls = make_calls(genesys.base_url, clock)
    # Genesys applies the first PATCH, but every answer to it is lost as a 503.
    genesys.inject("PATCH", PARTICIPANT, status=503, times=5, delay=0.2)

    def apply_when_patched() -> None:
        deadline = time.monotonic() + 5
        while not genesys.patches() and time.monotonic() < deadline:
            time.sleep(0.01)
        genesys.hang_up(cid, customer)

    applier = threading.Thread(target=apply_when_patched)
    applier.start()
    result = calls.disconnect_participant(cid, customer, NUMBER)
    applier.join()

    assert result.outcome == DisconnectOutcome.DISCONNECTED
    # The retry looked before sending: the caller had left, so no second PATCH went out.
    assert len(genesys.patches()) == 1


def test_patch_unanswered_and_caller_still_there_raises(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """A PATCH that never succeeds while the caller stays on the call is an honest failure."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    calls = make_calls(genesys.base_url, clock)
    genesys.inject("PATCH", PARTICIPANT, status=503, times=5)

    with pytest.raises(GenesysUnavailable):
        calls.disconnect_participant(cid, customer, NUMBER)
    assert genesys.participants(cid)[0]["state"] == "connected"


def test_participant_without_direction_matches_by_address_only(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """With no direction, ani/dnis (possibly the org's number) never identify a participant."""
    genesys.add_call(
        [
            {
                "id": "caller-leg",
                "purpose": "customer",
                "state": "connected",
                "address": f"tel:{OTHER}",
                "ani": f"tel:{OTHER}",
                "dnis": ORG_NUMBER,
            }
        ]
    )

    assert calls.find_active_calls(ORG).matches == ()
    assert [m.participant_id for m in calls.find_active_calls(OTHER).matches] == ["caller-leg"]


def test_403_on_reading_the_call_without_a_named_permission_blames_no_permission(
    genesys: FakeGenesys, clock: FakeClock
) -> None:
    """A bare 403 on reading a call says so, without guessing the analytics permission."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")
    genesys.inject("GET", CALL, status=403, json_body={"message": "Forbidden", "code": "x"})
    calls = make_calls(genesys.base_url, clock)

    with pytest.raises(GenesysPermissionError) as caught:
        calls.disconnect_participant(cid, customer, NUMBER)
    assert "Analytics" not in str(caught.value)
    assert "reading the call" in str(caught.value)


def test_dry_run_checks_everything_and_sends_no_patch(
    genesys: FakeGenesys, calls: GenesysCalls
) -> None:
    """A dry run re-reads the call and reports what it would do, without a PATCH."""
    cid = genesys.add_inbound_call(NUMBER)
    customer = genesys.participant_id(cid, "customer")

    result = calls.disconnect_participant(cid, customer, NUMBER, dry_run=True)

    assert result.outcome == DisconnectOutcome.DRY_RUN
    assert genesys.patches() == []
    assert genesys.requests_to("GET", CALL)

"""Finding the calls a command points at: by number, by agent, or one conversation by id.

A number or an agent is looked up in up to three places at once (`genesys.queries`): the
conversation-details query (required: its failure fails the look-up) and the real-time
activity queries (best-effort: one attempt each, waited for until `realtime_budget` after the
start, any failure only logged, see `genesys.realtime`). Their conversation ids are merged,
and each candidate is confirmed against the live call, concurrently: that read is the one
source of truth. A candidate that has ended (any 404) is skipped; one the bot may not read
is reported in `CallLookup.unreadable`; one the caller's guard refuses (a protected number on
the call) in `CallLookup.refused`.
"""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from genesys import queries
from genesys.errors import (
    CallNotFound,
    GenesysAuthenticationError,
    GenesysError,
    GenesysUnavailable,
    transient,
)
from genesys.models import Agent, CallLookup, CallMatch, Guard, LiveCall, parse_live_call
from genesys.realtime import PROBE_NUMBER, RealtimeSource, RealtimeSources, SourceStatus
from genesys.session import GenesysSession, in_background

logger = logging.getLogger(__name__)

T = TypeVar("T")

ANALYTICS_PERMISSION = "analytics:conversationDetail:view"
# What Genesys most often asks of a users search (orgs differ; a 403 names its own).
USERS_PERMISSION = "directory:user:view"
# Shown as the agent of a call whose agent leg carries no name: found only in real time (not
# yet in the index, which names agents), or read directly by its id.
UNNAMED_AGENT = "an agent (not yet in Genesys' index)"
UNNAMED_AGENT_READ = "an agent (the live call does not name them)"
# The largest page the activity queries allow; a number is on a handful of calls at most.
ACTIVITY_PAGE_SIZE = 100


class CallFinder:
    """Looks calls up through one `GenesysSession`."""

    def __init__(self, session: GenesysSession) -> None:
        self._session = session
        self._config = session.config
        self.realtime = RealtimeSources(clock=session.clock)

    # ---------------------------------------------------------------- targets

    def by_number(self, number: str, *, guard: Guard | None = None) -> CallLookup:
        """Live voice calls in which `number` (E.164) is a live caller or external party,
        connected longest first."""
        return self._look_up(number=number, user_id=None, guard=guard)

    def by_agent(self, user_id: str, *, guard: Guard | None = None) -> CallLookup:
        """The agent's live voice calls, newest first: one entry per live caller or external
        party, or the whole conversation when it is stuck (its callers have all gone)."""
        return self._look_up(number=None, user_id=user_id, guard=guard)

    def conversation(self, conversation_id: str, *, guard: Guard | None = None) -> CallLookup:
        """One conversation read directly: its live callers and external parties, or itself
        when it is stuck. Empty when it has ended; `CallNotFound` when Genesys has no such
        conversation."""
        live = self.read_call(conversation_id)
        refusal = guard(live) if guard is not None else None
        if refusal is not None:
            return CallLookup((), refused=(refusal,), realtime=True)
        return CallLookup(tuple(_matches(live, None, None, read=True)), realtime=True)

    def agent(self, email: str) -> Agent | None:
        """The Genesys user whose email is exactly `email`, or None."""
        search = queries.users_search(email)
        queries.ensure_known_values(self._session.serialise(search))
        users = self._session.request(
            "looking up the agent",
            lambda: queries.read_users(
                self._session.call_json("POST", queries.USERS_SEARCH_PATH, body=search)
            ),
            needs=USERS_PERMISSION,
        )
        found = [u for u in users if str(u.get("email", "")).lower() == email.lower()]
        if not found:
            return None
        user = found[0]
        name = user.get("name")
        return Agent(user["id"], name if isinstance(name, str) else None, email)

    def read_call(self, conversation_id: str) -> LiveCall:
        """The call as Genesys sees it now; raises `CallNotFound` for an unknown call."""
        # Parsed inside the request, so an unreadable answer counts as a failed attempt.
        return self._session.request(
            "reading the call",
            lambda: parse_live_call(
                self._session.call_json(
                    "GET",
                    "/api/v2/conversations/calls/{conversationId}",
                    path_params={"conversationId": conversation_id},
                )
            ),
        )

    def check_realtime_sources(self) -> list[SourceStatus]:
        """Ask each real-time source once (for a number no call has) and say how each fares.

        Run at start, so that the log names a missing permission before anyone needs it.
        """
        started = time.monotonic()
        self._session.sign_in()
        for source in RealtimeSource:
            self._realtime_ids(source, PROBE_NUMBER, None, started, budget=None)
        return self.realtime.statuses()

    # ---------------------------------------------------------------- the look-up

    def _look_up(
        self, *, number: str | None, user_id: str | None, guard: Guard | None
    ) -> CallLookup:
        started = time.monotonic()
        self._session.sign_in()
        realtime = {
            source: in_background(
                self._realtime_ids, source, number, user_id, started, self._config.realtime_budget
            )
            for source in RealtimeSource
            # An agent is never in an IVR flow: only queue observation knows their calls.
            if self.realtime.should_try(source)
            and (number is not None or source is RealtimeSource.QUEUES)
        }
        hits = {h.conversation_id: h for h in self._details(number=number, user_id=user_id)}
        remaining = self._config.realtime_budget - (time.monotonic() - started)
        wait(realtime.values(), timeout=max(0.0, remaining))
        # A source that failed gave None; one that answered, a list (perhaps empty).
        results = [f.result() for f in realtime.values() if f.done()]
        answered = [found for found in results if found is not None]
        candidates = list(hits)
        for found in answered:
            candidates.extend(cid for cid in found if cid not in candidates)
        if not candidates:
            return CallLookup((), realtime=bool(answered))
        workers = min(self._config.lookup_concurrency, len(candidates))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genesys-lookup") as pool:
            reads = list(pool.map(self._read_candidate, candidates))
        matches: list[CallMatch] = []
        unreadable: list[GenesysError] = []
        refused: list[str] = []
        for conversation_id, read in zip(candidates, reads, strict=True):
            if isinstance(read, GenesysError):
                unreadable.append(read)
            elif read is not None:
                refusal = guard(read) if guard is not None else None
                if refusal is not None:
                    refused.append(refusal)
                else:
                    matches.extend(_matches(read, number, hits.get(conversation_id)))
        if not matches and unreadable and all(transient(e) for e in unreadable):
            # Genesys is down or busy, not refusing: the look-up failed, as it would alone.
            raise unreadable[0]
        oldest = datetime.min.replace(tzinfo=UTC)
        if number is not None:
            # By number: the call connected longest is first.
            matches.sort(key=lambda m: m.connected_at or datetime.max.replace(tzinfo=UTC))
        else:
            # An agent's calls: the newest first.
            matches.sort(key=lambda m: _started(m) or oldest, reverse=True)
        return CallLookup(
            tuple(matches), tuple(unreadable), realtime=bool(answered), refused=tuple(refused)
        )

    def _details(self, *, number: str | None, user_id: str | None) -> list[queries.DetailsHit]:
        """Every not-ended voice conversation of the number or the agent, all pages."""
        now = self._session.now()
        interval = f"{_iso(now - timedelta(days=1))}/{_iso(now + timedelta(minutes=1))}"
        hits: dict[str, queries.DetailsHit] = {}
        for page_number in range(1, self._config.lookup_max_pages + 1):
            query = queries.details_query(
                interval,
                self._config.lookup_page_size,
                page_number,
                number=number,
                user_id=user_id,
            )
            queries.ensure_known_values(self._session.serialise(query))
            page = self._session.request(
                "looking up calls",
                functools.partial(self._read_details_page, query),
                needs=ANALYTICS_PERMISSION,
            )
            if not page:
                break
            for hit in page:
                # Live intervals shift while paging: one conversation can appear twice.
                hits.setdefault(hit.conversation_id, hit)
            if len(page) < self._config.lookup_page_size:
                break
        else:
            logger.warning(
                "Stopped after %d pages of analytics results", self._config.lookup_max_pages
            )
        return list(hits.values())

    def _read_details_page(self, query: Any) -> list[queries.DetailsHit]:
        return queries.read_details_page(
            self._session.call_json("POST", queries.DETAILS_PATH, body=query)
        )

    def _realtime_ids(
        self,
        source: RealtimeSource,
        number: str | None,
        user_id: str | None,
        started: float,
        budget: float | None,
    ) -> list[str] | None:
        """The conversation ids one real-time source lists for the target; None if it failed.

        One attempt, no retries: it is best-effort, and the look-up does not wait for it past
        its budget. Every outcome is recorded in `self.realtime`, which logs each new cause.
        """
        if source is RealtimeSource.QUEUES:
            path = queries.CONVERSATION_ACTIVITY_PATH
            query = queries.conversation_activity_query(number, user_id)
        else:
            assert number is not None
            path, query = queries.FLOW_ACTIVITY_PATH, queries.flow_activity_query(number)
        what = f"looking up {source.label} in real time"
        try:
            queries.ensure_known_values(self._session.serialise(query))
            found = self._session.once(
                what,
                lambda: queries.read_activity_answer(
                    self._session.call_json(
                        "POST", path, body=query, query_params={"pageSize": ACTIVITY_PAGE_SIZE}
                    )
                ),
                needs=source.permission,
            )
        except GenesysError as error:
            self.realtime.failed(source, error)
            return None
        except Exception as exc:
            # Whatever else goes wrong in a best-effort source must not fail the look-up.
            logger.exception("Real-time lookup of %s failed", source.label)
            self.realtime.failed(source, GenesysUnavailable(f"an internal error ({exc!r})"))
            return None
        if budget is not None and time.monotonic() - started > budget:
            self.realtime.failed(
                source,
                GenesysUnavailable(f"it answers later than a look-up waits for it ({budget:g} s)"),
            )
            return found
        self.realtime.answered(source)
        return found

    def _read_candidate(self, conversation_id: str) -> LiveCall | GenesysError | None:
        """The candidate's live call; None when it has ended; the error when it is unreadable."""
        try:
            return self.read_call(conversation_id)
        except CallNotFound:
            # Over (analytics keeps "zombies" whose end was never recorded), whatever the code.
            return None
        except GenesysAuthenticationError:
            # The OAuth client itself was refused: every read fails alike, so say that.
            raise
        except GenesysError as error:
            logger.warning("Could not read candidate call %s: %r", conversation_id, error)
            return error


def _matches(
    live: LiveCall, number: str | None, hit: queries.DetailsHit | None, *, read: bool = False
) -> list[CallMatch]:
    """The card's entries for one confirmed call.

    By number: one per live outside party carrying it. Otherwise (an agent, a conversation):
    one per live outside party, whatever its number; or, when the call is stuck, the whole
    conversation as one entry to end.

    Names come from the details index when it lists the call. A call not indexed yet takes
    its queue and IVR names from the live call's own legs, and its agent, whose leg often
    carries no name there, is said to be there without a name.
    """
    if hit is not None:
        agents, queues, direction = hit.agent_names, hit.queue_names, hit.direction
    else:
        agent_list = live.names("agent", "user", live_only=True)
        if not agent_list and live.has_live("agent", "user"):
            agent_list = [UNNAMED_AGENT_READ if read else UNNAMED_AGENT]
        queue_list = live.names("acd")
        queue_list += [f"IVR {name}" for name in live.names("ivr", live_only=True)]
        agents, queues, direction = tuple(agent_list), tuple(queue_list), None
    if number is None and (stuck := live.stuck()) is not None:
        return [
            CallMatch(
                conversation_id=live.conversation_id,
                participant_id="",
                number="",
                purpose="conversation",
                participant_name=None,
                agent_names=agents,
                queue_names=queues,
                direction=direction,
                connected_at=stuck.opened_at,
                stuck=stuck,
            )
        ]
    parties = live.droppable_parties(number) if number else live.live_outside_parties()
    return [
        CallMatch(
            conversation_id=live.conversation_id,
            participant_id=party.participant_id,
            number=number or min(party.numbers, default=""),
            purpose=party.purpose,
            participant_name=party.name,
            agent_names=agents,
            queue_names=queues,
            direction=direction,
            connected_at=party.connected_at,
        )
        for party in parties
    ]


def _started(match: CallMatch) -> datetime | None:
    return match.stuck.opened_at if match.stuck is not None else match.connected_at


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

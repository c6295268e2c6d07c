"""Talk to Genesys Cloud through its official Python SDK, safely.

The SDK is used for every request, with its known gaps closed here (see shared/genesys-api.md):
- every request has a timeout, and urllib3's hidden retries are off (`transport`);
- the client-credentials token is cached with its lifetime, renewed shortly before it
  expires, and fetched again once when Genesys answers 401;
- 429 and 5xx answers and network failures are retried here, bounded in count and total
  time, honouring `Retry-After`;
- every failure leaves as a `GenesysError` whose text a supervisor can act on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from genesys import queries
from genesys.auth import TokenCache
from genesys.config import GenesysConfig
from genesys.errors import (
    CallNotFound,
    GenesysAuthenticationError,
    GenesysError,
    GenesysRateLimited,
    GenesysRequestRejected,
    GenesysUnavailable,
    retry_after,
    transient,
    translate,
)
from genesys.models import (
    GONE_STATES,
    CallLookup,
    CallMatch,
    DisconnectOutcome,
    DisconnectResult,
    LiveCall,
    parse_live_call,
)
from genesys.ratelimit import RequestPacer
from genesys.realtime import PROBE_NUMBER, RealtimeSource, RealtimeSources, SourceStatus
from genesys.sdk import sdk, submodule
from genesys.transport import BoundedHttpClient

logger = logging.getLogger(__name__)

T = TypeVar("T")

DISCONNECT_PERMISSION = "conversation:communication:disconnect"
ANALYTICS_PERMISSION = "analytics:conversationDetail:view"
# Shown as the agent of a call found only in real time whose agent leg carries no name.
UNNAMED_AGENT = "an agent (not yet in Genesys' index)"
# The largest page the activity queries allow; a number is on a handful of calls at most.
ACTIVITY_PAGE_SIZE = 100

# Genesys error codes that mean "that participant is not on the call any more".
_ALREADY_GONE_CODES = frozenset(
    {"conversation.error.call.disconnected", "conversation.error.not.conversation.participant"}
)


class _Retryable(Exception):
    """Internal: an attempt failed in a way worth another try."""

    def __init__(self, error: GenesysError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class GenesysCalls:
    """Find live calls by number and disconnect one outside participant."""

    def __init__(
        self,
        config: GenesysConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._http = BoundedHttpClient(
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_connections=max(4, config.lookup_concurrency * 2),
        )
        _quiet_sdk_logging()
        self._api_client = sdk.ApiClient(host=config.api_host)
        # ~/.genesyscloudpython/config may name a gateway, which would reroute every request
        # away from api_host; this bot is configured by its environment only.
        self._api_client.gateway_configuration = None
        self._api_client.set_http_client(self._http)
        self._conversations = sdk.ConversationsApi(self._api_client)
        self._realtime = RealtimeSources(clock=clock)
        self._pacer = RequestPacer(config.requests_per_minute, clock=clock, sleep=sleep)
        self._tokens = TokenCache(config, self._api_client, self._http, clock=clock)
        self._last_contact: datetime | None = None

    # ---------------------------------------------------------------- public API

    @property
    def last_contact(self) -> datetime | None:
        """When Genesys last answered a request, if ever."""
        return self._last_contact

    @property
    def tokens_fetched(self) -> int:
        """How many times this client has signed in."""
        return self._tokens.fetched

    def find_active_calls(self, number: str) -> CallLookup:
        """Live voice calls in which `number` (E.164) is a live caller or external party.

        Three sources are asked at once: the conversation-details query (required: its
        failure fails the look-up) and the two real-time activity queries (best-effort: one
        attempt each, waited for until `realtime_budget` after the start, any failure only
        logged). Their conversation ids are merged, and each candidate is confirmed against
        the live call, concurrently: that read is the one source of truth. A candidate that
        has ended (any 404) is skipped; one the bot may not read is reported in `unreadable`.
        """
        started = time.monotonic()
        self._sign_in()
        realtime = {
            source: _in_background(
                self._realtime_candidates, source, number, started, self._config.realtime_budget
            )
            for source in RealtimeSource
            if self._realtime.should_try(source)
        }
        hits = {hit.conversation_id: hit for hit in self._query_conversations(number)}
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
        for conversation_id, read in zip(candidates, reads, strict=True):
            if isinstance(read, GenesysError):
                unreadable.append(read)
            elif read is not None:
                matches.extend(_matches(read, number, hits.get(conversation_id)))
        if not matches and unreadable and all(transient(e) for e in unreadable):
            # Genesys is down or busy, not refusing: the look-up failed, as it would alone.
            raise unreadable[0]
        matches.sort(key=lambda m: m.connected_at or datetime.max.replace(tzinfo=UTC))
        return CallLookup(tuple(matches), tuple(unreadable), realtime=bool(answered))

    def check_realtime_sources(self) -> list[SourceStatus]:
        """Ask each real-time source once (for a number no call has) and say how each fares.

        Run at start, so that the log names a missing permission before anyone needs it.
        """
        started = time.monotonic()
        self._sign_in()
        for source in RealtimeSource:
            self._realtime_candidates(source, PROBE_NUMBER, started, budget=None)
        return self._realtime.statuses()

    def realtime_statuses(self) -> list[SourceStatus]:
        """How each real-time source fared when last asked (no request is sent)."""
        return self._realtime.statuses()

    def get_live_call(self, conversation_id: str) -> LiveCall:
        """The call as Genesys sees it now; raises `CallNotFound` for an unknown call."""
        # Parsed inside the request, so an unreadable answer counts as a failed attempt.
        return self._request(
            "reading the call",
            lambda: parse_live_call(
                self._call_json(
                    "GET",
                    "/api/v2/conversations/calls/{conversationId}",
                    path_params={"conversationId": conversation_id},
                )
            ),
        )

    def disconnect_participant(
        self, conversation_id: str, participant_id: str, number: str, *, dry_run: bool = False
    ) -> DisconnectResult:
        """Disconnect exactly one outside participant, after checking it is still the caller.

        The call is re-read first: the participant must still be a live customer or external
        party carrying `number`. Genesys applies the PATCH asynchronously, so the call is read
        again until the participant has left (bounded by `confirm_timeout`). With `dry_run`,
        every check runs but the PATCH is not sent.
        """

        def result(outcome: DisconnectOutcome, detail: str) -> DisconnectResult:
            return DisconnectResult(outcome, conversation_id, participant_id, detail)

        try:
            live = self.get_live_call(conversation_id)
        except CallNotFound:
            # Any 404, whatever Genesys' code for it: the call is over.
            return result(
                DisconnectOutcome.ALREADY_GONE,
                "The caller had already hung up: the call has ended.",
            )
        party = live.party(participant_id)
        if party is None or party.state in GONE_STATES:
            return result(DisconnectOutcome.ALREADY_GONE, "The caller had already hung up.")
        if not party.is_outside_party or number not in party.numbers:
            # Our store chose this participant; if Genesys now says otherwise, do nothing.
            raise GenesysRequestRejected(
                "That participant is no longer the caller with this number, "
                "so nothing was disconnected. Run the command again."
            )
        if not party.is_live:
            return result(
                DisconnectOutcome.ALREADY_GONE,
                f"The caller is no longer on the call (state {party.state}).",
            )

        if dry_run:
            return result(
                DisconnectOutcome.DRY_RUN,
                "Dry run: the caller is on the call and would have been disconnected; "
                "nothing was sent to Genesys.",
            )
        attempts = 0

        def send_patch() -> None:
            nonlocal attempts
            attempts += 1
            # A retry after a lost answer: the first PATCH may have gone through. Look
            # before sending another, so Genesys never gets a second disconnect.
            if attempts > 1 and self._has_left(conversation_id, participant_id):
                return
            body = sdk.MediaParticipantRequest()
            body.state = "disconnected"
            self._conversations.patch_conversations_call_participant(
                conversation_id, participant_id, body
            )

        try:
            self._request("disconnecting the caller", send_patch, needs=DISCONNECT_PERMISSION)
        except (GenesysRequestRejected, CallNotFound) as error:
            # A 404 (the call or the participant is gone) or a 400 saying it disconnected.
            if isinstance(error, GenesysRequestRejected) and error.code not in _ALREADY_GONE_CODES:
                raise
            if attempts == 1:
                return result(DisconnectOutcome.ALREADY_GONE, "The caller had already hung up.")
            # An earlier attempt may have gone through before its answer was lost: the
            # confirming read below tells whether the participant has left.
        except GenesysUnavailable as error:
            # A timeout or 5xx does not say the PATCH was not applied: look before saying so.
            if not self._has_left(conversation_id, participant_id):
                raise
            return result(
                DisconnectOutcome.DISCONNECTED,
                "The caller has left the call, though Genesys did not confirm the request "
                f"({error}).",
            )

        try:
            gone = self._wait_until_gone(conversation_id, participant_id)
        except GenesysError as error:
            # The disconnect was accepted; only the check failed. Say exactly that.
            return result(
                DisconnectOutcome.UNCONFIRMED,
                "Genesys accepted the request, but the bot could not check that the caller "
                f"left ({error}). Check the call in Genesys Cloud.",
            )
        if gone:
            return result(DisconnectOutcome.DISCONNECTED, "The caller was disconnected.")
        return result(
            DisconnectOutcome.UNCONFIRMED,
            "Genesys accepted the request, but the caller was still on the call "
            f"{self._config.confirm_timeout:g} s later. Check the call in Genesys Cloud.",
        )

    # ---------------------------------------------------------------- lookup

    def _query_conversations(self, number: str) -> list[queries.DetailsHit]:
        """Every not-ended voice conversation whose ani or dnis is `number`, all pages."""
        now = self._now()
        interval = f"{_iso(now - timedelta(days=1))}/{_iso(now + timedelta(minutes=1))}"
        hits: dict[str, queries.DetailsHit] = {}
        for page_number in range(1, self._config.lookup_max_pages + 1):
            query = queries.details_query(
                number, interval, self._config.lookup_page_size, page_number
            )
            queries.ensure_known_values(self._api_client.sanitize_for_serialization(query))
            page = self._request(
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
        return queries.read_details_page(self._call_json("POST", queries.DETAILS_PATH, body=query))

    def _realtime_candidates(
        self, source: RealtimeSource, number: str, started: float, budget: float | None
    ) -> list[str] | None:
        """The conversation ids one real-time source lists for `number`; None if it failed.

        One attempt, no retries: it is best-effort, and the look-up does not wait for it past
        its budget. Every outcome is recorded in `self._realtime`, which logs each new cause.
        """
        if source is RealtimeSource.QUEUES:
            path, query = (
                queries.CONVERSATION_ACTIVITY_PATH,
                queries.conversation_activity_query(number),
            )
        else:
            path, query = queries.FLOW_ACTIVITY_PATH, queries.flow_activity_query(number)
        what = f"looking up {source.label} in real time"
        try:
            queries.ensure_known_values(self._api_client.sanitize_for_serialization(query))
            found = self._once(
                what,
                lambda: queries.read_activity_answer(
                    self._call_json(
                        "POST", path, body=query, query_params={"pageSize": ACTIVITY_PAGE_SIZE}
                    )
                ),
                needs=source.permission,
            )
        except GenesysError as error:
            self._realtime.failed(source, error)
            return None
        except Exception as exc:
            # Whatever else goes wrong in a best-effort source must not fail the look-up.
            logger.exception("Real-time lookup of %s failed", source.label)
            self._realtime.failed(source, GenesysUnavailable(f"an internal error ({exc!r})"))
            return None
        if budget is not None and time.monotonic() - started > budget:
            self._realtime.failed(
                source,
                GenesysUnavailable(f"it answers later than a look-up waits for it ({budget:g} s)"),
            )
            return found
        self._realtime.answered(source)
        return found

    def _call_json(
        self,
        method: str,
        path: str,
        *,
        path_params: dict[str, str] | None = None,
        query_params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """One request through the SDK's ApiClient, as its generated API methods send it; the
        answer comes back as parsed JSON instead of as the SDK's model objects.

        The SDK builds its models by walking every field of every nested class by reflection:
        profiled, that was about a quarter of the bot's CPU per command (a call read alone
        makes ~95 nested objects). The bot reads a handful of fields, so it reads them from
        the JSON (`genesys.models.parse_live_call`, `genesys.queries`).
        """
        return self._api_client.call_api(
            path,
            method,
            path_params or {},
            query_params or {},
            {"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            post_params=[],
            files={},
            response_type="object",
            auth_settings=["PureCloud OAuth"],
        )

    def _read_candidate(self, conversation_id: str) -> LiveCall | GenesysError | None:
        """The candidate's live call; None when it has ended; the error when it is unreadable."""
        try:
            return self.get_live_call(conversation_id)
        except CallNotFound:
            # Over (analytics keeps "zombies" whose end was never recorded), whatever the code.
            return None
        except GenesysAuthenticationError:
            # The OAuth client itself was refused: every read fails alike, so say that.
            raise
        except GenesysError as error:
            logger.warning("Could not read candidate call %s: %r", conversation_id, error)
            return error

    def _has_left(self, conversation_id: str, participant_id: str) -> bool:
        """One read: True when the participant is known to have left; False if unsure."""
        try:
            party = self.get_live_call(conversation_id).party(participant_id)
        except CallNotFound:
            return True
        except GenesysError:
            return False
        return party is None or party.state in GONE_STATES

    def _wait_until_gone(self, conversation_id: str, participant_id: str) -> bool:
        deadline = self._clock() + self._config.confirm_timeout
        # Genesys usually applies the PATCH at once; back off after that, so a slow one
        # costs a handful of reads (and of the rate limit), not twenty.
        interval = self._config.confirm_interval
        while True:
            try:
                party = self.get_live_call(conversation_id).party(participant_id)
            except CallNotFound:
                return True
            if party is None or party.state in GONE_STATES:
                return True
            if self._clock() + interval > deadline:
                return False
            self._sleep(interval)
            interval = min(interval * 2, 1.0)

    # ---------------------------------------------------------------- requests

    def _request(self, what: str, call: Callable[[], T], *, needs: str | None = None) -> T:
        """Run one SDK call with a valid token, bounded retries and error translation.

        `needs`: the least-privileged permission the operation needs, named when Genesys'
        403 lists several permissions.
        """
        return self._retrying(what, lambda: self._attempt(what, call, needs))

    def _sign_in(self) -> None:
        """Have a valid token (signing in, with retries, if needed) before requests fan out,
        so that concurrent requests share one sign-in instead of each trying their own."""
        self._retrying("signing in", self._token)

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """Run `attempt` again while it fails in a retryable way, within the retry policy."""
        policy = self._config.retry
        started = self._clock()
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except _Retryable as retryable:
                delay = (
                    retryable.retry_after
                    if retryable.retry_after is not None
                    else policy.backoff(tries)
                )
                spent = self._clock() - started
                if tries >= policy.max_attempts or spent + delay > policy.max_total_seconds:
                    raise retryable.error from retryable
                logger.info(
                    "Genesys %s failed (%s); retrying in %.2f s", what, retryable.error, delay
                )
                self._sleep(delay)

    def _once(self, what: str, call: Callable[[], T], *, needs: str | None = None) -> T:
        """One attempt, no retries: for best-effort requests, which must not hold anything up."""
        try:
            return self._attempt(what, call, needs)
        except _Retryable as retryable:
            raise retryable.error from retryable

    def _attempt(self, what: str, call: Callable[[], T], needs: str | None) -> T:
        token = self._token()
        # Paced after the token, so a request's place is taken when it is really sent.
        self._pace(what)
        try:
            value = self._send(what, call, needs)
        except GenesysAuthenticationError:
            # The token was revoked or expired early: sign in again, once.
            self._tokens.forget(token)
            self._token()
            value = self._send(what, call, needs)
        self._last_contact = self._now()
        return value

    def _token(self) -> str:
        """The current token; a sign-in that failed for an outage is worth another try."""
        try:
            return self._tokens.current()
        except GenesysError as error:
            if transient(error):
                raise _Retryable(error, retry_after(error.__cause__ or error)) from error
            raise

    @staticmethod
    def _send(what: str, call: Callable[[], T], needs: str | None) -> T:
        """Send one request; what it raises becomes the `GenesysError` to say."""
        try:
            return call()
        except Exception as exc:
            error = translate(exc, what, needs=needs)
            if error is None:
                raise
            if transient(error):
                raise _Retryable(error, retry_after(exc)) from exc
            raise error from exc

    def _pace(self, what: str) -> None:
        if not self._pacer.acquire(self._config.max_pacing_wait):
            raise GenesysRateLimited(
                f"The bot is at Genesys Cloud's limit of {self._config.requests_per_minute} "
                f"requests a minute, so it stopped {what}. Try again in a minute.",
                status=None,
            )


# -------------------------------------------------------------------- parsing


def _matches(live: LiveCall, number: str, hit: queries.DetailsHit | None) -> list[CallMatch]:
    """The card's entries for one confirmed call: one per live outside party with `number`.

    Names come from the details index when it lists the call. A call found only in real
    time is not indexed yet: its queue and IVR names come from the live call's own legs, and
    its agent, whose leg often carries no name there, is said to be there without a name.
    """
    if hit is not None:
        agents, queues, direction = hit.agent_names, hit.queue_names, hit.direction
    else:
        agent_list = live.names("agent", "user", live_only=True)
        if not agent_list and live.has_live("agent", "user"):
            agent_list = [UNNAMED_AGENT]
        queue_list = live.names("acd")
        queue_list += [f"IVR {name}" for name in live.names("ivr", live_only=True)]
        agents, queues, direction = tuple(agent_list), tuple(queue_list), None
    return [
        CallMatch(
            conversation_id=live.conversation_id,
            participant_id=party.participant_id,
            number=number,
            purpose=party.purpose,
            participant_name=party.name,
            agent_names=agents,
            queue_names=queues,
            direction=direction,
            connected_at=party.connected_at,
        )
        for party in live.droppable_parties(number)
    ]


def _in_background(function: Callable[..., T], *args: Any) -> Future[T]:
    """Run `function(*args)` in a daemon thread; its future may be abandoned.

    Not a ThreadPoolExecutor: its threads are joined at exit, so a hung best-effort request
    would hold a stopping bot up for its whole timeout.
    """
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001  # handed to whoever reads the future
            future.set_exception(exc)

    threading.Thread(target=run, name="genesys-realtime", daemon=True).start()
    return future


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _quiet_sdk_logging() -> None:
    """Keep the SDK's own logger from printing request bodies past the redacting filter.

    The SDK gives its logger a console handler of its own, and its config file (which it
    watches and reloads) can turn on debug logging of bodies, which carry phone numbers.
    """
    configuration = sdk.Configuration()
    configuration.live_reload_config = False
    configuration.logger.log_level = submodule("logger").LogLevel.LNone
    configuration.logger.log_request_body = False
    configuration.logger.log_response_body = False
    sdk_logger = logging.getLogger("PureCloudPlatformClientV2")
    for handler in list(sdk_logger.handlers):
        sdk_logger.removeHandler(handler)
    sdk_logger.propagate = True

"""One authenticated, paced, bounded channel to Genesys Cloud, through the official SDK.

The SDK is used for every request, with its known gaps closed (see shared/genesys-api.md):
- every request has a timeout, and urllib3's hidden retries are off (`transport`);
- the client-credentials token is cached with its lifetime and renewed shortly before it
  expires (`auth`), and fetched again once when Genesys answers 401;
- requests are paced under the OAuth client's rate limit (`ratelimit`);
- 429 and 5xx answers and network failures are retried here, bounded in count and total
  time, honouring `Retry-After`;
- every failure leaves as a `GenesysError` whose text a supervisor can act on (`errors`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, TypeVar

from genesys.auth import TokenCache
from genesys.config import GenesysConfig
from genesys.errors import (
    GenesysAuthenticationError,
    GenesysError,
    GenesysRateLimited,
    retry_after,
    transient,
    translate,
)
from genesys.ratelimit import RequestPacer
from genesys.sdk import sdk, submodule
from genesys.transport import BoundedHttpClient

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _Retryable(Exception):
    """Internal: an attempt failed in a way worth another try."""

    def __init__(self, error: GenesysError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class GenesysSession:
    """Sends requests to Genesys Cloud; the client and the look-up share one."""

    def __init__(
        self,
        config: GenesysConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self._http = BoundedHttpClient(
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_connections=max(4, config.lookup_concurrency * 2),
        )
        _quiet_sdk_logging()
        self.api_client = sdk.ApiClient(host=config.api_host)
        # ~/.genesyscloudpython/config may name a gateway, which would reroute every request
        # away from api_host; this bot is configured by its environment only.
        self.api_client.gateway_configuration = None
        self.api_client.set_http_client(self._http)
        self.conversations = sdk.ConversationsApi(self.api_client)
        self._pacer = RequestPacer(config.requests_per_minute, clock=clock, sleep=sleep)
        self._tokens = TokenCache(config, self.api_client, self._http, clock=clock)
        self.last_contact: datetime | None = None

    @property
    def tokens_fetched(self) -> int:
        """How many times this session has signed in."""
        return self._tokens.fetched

    def request(self, what: str, call: Callable[[], T], *, needs: str | None = None) -> T:
        """Run one SDK call with a valid token, bounded retries and error translation.

        `what` says what the bot was doing ("reading the call"), for the sentence; `needs`
        is the least-privileged permission the operation needs, named when Genesys' 403 lists
        several permissions.
        """
        return self._retrying(what, lambda: self._attempt(what, call, needs))

    def once(self, what: str, call: Callable[[], T], *, needs: str | None = None) -> T:
        """One attempt, no retries: for best-effort requests, which must not hold anything up."""
        try:
            return self._attempt(what, call, needs)
        except _Retryable as retryable:
            raise retryable.error from retryable

    def sign_in(self) -> None:
        """Have a valid token (signing in, with retries, if needed) before requests fan out,
        so that concurrent requests share one sign-in instead of each trying their own."""
        self._retrying("signing in", self._token)

    def call_json(
        self,
        method: str,
        path: str,
        *,
        path_params: dict[str, str] | None = None,
        query_params: dict[str, Any] | None = None,
        body: Any = None,
        with_headers: bool = False,
    ) -> Any:
        """One request through the SDK's ApiClient, as its generated API methods send it; the
        answer comes back as parsed JSON instead of as the SDK's model objects (with
        `with_headers`, as `(json, headers)`).

        The SDK builds its models by walking every field of every nested class by reflection:
        profiled, that was about a quarter of the bot's CPU per command (a call read alone
        makes ~95 nested objects). The bot reads a handful of fields, so it reads them from
        the JSON (`genesys.models.parse_live_call`, `genesys.queries`).
        """
        answer = self.api_client.call_api(
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
        if with_headers:
            return answer, self._http.last_headers()
        return answer

    def serialise(self, model: Any) -> Any:
        """An SDK model as the JSON it would send."""
        return self.api_client.sanitize_for_serialization(model)

    # ---------------------------------------------------------------- internals

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """Run `attempt` again while it fails in a retryable way, within the retry policy."""
        policy = self.config.retry
        started = self.clock()
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
                spent = self.clock() - started
                if tries >= policy.max_attempts or spent + delay > policy.max_total_seconds:
                    raise retryable.error from retryable
                logger.info(
                    "Genesys %s failed (%s); retrying in %.2f s", what, retryable.error, delay
                )
                self.sleep(delay)

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
        self.last_contact = self.now()
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
        if not self._pacer.acquire(self.config.max_pacing_wait):
            raise GenesysRateLimited(
                f"The bot is at Genesys Cloud's limit of {self.config.requests_per_minute} "
                f"requests a minute, so it stopped {what}. Try again in a minute.",
                status=None,
            )


def in_background(function: Callable[..., T], *args: Any) -> Future[T]:
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

"""The client-credentials token: fetched once, kept for its lifetime, renewed shortly before.

The SDK's own helper drops `expires_in` and never renews a client-credentials token (see
shared/genesys-api.md); this cache keeps the lifetime, renews the token a margin before it
expires, and lets the client forget a token Genesys has stopped accepting (a 401), so that
the next request signs in again. One sign-in at a time: concurrent requests share it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from genesys.config import GenesysConfig
from genesys.errors import SIGNING_IN, translate
from genesys.sdk import submodule

logger = logging.getLogger(__name__)

HttpRequestOptions = submodule("http_request_options").HttpRequestOptions


class TokenCache:
    """The OAuth token of one client; `current()` signs in when there is none or it is old."""

    def __init__(
        self,
        config: GenesysConfig,
        api_client: Any,
        http: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._api_client = api_client
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetched = 0

    def current(self) -> str:
        """A valid token; signs in first if needed (a `GenesysError` if that fails)."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def forget(self, token: str) -> None:
        """Genesys refused `token`: the next `current()` signs in again."""
        with self._lock:
            # Another thread may already have replaced it.
            if self._token == token:
                self._token = None

    def _fetch(self) -> None:
        """Client-credentials grant, keeping `expires_in`; no retries (the caller owns them)."""
        url = self._api_client.get_conf_url("login", self._api_client.host) + "/oauth/token"
        credentials = f"{self._config.client_id}:{self._config.client_secret}".encode()
        options = HttpRequestOptions(
            url=url,
            method="POST",
            headers={
                "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
                "Content-Type": "application/x-www-form-urlencoded",
            },
            post_params={"grant_type": "client_credentials"},
        )
        try:
            token, lifetime = _token_answer(self._http.request(options))
        except Exception as exc:
            error = translate(exc, SIGNING_IN)
            if error is None:
                raise
            raise error from exc
        margin = min(self._config.token_renew_margin, lifetime / 10)
        self._token = token
        self._renew_at = self._clock() + lifetime - margin
        self._api_client.access_token = token
        self.fetched += 1
        logger.info("Signed in to Genesys Cloud; token valid for %d s", int(lifetime))


def _token_answer(response: Any) -> tuple[str, float]:
    """The access token and its lifetime in seconds from a token response."""
    data = json.loads(response.data)
    token = data["access_token"]
    if not isinstance(token, str) or not token:
        raise ValueError("no access token in the answer")
    return token, float(data.get("expires_in", 3600))

"""The HTTP transport handed to the Genesys SDK: timeouts on, hidden retries off.

The SDK's own transport builds a urllib3 pool with no timeout (a hung Genesys would hang the
bot) and urllib3's default `Retry`, which silently retries 429/503 up to ten times, PATCH
included. This keeps the SDK's request and error handling and swaps only the pool.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import certifi
import urllib3

from genesys.sdk import submodule

DefaultHttpClient: Any = submodule("default_http_client").DefaultHttpClient


class UnreadableResponse(ValueError):
    """A successful answer whose body is not JSON (a proxy's HTML page, a cut-off body)."""


class BoundedHttpClient(DefaultHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's default HTTP client with a timeout on every request and no retries."""

    def __init__(
        self, *, connect_timeout: float, read_timeout: float, max_connections: int
    ) -> None:
        super().__init__(timeout=read_timeout)
        self.rest_client.pool_manager = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_connections,
            # Beyond maxsize, open a short-lived extra connection instead of waiting.
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        self._local = threading.local()

    def last_headers(self) -> dict[str, str]:
        """The headers of this thread's last answer (the SDK hands out only the body)."""
        return dict(getattr(self._local, "headers", {}))

    def request(self, http_request_options: Any) -> Any:
        """Send the request; refuse a 2xx answer whose body is not JSON.

        The SDK would quietly turn such a body into an empty model, which reads as "no calls"
        or "the caller has gone".
        """
        response = super().request(http_request_options)
        self._local.headers = {name.lower(): value for name, value in response.getheaders().items()}
        if response.data:
            try:
                parsed = json.loads(response.data)
            except ValueError as exc:
                raise UnreadableResponse("Genesys answered with a body that is not JSON") from exc
            # Every answer the bot reads is a JSON object; a bare string or number is not one.
            if not isinstance(parsed, dict | list):
                raise UnreadableResponse("Genesys answered with JSON that is not an object")
        return response

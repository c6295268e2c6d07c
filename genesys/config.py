"""What a Genesys client needs to know: where, as whom, and how patiently.

No SDK here, so the Slack side can build a configuration without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try when Genesys is busy or unreachable."""

    max_attempts: int = 3
    max_total_seconds: float = 8.0
    base_delay: float = 0.25
    max_delay: float = 2.0

    def backoff(self, attempt: int) -> float:
        """Delay before the attempt after `attempt` (1-based), without Retry-After."""
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class GenesysConfig:
    """Everything the client needs; every external dependency is a field, for tests."""

    api_host: str
    client_id: str
    client_secret: str = field(repr=False)
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    confirm_timeout: float = 5.0
    confirm_interval: float = 0.25
    lookup_page_size: int = 100
    lookup_max_pages: int = 10
    lookup_concurrency: int = 8
    # How long, from its start, a look-up waits for the real-time sources (they are
    # best-effort: one attempt each, and a slow one never holds the card up longer).
    realtime_budget: float = 3.0
    # How long the note written into the interaction before a disconnect may hold it up (the
    # note is best-effort: one attempt, and the disconnect goes ahead after this at most).
    note_budget: float = 2.0
    # Renew the token this long before Genesys says it expires.
    token_renew_margin: float = 300.0
    # Genesys' default limit per client-credentials token, and how long a request may wait
    # for its turn before it is refused as rate-limited.
    requests_per_minute: int = 300
    max_pacing_wait: float = 30.0

"""Errors raised by the Genesys side, each a sentence a supervisor can act on.

    GenesysError                      root: anything that went wrong talking to Genesys Cloud
    ├── GenesysUnavailable            network failure, timeout or 5xx after bounded retries
    ├── GenesysRateLimited            429 after bounded retries
    ├── GenesysAuthenticationError    the OAuth client was refused (bad id/secret, revoked)
    ├── GenesysPermissionError        403: the OAuth client's role lacks a permission
    ├── CallNotFound                  the conversation does not exist (any more)
    └── GenesysRequestRejected        any other 4xx, with Genesys' own code and message

`str(error)` is the supervisor-facing sentence; `status`, `code`, `context_id` and `reason`
(Genesys' own message) keep the Genesys details for logs, the audit trail and sentences that
quote Genesys.
"""

from __future__ import annotations

# Human names of the role permissions this bot needs, as the Genesys admin UI shows them.
PERMISSION_NAMES = {
    "conversation:communication:disconnect": "Conversation > Communication > Disconnect",
    "analytics:conversationDetail:view": "Analytics > Conversation Detail > View",
    "analytics:queueObservation:view": "Analytics > Queue Observation > View",
    "analytics:flowObservation:view": "Analytics > Flow Observation > View",
}


class GenesysError(Exception):
    """Root of every error the Genesys side raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        context_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.context_id = context_id
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class GenesysUnavailable(GenesysError):
    """Genesys Cloud could not be reached or answered with a server error."""


class GenesysRateLimited(GenesysError):
    """Genesys Cloud kept answering 429 Too Many Requests."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        code: str | None = None,
        context_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, context_id=context_id, reason=reason)
        self.retry_after = retry_after


class GenesysAuthenticationError(GenesysError):
    """The OAuth client credentials were refused."""


class GenesysPermissionError(GenesysError):
    """The OAuth client's role is missing a permission."""

    def __init__(
        self,
        message: str,
        *,
        permission: str | None = None,
        status: int | None = 403,
        code: str | None = None,
        context_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, context_id=context_id, reason=reason)
        self.permission = permission


class CallNotFound(GenesysError):
    """The conversation is unknown to Genesys Cloud (it ended long ago or never existed)."""


class GenesysRequestRejected(GenesysError):
    """Genesys Cloud refused the request for a reason not covered above."""

"""Errors raised by the Genesys side, each a sentence a supervisor can act on.

    GenesysError                      root: anything that went wrong talking to Genesys Cloud
    ├── GenesysUnavailable            network failure, timeout or 5xx after bounded retries
    ├── GenesysRateLimited            429 after bounded retries
    ├── GenesysAuthenticationError    the OAuth client was refused (bad id/secret, revoked)
    ├── GenesysPermissionError        403: the OAuth client's role lacks a permission
    ├── NotFound                      what was asked for does not exist (a data table row)
    │   └── CallNotFound              the conversation does not exist (any more)
    └── GenesysRequestRejected        any other 4xx, with Genesys' own code and message

`translate` turns whatever a request raised (the SDK's `ApiException`, a urllib3 network
error, an answer that could not be parsed) into one of these, with the sentence.

`str(error)` is the supervisor-facing sentence; `status`, `code`, `context_id` and `reason`
(Genesys' own message) keep the Genesys details for logs, the audit trail and sentences that
quote Genesys.
"""

from __future__ import annotations

import json
import re
from typing import Any

# The `what` of a sign-in, for `translate`: its refusals mean the OAuth client was refused.
SIGNING_IN = "signing in"

# Human names of the role permissions this bot needs, as the Genesys admin UI shows them.
PERMISSION_NAMES = {
    "conversation:communication:disconnect": "Conversation > Communication > Disconnect",
    "analytics:conversationDetail:view": "Analytics > Conversation Detail > View",
    "analytics:queueObservation:view": "Analytics > Queue Observation > View",
    "analytics:flowObservation:view": "Analytics > Flow Observation > View",
    "architect:datatableRow:view": "Architect > Datatable Row > View",
    "architect:datatableRow:add": "Architect > Datatable Row > Add",
    "architect:datatableRow:edit": "Architect > Datatable Row > Edit",
    "architect:datatableRow:delete": "Architect > Datatable Row > Delete",
    "directory:user:view": "Directory > User > View",
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


class NotFound(GenesysError):
    """Genesys Cloud answered 404: what was asked for does not exist."""


class CallNotFound(NotFound):
    """The conversation is unknown to Genesys Cloud (it ended long ago or never existed)."""


class GenesysRequestRejected(GenesysError):
    """Genesys Cloud refused the request for a reason not covered above."""


def transient(error: GenesysError) -> bool:
    """True for a failure that says nothing about the request: Genesys busy or unreachable."""
    return isinstance(error, GenesysUnavailable | GenesysRateLimited)


def translate(exc: BaseException, what: str, *, needs: str | None = None) -> GenesysError | None:
    """The `GenesysError` for what a Genesys request raised while `what` ("reading the call",
    `SIGNING_IN`, ...); None for an exception that is not about Genesys (a bug).

    `needs` is the least-privileged permission the operation needs, if one is known: named
    when a 403 lists several, and mentioned (never claimed missing) when it lists none.
    """
    if isinstance(exc, GenesysError):
        return exc
    if _is_api_exception(exc):
        return _from_answer(exc, what, needs)
    import urllib3  # here: the Slack side imports this module and never needs urllib3

    if isinstance(exc, urllib3.exceptions.HTTPError):
        where = "Genesys Cloud's sign-in service" if what == SIGNING_IN else "Genesys Cloud"
        during = "" if what == SIGNING_IN else f" while {what}"
        return GenesysUnavailable(
            f"{where} could not be reached{during} ({_network_reason(exc)}). Try again in a minute."
        )
    if isinstance(exc, ValueError | TypeError | AttributeError | KeyError):
        # The SDK parses answers with no validation: a malformed body ends up here.
        if what == SIGNING_IN:
            sentence = "Genesys Cloud's sign-in service sent an answer the bot could not read."
        else:
            sentence = f"Genesys Cloud sent an answer the bot could not read while {what}."
        return GenesysUnavailable(sentence + " Try again in a minute.")
    return None


def retry_after(exc: BaseException) -> float | None:
    """The seconds Genesys' `Retry-After` header asks for, if it sent one."""
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _is_api_exception(exc: BaseException) -> bool:
    # The SDK's ApiException, recognised without importing the SDK.
    return type(exc).__name__ == "ApiException" and hasattr(exc, "status")


def _from_answer(exc: Any, what: str, needs: str | None) -> GenesysError:
    """The error for an answer Genesys gave (an `ApiException`: status, body, headers)."""
    body = _error_body(exc)
    status = int(exc.status or 0)
    code = body.get("code") if isinstance(body.get("code"), str) else None
    context_id = body.get("contextId") if isinstance(body.get("contextId"), str) else None
    message = body.get("message") if isinstance(body.get("message"), str) else None
    details: dict[str, Any] = {
        "status": status,
        "code": code,
        "context_id": context_id,
        "reason": message,
    }
    if what == SIGNING_IN and status in (400, 401, 403):
        return GenesysAuthenticationError(
            "Genesys Cloud refused the bot's OAuth client. Check GENESYS_CLIENT_ID and "
            "GENESYS_CLIENT_SECRET, and that the client uses the Client Credentials grant.",
            status=status,
        )
    if status == 401:
        return GenesysAuthenticationError(
            "Genesys Cloud no longer accepts the bot's sign-in. Check the OAuth client.",
            **details,
        )
    if status == 403:
        return _refusal(body, what, needs, details)
    if status == 404:
        # Any 404 on a conversation means it is over, whatever the code
        # ("not.found", "conversation.error.conversation.not.found", ...).
        return CallNotFound("Genesys Cloud has no such call any more: it has ended.", **details)
    if status == 429:
        wait = retry_after(exc)
        when = (
            " in a minute" if wait is None else f" in {wait:g} second" + ("" if wait == 1 else "s")
        )
        return GenesysRateLimited(
            f"Genesys Cloud is rate-limiting the bot while {what}. Try again{when}.",
            retry_after=wait,
            **details,
        )
    if status >= 500 or status == 0:
        return GenesysUnavailable(
            f"Genesys Cloud is unavailable (HTTP {status}) while {what}. Try again in a minute.",
            **details,
        )
    reason = message or getattr(exc, "reason", None) or "no reason given"
    return GenesysRequestRejected(
        f"Genesys Cloud refused the request while {what}: {reason} ({code or status}).",
        **details,
    )


def _refusal(
    body: dict[str, Any], what: str, needs: str | None, details: dict[str, Any]
) -> GenesysPermissionError:
    """A 403: the permission Genesys names, or, when it names none, what Genesys said."""
    permission = _named_permission(body, needs)
    if permission is None:
        # Without a named permission, a 403 is as often a division the role does not cover
        # as anything else: say what Genesys said, and claim nothing more.
        code, context_id = details["code"], details["context_id"]
        said = ", ".join(
            part for part in (code, f"contextId {context_id}" if context_id else None) if part
        )
        also = f" (for this it also needs {PERMISSION_NAMES.get(needs, needs)})" if needs else ""
        return GenesysPermissionError(
            f"Genesys Cloud refused the bot access while {what} (403"
            f"{': ' + said if said else ''}; it said: {details['reason'] or 'no reason given'}). "
            "This is often a division the bot's role does not cover: check that the role "
            f"is granted in the call's division{also}.",
            **details,
        )
    readable = PERMISSION_NAMES.get(permission, permission)
    return GenesysPermissionError(
        f"The bot's Genesys Cloud OAuth client is missing the permission {readable} "
        f"({permission}). Ask a Genesys admin to add it to the client's role, in every "
        "division whose queues the bot must see.",
        permission=permission,
        **details,
    )


_PERMISSION = re.compile(r"\b[a-z][A-Za-z]*:[A-Za-z]+:[A-Za-z]+\b")


def _named_permission(body: dict[str, Any], needs: str | None) -> str | None:
    """The permission a 403 body names; of several, the one this operation needs.

    Genesys' `missing.any.permissions` lists every permission that would have been enough;
    the least-privileged one for the operation (`needs`) is the one to ask an admin for.
    None when the body names no permission at all.
    """
    named = list(dict.fromkeys(_PERMISSION.findall(json.dumps(body))))
    if not named:
        return None
    return needs if needs in named else named[0]


def _error_body(exc: Any) -> dict[str, Any]:
    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


def _network_reason(exc: Exception) -> str:
    import urllib3

    # NewConnectionError is a ConnectTimeoutError in urllib3 2, so it is tested first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "no answer in time"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "connection dropped"
    return type(exc).__name__

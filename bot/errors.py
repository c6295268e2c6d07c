"""Errors raised by the Slack side.

    BotError                     root: a request the bot cannot carry out, said to the user
    ├── TargetError              the command text names no number, conversation or agent
    │   └── PhoneNumberError     the command text is not a phone number
    └── StoreUnavailable         the request store (database) cannot be reached

`str(error)` is the sentence shown to the supervisor (already safe for Slack mrkdwn).
"""

from __future__ import annotations


class BotError(Exception):
    """Root of the errors the Slack side raises for a user to read."""


class TargetError(BotError):
    """The text names no caller's number, conversation or agent the bot can look up."""


class PhoneNumberError(TargetError):
    """The text cannot be read as a phone number."""


class StoreUnavailable(BotError):
    """The database behind the request store did not answer."""

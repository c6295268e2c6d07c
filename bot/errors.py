"""Errors raised by the Slack side.

    BotError                     root: a request the bot cannot carry out, said to the user
    ├── PhoneNumberError         the command text is not a phone number
    └── StoreUnavailable         the request store (database) cannot be reached

`str(error)` is the sentence shown to the supervisor (already safe for Slack mrkdwn).
"""

from __future__ import annotations


class BotError(Exception):
    """Root of the errors the Slack side raises for a user to read."""


class PhoneNumberError(BotError):
    """The text cannot be read as a phone number."""


class StoreUnavailable(BotError):
    """The database behind the request store did not answer."""

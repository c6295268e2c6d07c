"""Read a phone number from what a supervisor typed, and show or mask one.

All parsing is done by `phonenumbers`; this module only unwraps Slack's link syntax.
"""

from __future__ import annotations

import re

import phonenumbers

from bot.errors import PhoneNumberError

# Slack turns a typed number into `<tel:+15551234567|+1 555 123 4567>` when it links it.
_SLACK_TEL_LINK = re.compile(r"^<tel:(?P<target>[^|>]*)(?:\|[^>]*)?>$", re.IGNORECASE)
# What a phone number may be written with; anything else (words, markup) is refused outright.
_NUMBER_CHARACTERS = re.compile(r"^\+?[0-9 ()\-./]+$")
_MAX_INPUT = 64


def parse_phone_number(text: str, default_region: str) -> str:
    """Return the E.164 form of `text`, or raise `PhoneNumberError`.

    Accepts `+1 (555) 123-4567`, `15551234567`, `555-123-4567` (national numbers are read in
    `default_region`), `tel:+15551234567` and Slack's `<tel:+15551234567|…>` links.
    """
    value = text.strip()
    if len(value) > _MAX_INPUT:
        raise PhoneNumberError("That is too long to be a phone number.")
    link = _SLACK_TEL_LINK.match(value)
    if link:
        value = link.group("target").strip()
    if value.lower().startswith("tel:"):
        value = value[4:].strip()
    if not value or not _NUMBER_CHARACTERS.match(value):
        raise PhoneNumberError("That is not a phone number.")
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberError("That is not a phone number.") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise PhoneNumberError("That is not a possible phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def display_number(e164: str) -> str:
    """The international form people read, such as `+1 555-123-4567`."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_number(number: str) -> str:
    """Mask the middle of a number for logs: `+15551234567` becomes `+1555***4567`."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) < 8:
        return "***" + digits[-2:]
    plus = "+" if "+" in number else ""
    return plus + digits[: len(digits) - 7] + "***" + digits[-4:]

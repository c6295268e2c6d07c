"""What `/drop-caller` was pointed at: a caller's number, one conversation, or an agent.

    /drop-caller +1 555 123 4567                      a caller, by number
    /drop-caller 516266f7-57d5-4548-b173-0d15e6c3d350  one conversation (or any text with its
                                                      id in it, such as an interaction URL)
    /drop-caller agent jane.agent@example.com         an agent's live calls

Whatever follows the target is kept as `rest` (the reason, for `bot.commands`): after a number
that is the text from the first word that cannot be part of the number on, so that
`/drop-caller +1 (555) 123-4567 abusive language` is +15551234567 with "abusive language".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain import TargetKind
from bot.errors import PhoneNumberError, TargetError
from bot.phone import parse_phone_number

_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE | re.ASCII
)
# Slack (should_escape) sends a typed address as `<mailto:jane@example.com|jane@example.com>`.
_SLACK_MAILTO = re.compile(r"^<mailto:(?P<address>[^|>]*)(?:\|[^>]*)?>$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s<>|]{1,64}@[^@\s<>|]{1,190}\.[^@\s<>|.]{2,63}$", re.ASCII)
AGENT_KEYWORD = "agent"
MAX_NUMBER_TEXT = 64


@dataclass(frozen=True)
class Target:
    """A parsed target: its kind, its normal form (E.164, a lower-case conversation id, a
    lower-case email) and the text that followed it."""

    kind: TargetKind
    value: str
    rest: str = ""


def parse_target(text: str, default_region: str) -> Target:
    """Read the target out of the command's text; `TargetError` says what is wrong."""
    stripped = text.strip()
    first, _, after = stripped.partition(" ")
    if first.lower() == AGENT_KEYWORD:
        address, _, rest = after.strip().partition(" ")
        mailto = _SLACK_MAILTO.match(address)
        if mailto:
            address = mailto.group("address")
        if not _EMAIL.match(address):
            raise TargetError(
                "After `agent`, give the agent's email address, for example "
                "`/drop-caller agent jane@example.com`."
            )
        return Target(TargetKind.AGENT, address.lower(), rest.strip())
    for index, token in enumerate(tokens := stripped.split()):
        found = _UUID.search(token)
        if found:
            return Target(
                TargetKind.CONVERSATION, found.group(0).lower(), " ".join(tokens[index + 1 :])
            )
    return _number_and_rest(stripped, default_region)


def _number_and_rest(text: str, default_region: str) -> Target:
    """The number at the start of `text` and what follows it.

    Slack's `<tel:…|…>` link is one piece whatever its label; otherwise the longest run of
    leading words that reads as a phone number is the number.
    """
    if text.startswith("<"):
        link, closed, rest = text.partition(">")
        if closed:
            number = parse_phone_number(link + ">", default_region)
            return Target(TargetKind.NUMBER, number, rest.strip())
    words = text.split()
    # A number is at most 64 characters (bot.phone): longer prefixes need not be tried.
    longest, length = 0, -1
    for word in words:
        length += len(word) + 1
        if length > MAX_NUMBER_TEXT:
            break
        longest += 1
    error: PhoneNumberError | None = None
    for count in range(longest, 0, -1):
        try:
            number = parse_phone_number(" ".join(words[:count]), default_region)
        except PhoneNumberError as exc:
            error = error or exc
            continue
        return Target(TargetKind.NUMBER, number, " ".join(words[count:]))
    # No leading words make a number: say what is wrong with the whole text.
    parse_phone_number(text, default_region)
    raise error or PhoneNumberError("That is not a phone number.")

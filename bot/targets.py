"""What `/drop-caller` was pointed at: a caller's number, one conversation, or an agent.

    /drop-caller +1 555 123 4567                      a caller, by number
    /drop-caller 516266f7-57d5-4548-b173-0d15e6c3d350  one conversation (or any text with its
                                                      id in it, such as an interaction URL)
    /drop-caller agent jane.agent@example.com         an agent's live calls

Whatever follows the target is kept as `rest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain import TargetKind
from bot.errors import TargetError
from bot.phone import parse_phone_number

_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE | re.ASCII
)
# Slack (should_escape) sends a typed address as `<mailto:jane@example.com|jane@example.com>`.
_SLACK_MAILTO = re.compile(r"^<mailto:(?P<address>[^|>]*)(?:\|[^>]*)?>$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s<>|]{1,64}@[^@\s<>|]{1,190}\.[^@\s<>|.]{2,63}$", re.ASCII)
AGENT_KEYWORD = "agent"


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
    return Target(TargetKind.NUMBER, parse_phone_number(stripped, default_region))

"""bot.targets: what the command text points at."""

from __future__ import annotations

import pytest

from bot.domain import TargetKind
from bot.errors import PhoneNumberError, TargetError
from bot.targets import parse_target

CID = "516266f7-57d5-4548-b173-0d15e6c3d350"


@pytest.mark.parametrize(
    ("text", "kind", "value", "rest"),
    [
        ("+1 555 123 4567", TargetKind.NUMBER, "+15551234567", ""),
        (CID, TargetKind.CONVERSATION, CID, ""),
        (CID.upper(), TargetKind.CONVERSATION, CID, ""),
        (
            f"https://apps.mypurecloud.com/directory/#/engage/admin/interactions/{CID} stuck",
            TargetKind.CONVERSATION,
            CID,
            "stuck",
        ),
        (f"<https://x.example/interactions/{CID}|link>", TargetKind.CONVERSATION, CID, ""),
        ("agent Jane.Agent@Example.com", TargetKind.AGENT, "jane.agent@example.com", ""),
        (
            "AGENT <mailto:jane@example.com|jane@example.com> rude",
            TargetKind.AGENT,
            "jane@example.com",
            "rude",
        ),
    ],
)
def test_targets_are_read_in_their_normal_form(
    text: str, kind: TargetKind, value: str, rest: str
) -> None:
    """Numbers to E.164, conversation ids and emails to lower case; what follows is kept."""
    target = parse_target(text, "US")
    assert (target.kind, target.value, target.rest) == (kind, value, rest)


@pytest.mark.parametrize("text", ["agent", "agent jane", "agent <!channel>", "agent a@b"])
def test_agent_without_an_email_is_refused(text: str) -> None:
    """`agent` must be followed by an email address."""
    with pytest.raises(TargetError, match="email address"):
        parse_target(text, "US")


def test_text_that_is_no_target_is_a_phone_number_error() -> None:
    """Anything else is read as a number, and refused as one."""
    with pytest.raises(PhoneNumberError):
        parse_target("call me maybe", "US")

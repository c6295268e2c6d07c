"""Which numbers may never be dropped, and the approval rules that apply to a drop."""

from __future__ import annotations

import re
from dataclasses import dataclass

from phonenumbers import shortnumberinfo

from bot.cards import escape
from bot.phone import display_number

_DIALLABLE = re.compile(r"[^0-9+#*]")


@dataclass(frozen=True)
class Policy:
    """The contact center's rules: protected numbers, the two-person rule, dry run."""

    default_region: str
    protected_numbers: frozenset[str] = frozenset()
    two_person: bool = False
    dry_run: bool = False

    def emergency_refusal(self, typed: str) -> str | None:
        """Why `typed` may not be dropped if it is an emergency number of the default region.

        Checked on the text as typed: short codes such as 911 or 112 are not phone numbers
        `phonenumbers` would otherwise accept.
        """
        digits = _DIALLABLE.sub("", typed.removeprefix("tel:"))
        if digits and shortnumberinfo.is_emergency_number(digits, self.default_region):
            return (
                f"{escape(digits)} is an emergency number. The bot never drops emergency "
                "calls; handle this call in Genesys Cloud directly."
            )
        return None

    def protected_refusal(self, number: str) -> str | None:
        """Why `number` (E.164) may not be dropped, or None."""
        if number in self.protected_numbers:
            return (
                f"{escape(display_number(number))} is a protected number "
                "(DROP_CALLER_PROTECTED_NUMBERS), so the bot will never drop it."
            )
        return None

    def self_approval_refusal(self, requester_id: str, approver_id: str) -> str | None:
        """Why this approver may not approve this request under the two-person rule."""
        if self.two_person and requester_id == approver_id:
            return (
                "Two-person rule: you asked for this drop, so a second supervisor must "
                "approve it. You can still cancel it."
            )
        return None

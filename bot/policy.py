"""Which numbers may never be dropped, and the approval rules that apply to a drop."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import shortnumberinfo

from bot.cards import escape
from bot.phone import display_number
from genesys.models import LiveCall

_DIALLABLE = re.compile(r"[^0-9+#*]")


@dataclass(frozen=True)
class Policy:
    """The contact center's rules: protected numbers, the two-person rule, dry run."""

    default_region: str
    protected_numbers: frozenset[str] = frozenset()
    two_person: bool = False
    dry_run: bool = False
    allow_teardown: bool = False
    require_reason: bool = False
    write_back: bool = True

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

    def number_refusal(self, number: str) -> str | None:
        """Why nothing may ever be done to `number` (E.164): protected, or an emergency
        number of its own region; None otherwise."""
        protected = self.protected_refusal(number)
        if protected is None and _is_emergency(number):
            return (
                f"{escape(display_number(number))} is an emergency number, which the bot never "
                "acts on."
            )
        return protected

    def call_refusal(self, call: LiveCall) -> str | None:
        """Why nothing may be done to `call` (a protected or emergency number is on it), or
        None. Checked when the card is made and again at the click."""
        for number in sorted(call.numbers):
            if number in self.protected_numbers or _is_emergency(number):
                return (
                    f"Call {escape(call.conversation_id)} includes a protected number "
                    f"({escape(display_number(number))}), so the bot will neither drop anyone "
                    "from it nor end it."
                )
        return None

    def teardown_refusal(self, requester_id: str, approver_id: str) -> str | None:
        """Why this approver may not end a whole conversation: it is turned off, or they
        asked for it themselves (ending a conversation always needs a second supervisor)."""
        if not self.allow_teardown:
            return (
                "Ending a whole conversation is turned off (DROP_CALLER_ALLOW_TEARDOWN), so "
                "nothing was done."
            )
        if requester_id == approver_id:
            return (
                "Ending a whole conversation always needs a second supervisor: you asked for "
                "it, so another supervisor must approve it. You can still cancel it."
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


def _is_emergency(e164: str) -> bool:
    """True for an emergency number of a region its country code covers (+44 999, +1 911)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    national = str(parsed.national_number)
    if parsed.country_code is None:
        return False
    return any(
        shortnumberinfo.is_emergency_number(national, region)
        for region in phonenumbers.region_codes_for_country_code(parsed.country_code)
    )

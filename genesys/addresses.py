"""Read the phone number out of the address forms Genesys Cloud uses.

Genesys writes one number in several ways: `tel:+61416275769`,
`sip:+61416275769@10.47.1.31;user=phone`, or a bare `+61416275769`. Parsing and
formatting is left to `phonenumbers`; this module only peels off the URI syntax.
"""

from __future__ import annotations

import functools

import phonenumbers

_TEL_SCHEME = "tel:"
_SIP_SCHEMES = ("sip:", "sips:")


# Every read of a call parses each participant's addresses again (about 13 parses a
# command); the same few addresses come back each time, so the answers are kept.
@functools.lru_cache(maxsize=4096)
def number_in_address(address: str | None) -> str | None:
    """Return the E.164 number an address carries, or None when it carries none.

    SIP addresses whose user part is not a phone number (agents' stations, queues,
    IVR flows) yield None, so they can never match a number.
    """
    if not address:
        return None
    value = address.strip()
    lowered = value.lower()
    if lowered.startswith(_TEL_SCHEME):
        value = value[len(_TEL_SCHEME) :]
    else:
        for scheme in _SIP_SCHEMES:
            if lowered.startswith(scheme):
                value = value[len(scheme) :].split("@", 1)[0]
                break
    # URI parameters (";user=phone", ";ext=12") are not part of the number.
    value = value.split(";", 1)[0].strip()
    if not value.startswith("+"):
        # Genesys stores international numbers; a bare digit string is one without its "+".
        if not value.isdigit():
            return None
        value = "+" + value
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def tel_uri(e164: str) -> str:
    """The `tel:` form analytics stores `ani` and `dnis` in."""
    return _TEL_SCHEME + e164

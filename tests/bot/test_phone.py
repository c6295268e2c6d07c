"""bot.phone: reading a number from what a supervisor typed, and showing or masking one."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from bot.errors import PhoneNumberError
from bot.phone import display_number, mask_number, parse_phone_number

# libphonenumber accepts some German numbers longer than E.164's 15 digits (e.g. +4963770483708783).
E164 = re.compile(r"^\+[1-9][0-9]{1,16}$")


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+1 (555) 123-4567", "US", "+15551234567"),
        ("15551234567", "US", "+15551234567"),
        ("555-123-4567", "US", "+15551234567"),
        ("tel:+15551234567", "US", "+15551234567"),
        ("TEL:+15551234567", "US", "+15551234567"),
        ("<tel:+15551234567|+1 555 123 4567>", "US", "+15551234567"),
        ("<tel:+15551234567>", "US", "+15551234567"),
        ("  +15551234567  ", "US", "+15551234567"),
        ("+1.555.123.4567", "US", "+15551234567"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 20 7946 0018", "US", "+442079460018"),
        ("+1 (555) 123-4567", "GB", "+15551234567"),
    ],
)
def test_accepts_the_ways_people_and_slack_write_a_number(
    text: str, region: str, expected: str
) -> None:
    """Every accepted spelling (in the given default region) yields the same E.164 number."""
    assert parse_phone_number(text, region) == expected


def test_national_number_is_read_in_the_default_region() -> None:
    """The same national digits mean different numbers in different default regions."""
    assert parse_phone_number("555-123-4567", "US") == "+15551234567"
    assert parse_phone_number("555-123-4567", "GB") == "+445551234567"


def _in_digits(zero: int, text: str = "+15551234567") -> str:
    """`text` with its ASCII digits swapped for the digits of another script."""
    return "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in text)


LOOKALIKE_DIGITS = [
    _in_digits(0x0660),  # Arabic-Indic
    _in_digits(0x06F0),  # Extended Arabic-Indic
    _in_digits(0x0966),  # Devanagari
    _in_digits(0xFF10),  # fullwidth
    "\uff0b" + _in_digits(0xFF10, "15551234567"),  # fullwidth plus and digits
    _in_digits(0x1D7CE),  # mathematical bold
    "+1555123456" + chr(0xFF17),  # one fullwidth digit among ASCII ones
]

REJECTED = [
    "call me",
    "five five five one two three four",
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<@U123|bob>",
    "<#C123|general>",
    "<https://evil|x>",
    "<https://evil.example/+15551234567|+15551234567>",
    "<mailto:a@b.c|+15551234567>",
    "",
    "   ",
    "tel:",
    "<tel:|+15551234567>",
    "<tel:<!channel>|x>",
    "5" * 5000,
    "+1 555 123 4567 " * 320,
    "911",
    "112",
    "+",
    "()",
    "---",
    "+1555\x001234567",
    "+1555\t1234567",
    "+1555\r\n1234567",
    "\x1b[31m+15551234567",
    "+1555\u200b1234567",
    "+1555\u00a01234567",
    "+¹⁵⁵⁵¹²³⁴⁵⁶⁷",  # superscripts
    "+15551234567; DROP TABLE drop_requests",
    "+15551234567 ext. 12",
    "+1-555-CALL-NOW",
]


@pytest.mark.parametrize("text", REJECTED + LOOKALIKE_DIGITS)
def test_rejects_anything_that_is_not_a_phone_number(text: str) -> None:
    """Words, markup, links, empty/huge text, short codes, control chars, lookalike digits fail."""
    with pytest.raises(PhoneNumberError):
        parse_phone_number(text, "US")


@pytest.mark.parametrize("text", ["<!channel>", "<https://evil|x>", "<@U123>", "5" * 5000])
def test_refusal_text_never_echoes_the_input(text: str) -> None:
    """The PhoneNumberError sentence is fixed text, so it is safe to show in Slack."""
    with pytest.raises(PhoneNumberError) as caught:
        parse_phone_number(text, "US")
    message = str(caught.value)
    assert "<" not in message
    assert len(message) < 100


_FUZZ_ALPHABET = (
    "0123456789" * 4
    + " +()-./<>|@!#:;,_*~`&%"
    + "teladmnsx"
    + "\x00\t\n\r\x1b\u200b\u00a0"
    + "٠١٢۳४５¹"
)


def _check_any_text(text: str, region: str) -> None:
    try:
        result = parse_phone_number(text, region)
    except PhoneNumberError:
        return
    assert E164.match(result), result
    assert parse_phone_number(result, "US") == result


def test_any_text_gives_e164_or_phone_number_error_seeded_fuzz() -> None:
    """Seeded random text raises only PhoneNumberError; any result is E.164-shaped and stable."""
    rng = random.Random(20240501)
    regions = ["US", "GB", "AU", "DE", "ZZ", "", "us"]
    for index in range(3000):
        size = rng.randint(0, 40)
        if index % 2:
            text = "".join(rng.choice(_FUZZ_ALPHABET) for _ in range(size))
        else:
            # Mostly number-like text, so that phonenumbers itself is exercised.
            text = "".join(rng.choice("0123456789" * 3 + " +()-./") for _ in range(size))
            if rng.random() < 0.3:
                spot = rng.randint(0, len(text))
                text = text[:spot] + rng.choice(_FUZZ_ALPHABET) + text[spot:]
        if rng.random() < 0.2:
            text = f"<tel:{text}|{text}>"
        elif rng.random() < 0.1:
            text = "tel:" + text
        _check_any_text(text, rng.choice(regions))


def test_any_text_gives_e164_or_phone_number_error_hypothesis() -> None:
    """Property (needs hypothesis): for any text, the result is E.164 or PhoneNumberError."""
    hypothesis: Any = pytest.importorskip("hypothesis")
    strategies: Any = pytest.importorskip("hypothesis.strategies")
    property_test: Callable[[], None] = hypothesis.settings(
        max_examples=200, deadline=None, database=None
    )(
        hypothesis.given(
            strategies.one_of(
                strategies.text(max_size=80),
                strategies.from_regex(r"\A(tel:)?\+?[0-9 ()\-./]{0,30}\Z"),
                strategies.text(max_size=30).map(lambda t: f"<tel:{t}|{t}>"),
            ),
            strategies.sampled_from(["US", "GB", "AU", "ZZ"]),
        )(_check_any_text)
    )
    property_test()


def test_mask_number_hides_the_middle_digits() -> None:
    """mask_number keeps the country/area prefix and last four digits only."""
    assert mask_number("+15551234567") == "+1555***4567"
    assert mask_number("+442079460018") == "+44207***0018"


def test_mask_number_of_a_short_number_keeps_two_digits() -> None:
    """A number too short to mask in the middle shows only its last two digits."""
    assert mask_number("1234567") == "***67"


def test_display_number_is_the_international_form() -> None:
    """display_number shows E.164 numbers in the international format people read."""
    assert display_number("+15551234567") == "+1 555-123-4567"
    assert display_number("+442079460018") == "+44 20 7946 0018"


def test_display_number_returns_unparseable_text_unchanged() -> None:
    """display_number never raises: text it cannot parse is returned as it was."""
    assert display_number("not a number") == "not a number"

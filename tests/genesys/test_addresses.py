"""Reading the phone number out of the address forms Genesys Cloud uses."""

from __future__ import annotations

import pytest

from genesys.addresses import number_in_address, tel_uri

NUMBER = "+61416275769"


@pytest.mark.parametrize(
    "address",
    [
        "tel:+61416275769",
        "TEL:+61416275769",
        "tel:+61416275769;ext=12",
        "sip:+61416275769@10.47.1.31;user=phone",
        "sips:+61416275769@edge.example.com;user=phone",
        "sip:+61416275769",
        "+61416275769",
        " +61416275769 ",
        "61416275769",
        "sip:61416275769@10.47.1.31;user=phone",
    ],
)
def test_number_forms_yield_e164(address: str) -> None:
    """tel:, sip:+…@host;user=phone, bare +E.164 and bare digits all yield the E.164 number."""
    assert number_in_address(address) == NUMBER


def test_formatted_number_is_normalised() -> None:
    """Punctuation inside a tel: number does not stop it matching its E.164 form."""
    assert number_in_address("tel:+1-555-123-4567") == "+15551234567"


@pytest.mark.parametrize(
    "address",
    [
        # An agent's station (WebRTC phone), as Genesys writes it.
        "sip:5f2e8c0a1b3d4e6f7a8b9c0d+acme.orgspan.com;tgrp=3d2c1b0a-aaaa-bbbb-cccc-1234567890ab;"
        "trunk-context=acme@localhost",
        # A queue (acd) and an IVR flow.
        "sip:89bd592e-d324-4a0b-9088-09f2a9c26ae6@127.0.0.1;language=en-US;user=acd",
        "sip:0b6e7a3c-1c2d-4e5f-8a9b-0c1d2e3f4a5b@127.0.0.1;language=en-US;user=ivr",
        "sip:agent.smith@acme.example.com",
        "tel:anonymous",
        "Anonymous",
        "+12",
        "tel:+",
    ],
)
def test_addresses_without_a_number_yield_none(address: str) -> None:
    """Agent stations, queue and IVR URIs and junk carry no number."""
    assert number_in_address(address) is None


@pytest.mark.parametrize("address", [None, "", "   "])
def test_missing_address_yields_none(address: str | None) -> None:
    """None, empty and blank addresses carry no number."""
    assert number_in_address(address) is None


def test_tel_uri_is_the_analytics_form() -> None:
    """tel_uri writes the form analytics stores ani and dnis in."""
    assert tel_uri(NUMBER) == "tel:+61416275769"
    assert number_in_address(tel_uri(NUMBER)) == NUMBER

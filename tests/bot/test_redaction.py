"""bot.redaction: phone numbers and secrets never reach a log line."""

from __future__ import annotations

import io
import logging
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bot.redaction import REDACTED, RedactingFilter, redact

MASKED = "+1555***4567"
HIDDEN = "1234567"  # the seven digits a masked +15551234567 must not show together
SECRETS = ("sigsecret-0123456789abcdef", "genesys-client-secret-XYZ")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("caller +15551234567 dropped", f"caller {MASKED} dropped"),
        ("caller 15551234567 dropped", "caller 1555***4567 dropped"),
        ("caller +1 555 123 4567 dropped", f"caller {MASKED} dropped"),
        ("caller +1-555-123-4567 dropped", f"caller {MASKED} dropped"),
        ("caller +1 (555) 123-4567 dropped", f"caller {MASKED} dropped"),
        ("caller +1.555.123.4567 dropped", f"caller {MASKED} dropped"),
        ("token=x&text=%2B1+555+123+4567&user_id=U1", f"token=x&text={MASKED}&user_id=U1"),
        ("text=%2B15551234567", f"text={MASKED}"),
        ('{"number": "+15551234567"}', f'{{"number": "{MASKED}"}}'),
        ("<tel:+15551234567|+1 555 123 4567>", f"<tel:{MASKED}|{MASKED}>"),
    ],
)
def test_masks_numbers_in_every_written_form(text: str, expected: str) -> None:
    """Plain, spaced, dashed, dotted, parenthesised, URL-encoded and JSON numbers are masked."""
    redacted = redact(text)
    assert redacted == expected
    assert HIDDEN not in _digits(redacted)


def test_masks_a_national_number_in_parentheses() -> None:
    """A national "(555) 123-4567" loses its middle digits."""
    redacted = redact("call (555) 123-4567 now")
    assert "123" not in redacted
    assert "***4567" in redacted


def test_masks_a_number_url_encoded_with_percent_20() -> None:
    """A number whose separators are URL-encoded spaces (%20) is masked like any other."""
    assert redact("text=+1%20555%20123%204567") == f"text={MASKED}"


def test_masks_a_number_with_lower_case_percent_2b() -> None:
    """A '+' URL-encoded in lower case (%2b) is read as '+', not as a digit."""
    assert redact("text=%2b1+555+123+4567") == f"text={MASKED}"


@pytest.mark.parametrize(
    "token",
    [
        "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
        "xapp-1-A012ABCDEF-1234567890123-0123456789abcdef0123456789abcdef",
        "xoxp-1234-5678-abcd",
    ],
)
def test_removes_slack_tokens(token: str) -> None:
    """Slack bot, app-level and user tokens are replaced whole."""
    redacted = redact(f"auth failed for {token} (retrying)")
    assert redacted == f"auth failed for {REDACTED} (retrying)"


@pytest.mark.parametrize(
    ("header", "credential"),
    [
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl", "eyJhbGciOi"),
        ("authorization: bearer 0123abcd-ef45-6789-abcd-ef0123456789", "0123abcd"),
        ("Authorization: Basic Y2xpZW50OnNlY3JldA==", "Y2xpZW50OnNlY3JldA"),
    ],
)
def test_removes_bearer_and_basic_credentials(header: str, credential: str) -> None:
    """The credential after "Bearer" or "Basic" never survives."""
    redacted = redact(header)
    assert credential not in redacted
    assert REDACTED in redacted


def test_removes_given_secret_values() -> None:
    """Every configured secret value is replaced wherever it appears."""
    text = f"signing secret {SECRETS[0]}; body client_secret={SECRETS[1]}&grant=x"
    redacted = redact(text, SECRETS)
    assert redacted == f"signing secret {REDACTED}; body client_secret={REDACTED}&grant=x"


@pytest.mark.parametrize(
    "conversation_id",
    [
        "3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718",
        "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "0c8f0d2e-5b1a-4f7e-9d3c-2a6b8e4f1c90",
        "e3b0c442-98fc-4c14-9afb-f4c8996fb924",
    ],
)
def test_leaves_conversation_ids_intact(conversation_id: str) -> None:
    """UUIDs such as Genesys conversation ids are not mistaken for phone numbers."""
    line = f"Disconnected participant in conversation {conversation_id} for {conversation_id}."
    assert redact(line) == line


def test_leaves_every_uuid_intact() -> None:
    """No random UUID4 (a seeded sample of 200) is changed by redaction."""
    rng = random.Random(20240501)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(200)]
    ids.append("6a8ac4ba-0580-4975-ad2f-89d94a2f20aa")
    assert [redact(i) for i in ids] == ids


@dataclass
class CapturedLog:
    logger: logging.Logger
    stream: io.StringIO

    @property
    def output(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def log(request: pytest.FixtureRequest) -> Iterator[CapturedLog]:
    """A real logger writing through a StreamHandler carrying the RedactingFilter."""
    logger = logging.getLogger(f"tests.bot.redaction.{request.node.name}")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(SECRETS))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield CapturedLog(logger, stream)
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_filter_masks_numbers_passed_as_log_arguments(log: CapturedLog) -> None:
    """A number given as a %-argument is masked in the written line."""
    log.logger.info("x %s", "+15551234567")
    assert log.output == f"INFO x {MASKED}\n"


def test_filter_masks_numbers_and_secrets_in_mixed_arguments(log: CapturedLog) -> None:
    """Several arguments, numbers among them, and configured secrets are all cleaned."""
    log.logger.warning(
        "drop %s by %s with %s and %s", "+1 555 123 4567", "U012ABC", SECRETS[0], "xoxb-1-2-abc"
    )
    assert log.output == f"WARNING drop {MASKED} by U012ABC with {REDACTED} and {REDACTED}\n"


def test_filter_masks_numbers_in_exception_tracebacks(log: CapturedLog) -> None:
    """A traceback (exc_info) whose exception text carries a number is masked too."""
    try:
        raise ValueError("Genesys refused participant with number +15551234567")
    except ValueError:
        log.logger.exception("drop failed for %s", "+15551234567")
    output = log.output
    assert "Traceback (most recent call last)" in output
    assert f"ValueError: Genesys refused participant with number {MASKED}" in output
    assert output.startswith(f"ERROR drop failed for {MASKED}\n")
    assert HIDDEN not in _digits(output)
    assert "5551234567" not in output


def test_filter_masks_a_traceback_given_as_exc_info_tuple(log: CapturedLog) -> None:
    """exc_info passed explicitly (not from logger.exception) is masked as well."""
    error = RuntimeError(f"token {SECRETS[1]} rejected for +15551234567")
    log.logger.error("failed", exc_info=(RuntimeError, error, None))
    assert f"RuntimeError: token {REDACTED} rejected for {MASKED}" in log.output
    assert SECRETS[1] not in log.output


def test_filter_does_not_turn_a_malformed_log_call_into_an_exception(log: CapturedLog) -> None:
    """A log call with mismatched arguments does not raise out of the logger."""
    log.logger.info("count %d", "not a number")


@pytest.mark.parametrize(
    "text",
    [
        "text=%22%2B15551234567%22",
        "payload=...555-123-4567%3F...",
        "a %22%2B1 555 123 4567%2A b",
    ],
)
def test_numbers_next_to_url_escapes_are_masked(text: str) -> None:
    """A URL escape (%22, %3F, %2A…) beside a number does not hide it from the mask."""
    redacted = redact(text)
    assert "555***4567" in redacted
    assert "1234567" not in redacted.replace("%", "")

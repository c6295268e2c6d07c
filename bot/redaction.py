"""A logging filter that keeps phone numbers and secrets out of every log line.

It is attached to the handlers, so it sees every record that is written out, from any
logger: ours, Bolt's (which logs a whole request body when a signature is wrong), slack_sdk's
and the Genesys SDK's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bot.phone import mask_number

# A run of 7 to 15 digits, optionally led by "+" (or "%2B" in a URL-encoded body), with the
# separators people and URL encoding put between digits.
# Not preceded or followed by a letter, digit, "." or "-": UUID groups and decimals stay intact.
_PHONE = re.compile(
    # Not inside a word or a UUID group; a URL escape (%22, %3F…) is a boundary.
    r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![\w%-]))"
    r"(?:\+|%2[Bb])?\d(?:(?:[\s().+/-]{1,2}|%20|%2[Bb])?\d){6,14}"
    # Not followed by a decimal part: Slack message timestamps (1700000000.000100) stay.
    r"(?!\.\d)(?=$|[^\w%-]|%[0-9A-Fa-f]{2})"
)
_URL_PLUS = re.compile(r"%2[Bb]")
# Slack tokens, Bearer tokens and HTTP Basic credentials.
_TOKENS = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]+)"
)
REDACTED = "[redacted]"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with secrets replaced and phone numbers masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _TOKENS.sub(REDACTED, text)
    return _PHONE.sub(lambda match: _mask_match(match.group(0)), text)


def _mask_match(found: str) -> str:
    # Undo URL encoding first, so "%20" and "%2B" are not read as digits.
    return mask_number(_URL_PLUS.sub("+", found).replace("%20", " "))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) before it is formatted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A malformed log call: keep the template, drop the arguments it could not use.
            message = f"{record.msg} [unformattable log arguments dropped]"
        record.msg = redact(message, self._secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        return True


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    """Log to stderr through the redacting filter; replaces any existing root handlers."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic narrates every plugin and migration step at INFO; its warnings still show.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))

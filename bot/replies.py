"""Sentences the command and the buttons both answer with."""

BUSY = (
    ":warning: The bot is handling too many requests right now, so nothing was done. "
    "Try again in a minute."
)
INTERNAL_ERROR = (
    ":x: The bot hit an internal error, which has been logged. "
    "Check the call in Genesys Cloud before trying again."
)

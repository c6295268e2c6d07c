"""Moved to sandbox/slack_requests.py (the sandbox signs its requests to the bot with it)."""

from sandbox.slack_requests import *  # noqa: F403
from sandbox.slack_requests import SlackRequester, SlackResponse

__all__ = ["SlackRequester", "SlackResponse"]

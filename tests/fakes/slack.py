"""Moved to sandbox/slack_simulator.py (one Slack stand-in for the tests and the sandbox)."""

from sandbox.slack_simulator import *  # noqa: F403
from sandbox.slack_simulator import ApiCall, Ephemeral, FakeSlack, Message, ResponsePost

__all__ = ["ApiCall", "Ephemeral", "FakeSlack", "Message", "ResponsePost"]

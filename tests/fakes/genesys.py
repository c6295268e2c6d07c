"""Moved to sandbox/genesys_simulator.py: one Genesys Cloud simulator for tests and sandbox."""

from sandbox.genesys_simulator import *  # noqa: F403
from sandbox.genesys_simulator import (
    ANALYTICS_PERMISSION,
    DISCONNECT_PERMISSION,
    DIVISION_ID,
    ORG_NUMBER,
    FakeGenesys,
    RecordedRequest,
    _Handler,
)

__all__ = [
    "ANALYTICS_PERMISSION",
    "DISCONNECT_PERMISSION",
    "DIVISION_ID",
    "ORG_NUMBER",
    "FakeGenesys",
    "RecordedRequest",
    "_Handler",
]

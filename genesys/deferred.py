"""Build the Genesys client in the background, so the bot is ready before the SDK is loaded.

Loading the SDK's modules takes a few hundred milliseconds; a Slack request arriving at
start must not wait for it to be acknowledged. Calls made before the client is built wait
for it (it is only ever a moment).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from genesys.errors import GenesysUnavailable
from genesys.models import CallLookup, DisconnectResult, LiveCall
from genesys.realtime import SourceStatus

if TYPE_CHECKING:
    # Not imported here: importing it loads the SDK, which is what `build` does in the
    # background.
    from genesys.client import GenesysCalls

logger = logging.getLogger(__name__)


class DeferredGenesysCalls:
    """`GenesysCalls`, built by `build` in a background thread started at construction.

    The build begins as soon as a call needs the client, or `start_after` seconds after
    construction, whichever comes first. Loading the SDK is a few hundred milliseconds of
    CPU, and Python runs one thread at a time: started at once, it would slow down the
    answer to a Slack request that arrives as the bot starts. With a short `start_after`
    that answer goes first, and the look-up it queues starts the build straight away.
    """

    def __init__(
        self, build: Callable[[], GenesysCalls], *, wait: float = 30.0, start_after: float = 0.0
    ) -> None:
        self._build = build
        self._wait = wait
        self._start_after = start_after
        self._needed = threading.Event()
        self._ready = threading.Event()
        self._calls: GenesysCalls | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._construct, name="genesys-client", daemon=True).start()

    @property
    def last_contact(self) -> datetime | None:
        """When Genesys last answered; None until the client exists and has been used."""
        return self._calls.last_contact if self._calls is not None else None

    def find_active_calls(self, number: str) -> CallLookup:
        """See `GenesysCalls.find_active_calls`."""
        return self._client().find_active_calls(number)

    def check_realtime_sources(self) -> list[SourceStatus]:
        """See `GenesysCalls.check_realtime_sources`."""
        return self._client().check_realtime_sources()

    def realtime_statuses(self) -> list[SourceStatus]:
        """See `GenesysCalls.realtime_statuses`; empty until the client exists."""
        return self._calls.realtime_statuses() if self._calls is not None else []

    def get_live_call(self, conversation_id: str) -> LiveCall:
        """See `GenesysCalls.get_live_call`."""
        return self._client().get_live_call(conversation_id)

    def disconnect_participant(
        self, conversation_id: str, participant_id: str, number: str, *, dry_run: bool = False
    ) -> DisconnectResult:
        """See `GenesysCalls.disconnect_participant`."""
        return self._client().disconnect_participant(
            conversation_id, participant_id, number, dry_run=dry_run
        )

    def _construct(self) -> None:
        self._needed.wait(self._start_after)
        try:
            self._calls = self._build()
        except Exception as exc:
            logger.exception("Could not build the Genesys client")
            self._error = exc
        finally:
            self._ready.set()

    def _client(self) -> GenesysCalls:
        self._needed.set()
        if not self._ready.wait(self._wait) or self._calls is None:
            raise GenesysUnavailable(
                "The bot's Genesys client is not ready (it could not start); "
                "check the bot's log and try again in a minute."
            ) from self._error
        return self._calls

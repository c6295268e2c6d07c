"""What `/healthz` and `/drop-caller status` report: the store, Slack, Genesys, the queue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.blocking import BlockList
from bot.calls import CallDirectory
from bot.cards import escape
from bot.store import RequestStore
from bot.work import WorkQueue
from genesys.realtime import SourceState


@dataclass
class Health:
    """Reads the live state of each dependency; `slack_connected` is None in HTTP mode."""

    store: RequestStore
    calls: CallDirectory
    work: WorkQueue
    blocklist: BlockList
    now: Callable[[], datetime]
    slack_connected: Callable[[], bool | None] = lambda: None

    def report(self) -> dict[str, Any]:
        """A JSON-able report; `ok` is false when the bot cannot serve a request now."""
        store_ok = self.store.ping()
        slack = self.slack_connected()
        contact = self.calls.last_contact
        realtime = {
            status.source.name.lower(): status.state.value
            for status in self.calls.realtime_statuses()
        }
        return {
            "ok": store_ok and slack is not False,
            "store": "ok" if store_ok else "unavailable",
            "slack": {None: "http", True: "connected", False: "disconnected"}[slack],
            "genesys_last_contact": contact.isoformat() if contact else None,
            "genesys_last_contact_seconds_ago": (
                round((self.now() - contact).total_seconds(), 1) if contact else None
            ),
            "genesys_realtime_lookup": realtime,
            "requests_in_progress": self.work.in_progress,
        }

    def summary(self) -> str:
        """The report as sentences for `/drop-caller status`."""
        report = self.report()
        ago = report["genesys_last_contact_seconds_ago"]
        lines = [
            ":large_green_circle: Ready." if report["ok"] else ":red_circle: Not ready.",
            f"• Database: {report['store']}.",
            "• Slack: "
            + {
                "http": "HTTP mode, requests arrive as you see.",
                "connected": "Socket Mode connection open.",
                "disconnected": "Socket Mode connection down, reconnecting.",
            }[report["slack"]],
            "• Genesys Cloud: "
            + (f"last answered {ago:g} s ago." if ago is not None else "not contacted yet."),
            "• " + self._realtime_summary(),
            "• " + self._blocklist_summary(),
            f"• Requests in progress: {report['requests_in_progress']}.",
        ]
        return "\n".join(lines)

    def _blocklist_summary(self) -> str:
        # The table is read again, so that a permission granted since start shows at once.
        if self.blocklist.table_id is not None:
            self.blocklist.check()
        return self.blocklist.summary()

    def _realtime_summary(self) -> str:
        statuses = self.calls.realtime_statuses()
        if not statuses:
            return "Real-time lookup: not checked yet."
        if all(status.state is SourceState.ANSWERING for status in statuses):
            return "Real-time lookup: on (" + ", ".join(s.source.label for s in statuses) + ")."
        # The sentences quote Genesys, so they are escaped like any text from outside.
        return " ".join(escape(status.sentence) for status in statuses)

"""The App Home tab: what the bot is doing, at a glance.

Supervisors see whether Genesys, the database and Slack are reachable (as `/drop-caller
status` says), the policy in force, the last ten requests with their outcome and a link to
their card, and the active blocks. Everyone else sees what the app is for and who can use
it. The tab is published with `views.publish` when someone opens it (`app_home_opened`; a
retry of an event already handled publishes nothing), and again, for the supervisors who
opened it lately, whenever a request ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.authorisation import Authoriser
from bot.blocking import BlockList
from bot.cards import Block, context, escape, section, slack_time, subject
from bot.domain import DropRequest, RequestState
from bot.errors import BotError
from bot.health import Health
from bot.identity import BotIdentity
from bot.policy import Policy
from bot.store import RequestStore
from bot.supervisors import Membership
from bot.work import WorkQueue

logger = logging.getLogger(__name__)

RECENT_REQUESTS = 10
# A supervisor who opened the tab this recently sees it refreshed when a request ends.
_WATCHING_SECONDS = 12 * 3600.0
# Event ids remembered, so that Slack's retries of one event publish once.
_SEEN_EVENTS = 1000
# Blocked numbers listed on the tab (`/drop-caller blocked` lists up to 50).
_SHOWN_BLOCKS = 20


class HomeTab:
    """Publishes the Home tab for one person, or for the supervisors watching it."""

    def __init__(
        self,
        client: WebClient,
        *,
        authoriser: Authoriser,
        health: Health,
        policy: Policy,
        blocklist: BlockList,
        store: RequestStore,
        identity: BotIdentity,
        request_ttl: int,
        now: Callable[[], datetime],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._authoriser = authoriser
        self._health = health
        self._policy = policy
        self._blocklist = blocklist
        self._store = store
        self._identity = identity
        self._request_ttl = request_ttl
        self._now = now
        self._clock = clock
        self._lock = threading.Lock()
        self._watching: dict[str, float] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._refresh_due = threading.Event()
        self._refresher: threading.Thread | None = None

    def opened(self, user_id: str, event_id: str | None) -> bool:
        """Someone opened the Home tab: publish it for them, unless this event (a retry) was
        handled already. True when it was published."""
        with self._lock:
            if event_id is not None:
                if event_id in self._seen:
                    return False
                self._seen[event_id] = None
                while len(self._seen) > _SEEN_EVENTS:
                    self._seen.popitem(last=False)
        supervisor = self._is_supervisor(user_id)
        if supervisor:
            with self._lock:
                self._watching[user_id] = self._clock()
        return self.publish(user_id, supervisor=supervisor)

    def request_ended(self) -> None:
        """A request ended: refresh the tab of each supervisor watching, in the background
        (refreshes asked for while one runs are folded into the next)."""
        with self._lock:
            if not self._watching:
                return
            self._refresh_due.set()
            if self._refresher is None or not self._refresher.is_alive():
                self._refresher = threading.Thread(
                    target=self._refresh, name="home-refresh", daemon=True
                )
                self._refresher.start()

    def publish(self, user_id: str, *, supervisor: bool) -> bool:
        """Build and publish the tab for one person; False if Slack refused it."""
        view = self.supervisor_view() if supervisor else self.visitor_view()
        try:
            self._client.views_publish(user_id=user_id, view=view)
        except (SlackApiError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
            logger.warning("Could not publish the Home tab for %s: %s", user_id, error)
            return False
        return True

    # ------------------------------------------------------------ the views

    def supervisor_view(self) -> dict[str, Any]:
        """Health, policy, the last requests and the active blocks."""
        blocks: list[Block] = [
            _header("drop-caller"),
            section(
                "Drops a live Genesys Cloud caller after a supervisor confirms. Type "
                "`/drop-caller <number> [reason]` in a channel; `/drop-caller status` says the "
                "same as the first part here."
            ),
            _header("Health"),
            section(self._health.summary()),
            _header("Policy"),
            section(self._policy_text()),
            _header(f"Last {RECENT_REQUESTS} requests"),
            *self._recent_blocks(),
        ]
        if self._blocklist.table_id is not None:
            blocks += [_header("Blocked numbers"), *self._block_blocks()]
        blocks.append(context(f"Updated {slack_time(self._now(), date=True)}"))
        return {"type": "home", "blocks": blocks}

    def visitor_view(self) -> dict[str, Any]:
        """What the app is for, and who can use it."""
        supervisors = self._authoriser.supervisors
        who = ", ".join(
            [f"<@{user}>" for user in sorted(supervisors.user_ids)]
            + [f"<!subteam^{group}>" for group in supervisors.group_ids]
        )
        return {
            "type": "home",
            "blocks": [
                _header("drop-caller"),
                section(
                    "This app lets contact-center supervisors drop a live caller from a "
                    "Genesys Cloud call, safely: a supervisor asks with `/drop-caller <number>`, "
                    "another (or the same) confirms on a card in the channel, and the bot "
                    "disconnects exactly that caller, never the agent. Everything is recorded."
                ),
                section(
                    f"*Who can use it:* the supervisors the admin listed: {who}."
                    if who
                    else "*Who can use it:* nobody yet: the admin has listed no supervisors."
                ),
                context("Ask an admin to add you to DROP_CALLER_SUPERVISORS if you need it."),
            ],
        }

    # ------------------------------------------------------------ internals

    def _is_supervisor(self, user_id: str) -> bool:
        return self._authoriser.supervisors.membership(user_id) == Membership.YES

    def _refresh(self) -> None:
        while self._refresh_due.is_set():
            self._refresh_due.clear()
            cutoff = self._clock() - _WATCHING_SECONDS
            with self._lock:
                for user, since in list(self._watching.items()):
                    if since < cutoff:
                        del self._watching[user]
                watching = list(self._watching)
            for user in watching:
                if self._is_supervisor(user):
                    self.publish(user, supervisor=True)

    def _policy_text(self) -> str:
        policy = self._policy
        channels = self._authoriser.channels
        minutes = self._request_ttl / 60
        lines = [
            "• Approval: "
            + (
                "two supervisors (the requester cannot approve their own request)."
                if policy.two_person
                else "any supervisor, the requester included."
            ),
            "• Dry run: " + ("*on*: nothing is sent to Genesys." if policy.dry_run else "off."),
            "• Channels: "
            + (", ".join(f"<#{c}>" for c in sorted(channels)) if channels else "any channel")
            + ".",
            f"• A card expires after {minutes:g} minute{'' if minutes == 1 else 's'}.",
            "• Ending a stuck conversation whole: "
            + ("allowed, with a second supervisor." if policy.allow_teardown else "off."),
            "• A reason: " + ("required." if policy.require_reason else "optional."),
            "• The note in the Genesys interaction: "
            + ("written." if policy.write_back else "off."),
            f"• Protected numbers: {len(policy.protected_numbers)}.",
            "• " + self._blocklist.summary(),
        ]
        return "\n".join(lines)

    def _recent_blocks(self) -> list[Block]:
        try:
            requests = self._store.recent(RECENT_REQUESTS)
        except BotError as exc:
            return [section(f":warning: {escape(str(exc))}")]
        if not requests:
            return [section("No requests yet.")]
        return [section(self._request_line(request)) for request in requests]

    def _request_line(self, request: DropRequest) -> str:
        state = {
            RequestState.PENDING: ":hourglass_flowing_sand: waiting for a supervisor",
            RequestState.APPROVING: ":hourglass_flowing_sand: being carried out",
            RequestState.CANCELLED: f":no_entry_sign: cancelled by <@{request.decided_by}>",
            RequestState.EXPIRED: ":hourglass: expired",
        }.get(request.state)
        if state is None:
            outcome = escape((request.outcome or request.state.value).replace("_", " "))
            mark = ":white_check_mark:" if request.state == RequestState.DONE else ":x:"
            state = f"{mark} {outcome}, approved by <@{request.decided_by}>"
        card = self._card_link(request)
        return (
            f"{slack_time(request.created_at, date=True)} {subject(request)}: {state}. "
            f"Asked by <@{request.requester_id}>. {card}"
        )

    def _card_link(self, request: DropRequest) -> str:
        """A link to the card: its permalink when the bot knows where it is."""
        if request.message_ts and self._identity.url:
            ts = request.message_ts.replace(".", "")
            return f"<{self._identity.url}archives/{request.channel_id}/p{ts}|Card>"
        return f"Card in <#{request.channel_id}>"

    def _block_blocks(self) -> list[Block]:
        try:
            return [section(self._blocklist.listing(limit=_SHOWN_BLOCKS))]
        except BotError as exc:
            return [section(f":warning: {escape(str(exc))}")]


def register(app: App, home: HomeTab, work: WorkQueue) -> None:
    """Publish the Home tab when someone opens it (the Messages tab fires the same event).

    The listener only queues the work: the event is acknowledged at once, whatever Slack,
    the database or Genesys (the health summary) take to answer.
    """

    def app_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        user = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(user, str):
            return
        event_id = body.get("event_id")

        def publish() -> None:
            home.opened(user, event_id)

        if not work.submit(publish, on_error=lambda _: None):
            logger.warning("Home tab for %s not published: the bot is busy", user)

    app.event("app_home_opened")(app_home_opened)


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}

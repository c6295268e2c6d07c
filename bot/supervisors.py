"""Who counts as a supervisor: Slack user IDs, and members of Slack user groups.

Group membership is read with `usergroups.users.list` (scope `usergroups:read`) and cached.
The check itself never waits on Slack, because it runs before a command is acknowledged:
a background thread refreshes the groups every `ttl` seconds and the check reads the cache.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger(__name__)


class Membership(enum.Enum):
    """The answer to "is this user a supervisor?"."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"
    """The user is not listed by ID, and the groups could not be read yet."""


class SupervisorDirectory:
    """Supervisors by user ID and by user group, with group membership cached."""

    def __init__(
        self,
        user_ids: Iterable[str],
        group_ids: Iterable[str] = (),
        *,
        client: WebClient | None = None,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._user_ids = frozenset(user_ids)
        self._group_ids = tuple(sorted(set(group_ids)))
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._members: frozenset[str] | None = None
        self._groups_unsupported = False
        self._stop = threading.Event()

    @property
    def user_ids(self) -> frozenset[str]:
        """The supervisors listed by user ID."""
        return self._user_ids

    @property
    def group_ids(self) -> tuple[str, ...]:
        """The user groups whose members are supervisors."""
        return self._group_ids

    @property
    def configured(self) -> bool:
        """True when at least one user ID or group is configured."""
        return bool(self._user_ids or self._group_ids)

    def membership(self, user_id: str) -> Membership:
        """Whether `user_id` is a supervisor, from memory only (never calls Slack)."""
        if user_id in self._user_ids:
            return Membership.YES
        if not self._group_ids or self._groups_unsupported:
            return Membership.NO
        with self._lock:
            members = self._members
        if members is None:
            return Membership.UNKNOWN
        return Membership.YES if user_id in members else Membership.NO

    def refresh(self) -> None:
        """Read every configured group's members from Slack once."""
        if not self._group_ids or self._client is None or self._groups_unsupported:
            return
        members: set[str] = set()
        for group in self._group_ids:
            try:
                answer = self._client.usergroups_users_list(usergroup=group)
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else "unknown"
                if error == "plan_upgrade_required":
                    self._groups_unsupported = True
                    logger.error(
                        "Slack user groups are not available on this workspace's plan "
                        "(plan_upgrade_required): DROP_CALLER_SUPERVISORS groups %s are "
                        "ignored; only the user IDs listed there can act.",
                        ", ".join(self._group_ids),
                    )
                    return
                if error == "missing_scope":
                    logger.error(
                        "The Slack app lacks the usergroups:read scope, so supervisor groups "
                        "cannot be read; add it (manifest.yml has it) and reinstall the app."
                    )
                else:
                    logger.error("Could not read Slack user group %s: %s", group, error)
                return  # keep the last good list
            except OSError as exc:
                logger.error("Could not reach Slack to read user group %s: %s", group, exc)
                return
            members.update(str(user) for user in answer.get("users") or [])
        with self._lock:
            self._members = frozenset(members)

    def start(self) -> None:
        """Read the groups now, then keep them fresh in a background thread."""
        if not self._group_ids or self._client is None:
            return
        self.refresh()
        thread = threading.Thread(target=self._refresh_forever, name="supervisor-groups")
        thread.daemon = True
        thread.start()

    def stop(self) -> None:
        """Stop the background refresh."""
        self._stop.set()

    def _refresh_forever(self) -> None:
        while not self._stop.wait(self._ttl):
            if self._groups_unsupported:
                return
            self.refresh()

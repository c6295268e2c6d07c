"""Requests that change nothing, telling whether the OAuth client can do what the bot needs
(`python app.py check`).

Each probe is the cheapest request that needs the permission: a details query over an empty
second, an activity query for a number no call has, a users search for an address no one has,
a read of the block-list table and of a row no one has. For the disconnect, the probe asks to
disconnect a participant of a conversation that does not exist (a fresh random id): Genesys
checks the role's permission before it looks the conversation up, so a 403 means the
permission is missing and a 404 means it is there. (That order is how Genesys answers
generally and how the simulator answers; it was not confirmed against a live org.) Where no
request is harmless, the probe says so and names the permission to grant.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from genesys import queries
from genesys.datatables import (
    ADD_PERMISSION,
    DELETE_PERMISSION,
    EDIT_PERMISSION,
    VIEW_PERMISSION,
    DataTables,
)
from genesys.errors import (
    PERMISSION_NAMES,
    GenesysAuthenticationError,
    GenesysError,
    GenesysPermissionError,
    GenesysUnavailable,
    NotFound,
)
from genesys.lookup import ANALYTICS_PERMISSION, USERS_PERMISSION, CallFinder
from genesys.realtime import PROBE_NUMBER, SourceState
from genesys.session import GenesysSession

DISCONNECT_PERMISSION = "conversation:communication:disconnect"
# An address no Genesys user has (.invalid is reserved for that).
_PROBE_EMAIL = "drop-caller-check@example.invalid"


class Status(enum.StrEnum):
    """A probe's verdict."""

    OK = "ok"
    FAIL = "fail"
    """Something the configuration needs does not work: the detail says how to fix it."""
    WARN = "warn"
    """Something optional does not work (the bot runs without it): the detail says what."""
    NOT_CHECKABLE = "not_checkable"
    """No harmless request can tell: the detail names what to grant."""


@dataclass(frozen=True)
class Probe:
    """One line of the check's table."""

    check: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Features:
    """What the configuration turns on, and so what the role needs."""

    blocklist_table: str | None = None
    teardown: bool = False
    write_back: bool = True


def run_probes(
    session: GenesysSession, finder: CallFinder, tables: DataTables, features: Features
) -> list[Probe]:
    """Sign in, then probe each permission the enabled features need."""
    host = session.config.api_host
    try:
        session.sign_in()
    except GenesysAuthenticationError:
        return [
            Probe(
                "sign in",
                Status.FAIL,
                f"{_login_host(host)} refused the OAuth client. Check GENESYS_CLIENT_ID and "
                "GENESYS_CLIENT_SECRET (a Client Credentials client), and that GENESYS_REGION "
                "is the org's region: a client of another region is unknown there.",
            )
        ]
    except GenesysError as exc:
        return [
            Probe(
                "sign in",
                Status.FAIL,
                f"{exc} Check GENESYS_REGION (or GENESYS_API_URL): {host} is what it gives.",
            )
        ]
    probes = [Probe("sign in", Status.OK, f"signed in at {_login_host(host)}")]
    probes.append(
        _probe(
            "Find calls (details query)",
            lambda: _empty_details_query(session),
            permission=ANALYTICS_PERMISSION,
        )
    )
    for status in finder.check_realtime_sources():
        source = status.source
        verdict = Status.OK if status.state == SourceState.ANSWERING else Status.WARN
        detail = (
            f"allowed ({_name(source.permission)})" if verdict == Status.OK else status.sentence
        )
        probes.append(Probe(f"Find live calls: {source.label}", verdict, detail))
    probes.append(
        _probe(
            "Find an agent by email (users search)",
            lambda: session.once(
                "searching users",
                lambda: session.call_json(
                    "POST",
                    queries.USERS_SEARCH_PATH,
                    body=session.serialise(queries.users_search(_PROBE_EMAIL)),
                ),
                needs=USERS_PERMISSION,
            ),
            permission=USERS_PERMISSION,
            optional="`/drop-caller agent <email>` does not work without it",
        )
    )
    what = "Disconnect a caller" + (" and end stuck conversations" if features.teardown else "")
    probes.append(_disconnect_probe(session, what))
    if features.write_back:
        probes.append(
            Probe(
                "Write the note into the interaction",
                Status.NOT_CHECKABLE,
                "no harmless request tells; Genesys lists no permission beyond seeing the "
                "conversation (a failure never stops a drop, and the card says so)",
            )
        )
    if features.blocklist_table:
        probes.extend(_table_probes(tables, features.blocklist_table))
    return probes


def _probe(
    check: str,
    attempt: Callable[[], Any],
    *,
    permission: str,
    optional: str | None = None,
) -> Probe:
    """Run one harmless request: a pass, or what to grant, or what Genesys said."""
    try:
        attempt()
    except GenesysPermissionError as exc:
        grant = _name(exc.permission or permission)
        detail = f"Genesys refused it (403). Grant {grant} to the OAuth client's role."
        if optional:
            return Probe(check, Status.WARN, f"{detail} Optional: {optional}.")
        return Probe(check, Status.FAIL, detail)
    except GenesysError as exc:
        return Probe(check, Status.WARN if optional else Status.FAIL, str(exc))
    return Probe(check, Status.OK, f"allowed ({_name(permission)})")


def _empty_details_query(session: GenesysSession) -> None:
    """The details query the look-up sends, over one second that has passed."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    interval = f"{_iso(now)}/{_iso(now + timedelta(seconds=1))}"
    query = queries.details_query(interval, 1, 1, number=PROBE_NUMBER)
    session.once(
        "checking the details query",
        lambda: session.call_json("POST", queries.DETAILS_PATH, body=session.serialise(query)),
        needs=ANALYTICS_PERMISSION,
    )


def _disconnect_probe(session: GenesysSession, check: str) -> Probe:
    """Ask to disconnect a participant of a conversation that does not exist."""
    conversation_id, participant_id = str(uuid.uuid4()), str(uuid.uuid4())
    grant = _name(DISCONNECT_PERMISSION)
    try:
        session.once(
            "checking the disconnect permission",
            lambda: session.call_json(
                "PATCH",
                "/api/v2/conversations/calls/{conversationId}/participants/{participantId}",
                path_params={"conversationId": conversation_id, "participantId": participant_id},
                body={"state": "disconnected"},
            ),
            needs=DISCONNECT_PERMISSION,
        )
    except GenesysPermissionError as exc:
        detail = f"Genesys refused it (403). Grant {_name(exc.permission or DISCONNECT_PERMISSION)}"
        return Probe(check, Status.FAIL, f"{detail} to the OAuth client's role.")
    except NotFound:
        return Probe(
            check,
            Status.OK,
            f"allowed ({grant}): Genesys checked it, then found no such conversation, as "
            "the probe's conversation id is a fresh random one",
        )
    except GenesysUnavailable as exc:
        return Probe(check, Status.FAIL, str(exc))
    except GenesysError as exc:
        return Probe(check, Status.NOT_CHECKABLE, f"Genesys answered: {exc} Grant: {grant}.")
    return Probe(check, Status.NOT_CHECKABLE, f"Genesys accepted the probe (?). Grant: {grant}.")


def _table_probes(tables: DataTables, table_id: str) -> list[Probe]:
    """The block-list table: it exists and can be read; its writes cannot be probed."""
    read = _probe(
        "Block list: read the data table",
        lambda: (tables.schema(table_id), tables.row(table_id, "0")),
        permission=VIEW_PERMISSION,
    )
    if read.status == Status.FAIL and "no data table" in read.detail:
        read = Probe(
            read.check,
            Status.FAIL,
            f"{read.detail} Check DROP_CALLER_BLOCKLIST_TABLE (the table's id, from Architect "
            "> Data Tables) and the role's divisions.",
        )
    writes = ", ".join(_name(p) for p in (ADD_PERMISSION, EDIT_PERMISSION, DELETE_PERMISSION))
    return [
        read,
        Probe(
            "Block list: add, edit and delete rows",
            Status.NOT_CHECKABLE,
            f"no harmless write exists. Grant: {writes}.",
        ),
    ]


def _name(permission: str) -> str:
    named = PERMISSION_NAMES.get(permission)
    return f"{named} ({permission})" if named else permission


def _login_host(api_host: str) -> str:
    return api_host.replace("//api.", "//login.", 1)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

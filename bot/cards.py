"""Block Kit messages, as pure functions from domain objects to blocks.

Everything that came from a person or from Genesys (numbers, names, error text) passes
through `escape` before it is placed in mrkdwn, so it can neither ping (`<!channel>`) nor
link (`<https://…|…>`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.domain import DropRequest, RequestState
from bot.phone import display_number
from genesys.models import CallMatch

Block = dict[str, Any]

DISCONNECT_ACTION_PREFIX = "drop_caller_disconnect_"
CANCEL_ACTION = "drop_caller_cancel"
USAGE = (
    "*Usage:* `/drop-caller <phone number>`, for example `/drop-caller +1 555 123 4567`.\n"
    "Finds the live Genesys Cloud call with that caller and posts a card here; a supervisor "
    "then confirms with *Disconnect caller*. National numbers are read in the default region.\n"
    "`/drop-caller status` shows whether the bot, its database and Genesys are reachable."
)

_PURPOSE_NAMES = {"customer": "caller", "external": "external party"}


def escape(text: str) -> str:
    """Make text safe to place in Slack mrkdwn: no mentions, links or markup tricks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def disconnect_action_id(position: int) -> str:
    """The action id of the Disconnect button for the candidate at `position`."""
    return f"{DISCONNECT_ACTION_PREFIX}{position}"


def confirmation_card(
    request: DropRequest, now: datetime, *, two_person: bool = False
) -> tuple[str, list[Block]]:
    """The card that asks a supervisor to confirm: one Disconnect button per call found."""
    number = escape(display_number(request.number))
    several = len(request.candidates) > 1
    intro = (
        f":telephone_receiver: <@{request.requester_id}> asked to drop *{number}*."
        if not several
        else f":telephone_receiver: <@{request.requester_id}> asked to drop *{number}*, "
        f"who is on *{len(request.candidates)} live calls*. Choose the call to disconnect."
    )
    if request.dry_run:
        intro = f":test_tube: *Dry run*: nothing will really be disconnected.\n{intro}"
    blocks: list[Block] = [_section(intro)]
    buttons: list[Block] = []
    for position, match in enumerate(request.candidates):
        blocks.append(_call_details(match, now, position if several else None))
        buttons.append(_disconnect_button(request, match, position, several))
    buttons.append(
        {
            "type": "button",
            "action_id": CANCEL_ACTION,
            "text": {"type": "plain_text", "text": "Cancel"},
            "value": request.id,
        }
    )
    blocks.append({"type": "actions", "block_id": f"drop_{request.id}", "elements": buttons})
    who = (
        f"Awaits a second supervisor: <@{request.requester_id}> cannot approve their own request."
        if two_person
        else "Only supervisors can confirm."
    )
    blocks.append(
        _context(f"{who} Expires {_clock(request.expires_at)} UTC. Request `{request.id}`")
    )
    awaiting = "a second supervisor's" if two_person else "a supervisor's"
    return f"Drop caller {number}? Awaiting {awaiting} confirmation.", blocks


def progress_card(request: DropRequest, now: datetime) -> tuple[str, list[Block]]:
    """The card while the disconnect runs: no buttons, so nobody clicks twice."""
    return _closed_card(
        request,
        now,
        f":hourglass_flowing_sand: Disconnecting, approved by <@{request.decided_by}> "
        f"at {_clock(request.decided_at)} UTC…",
    )


def outcome_card(request: DropRequest, now: datetime) -> tuple[str, list[Block]]:
    """The final card: what happened, who approved it and when."""
    state = request.state
    detail = escape(request.outcome_detail or "")
    if state == RequestState.CANCELLED:
        headline = (
            f":no_entry_sign: Cancelled by <@{request.decided_by}> "
            f"at {_clock(request.decided_at)} UTC."
        )
    elif state == RequestState.EXPIRED:
        headline = (
            f":hourglass: Expired at {_clock(request.expires_at)} UTC: nothing was disconnected. "
            "Run the command again if the caller still needs dropping."
        )
    elif state == RequestState.DONE and request.outcome == "disconnected":
        headline = (
            f":white_check_mark: Disconnected, approved by <@{request.decided_by}> "
            f"at {_clock(request.decided_at)} UTC. {detail}"
        )
    elif state == RequestState.DONE and request.outcome == "dry_run":
        headline = (
            f":test_tube: Dry run: would disconnect {escape(display_number(request.number))}, "
            f"approved by <@{request.decided_by}> at {_clock(request.decided_at)} UTC. "
            "Nothing was sent to Genesys."
        )
    elif state == RequestState.DONE and request.outcome == "recovered_gone":
        headline = f":information_source: {detail}"
    elif state == RequestState.DONE and request.outcome == "already_gone":
        headline = (
            f":information_source: Nothing to disconnect: {detail} "
            f"(approved by <@{request.decided_by}> at {_clock(request.decided_at)} UTC)"
        )
    elif state == RequestState.DONE:
        headline = (
            f":warning: Disconnect requested, not yet confirmed. {detail} "
            f"(approved by <@{request.decided_by}> at {_clock(request.decided_at)} UTC)"
        )
    elif state == RequestState.FAILED and request.outcome == "unknown":
        headline = (
            f":warning: Outcome unknown. {detail} "
            f"(approved by <@{request.decided_by}> at {_clock(request.decided_at)} UTC)"
        )
    elif state == RequestState.FAILED:
        headline = (
            f":x: Not disconnected. {detail} "
            f"(approved by <@{request.decided_by}> at {_clock(request.decided_at)} UTC)"
        )
    else:
        return progress_card(request, now)
    return _closed_card(request, now, headline)


def _closed_card(request: DropRequest, now: datetime, headline: str) -> tuple[str, list[Block]]:
    number = escape(display_number(request.number))
    blocks: list[Block] = [
        _section(f"<@{request.requester_id}> asked to drop *{number}*."),
    ]
    chosen = request.chosen
    shown = [chosen] if chosen is not None else list(request.candidates)
    blocks.extend(_call_details(match, now, None) for match in shown)
    blocks.append(_section(headline))
    blocks.append(_context(f"Request `{request.id}`"))
    return f"Drop caller {number}: {_plain(headline)}", blocks


def _call_details(match: CallMatch, now: datetime, position: int | None) -> Block:
    label = f"Call {position + 1}" if position is not None else "Call"
    party = escape(_PURPOSE_NAMES.get(match.purpose, match.purpose))
    if match.participant_name and match.participant_name != match.number:
        party += f" ({escape(match.participant_name)})"
    fields = [
        f"*Number*\n{escape(display_number(match.number))}",
        f"*{label}*\n`{escape(match.conversation_id)}`",
        f"*Drops*\n{party}",
        f"*Agent*\n{escape(', '.join(match.agent_names)) or 'none yet'}",
        f"*Queue*\n{escape(', '.join(match.queue_names)) or 'none'}",
        f"*Connected*\n{_connected_for(match.connected_at, now)}",
    ]
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}


def _disconnect_button(
    request: DropRequest, match: CallMatch, position: int, several: bool
) -> Block:
    number = display_number(match.number)
    label = f"Disconnect call {position + 1}" if several else "Disconnect caller"
    agents = ", ".join(match.agent_names) or "no agent"
    return {
        "type": "button",
        "action_id": disconnect_action_id(position),
        "text": {"type": "plain_text", "text": label},
        "style": "danger",
        # Only the request id: the bot never trusts call or participant ids from a click.
        "value": request.id,
        "confirm": {
            "title": {"type": "plain_text", "text": "Disconnect this caller?"},
            "text": {
                "type": "plain_text",
                "text": _truncate(
                    f"{number} will be disconnected from the call with {agents}. "
                    "This cannot be undone.",
                    300,
                ),
            },
            "confirm": {"type": "plain_text", "text": "Disconnect"},
            "deny": {"type": "plain_text", "text": "Keep the call"},
            "style": "danger",
        },
    }


def _connected_for(connected_at: datetime | None, now: datetime) -> str:
    if connected_at is None:
        return "not connected yet"
    seconds = max(0, int((now - connected_at).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        length = f"{hours} h {minutes:02d} min"
    elif minutes:
        length = f"{minutes} min {secs:02d} s"
    else:
        length = f"{secs} s"
    return f"{length} (since {_clock(connected_at)} UTC)"


def _clock(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(mrkdwn: str) -> str:
    return mrkdwn.replace("*", "")


def audit_line(request: DropRequest) -> str:
    """One line for the audit channel: who asked, which number and call, who decided, outcome."""
    number = escape(display_number(request.number))
    chosen = request.chosen
    call = f" on call `{escape(chosen.conversation_id)}`" if chosen else ""
    when = (request.decided_at or request.expires_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    outcome = {
        RequestState.CANCELLED: "cancelled",
        RequestState.EXPIRED: "expired, nothing dropped",
    }.get(request.state, escape(request.outcome or request.state.value).replace("_", " "))
    decided = f" by <@{request.decided_by}>" if request.decided_by else ""
    dry = " (dry run)" if request.dry_run else ""
    return (
        f"`{when} UTC` {number}{call}: *{outcome}*{decided}{dry}. "
        f"Asked by <@{request.requester_id}> in <#{request.channel_id}>. Request `{request.id}`"
    )

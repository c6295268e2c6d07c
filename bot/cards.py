"""Block Kit messages, as pure functions from domain objects to blocks.

Everything that came from a person or from Genesys (numbers, names, error text) passes
through `escape` before it is placed in mrkdwn, so it can neither ping (`<!channel>`) nor
link (`<https://…|…>`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.domain import DropRequest, Outcome, RequestState, TargetKind
from bot.phone import display_number
from genesys.models import CallMatch

Block = dict[str, Any]

DISCONNECT_ACTION_PREFIX = "drop_caller_disconnect_"
END_ACTION_PREFIX = "drop_caller_end_"
BLOCK_ACTION_PREFIX = "drop_caller_block_"
UNBLOCK_ACTION = "drop_caller_unblock"
TEARDOWN_OFF = (
    "Ending a whole conversation is turned off, so a stuck conversation can only be looked "
    "at here. An admin turns it on with DROP_CALLER_ALLOW_TEARDOWN=true."
)
CANCEL_ACTION = "drop_caller_cancel"
USAGE = (
    "*Usage:* `/drop-caller <phone number>`, for example `/drop-caller +1 555 123 4567`.\n"
    "Finds the live Genesys Cloud call with that caller and posts a card here; a supervisor "
    "then confirms with *Disconnect caller*. National numbers are read in the default region.\n"
    # Escaped: Slack shows &lt; as <, and a bare < in a reply is never sent.
    "`/drop-caller &lt;conversation id or interaction URL&gt;` acts on that conversation: its "
    "caller, or, if it is stuck (the caller gone, an agent still on it), the whole "
    "conversation.\n"
    "`/drop-caller agent &lt;email&gt;` lists that agent's live calls.\n"
    "`/drop-caller status` shows whether the bot, its database and Genesys are reachable."
)

_PURPOSE_NAMES = {"customer": "caller", "external": "external party"}
# How the legs left on a stuck conversation are named when Genesys gives them no name.
_LEG_NAMES = {
    "agent": "agent",
    "user": "agent",
    "acd": "queue",
    "ivr": "IVR",
    "workflow": "workflow",
    "voicemail": "voicemail",
}


def escape(text: str) -> str:
    """Make text safe to place in Slack mrkdwn: no mentions, links or markup tricks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def disconnect_action_id(position: int) -> str:
    """The action id of the Disconnect button for the candidate at `position`."""
    return f"{DISCONNECT_ACTION_PREFIX}{position}"


def end_action_id(position: int) -> str:
    """The action id of the End whole conversation button for the candidate at `position`."""
    return f"{END_ACTION_PREFIX}{position}"


def subject(request: DropRequest) -> str:
    """What the request is about, in mrkdwn: the number, the conversation or the agent."""
    if request.target_kind == TargetKind.CONVERSATION:
        return f"conversation `{escape(request.target or '')}`"
    if request.target_kind == TargetKind.AGENT:
        return f"a caller of agent *{escape(request.target or '')}*"
    if request.target_kind == TargetKind.UNBLOCK:
        return f"*{escape(display_number(request.number))}* off the block list"
    return f"*{escape(display_number(request.number))}*"


def confirmation_card(
    request: DropRequest,
    now: datetime,
    *,
    two_person: bool = False,
    allow_teardown: bool = False,
    block_for: str | None = None,
) -> tuple[str, list[Block]]:
    """The card that asks a supervisor to confirm: a Disconnect button per caller found (and a
    Disconnect and block one when the block list is on: `block_for` says for how long), and an
    End whole conversation button per stuck conversation (when teardown is on)."""
    several = len(request.candidates) > 1
    about = subject(request)
    intro = f":telephone_receiver: <@{request.requester_id}> asked to drop {about}."
    if several:
        intro = (
            f":telephone_receiver: <@{request.requester_id}> asked to drop {about}: "
            f"*{len(request.candidates)} live calls*. Choose the call to act on."
        )
    elif request.candidates and request.candidates[0].stuck is not None:
        intro = f":ghost: <@{request.requester_id}> asked about {about}, which is stuck."
    if request.dry_run:
        intro = f":test_tube: *Dry run*: nothing will really be disconnected.\n{intro}"
    blocks: list[Block] = [_section(intro)]
    if request.reason:
        blocks.append(_reason(request.reason))
    buttons: list[Block] = []
    stuck_without_button = False
    for position, match in enumerate(request.candidates):
        label = position if several else None
        if match.stuck is None:
            blocks.append(_call_details(match, now, label))
            buttons.append(_disconnect_button(request, match, position, several))
            if block_for is not None and match.number:
                buttons.append(_block_button(request, match, position, several, block_for))
            continue
        blocks.append(_stuck_details(match, now, label))
        if allow_teardown:
            buttons.append(_end_button(request, match, position, several))
        else:
            stuck_without_button = True
    buttons.append(
        {
            "type": "button",
            "action_id": CANCEL_ACTION,
            "text": {"type": "plain_text", "text": "Cancel"},
            "value": request.id,
        }
    )
    blocks.append({"type": "actions", "block_id": f"drop_{request.id}", "elements": buttons})
    if stuck_without_button:
        blocks.append(_context(TEARDOWN_OFF))
    teardown = any(m.stuck is not None for m in request.candidates) and allow_teardown
    who = (
        f"Awaits a second supervisor: <@{request.requester_id}> cannot approve their own request."
        if two_person
        else "Only supervisors can confirm"
        + (
            f"; ending a whole conversation needs a supervisor other than "
            f"<@{request.requester_id}>."
            if teardown
            else "."
        )
    )
    blocks.append(
        _context(f"{who} Expires {_clock(request.expires_at)} UTC. Request `{request.id}`")
    )
    awaiting = "a second supervisor's" if two_person or teardown else "a supervisor's"
    return f"Drop {_plain(about)}? Awaiting {awaiting} confirmation.", blocks


def progress_card(request: DropRequest, now: datetime) -> tuple[str, list[Block]]:
    """The card while the disconnect runs: no buttons, so nobody clicks twice."""
    chosen = request.chosen
    doing = "Ending the conversation" if chosen and chosen.stuck else "Disconnecting"
    if request.target_kind == TargetKind.UNBLOCK:
        doing = "Unblocking"
    return _closed_card(
        request,
        now,
        f":hourglass_flowing_sand: {doing}, approved by <@{request.decided_by}> "
        f"at {_clock(request.decided_at)} UTC…",
    )


def outcome_card(request: DropRequest, now: datetime) -> tuple[str, list[Block]]:
    """The final card: what happened, who approved it and when."""
    state = request.state
    detail = escape(request.outcome_detail or "")
    approved = f"approved by <@{request.decided_by}> at {_clock(request.decided_at)} UTC"
    teardown = {
        Outcome.ENDED: f":white_check_mark: Conversation ended, {approved}. {detail}",
        Outcome.ALREADY_ENDED: f":information_source: Nothing to end: {detail} ({approved})",
        Outcome.NOT_STUCK: f":information_source: Not ended: {detail} ({approved})",
        Outcome.TEARDOWN_UNCONFIRMED: (
            f":warning: End of the conversation requested, not yet confirmed. {detail} ({approved})"
        ),
        Outcome.REFUSED: f":no_entry: Nothing was done: {detail} ({approved})",
        Outcome.UNBLOCKED: f":unlock: Unblocked, {approved}. {detail}",
        Outcome.NOT_BLOCKED: f":information_source: Nothing to unblock: {detail} ({approved})",
    }
    chosen = request.chosen
    if request.outcome in teardown and state in (RequestState.DONE, RequestState.FAILED):
        headline = teardown[request.outcome]
    elif request.outcome == Outcome.DRY_RUN and chosen is not None and chosen.stuck:
        headline = (
            f":test_tube: Dry run: would end conversation `{escape(chosen.conversation_id)}`, "
            f"{approved}. Nothing was sent to Genesys."
        )
    elif state == RequestState.CANCELLED:
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
        also = " The number would also have been blocked." if request.block else ""
        headline = (
            f":test_tube: Dry run: would disconnect {_chosen_number(request)}, "
            f"approved by <@{request.decided_by}> at {_clock(request.decided_at)} UTC. "
            f"Nothing was sent to Genesys.{also}"
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
    about = subject(request)
    verb = "take" if request.target_kind == TargetKind.UNBLOCK else "drop"
    blocks: list[Block] = [
        _section(f"<@{request.requester_id}> asked to {verb} {about}."),
    ]
    chosen = request.chosen
    shown = [chosen] if chosen is not None else list(request.candidates)
    if request.reason:
        blocks.append(_reason(request.reason))
    blocks.extend(
        _stuck_details(match, now, None) if match.stuck else _call_details(match, now, None)
        for match in shown
    )
    blocks.append(_section(headline))
    blocks.append(_context(f"Request `{request.id}`"))
    return f"{verb.capitalize()} {_plain(about)}: {_plain(headline)}", blocks


def _chosen_number(request: DropRequest) -> str:
    chosen = request.chosen
    number = chosen.number if chosen is not None and chosen.number else request.number
    return escape(display_number(number)) if number else "the caller"


def _stuck_details(match: CallMatch, now: datetime, position: int | None) -> Block:
    """A stuck conversation: who is still on it and since when, when the caller left, how
    long it has been open."""
    stuck = match.stuck
    assert stuck is not None
    label = f"Conversation {position + 1}" if position is not None else "Conversation"
    still = [
        f"{escape(c.name or _LEG_NAMES.get(c.purpose, c.purpose))} "
        f"({escape(_LEG_NAMES.get(c.purpose, c.purpose))}, {_since(c.since, now)})"
        for c in stuck.connected
    ]
    fields = [
        f"*{label}*\n`{escape(match.conversation_id)}`",
        "*Stuck*\nthe caller has left; "
        + (f"left at {_clock(stuck.caller_left_at)} UTC" if stuck.caller_left_at else "no caller"),
        f"*Still connected*\n{_truncate('; '.join(still), 1900) or 'nobody'}",
        f"*Open for*\n{_connected_for(stuck.opened_at, now)}",
    ]
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}


def _end_button(request: DropRequest, match: CallMatch, position: int, several: bool) -> Block:
    stuck = match.stuck
    assert stuck is not None
    everyone = ", ".join(
        f"{c.name or _LEG_NAMES.get(c.purpose, c.purpose)} ({_LEG_NAMES.get(c.purpose, c.purpose)})"
        for c in stuck.connected
    )
    label = f"End conversation {position + 1}" if several else "End whole conversation"
    return {
        "type": "button",
        "action_id": end_action_id(position),
        "text": {"type": "plain_text", "text": label},
        "style": "danger",
        # Only the request id: the bot never trusts call or participant ids from a click.
        "value": request.id,
        "confirm": {
            "title": {"type": "plain_text", "text": "End the whole conversation?"},
            "text": {
                "type": "plain_text",
                "text": _truncate(
                    f"Everyone still on it will be disconnected, agents included: {everyone}. "
                    "This cannot be undone.",
                    300,
                ),
            },
            "confirm": {"type": "plain_text", "text": "End it"},
            "deny": {"type": "plain_text", "text": "Keep it"},
            "style": "danger",
        },
    }


def _since(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "since an unknown time"
    return f"for {_connected_for(moment, now)}"


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


def block_action_id(position: int) -> str:
    """The action id of the Disconnect and block button for the candidate at `position`."""
    return f"{BLOCK_ACTION_PREFIX}{position}"


def _block_button(
    request: DropRequest, match: CallMatch, position: int, several: bool, block_for: str
) -> Block:
    number = display_number(match.number)
    label = f"Disconnect and block call {position + 1}" if several else "Disconnect and block"
    return {
        "type": "button",
        "action_id": block_action_id(position),
        "text": {"type": "plain_text", "text": label},
        "style": "danger",
        "value": request.id,
        "confirm": {
            "title": {"type": "plain_text", "text": "Disconnect and block?"},
            "text": {
                "type": "plain_text",
                "text": _truncate(
                    f"{number} will be disconnected, then blocked {block_for}: the contact "
                    "center's inbound flow will refuse its calls. This cannot be undone "
                    "(unblocking takes another request).",
                    300,
                ),
            },
            "confirm": {"type": "plain_text", "text": "Disconnect and block"},
            "deny": {"type": "plain_text", "text": "Keep the call"},
            "style": "danger",
        },
    }


def unblock_card(
    request: DropRequest, now: datetime, *, two_person: bool = False
) -> tuple[str, list[Block]]:
    """The card that asks a supervisor to take a number off the block list."""
    number = escape(display_number(request.number))
    blocks: list[Block] = [
        _section(f":unlock: <@{request.requester_id}> asked to unblock *{number}*.")
    ]
    if request.reason:
        blocks.append(_reason(request.reason))
    buttons: list[Block] = [
        {
            "type": "button",
            "action_id": UNBLOCK_ACTION,
            "text": {"type": "plain_text", "text": "Unblock"},
            "style": "primary",
            "value": request.id,
        },
        {
            "type": "button",
            "action_id": CANCEL_ACTION,
            "text": {"type": "plain_text", "text": "Cancel"},
            "value": request.id,
        },
    ]
    blocks.append({"type": "actions", "block_id": f"drop_{request.id}", "elements": buttons})
    who = (
        f"Awaits a second supervisor: <@{request.requester_id}> cannot approve their own request."
        if two_person
        else "Only supervisors can confirm."
    )
    blocks.append(
        _context(f"{who} Expires {_clock(request.expires_at)} UTC. Request `{request.id}`")
    )
    return f"Unblock {_plain(number)}? Awaiting confirmation.", blocks


def _reason(reason: str) -> Block:
    return _context(f"*Reason:* {escape(_truncate(reason, 200))}")


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
    number = subject(request)
    chosen = request.chosen
    call = f" on call `{escape(chosen.conversation_id)}`" if chosen else ""
    when = (request.decided_at or request.expires_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    outcome = {
        RequestState.CANCELLED: "cancelled",
        RequestState.EXPIRED: "expired, nothing dropped",
    }.get(request.state, escape(request.outcome or request.state.value).replace("_", " "))
    decided = f" by <@{request.decided_by}>" if request.decided_by else ""
    dry = " (dry run)" if request.dry_run else ""
    why = f" Reason: {escape(_truncate(request.reason, 200))}." if request.reason else ""
    return (
        f"`{when} UTC` {number}{call}: *{outcome}*{decided}{dry}. "
        f"Asked by <@{request.requester_id}> in <#{request.channel_id}>.{why} "
        f"Request `{request.id}`"
    )

"""Block Kit messages, as pure functions from domain objects to blocks.

Everything that came from a person or from Genesys (numbers, names, error text) passes
through `escape` before it is placed in mrkdwn, so it can neither ping (`<!channel>`) nor
link (`<https://…|…>`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.domain import DropRequest, Outcome, RequestState, TargetKind
from bot.phone import display_number
from genesys.models import CallMatch

Block = dict[str, Any]

# Slack's Block Kit limits (api.slack.com/reference/block-kit): characters per text.
SECTION_TEXT = 3000
FIELD_TEXT = 2000
CONTEXT_TEXT = 2000
BUTTON_TEXT = 75
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
# Longer texts from Genesys are cut well below those: a card is read at a glance.
DETAIL_TEXT = 1500
NAMES_TEXT = 300

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


# Slack's mrkdwn markers, swapped for characters that look the same and mean nothing to Slack,
# so that a name such as "*VIP* queue" shows as typed instead of in bold. `*`, `_` and `~`
# format only at a word's edge, so those inside a word ("service_unavailable", an email's
# "jane_doe") stay as they are; a backtick is always swapped.
_LOOK_ALIKES = {
    "*": "\u2217",  # asterisk operator
    "_": "\u02cd",  # modifier letter low macron
    "~": "\u223c",  # tilde operator
    "`": "\u02cb",  # modifier letter grave accent
}
_MARKER = re.compile(r"`|(?<![^\W_])[*_~]|[*_~](?![^\W_])")


def escape(text: str) -> str:
    """Make text safe to place in Slack mrkdwn: no mentions, links or markup tricks, and no
    bold, italics, strike-through or code from `*`, `_`, `~` and backticks."""
    entities = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKER.sub(lambda marker: _LOOK_ALIKES[marker.group()], entities)


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
    blocks: list[Block] = [section(intro)]
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
    buttons.append(_button(CANCEL_ACTION, "Cancel", request.id))
    blocks.append({"type": "actions", "block_id": f"drop_{request.id}", "elements": buttons})
    if stuck_without_button:
        blocks.append(context(TEARDOWN_OFF))
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
    expires = slack_time(request.expires_at)
    blocks.append(context(f"{who} Expires {expires}. Request `{request.id}`"))
    awaiting = "a second supervisor's" if two_person or teardown else "a supervisor's"
    return fit(f"Drop {_plain(about)}? Awaiting {awaiting} confirmation.", SECTION_TEXT), blocks


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
        f"at {slack_time(request.decided_at)}…",
    )


def outcome_card(request: DropRequest, now: datetime) -> tuple[str, list[Block]]:
    """The final card: what happened, who approved it and when."""
    state = request.state
    detail = escape(_truncate(request.outcome_detail or "", DETAIL_TEXT))
    approved = f"approved by <@{request.decided_by}> at {slack_time(request.decided_at)}"
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
            f"at {slack_time(request.decided_at)}."
        )
    elif state == RequestState.EXPIRED:
        headline = (
            f":hourglass: Expired at {slack_time(request.expires_at)}: nothing was disconnected. "
            "Run the command again if the caller still needs dropping."
        )
    elif state == RequestState.DONE and request.outcome == "disconnected":
        headline = (
            f":white_check_mark: Disconnected, approved by <@{request.decided_by}> "
            f"at {slack_time(request.decided_at)}. {detail}"
        )
    elif state == RequestState.DONE and request.outcome == "dry_run":
        also = " The number would also have been blocked." if request.block else ""
        headline = (
            f":test_tube: Dry run: would disconnect {_chosen_number(request)}, "
            f"approved by <@{request.decided_by}> at {slack_time(request.decided_at)}. "
            f"Nothing was sent to Genesys.{also}"
        )
    elif state == RequestState.DONE and request.outcome == "recovered_gone":
        headline = f":information_source: {detail}"
    elif state == RequestState.DONE and request.outcome == "already_gone":
        headline = (
            f":information_source: Nothing to disconnect: {detail} "
            f"(approved by <@{request.decided_by}> at {slack_time(request.decided_at)})"
        )
    elif state == RequestState.DONE:
        headline = (
            f":warning: Disconnect requested, not yet confirmed. {detail} "
            f"(approved by <@{request.decided_by}> at {slack_time(request.decided_at)})"
        )
    elif state == RequestState.FAILED and request.outcome == "unknown":
        headline = (
            f":warning: Outcome unknown. {detail} "
            f"(approved by <@{request.decided_by}> at {slack_time(request.decided_at)})"
        )
    elif state == RequestState.FAILED:
        headline = (
            f":x: Not disconnected. {detail} "
            f"(approved by <@{request.decided_by}> at {slack_time(request.decided_at)})"
        )
    else:
        return progress_card(request, now)
    return _closed_card(request, now, headline)


def _closed_card(request: DropRequest, now: datetime, headline: str) -> tuple[str, list[Block]]:
    about = subject(request)
    verb = "take" if request.target_kind == TargetKind.UNBLOCK else "drop"
    blocks: list[Block] = [
        section(f"<@{request.requester_id}> asked to {verb} {about}."),
    ]
    chosen = request.chosen
    shown = [chosen] if chosen is not None else list(request.candidates)
    if request.reason:
        blocks.append(_reason(request.reason))
    blocks.extend(
        _stuck_details(match, now, None) if match.stuck else _call_details(match, now, None)
        for match in shown
    )
    blocks.append(section(headline))
    blocks.append(context(f"Request `{request.id}`"))
    return fit(f"{verb.capitalize()} {_plain(about)}: {_plain(headline)}", SECTION_TEXT), blocks


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
    still = names(
        [
            f"{c.name or _LEG_NAMES.get(c.purpose, c.purpose)} "
            f"({_LEG_NAMES.get(c.purpose, c.purpose)}, {_since(c.since, now)})"
            for c in stuck.connected
        ],
        limit=FIELD_TEXT - 100,
    )
    fields = [
        f"*{label}*\n`{escape(match.conversation_id)}`",
        "*Stuck*\nthe caller has left; "
        + (f"left at {slack_time(stuck.caller_left_at)}" if stuck.caller_left_at else "no caller"),
        f"*Still connected*\n{still or 'nobody'}",
        f"*Open for*\n{_connected_for(stuck.opened_at, now)}",
    ]
    return _fields(fields)


def _end_button(request: DropRequest, match: CallMatch, position: int, several: bool) -> Block:
    stuck = match.stuck
    assert stuck is not None
    everyone = ", ".join(
        f"{c.name or _LEG_NAMES.get(c.purpose, c.purpose)} ({_LEG_NAMES.get(c.purpose, c.purpose)})"
        for c in stuck.connected
    )
    label = f"End conversation {position + 1}" if several else "End whole conversation"
    return _button(
        end_action_id(position),
        label,
        request.id,
        style="danger",
        confirm=_confirm(
            "End the whole conversation?",
            f"Everyone still on it will be disconnected, agents included: {everyone}. "
            "This cannot be undone.",
            "End it",
            "Keep it",
        ),
    )


def _since(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "since an unknown time"
    return f"for {_connected_for(moment, now)}"


def _call_details(match: CallMatch, now: datetime, position: int | None) -> Block:
    label = f"Call {position + 1}" if position is not None else "Call"
    party = escape(_PURPOSE_NAMES.get(match.purpose, match.purpose))
    if match.participant_name and match.participant_name != match.number:
        party += f" ({escape(_truncate(match.participant_name, 200))})"
    fields = [
        f"*Number*\n{escape(display_number(match.number))}",
        f"*{label}*\n`{escape(match.conversation_id)}`",
        f"*Drops*\n{party}",
        f"*Agent*\n{names(match.agent_names) or 'none yet'}",
        f"*Queue*\n{names(match.queue_names) or 'none'}",
        f"*Connected*\n{_connected_for(match.connected_at, now)}",
    ]
    return _fields(fields)


def _disconnect_button(
    request: DropRequest, match: CallMatch, position: int, several: bool
) -> Block:
    number = display_number(match.number)
    label = f"Disconnect call {position + 1}" if several else "Disconnect caller"
    agents = ", ".join(match.agent_names) or "no agent"
    return _button(
        disconnect_action_id(position),
        label,
        request.id,
        style="danger",
        confirm=_confirm(
            "Disconnect this caller?",
            f"{number} will be disconnected from the call with {agents}. This cannot be undone.",
            "Disconnect",
            "Keep the call",
        ),
    )


def block_action_id(position: int) -> str:
    """The action id of the Disconnect and block button for the candidate at `position`."""
    return f"{BLOCK_ACTION_PREFIX}{position}"


def _block_button(
    request: DropRequest, match: CallMatch, position: int, several: bool, block_for: str
) -> Block:
    number = display_number(match.number)
    label = f"Disconnect and block call {position + 1}" if several else "Disconnect and block"
    return _button(
        block_action_id(position),
        label,
        request.id,
        style="danger",
        confirm=_confirm(
            "Disconnect and block?",
            f"{number} will be disconnected, then blocked {block_for}: the contact center's "
            "inbound flow will refuse its calls. This cannot be undone (unblocking takes "
            "another request).",
            "Disconnect and block",
            "Keep the call",
        ),
    )


def unblock_card(
    request: DropRequest, now: datetime, *, two_person: bool = False
) -> tuple[str, list[Block]]:
    """The card that asks a supervisor to take a number off the block list."""
    number = escape(display_number(request.number))
    blocks: list[Block] = [
        section(f":unlock: <@{request.requester_id}> asked to unblock *{number}*.")
    ]
    if request.reason:
        blocks.append(_reason(request.reason))
    buttons: list[Block] = [
        _button(UNBLOCK_ACTION, "Unblock", request.id, style="primary"),
        _button(CANCEL_ACTION, "Cancel", request.id),
    ]
    blocks.append({"type": "actions", "block_id": f"drop_{request.id}", "elements": buttons})
    who = (
        f"Awaits a second supervisor: <@{request.requester_id}> cannot approve their own request."
        if two_person
        else "Only supervisors can confirm."
    )
    expires = slack_time(request.expires_at)
    blocks.append(context(f"{who} Expires {expires}. Request `{request.id}`"))
    return fit(f"Unblock {_plain(number)}? Awaiting confirmation.", SECTION_TEXT), blocks


def _reason(reason: str) -> Block:
    return context(f"*Reason:* {escape(_truncate(reason, 200))}")


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
    return f"{length} (since {slack_time(connected_at)})"


def slack_time(moment: datetime | None, *, date: bool = False) -> str:
    """A moment in Slack's date formatting: each reader sees their own local time; clients
    that cannot show it fall back to UTC."""
    if moment is None:
        return "?"
    utc = moment.astimezone(UTC)
    tokens, fallback = (
        ("{date_num} {time_secs}", f"{utc:%Y-%m-%d %H:%M:%S}")
        if date
        else (
            "{time_secs}",
            f"{utc:%H:%M:%S}",
        )
    )
    return f"<!date^{int(utc.timestamp())}^{tokens}|{fallback} UTC>"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit(text, SECTION_TEXT)}}


def _fields(texts: list[str]) -> Block:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": fit(text, FIELD_TEXT)} for text in texts],
    }


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": fit(text, CONTEXT_TEXT)}]}


def _plain_text(text: str, limit: int) -> Block:
    return {"type": "plain_text", "text": _truncate(text, limit)}


def _confirm(title: str, text: str, confirm: str, deny: str) -> Block:
    """A button's confirm dialog, each text within its limit."""
    return {
        "title": _plain_text(title, CONFIRM_TITLE),
        "text": _plain_text(text, CONFIRM_TEXT),
        "confirm": _plain_text(confirm, CONFIRM_BUTTON),
        "deny": _plain_text(deny, CONFIRM_BUTTON),
        "style": "danger",
    }


def _button(
    action_id: str,
    label: str,
    value: str,
    *,
    style: str | None = None,
    confirm: Block | None = None,
) -> Block:
    button: Block = {
        "type": "button",
        "action_id": action_id,
        "text": _plain_text(label, BUTTON_TEXT),
        # Only the request id: the bot never trusts call or participant ids from a click.
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def fit(mrkdwn: str, limit: int) -> str:
    """Cut mrkdwn to `limit` characters with an ellipsis, never inside an `&…;` entity or a
    `<…>` token (a mention, a date, a link), so what is left still reads right."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = mrkdwn[: limit - 1]
    for opener, closer in (("<", ">"), ("&", ";")):
        start = cut.rfind(opener)
        if start > cut.rfind(closer):
            cut = cut[:start]
    return cut + "…"


def names(values: Sequence[str], limit: int = NAMES_TEXT) -> str:
    """Names from Genesys, escaped and joined; a list too long for a card ends with how many
    more there are."""
    escaped = [escape(_truncate(value, 100)) for value in values]
    if len(", ".join(escaped)) <= limit:
        return ", ".join(escaped)
    shown: list[str] = []
    for name in escaped:
        more = f" and {len(escaped) - len(shown) - 1} more"
        if len(", ".join([*shown, name])) + len(more) > limit:
            break
        shown.append(name)
    return ", ".join(shown) + f" and {len(escaped) - len(shown)} more"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(mrkdwn: str) -> str:
    return mrkdwn.replace("*", "")


def audit_line(request: DropRequest) -> str:
    """One line for the audit channel: who asked, which number and call, who decided, outcome."""
    number = subject(request)
    chosen = request.chosen
    call = f" on call `{escape(chosen.conversation_id)}`" if chosen else ""
    when = slack_time(request.decided_at or request.expires_at, date=True)
    outcome = {
        RequestState.CANCELLED: "cancelled",
        RequestState.EXPIRED: "expired, nothing dropped",
    }.get(request.state, escape((request.outcome or request.state.value).replace("_", " ")))
    decided = f" by <@{request.decided_by}>" if request.decided_by else ""
    dry = " (dry run)" if request.dry_run else ""
    why = f" Reason: {escape(_truncate(request.reason, 200))}." if request.reason else ""
    return (
        f"{when} {number}{call}: *{outcome}*{decided}{dry}. "
        f"Asked by <@{request.requester_id}> in <#{request.channel_id}>.{why} "
        f"Request `{request.id}`"
    )


def requester_notice(request: DropRequest) -> str | None:
    """A private word to the requester when someone else decided their request, or nobody
    did in time; None when they decided it themselves (they saw it happen)."""
    verb = "take" if request.target_kind == TargetKind.UNBLOCK else "drop"
    about = f"your request to {verb} {subject(request)} (request `{request.id}`)"
    if request.state == RequestState.EXPIRED:
        return (
            f":hourglass: Nobody approved {about} before it expired at "
            f"{slack_time(request.expires_at)}. Nothing was done; run the command again if it is "
            "still needed."
        )
    if request.decided_by is None or request.decided_by == request.requester_id:
        return None
    if request.state == RequestState.CANCELLED:
        return f":no_entry_sign: <@{request.decided_by}> cancelled {about}. Nothing was done."
    if request.state in (RequestState.DONE, RequestState.FAILED):
        outcome = escape((request.outcome or request.state.value).replace("_", " "))
        return (
            f"<@{request.decided_by}> approved {about}. Outcome: *{outcome}*; the card in "
            f"<#{request.channel_id}> says more."
        )
    return None

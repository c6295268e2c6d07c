"""The three analytics queries that find a number's live calls, and how their answers are read.

1. The conversation-details query: the indexed record of every conversation. Complete, but
   built asynchronously, so a call that started seconds ago may not be in it yet.
2. The conversation activity query: Genesys' real-time queue observation data (calls waiting
   in, alerting from or talking through a queue). No indexing lag.
3. The flow activity query: the same for callers still in an Architect (IVR) flow.

Bodies are built from the SDK's own models, so its enum checks apply (an unknown value would be
sent as "outdated_sdk_version": `ensure_known_values` refuses that before anything is sent).
Answers are read from their JSON; each query's reader returns only what the lookup needs.
Every number predicate matches both `tel:+E164` and the bare `+E164`: orgs differ in which of
the two their trunks record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from genesys.addresses import tel_uri
from genesys.sdk import sdk

DETAILS_PATH = "/api/v2/analytics/conversations/details/query"
USERS_SEARCH_PATH = "/api/v2/users/search"
CONVERSATION_ACTIVITY_PATH = "/api/v2/analytics/conversations/activity/query"
FLOW_ACTIVITY_PATH = "/api/v2/analytics/flows/activity/query"

# The queue observation metrics of a call in or from a queue: waiting in it, alerting an
# agent, and talking to one.
CONVERSATION_ACTIVITY_METRICS = ("oWaiting", "oAlerting", "oInteracting")


@dataclass(frozen=True)
class DetailsHit:
    """A conversation as the details query lists it, with the names the card shows."""

    conversation_id: str
    agent_names: tuple[str, ...]
    queue_names: tuple[str, ...]
    direction: str | None


def number_forms(e164: str) -> tuple[str, str]:
    """The two ways analytics may record a number: `tel:+15551234567` and `+15551234567`."""
    return tel_uri(e164), e164


def details_query(
    interval: str,
    page_size: int,
    page_number: int,
    *,
    number: str | None = None,
    user_id: str | None = None,
) -> Any:
    """The conversation-details query for not-ended voice calls with this ani or dnis (a
    `number`), or in which this agent (`user_id`) has a segment."""
    not_ended = sdk.ConversationDetailQueryFilter()
    not_ended.type = "and"
    not_ended.predicates = [_predicate(sdk.ConversationDetailQueryPredicate, "conversationEnd")]
    voice = sdk.SegmentDetailQueryFilter()
    voice.type = "and"
    voice.predicates = [_predicate(sdk.SegmentDetailQueryPredicate, "mediaType", "voice")]
    by_number = sdk.SegmentDetailQueryFilter()
    by_number.type = "or"
    by_number.predicates = _target_predicates(sdk.SegmentDetailQueryPredicate, number, user_id)
    paging = sdk.PagingSpec()
    paging.page_size = page_size
    paging.page_number = page_number
    query = sdk.ConversationQuery()
    query.conversation_filters = [not_ended]
    query.segment_filters = [voice, by_number]
    query.order = "desc"
    query.order_by = "conversationStart"
    query.interval = interval
    query.paging = paging
    return query


def conversation_activity_query(number: str | None = None, user_id: str | None = None) -> Any:
    """The real-time queue observation query for voice calls with this ani or dnis (a
    `number`), or with this agent (`user_id`)."""
    return _activity_query(
        "Conversation", CONVERSATION_ACTIVITY_METRICS, "queueId", number, user_id
    )


def flow_activity_query(number: str) -> Any:
    """The real-time flow observation query for voice calls with this ani or dnis in a flow."""
    return _activity_query("Flow", ("oFlow",), "flowId", number, None)


def users_search(email: str) -> Any:
    """The users search for the one user whose email is exactly `email`."""
    criterion = sdk.UserSearchCriteria()
    criterion.type = "EXACT"
    criterion.fields = ["email"]
    criterion.value = email
    search = sdk.UserSearchRequest()
    search.query = [criterion]
    search.page_size = 2  # one is expected; two tells an ambiguous address apart
    return search


def _activity_query(
    kind: str,
    metric_names: tuple[str, ...],
    group_by: str,
    number: str | None,
    user_id: str | None,
) -> Any:
    """An activity query from the SDK's `{kind}ActivityQuery…` models (Conversation, Flow)."""

    def model(suffix: str = "") -> Any:
        return getattr(sdk, f"{kind}ActivityQuery{suffix}")()

    metrics = []
    for name in metric_names:
        metric = model("Metric")
        metric.metric = name
        metric.details = True
        metrics.append(metric)
    predicate = getattr(sdk, f"{kind}ActivityQueryPredicate")
    by_number = model("Clause")
    by_number.type = "or"
    by_number.predicates = _target_predicates(predicate, number, user_id)
    flt = model("Filter")
    flt.type = "and"
    flt.predicates = [_predicate(predicate, "mediaType", "voice")]
    flt.clauses = [by_number]
    query = model()
    query.metrics = metrics
    query.group_by = [group_by]
    query.filter = flt
    return query


def ensure_known_values(serialised: Any) -> None:
    """Refuse a body in which the SDK replaced a value it does not know.

    The SDK silently swaps an unknown enum value for "outdated_sdk_version" and sends it;
    Genesys would then answer 400, or worse, filter on nothing.
    """
    if "outdated_sdk_version" in json.dumps(serialised):
        raise AssertionError("an analytics query uses a value this SDK does not know")


def _target_predicates(model: Any, number: str | None, user_id: str | None) -> list[Any]:
    """The `or` clause that picks the target's calls: the number as ani or dnis, in both
    forms, or the agent's user id."""
    if user_id is not None:
        return [_predicate(model, "userId", user_id)]
    assert number is not None, "a query needs a number or a user id"
    return [
        _predicate(model, dimension, form)
        for dimension in ("ani", "dnis")
        for form in number_forms(number)
    ]


def _predicate(model: Any, dimension: str, value: str | None = None) -> Any:
    predicate = model()
    predicate.type = "dimension"
    predicate.dimension = dimension
    if value is None:
        predicate.operator = "notExists"
    else:
        predicate.operator = "matches"
        predicate.value = value
    return predicate


# -------------------------------------------------------------------- answers


def read_details_page(answer: Any) -> list[DetailsHit]:
    """The conversations of one page of a details query answer (its JSON)."""
    if not isinstance(answer, dict):
        raise ValueError("the analytics answer is not a JSON object")
    conversations = answer.get("conversations") or []
    if not isinstance(conversations, list):
        raise ValueError("the analytics answer's conversations are not a list")
    return [_details_hit(conversation) for conversation in conversations]


def read_activity_answer(answer: Any) -> list[str]:
    """The conversation ids in an activity query answer, in order, without repeats.

    Both activity queries answer `{"results": [{"group", "data", "entities": [...]}]}`; each
    entity names its `conversationId`.
    """
    if not isinstance(answer, dict):
        raise ValueError("the activity answer is not a JSON object")
    results = answer.get("results") or []
    if not isinstance(results, list):
        raise ValueError("the activity answer's results are not a list")
    found: dict[str, None] = {}
    for result in results:
        if not isinstance(result, dict):
            raise ValueError("an activity result is not a JSON object")
        entities = result.get("entities") or []
        if not isinstance(entities, list):
            raise ValueError("an activity result's entities are not a list")
        for entity in entities:
            conversation_id = entity.get("conversationId") if isinstance(entity, dict) else None
            if not isinstance(conversation_id, str) or not conversation_id:
                raise ValueError("an activity entity has no conversationId")
            found.setdefault(conversation_id)
    return list(found)


def _details_hit(conversation: Any) -> DetailsHit:
    conversation_id = conversation.get("conversationId") if isinstance(conversation, dict) else None
    if not isinstance(conversation_id, str):
        raise ValueError("an analytics conversation has no conversationId")
    agents: list[str] = []
    queues: list[str] = []
    for participant in conversation.get("participants") or []:
        name = participant.get("participantName")
        if not isinstance(name, str) or not name:
            continue
        purpose = participant.get("purpose")
        if purpose in ("agent", "user") and name not in agents:
            agents.append(name)
        elif purpose == "acd" and name not in queues:
            queues.append(name)
    direction = conversation.get("originatingDirection")
    return DetailsHit(
        conversation_id=conversation_id,
        agent_names=tuple(agents),
        queue_names=tuple(queues),
        direction=direction if isinstance(direction, str) else None,
    )


def read_users(answer: Any) -> list[dict[str, Any]]:
    """The users of a users search answer, each a JSON object with an `id`."""
    if not isinstance(answer, dict):
        raise ValueError("the users search answer is not a JSON object")
    results = answer.get("results") or []
    if not isinstance(results, list) or not all(
        isinstance(u, dict) and isinstance(u.get("id"), str) for u in results
    ):
        raise ValueError("the users search answer's results are not users")
    return results

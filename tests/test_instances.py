"""Several instances on one database: real `python app.py` processes racing for one card,
surviving a restart and sharing the expiry sweep; the audit export; schema migrations in
place; and the append-only audit table, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from bot.audit import audit_records
from bot.domain import ClaimStatus, RequestState
from bot.schema import create_engine
from bot.store import RequestStore
from genesys.models import CallMatch
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_requests import SlackResponse
from sandbox.slack_simulator import FakeSlack, Message
from tests.harness import (
    SECOND_SUPERVISOR,
    SUPERVISOR,
    bot_environment,
    card_text,
    start_bot,
)
from tests.processes import BotProcess, base_env, bot_process, bot_processes, run_app

pytestmark = pytest.mark.slow

DISCONNECT = "drop_caller_disconnect_0"
CANCEL = "drop_caller_cancel"
CHANNEL = "C0001"
MIGRATIONS = Path(__file__).resolve().parents[1] / "bot" / "migrations"
RACE_ROUNDS = 5
# What the audit export promises compliance, in this order.
AUDIT_COLUMNS = [
    "at",
    "request_id",
    "event",
    "actor_id",
    "requester_id",
    "channel_id",
    "number",
    "reason",
    "conversation_id",
    "participant_id",
    "outcome",
    "detail",
    "error_code",
    "context_id",
    "dry_run",
]


# ---------------------------------------------------------------------------- helpers


def _process_env(
    tmp_path: Path, genesys: FakeGenesys, slack: FakeSlack, url: str, **extra: str
) -> dict[str, str]:
    """A deployment's environment for `python app.py --http`, against the fakes and `url`."""
    return (
        base_env(tmp_path)
        | bot_environment(genesys, slack, tmp_path)
        | {"DATABASE_URL": url}
        | extra
    )


def _new_card(slack: FakeSlack, channel: str, seen: set[str], timeout: float = 10.0) -> Message:
    """The first card in `channel` not in `seen` (which it is then added to)."""

    def fresh() -> Message | None:
        return next((m for m in slack.messages(channel) if m.ts not in seen), None)

    card: Message = slack.wait_for(fresh, timeout=timeout)
    seen.add(card.ts)
    return card


def _told(slack: FakeSlack, text: str) -> bool:
    """Whether any response_url post so far says `text`."""
    return any(text in json.dumps(post.body) for post in slack.response_posts)


def _request_id(card: Message) -> str:
    return str(card.button(CANCEL)["value"])


def _kinds(store: RequestStore, request_id: str) -> list[str]:
    return [event["kind"] for event in store.events(request_id)]


def _command(bot: BotProcess, slack: FakeSlack, number: str, user_id: str = SUPERVISOR) -> None:
    answer = bot.requester.command(
        number, user_id=user_id, response_url=slack.new_response_url(channel=CHANNEL)
    )
    assert answer.status == 200, answer.body


def _click(
    bot: BotProcess,
    card: Message,
    *,
    user_id: str,
    response_url: str,
    action_id: str = DISCONNECT,
) -> SlackResponse:
    return bot.requester.click(
        action_id=action_id,
        value=str(card.button(action_id)["value"]),
        user_id=user_id,
        channel_id=card.channel,
        message_ts=card.ts,
        response_url=response_url,
        message=card.to_payload(),
    )


def _click_together(
    card: Message, clickers: list[tuple[BotProcess, str]], urls: list[str]
) -> list[int | None]:
    """Click Disconnect on `card` once per (instance, user), all released at the same instant."""
    start = threading.Barrier(len(clickers))
    answers: list[SlackResponse | None] = [None] * len(clickers)

    def click(index: int) -> None:
        bot, user = clickers[index]
        start.wait(timeout=10)
        answers[index] = _click(bot, card, user_id=user, response_url=urls[index])

    threads = [threading.Thread(target=click, args=(i,)) for i in range(len(clickers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return [answer.status if answer is not None else None for answer in answers]


def _refused(slack: FakeSlack, urls: list[str]) -> list[int]:
    """Which of the clicks (by their response_urls) have been told something ephemerally."""
    return [index for index, url in enumerate(urls) if _ephemerals_to(slack, url)]


def _ephemerals_to(slack: FakeSlack, response_url: str) -> list[str]:
    """Texts posted ephemerally (not replacing the card) to one click's response_url."""
    return [
        str(post.body.get("text", ""))
        for post in slack.response_posts
        if post.url == response_url
        and post.body.get("response_type", "ephemeral") == "ephemeral"
        and not post.body.get("replace_original")
    ]


def _card_says(slack: FakeSlack, card: Message, words: str, timeout: float = 15.0) -> None:
    slack.wait_for(
        lambda: words in card_text(slack.message(card.channel, card.ts)), timeout=timeout
    )


# ---------------------------------------------------------------------------- several instances


def test_two_instances_racing_for_one_card_disconnect_once(
    tmp_path: Path, genesys: FakeGenesys, slack: FakeSlack, database_url: str
) -> None:
    """Two processes on one database, each given one of two simultaneous clicks: one drop."""
    # Schema first: this test is about the clicks (two instances creating it at once: below).
    store = RequestStore.from_url(database_url)
    env = _process_env(tmp_path, genesys, slack, database_url)
    seen: set[str] = set()
    with bot_processes([env, env], tmp_path, names=["a", "b"]) as (a, b):
        for round_ in range(RACE_ROUNDS):
            number = f"+1555123{round_:04d}"
            cid = genesys.add_inbound_call(number)
            customer = genesys.participant_id(cid, "customer")
            _command(a, slack, number)
            card = _new_card(slack, CHANNEL, seen)
            clickers = [(a, SUPERVISOR), (b, SECOND_SUPERVISOR)]
            urls = [slack.new_response_url(channel=CHANNEL, message_ts=card.ts) for _ in clickers]

            statuses = _click_together(card, clickers, urls)

            assert statuses == [200, 200]
            _card_says(slack, card, "Disconnected")
            refused: list[int] = slack.wait_for(partial(_refused, slack, urls))
            assert len(refused) == 1, [_ephemerals_to(slack, url) for url in urls]
            winner_user = clickers[1 - refused[0]][1]
            (note,) = _ephemerals_to(slack, urls[refused[0]])
            assert f"<@{winner_user}> already approved this drop" in note
            request = store.get(_request_id(card))
            assert request is not None
            assert request.state == RequestState.DONE
            assert request.decided_by == winner_user
            assert _kinds(store, request.id) == ["requested", "approved", "outcome"]
            assert [p for p in genesys.patches() if p[0] == cid] == [
                (cid, customer, {"state": "disconnected"})
            ]
        # Nothing more arrives late from either instance.
        time.sleep(0.3)
    assert len(genesys.patches()) == RACE_ROUNDS
    assert a.process.returncode == 0, a.output()
    assert b.process.returncode == 0, b.output()


def test_a_card_posted_before_a_restart_is_confirmed_after_it(
    tmp_path: Path, genesys: FakeGenesys, slack: FakeSlack, database_url: str
) -> None:
    """A card posted by instance A, stopped with SIGTERM, is confirmed through instance B."""
    env = _process_env(tmp_path, genesys, slack, database_url)
    number = "+15551234567"
    cid = genesys.add_inbound_call(number)
    customer = genesys.participant_id(cid, "customer")
    with bot_process(env, tmp_path, name="a") as a:
        _command(a, slack, number)
        card = _new_card(slack, CHANNEL, set())
    assert a.process.returncode == 0, a.output()

    with bot_process(env, tmp_path, name="b") as b:
        answer = _click(
            b,
            card,
            user_id=SECOND_SUPERVISOR,
            response_url=slack.new_response_url(channel=CHANNEL, message_ts=card.ts),
        )
        assert answer.status == 200
        _card_says(slack, card, "Disconnected")

    assert genesys.patches() == [(cid, customer, {"state": "disconnected"})]
    store = RequestStore.from_url(database_url)
    request = store.get(_request_id(card))
    assert request is not None
    assert request.state == RequestState.DONE
    assert request.decided_by == SECOND_SUPERVISOR
    assert _kinds(store, request.id) == ["requested", "approved", "outcome"]


def test_with_two_instances_each_expired_card_is_edited_once(
    tmp_path: Path, genesys: FakeGenesys, slack: FakeSlack, postgres_url: str
) -> None:
    """Two sweeping instances on PostgreSQL: an unclicked card expires by one chat.update."""
    env = _process_env(
        tmp_path,
        genesys,
        slack,
        postgres_url,
        DROP_CALLER_REQUEST_TTL="1",
        DROP_CALLER_SWEEP_INTERVAL="0.2",
    )
    seen: set[str] = set()
    cards: list[Message] = []
    with bot_processes([env, env], tmp_path, names=["a", "b"]) as (a, b):
        for index, bot in enumerate((a, b, a, b)):
            number = f"+1555200{index:04d}"
            genesys.add_inbound_call(number)
            _command(bot, slack, number)
            cards.append(_new_card(slack, CHANNEL, seen))
        for card in cards:
            _card_says(slack, card, "Expired", timeout=10)
        # Both sweepers run about three more times: a second edit would show by now.
        time.sleep(0.6)

    store = RequestStore.from_url(postgres_url)
    for card in cards:
        edits = [c for c in slack.calls_to("chat.update") if c.args.get("ts") == card.ts]
        assert len(edits) == 1, edits
        assert "Expired" in card_text(slack.message(CHANNEL, card.ts))
        request_id = _request_id(card)
        assert _kinds(store, request_id) == ["requested", "expired"]
        request = store.get(request_id)
        assert request is not None
        assert request.state == RequestState.EXPIRED
    assert genesys.patches() == []


# ---------------------------------------------------------------------------- audit export


def _audit(tmp_path: Path, url: str, *args: str) -> tuple[int, str, str]:
    """`python app.py audit *args` with DATABASE_URL and nothing else configured."""
    result = run_app(tmp_path, base_env(tmp_path) | {"DATABASE_URL": url}, "audit", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def _audit_json(tmp_path: Path, url: str, *args: str) -> list[dict[str, Any]]:
    code, out, err = _audit(tmp_path, url, "--format", "json", *args)
    assert code == 0, err
    records = json.loads(out)
    assert isinstance(records, list)
    return records


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_audit_export_answers_who_dropped_which_caller_when(
    tmp_path: Path, genesys: FakeGenesys, slack: FakeSlack, database_url: str
) -> None:
    """`app.py audit`, given only DATABASE_URL, exports one row per event, filtered by time."""
    dropped_number, cancelled_number, expired_number, unknown_number, failing_number = (
        "+15551230001",
        "+15551230002",
        "+15551230003",
        "+15551230004",
        "+15551230005",
    )
    dropped_cid = genesys.add_inbound_call(dropped_number)
    dropped_pid = genesys.participant_id(dropped_cid, "customer")
    genesys.add_inbound_call(cancelled_number)
    genesys.add_inbound_call(expired_number)
    env = {"DATABASE_URL": database_url}
    short = env | {"DROP_CALLER_REQUEST_TTL": "1", "DROP_CALLER_SWEEP_INTERVAL": "0.2"}
    # Two in-process instances on the database: one whose requests expire at once.
    with (
        start_bot(genesys, slack, tmp_path, env=short) as expiring,
        start_bot(genesys, slack, tmp_path, env=env) as bot,
    ):
        expiring.command(expired_number, user_id=SUPERVISOR, channel_id="C0003")
        expired_card = expiring.wait_for_card("C0003")
        expired = _request_id(expired_card)

        bot.command(dropped_number, user_id=SUPERVISOR, channel_id="C0001")
        card = bot.wait_for_card("C0001")
        dropped = _request_id(card)
        bot.click(card, DISCONNECT, user_id=SECOND_SUPERVISOR)
        bot.wait_for_state(card, "done")

        bot.command(cancelled_number, user_id=SECOND_SUPERVISOR, channel_id="C0002")
        card = bot.wait_for_card("C0002")
        cancelled = _request_id(card)
        bot.click(card, CANCEL, user_id=SUPERVISOR)
        bot.wait_for_state(card, "cancelled")

        expiring.wait_for_state(expired_card, "expired", timeout=10)

        # Look-ups that end without a card are recorded too: no live call, and Genesys failing.
        bot.command(unknown_number, user_id=SUPERVISOR, channel_id="C0004")
        bot.slack.wait_for(lambda: _told(bot.slack, "No active call"), timeout=10)
        genesys.inject("POST", "/analytics/", status=503, times=10)
        bot.command(failing_number, user_id=SECOND_SUPERVISOR, channel_id="C0005")
        bot.slack.wait_for(lambda: _told(bot.slack, "Could not look up"), timeout=10)
        bot.slack.wait_for(lambda: len(audit_records(bot.store)) == 9, timeout=10)
        event_count = len(audit_records(bot.store))

    with ThreadPoolExecutor(max_workers=2) as pool:
        as_csv = pool.submit(_audit, tmp_path, database_url, "--format", "csv")
        as_json = pool.submit(_audit_json, tmp_path, database_url)
        code, out, err = as_csv.result(timeout=90)
        records = as_json.result(timeout=90)
    assert code == 0, err
    reader = csv.DictReader(io.StringIO(out))
    rows = list(reader)
    assert reader.fieldnames == AUDIT_COLUMNS
    assert event_count == 9
    assert len(rows) == event_count
    looked_up = {row["number"]: row for row in rows if row["event"] == "looked_up"}
    assert set(looked_up) == {unknown_number, failing_number}
    for number, (requester, channel, outcome, said) in {
        unknown_number: (SUPERVISOR, "C0004", "no_live_call", "no live call"),
        failing_number: (SECOND_SUPERVISOR, "C0005", "lookup_failed", "unavailable"),
    }.items():
        row = looked_up[number]
        assert (row["actor_id"], row["requester_id"], row["channel_id"], row["outcome"]) == (
            requester,
            requester,
            channel,
            outcome,
        ), number
        assert said in row["detail"], row["detail"]
        # A failure keeps Genesys' error code and contextId, as a failed drop does.
        failed = number == failing_number
        assert bool(row["error_code"]) is failed, row["error_code"]
        assert bool(row["context_id"]) is failed, row["context_id"]
        assert row["request_id"]
        assert row["request_id"] not in {dropped, cancelled, expired}
        assert (row["conversation_id"], row["participant_id"]) == ("", "")
    all_rows, rows = rows, [row for row in rows if row["event"] != "looked_up"]
    by_key = {(row["request_id"], row["event"]): row for row in rows}
    expected = {
        (dropped, "requested"): (SUPERVISOR, SUPERVISOR, dropped_number, "C0001"),
        (dropped, "approved"): (SECOND_SUPERVISOR, SUPERVISOR, dropped_number, "C0001"),
        (dropped, "outcome"): (SECOND_SUPERVISOR, SUPERVISOR, dropped_number, "C0001"),
        (cancelled, "requested"): (SECOND_SUPERVISOR, SECOND_SUPERVISOR, cancelled_number, "C0002"),
        (cancelled, "cancelled"): (SUPERVISOR, SECOND_SUPERVISOR, cancelled_number, "C0002"),
        (expired, "requested"): (SUPERVISOR, SUPERVISOR, expired_number, "C0003"),
        (expired, "expired"): ("", SUPERVISOR, expired_number, "C0003"),
    }
    assert set(by_key) == set(expected)
    for key, (actor, requester, number, channel) in expected.items():
        row = by_key[key]
        assert (row["actor_id"], row["requester_id"], row["number"], row["channel_id"]) == (
            actor,
            requester,
            number,
            channel,
        ), key
        assert row["dry_run"] == "False"
        if key[0] == dropped and key[1] != "requested":
            assert (row["conversation_id"], row["participant_id"]) == (dropped_cid, dropped_pid)
        else:
            assert (row["conversation_id"], row["participant_id"]) == ("", ""), key
    assert by_key[(dropped, "outcome")]["outcome"] == "disconnected"
    assert all(by_key[k]["outcome"] == "" for k in expected if k[1] != "outcome")
    times = [_moment(row["at"]) for row in rows]
    assert times == sorted(times)
    assert all(moment.tzinfo is not None for moment in times)

    assert [(r["request_id"], r["event"]) for r in records] == [
        (row["request_id"], row["event"]) for row in all_rows
    ]
    assert records[[r["event"] for r in records].index("expired")]["actor_id"] is None
    assert all(set(record) == set(AUDIT_COLUMNS) for record in records)

    # --since / --until select by event time: [since, until).
    pivot = next(r["at"] for r in records if r["event"] == "cancelled")
    later = [(r["request_id"], r["event"]) for r in records if _moment(r["at"]) >= _moment(pivot)]
    earlier = [(r["request_id"], r["event"]) for r in records if _moment(r["at"]) < _moment(pivot)]
    assert later
    assert earlier
    runs = {
        "since": ("--format", "json", "--since", pivot),
        "until": ("--format", "json", "--until", pivot),
        "json-future": ("--format", "json", "--since", "2999-01-01"),
        "json-past": ("--format", "json", "--until", "2000-01-01T00:00:00Z"),
        "csv-future": ("--format", "csv", "--since", "2999-01-01T00:00:00+00:00"),
        "csv-past": ("--format", "csv", "--until", "2000-01-01"),
        "invalid": ("--since", "yesterday"),
    }
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {
            name: pool.submit(_audit, tmp_path, database_url, *args) for name, args in runs.items()
        }
        results = {name: future.result(timeout=90) for name, future in futures.items()}
    for name in ("since", "until", "json-future", "json-past", "csv-future", "csv-past"):
        assert results[name][0] == 0, (name, results[name][2])
    selected = {name: json.loads(results[name][1]) for name in ("since", "until")}
    assert [(r["request_id"], r["event"]) for r in selected["since"]] == later
    assert [(r["request_id"], r["event"]) for r in selected["until"]] == earlier
    assert json.loads(results["json-future"][1]) == []
    assert json.loads(results["json-past"][1]) == []
    assert results["csv-future"][1].splitlines() == [",".join(AUDIT_COLUMNS)]
    assert results["csv-past"][1].splitlines() == [",".join(AUDIT_COLUMNS)]
    code, out, err = results["invalid"]
    assert code != 0
    assert "usage:" in err
    assert "--since" in err
    assert out == ""


# ---------------------------------------------------------------------------- migrations

# The first release's schema, exactly as it created it with metadata.create_all().
_first_release = sa.MetaData()
sa.Table(
    "drop_requests",
    _first_release,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("channel_id", sa.String(32), nullable=False),
    sa.Column("requester_id", sa.String(32), nullable=False),
    sa.Column("number", sa.String(20), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_ts", sa.String(32)),
    sa.Column("response_url", sa.Text),
    sa.Column("decided_by", sa.String(32)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("chosen_position", sa.Integer),
    sa.Column("outcome", sa.String(32)),
    sa.Column("outcome_detail", sa.Text),
    sa.Column("error_code", sa.String(128)),
    sa.Column("context_id", sa.String(64)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)
sa.Table(
    "drop_candidates",
    _first_release,
    sa.Column("request_id", sa.ForeignKey("drop_requests.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.String(64), nullable=False),
    sa.Column("participant_id", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("participant_name", sa.Text),
    sa.Column("agent_names", sa.Text, nullable=False),
    sa.Column("queue_names", sa.Text, nullable=False),
    sa.Column("direction", sa.String(16)),
    sa.Column("connected_at", sa.DateTime(timezone=True)),
)
sa.Table(
    "drop_events",
    _first_release,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(32), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor_id", sa.String(32)),
    sa.Column("detail", sa.Text, nullable=False),
)

OLD_DONE = "0123456789abcdef01234567"
OLD_PENDING = "89abcdef0123456789abcdef"
OLD_NUMBER = "+15551234567"


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _versions(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        )


def _stamp(dialect: str, text: str) -> str:
    """A UTC time as the first release stored it: SQLite kept naive text, PostgreSQL timestamptz."""
    return f"{text}.000000" if dialect == "sqlite" else f"{text}+00"


def _seed_first_release_rows(connection: sa.Connection) -> None:
    """A finished drop and a pending request, written as the first release wrote them."""
    dialect = connection.dialect.name

    def at(text: str) -> str:
        return _stamp(dialect, text)

    insert_request = sa.text(
        "INSERT INTO drop_requests (id, team_id, channel_id, requester_id, number, state, "
        "created_at, expires_at, message_ts, response_url, decided_by, decided_at, "
        "chosen_position, outcome, outcome_detail, error_code, context_id, finished_at) VALUES "
        "(:id, 'T0001', 'C0001', :requester, :number, :state, :created, :expires, :ts, "
        "'https://hooks.slack.com/commands/T0001/1/x', :decided_by, :decided_at, :position, "
        ":outcome, :detail, NULL, NULL, :finished)"
    )
    connection.execute(
        insert_request,
        [
            {
                "id": OLD_DONE,
                "requester": "UOLD1",
                "number": OLD_NUMBER,
                "state": "done",
                "created": at("2025-01-02 10:00:00"),
                "expires": at("2025-01-02 10:05:00"),
                "ts": "1735812000.000100",
                "decided_by": "UOLD2",
                "decided_at": at("2025-01-02 10:01:00"),
                "position": 0,
                "outcome": "disconnected",
                "detail": "The caller left the call.",
                "finished": at("2025-01-02 10:01:02"),
            },
            {
                "id": OLD_PENDING,
                "requester": "UOLD1",
                "number": "+15557654321",
                "state": "pending",
                "created": at("2025-01-02 11:00:00"),
                "expires": at("2999-01-01 00:00:00"),
                "ts": "1735815600.000100",
                "decided_by": None,
                "decided_at": None,
                "position": None,
                "outcome": None,
                "detail": None,
                "finished": None,
            },
        ],
    )
    connection.execute(
        sa.text(
            "INSERT INTO drop_candidates (request_id, position, conversation_id, participant_id, "
            "purpose, participant_name, agent_names, queue_names, direction, connected_at) VALUES "
            "(:request, 0, :conversation, :participant, 'customer', 'Pat Caller', "
            "'[\"Jane Agent\"]', '[\"Billing\"]', 'inbound', :connected)"
        ),
        [
            {
                "request": OLD_DONE,
                "conversation": "conv-old-1",
                "participant": "part-old-1",
                "connected": at("2025-01-02 09:58:00"),
            },
            {
                "request": OLD_PENDING,
                "conversation": "conv-old-2",
                "participant": "part-old-2",
                "connected": at("2025-01-02 10:59:00"),
            },
        ],
    )
    requested = {"channel_id": "C0001", "number": OLD_NUMBER, "candidates": []}
    connection.execute(
        sa.text(
            "INSERT INTO drop_events (request_id, at, kind, actor_id, detail) "
            "VALUES (:request, :at, :kind, :actor, :detail)"
        ),
        [
            {
                "request": OLD_DONE,
                "at": at("2025-01-02 10:00:00"),
                "kind": "requested",
                "actor": "UOLD1",
                "detail": json.dumps(requested),
            },
            {
                "request": OLD_DONE,
                "at": at("2025-01-02 10:01:00"),
                "kind": "approved",
                "actor": "UOLD2",
                "detail": json.dumps({"chosen_position": 0}),
            },
            {
                "request": OLD_DONE,
                "at": at("2025-01-02 10:01:02"),
                "kind": "outcome",
                "actor": None,
                "detail": json.dumps(
                    {
                        "outcome": "disconnected",
                        "detail": "The caller left the call.",
                        "error_code": None,
                        "context_id": None,
                    }
                ),
            },
            {
                "request": OLD_PENDING,
                "at": at("2025-01-02 11:00:00"),
                "kind": "requested",
                "actor": "UOLD1",
                "detail": json.dumps(requested | {"number": "+15557654321"}),
            },
        ],
    )


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the first release's tables, in its own columns only."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in _first_release.sorted_tables:
            columns = ", ".join(column.name for column in table.columns)
            order = ", ".join(column.name for column in table.primary_key.columns)
            query = f"SELECT {columns} FROM {table.name} ORDER BY {order}"  # noqa: S608
            rows = connection.execute(sa.text(query))
            found[table.name] = [tuple(row) for row in rows]
    return found


def _make_first_release_database(url: str, how: str) -> None:
    """Put the first release's schema and rows in the empty database at `url`: migrated to
    revision 0001 by Alembic, or created by the first release itself with create_all (so with
    no alembic_version table).
    """
    engine = create_engine(url)
    with engine.begin() as connection:
        if how == "alembic-0001":
            command.upgrade(_alembic_config(connection), "0001")
        else:
            _first_release.create_all(connection)
        _seed_first_release_rows(connection)
    engine.dispose()


@pytest.fixture(params=["alembic-0001", "create_all"])
def first_release_database(request: pytest.FixtureRequest, database_url: str) -> str:
    """A first-release database with its rows (both ways it can exist), SQLite and PostgreSQL."""
    _make_first_release_database(database_url, request.param)
    return database_url


def test_a_first_release_database_is_migrated_in_place(first_release_database: str) -> None:
    """Opening a first-release database migrates it to head, every old row intact and readable."""
    url = first_release_database
    engine = create_engine(url)
    before = _snapshot(engine)
    assert sum(map(len, before.values())) == 8

    store = RequestStore.from_url(url)

    assert _versions(engine) == [_head()]
    assert _snapshot(engine) == before
    done = store.get(OLD_DONE)
    assert done is not None
    assert done.state == RequestState.DONE
    assert (done.requester_id, done.decided_by, done.number) == ("UOLD1", "UOLD2", OLD_NUMBER)
    assert done.created_at == datetime(2025, 1, 2, 10, 0, tzinfo=UTC)
    assert done.decided_at == datetime(2025, 1, 2, 10, 1, tzinfo=UTC)
    assert done.outcome == "disconnected"
    assert done.dry_run is False
    assert done.chosen == CallMatch(
        conversation_id="conv-old-1",
        participant_id="part-old-1",
        number=OLD_NUMBER,
        purpose="customer",
        participant_name="Pat Caller",
        agent_names=("Jane Agent",),
        queue_names=("Billing",),
        direction="inbound",
        connected_at=datetime(2025, 1, 2, 9, 58, tzinfo=UTC),
    )
    assert _kinds(store, OLD_DONE) == ["requested", "approved", "outcome"]
    records = audit_records(store)
    assert [(r["request_id"], r["event"]) for r in records] == [
        (OLD_DONE, "requested"),
        (OLD_DONE, "approved"),
        (OLD_DONE, "outcome"),
        (OLD_PENDING, "requested"),
    ]
    outcome = records[2]
    assert (outcome["requester_id"], outcome["number"], outcome["outcome"]) == (
        "UOLD1",
        OLD_NUMBER,
        "disconnected",
    )
    assert (outcome["conversation_id"], outcome["participant_id"]) == ("conv-old-1", "part-old-1")
    assert records[1]["actor_id"] == "UOLD2"
    assert records[0]["at"] == "2025-01-02T10:00:00+00:00"
    assert all(record["dry_run"] is False for record in records)

    # The old pending request goes on under the new schema, and its events stay append-only.
    pending = store.get(OLD_PENDING)
    assert pending is not None
    assert (pending.state, pending.dry_run) == (RequestState.PENDING, False)
    claim = store.claim(OLD_PENDING, "UNEW1", 0)
    assert claim.status == ClaimStatus.CLAIMED
    assert _kinds(store, OLD_PENDING) == ["requested", "approved"]
    with pytest.raises(sa.exc.DatabaseError), engine.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM drop_events WHERE request_id = :r"), {"r": OLD_DONE}
        )
    # Opening it again changes nothing.
    RequestStore.from_url(url)
    assert _versions(engine) == [_head()]
    assert _kinds(store, OLD_DONE) == ["requested", "approved", "outcome"]
    engine.dispose()


@pytest.mark.parametrize("how", ["alembic-0001", "create_all"])
def test_first_release_events_export_with_the_same_facts_as_new_ones(
    postgres_url: str, how: str
) -> None:
    """A first-release approval exports its call and participant; its outcome, the approver."""
    # PostgreSQL only: a first-release SQLite database cannot be migrated at all (see above).
    _make_first_release_database(postgres_url, how)
    records = audit_records(RequestStore.from_url(postgres_url))
    approved = next(r for r in records if r["event"] == "approved")
    outcome = next(r for r in records if r["event"] == "outcome")
    assert (approved["conversation_id"], approved["participant_id"]) == (
        "conv-old-1",
        "part-old-1",
    )
    assert outcome["actor_id"] == "UOLD2"


def test_instances_opening_a_fresh_postgres_database_together_migrate_it_once(
    postgres_url: str,
) -> None:
    """Stores opening one fresh PostgreSQL database at once all work; it is migrated once."""
    count = 4
    start = threading.Barrier(count)
    errors: list[BaseException] = []
    answers: list[list[dict[str, Any]]] = []

    def open_store() -> None:
        try:
            start.wait(timeout=10)
            answers.append(audit_records(RequestStore.from_url(postgres_url)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert answers == [[]] * count
    engine = create_engine(postgres_url)
    assert _versions(engine) == [_head()]
    with engine.connect() as connection:
        triggers = connection.execute(
            sa.text("SELECT count(*) FROM pg_trigger WHERE tgname = 'drop_events_no_change'")
        ).scalar_one()
    assert triggers == 1
    engine.dispose()


# Each process imports first, then waits for the go file, so they open the store together.
_OPEN_STORE = """
import sys, time, pathlib
from bot.audit import audit_records
from bot.store import RequestStore
url, ready, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
ready.touch()
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
store = RequestStore.from_url(url)
try:
    audit_records(store)
except Exception as exc:
    print(f"unusable: {exc!r} caused by {exc.__cause__!r}")
else:
    print("ok")
"""


@pytest.mark.parametrize(
    "dialect",
    [
        "sqlite",
        "postgresql",
    ],
)
def test_processes_starting_together_on_a_new_database_all_work_at_once(
    tmp_path: Path, request: pytest.FixtureRequest, dialect: str
) -> None:
    """Processes opening a new database at the same moment all get a working store straight away."""
    if dialect == "sqlite":
        urls = [f"sqlite:///{tmp_path / f'new{attempt}.db'}" for attempt in range(3)]
    else:
        urls = [request.getfixturevalue("postgres_url")]
    root = str(Path(__file__).resolve().parents[1])
    for attempt, url in enumerate(urls):
        folder = tmp_path / f"attempt{attempt}"
        folder.mkdir()
        go = folder / "go"
        readies = [folder / f"ready{i}" for i in range(4)]
        processes = [
            subprocess.Popen(  # noqa: S603 - our own interpreter
                [sys.executable, "-c", _OPEN_STORE, url, str(ready), str(go)],
                cwd=root,
                env=base_env(tmp_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for ready in readies
        ]
        try:
            deadline = time.monotonic() + 30
            while not all(r.exists() for r in readies) and time.monotonic() < deadline:
                time.sleep(0.01)
            go.touch()
            outputs = [process.communicate(timeout=30)[0] for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        assert all(out.strip().endswith("ok") for out in outputs), outputs
        assert _versions(create_engine(url)) == [_head()]


# ---------------------------------------------------------------------------- append-only


def test_the_database_refuses_to_change_or_delete_audit_events(database_url: str) -> None:
    """An UPDATE or DELETE on drop_events raises in the database itself, and the events stay."""
    store = RequestStore.from_url(database_url)
    match = CallMatch(
        conversation_id="conv-1",
        participant_id="part-1",
        number="+15551234567",
        purpose="customer",
        participant_name=None,
        agent_names=("Jane Agent",),
        queue_names=("Billing",),
        direction="inbound",
        connected_at=None,
    )
    request = store.create_request(
        team_id="T0001",
        channel_id="C0001",
        requester_id=SUPERVISOR,
        number=match.number,
        candidates=[match],
        ttl_seconds=300,
        response_url=None,
    )
    store.cancel(request.id, SECOND_SUPERVISOR)
    before = store.events(request.id)
    assert [event["kind"] for event in before] == ["requested", "cancelled"]
    engine = create_engine(database_url)

    for statement in (
        "UPDATE drop_events SET actor_id = 'UEVIL'",
        "UPDATE drop_events SET detail = '{}' WHERE kind = 'cancelled'",
        "DELETE FROM drop_events",
        "DELETE FROM drop_events WHERE kind = 'requested'",
    ):
        with pytest.raises(sa.exc.DatabaseError) as raised, engine.begin() as connection:
            connection.execute(sa.text(statement))
        assert "append-only" in str(raised.value), statement
    events = sa.table("drop_events", sa.column("kind"), sa.column("actor_id"))
    with pytest.raises(sa.exc.DatabaseError), engine.begin() as connection:
        connection.execute(sa.update(events).values(actor_id=None))
    if database_url.startswith("postgresql"):
        # Row triggers do not see TRUNCATE; a statement trigger does.
        with pytest.raises(sa.exc.DatabaseError) as raised, engine.begin() as connection:
            connection.execute(sa.text("TRUNCATE drop_events"))
        assert "append-only" in str(raised.value)

    assert store.events(request.id) == before
    engine.dispose()

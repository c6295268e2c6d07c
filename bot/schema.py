"""The database schema of drop-caller's store, and how it is created and migrated.

Alembic migrations live beside this module (`bot/migrations`); `migrate` brings any database
(new, made by the first release, or by an earlier one) to the newest revision in place,
keeping every row. Instances starting together migrate once: PostgreSQL takes an advisory
lock, a SQLite file a file lock. A database already at the newest revision needs no Alembic
at all, which saves its import at every start.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest migration's revision (a test keeps it equal to Alembic's head).
SCHEMA_HEAD = "0005"
# Any fixed number: the PostgreSQL advisory lock that serialises migrations across instances.
_MIGRATION_LOCK = 7_341_002

metadata = sa.MetaData()

drop_requests = sa.Table(
    "drop_requests",
    metadata,
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
    sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("card_shown_state", sa.String(16)),
    sa.Column("audit_claimed_at", sa.DateTime(timezone=True)),
    sa.Column("audit_posted_at", sa.DateTime(timezone=True)),
    # What the command named: "number" (`number` is it), "conversation" or "agent" (`target`
    # holds the conversation id or the email).
    sa.Column("target_kind", sa.String(16), nullable=False, server_default="number"),
    sa.Column("target", sa.Text),
    # Why the requester asked (what followed the target), and whether the approval was
    # "Disconnect and block".
    sa.Column("reason", sa.Text),
    sa.Column("block", sa.Boolean, nullable=False, server_default=sa.false()),
    # How the card was posted: "chat" (chat.postMessage: message_ts) or "response_url" (the
    # command's own response_url, when the bot is not in the channel).
    sa.Column("card_via", sa.String(16)),
    # Catching up on a lost card update or audit line: attempts so far, the next one not
    # before, and when the bot gave up (bot.drops.DropWorkflow.catch_up).
    sa.Column("announce_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("announce_after", sa.DateTime(timezone=True)),
    sa.Column("announce_abandoned_at", sa.DateTime(timezone=True)),
    # While an instance carries out an approved drop it keeps renewing this; a drop whose
    # lease has run out was interrupted (crash recovery).
    sa.Column("lease_until", sa.DateTime(timezone=True)),
)

drop_candidates = sa.Table(
    "drop_candidates",
    metadata,
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
    # The candidate's own number (older rows: the request's), and for a stuck conversation
    # offered whole, what keeps it open (JSON).
    sa.Column("number", sa.String(20)),
    sa.Column("stuck", sa.Text),
)

drop_participant_claims = sa.Table(
    "drop_participant_claims",
    metadata,
    sa.Column("conversation_id", sa.String(64), primary_key=True),
    sa.Column("participant_id", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(32), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
)

# The numbers the bot has put in the org's block-list data table, and what became of each
# block: active, expiring (an instance is deleting its row), expired, unblocked.
drop_blocks = sa.Table(
    "drop_blocks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("table_id", sa.String(64), nullable=False),
    sa.Column("number", sa.String(20), nullable=False),
    sa.Column("row_key", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("requested_by", sa.String(32)),
    sa.Column("approved_by", sa.String(32)),
    sa.Column("request_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("ended_by", sa.String(32)),
    sa.Index("ix_drop_blocks_state_expires", "state", "expires_at"),
    sa.Index("ix_drop_blocks_number_state", "number", "state"),
)

drop_events = sa.Table(
    "drop_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(32), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor_id", sa.String(32)),
    sa.Column("detail", sa.Text, nullable=False),
)


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision, keeping every row (idempotent)."""
    if schema_version(engine) == SCHEMA_HEAD:
        return
    from alembic import command
    from alembic.config import Config

    with _sqlite_file_lock(engine.url), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = connection
        tables = sa.inspect(connection).get_table_names()
        versioned = (
            "alembic_version" in tables
            and connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one()
        )
        if "drop_requests" in tables and not versioned:
            # Created by the first release with create_all(), which was revision 0001.
            command.stamp(config, "0001")
        command.upgrade(config, "head")


def schema_version(engine: sa.Engine) -> str | None:
    """The schema revision recorded in the database, or None (new or first release)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        version = connection.execute(
            sa.text("SELECT version_num FROM alembic_version")
        ).scalar_one_or_none()
    return str(version) if version is not None else None


@contextlib.contextmanager
def _sqlite_file_lock(url: sa.URL) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (PostgreSQL uses a lock)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    with open(f"{url.database}.migrate-lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while one writer commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine for a `sqlite:///…` or `postgresql://…` URL."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Wait for a concurrent writer instead of failing at once.
        connect_args["timeout"] = 15
    else:
        # Fail fast while PostgreSQL is down, so commands get a clear answer in time.
        connect_args["connect_timeout"] = 3
    engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    if url.startswith("sqlite"):
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine

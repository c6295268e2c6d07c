"""A fresh PostgreSQL database per test, on the local server, or a clear reason to skip."""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

# The machine's PostgreSQL: 127.0.0.1:5432, trust authentication, database "test".
ADMIN_URL = os.environ.get("DROP_CALLER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def unavailable_reason() -> str | None:
    """None when PostgreSQL answers; otherwise why the PostgreSQL tests are skipped."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {ADMIN_URL} ({exc.__class__.__name__})"
    return None


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its postgresql:// URL, drop it afterwards."""
    import psycopg

    name = f"drop_caller_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

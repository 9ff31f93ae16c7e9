"""Telling a failing dependency (wait and retry) from a failing event or bug (set aside).

Drivers wrap each other's errors (eventsourcing wraps psycopg, SQLAlchemy wraps asyncpg),
so the decision looks through the whole chain of causes, and trusts PostgreSQL's own
SQLSTATE where one is present.
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import eventsourcing.persistence
import psycopg
import sqlalchemy.exc

# 08: connection exception; 53: insufficient resources; 57: operator intervention
# (shutdown, "the database system is starting up").
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
# Serialization failure, deadlock, lock not available: the same work will succeed later.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.DisconnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
)
BAD_DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,
    psycopg.DataError,
    eventsourcing.persistence.DataError,
    sqlalchemy.exc.DataError,
)


def causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]


def is_bad_data(error: BaseException) -> bool:
    """PostgreSQL refused a value itself (a NUL character, a number out of range)."""
    return any(isinstance(e, BAD_DATA_ERRORS) for e in causes(error))


def is_transient(error: BaseException) -> bool:
    """Worth retrying: the database or the network failed, not the event or the code."""
    chain = list(causes(error))
    if any(isinstance(e, BAD_DATA_ERRORS) for e in chain):
        return False
    for cause in chain:
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and len(state) == 5:
            return state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES
    if any(isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated for e in chain):
        return True
    return any(isinstance(e, CONNECTION_ERRORS) for e in chain)

import asyncpg
import psycopg
import sqlalchemy.exc
from eventsourcing.persistence import OperationalError as EventStoreOperationalError

from casetrail.runtime.faults import is_transient


def wrapped_by_sqlalchemy(error: BaseException) -> sqlalchemy.exc.DBAPIError:
    # SQLAlchemy's asyncpg adapter wraps the driver error twice: adapter, then DBAPIError.
    adapted = Exception("adapted")
    adapted.__cause__ = error
    return sqlalchemy.exc.DBAPIError("SELECT 1", {}, adapted)


def test_a_database_starting_up_or_out_of_connections_is_waited_for():
    assert is_transient(wrapped_by_sqlalchemy(asyncpg.exceptions.CannotConnectNowError("starting")))
    assert is_transient(wrapped_by_sqlalchemy(asyncpg.exceptions.TooManyConnectionsError("full")))
    assert is_transient(wrapped_by_sqlalchemy(asyncpg.exceptions.DeadlockDetectedError("dl")))


def test_a_lost_connection_is_waited_for():
    assert is_transient(ConnectionRefusedError())
    assert is_transient(EventStoreOperationalError("server closed the connection"))
    assert is_transient(psycopg.OperationalError("connection failed"))


def test_bad_data_and_bugs_are_not_retried_for_ever():
    assert not is_transient(wrapped_by_sqlalchemy(asyncpg.exceptions.DataError("out of range")))
    assert not is_transient(wrapped_by_sqlalchemy(asyncpg.exceptions.UniqueViolationError("dup")))
    assert not is_transient(KeyError("bug"))
    assert not is_transient(psycopg.DataError("bad"))

"""The eventsourcing library on PostgreSQL, and how its stored events become CloudEvents.

Each service keeps its aggregates in one eventsourcing Application. Its notification log
is the transactional outbox: `casetrail.runtime.relay` publishes it to Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg.sql import SQL, Composable, Identifier

from casetrail.contracts.envelope import Envelope
from casetrail.contracts.events import Payload

Statement = tuple[str | Composable, Sequence[Any] | dict[str, Any]]


class ProcessRecorder(PostgresProcessRecorder):
    """Also runs the caller's SQL statements in the very transaction that stores events.

    That is how a service keeps a read model (timers, known cases) exactly in step with
    its events without a second transaction that could fail on its own.
    """

    def _insert_events(self, curs: Any, stored_events: Sequence[Any], **kwargs: Any) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        for statement, params in kwargs.get("statements", ()):
            curs.execute(SQL(statement) if isinstance(statement, str) else statement, params)


def postgres_env(database_url: str, pool_size: int, create_tables: bool) -> dict[str, str]:
    parts = urlsplit(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "PROCESS_RECORDER_TOPIC": f"{ProcessRecorder.__module__}:{ProcessRecorder.__qualname__}",
        "POSTGRES_DBNAME": parts.path.lstrip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or ""),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "CREATE_TABLE": "y" if create_tables else "n",
    }


PUBLISHED: dict[type[Any], type[Payload]] = {}


def publish(aggregate_event: type[Any], contract: type[Payload]) -> None:
    """Declares an aggregate event the private twin of a public contract event.

    The event's attributes carry the contract's required fields (and any optional ones it
    knows) plus `causation_id` and `correlation_id`; the relay builds the CloudEvent from
    them, deterministically, so a re-published event is byte-identical to the first.
    """
    attributes: set[str] = set()
    for klass in aggregate_event.__mro__:
        attributes |= set(getattr(klass, "__annotations__", {}))
    required = {name for name, info in contract.model_fields.items() if info.is_required()}
    missing = {*required, "causation_id", "correlation_id"} - attributes
    if missing:
        name = aggregate_event.__qualname__
        raise TypeError(f"{name} lacks {sorted(missing)} to publish {contract.TYPE}")
    PUBLISHED[aggregate_event] = contract


def event_id(aggregate_name: str, originator_id: UUID, originator_version: int) -> UUID:
    """The CloudEvent id of a stored event: stable, and unique across services.

    Services may reuse the case id for their own aggregates, so the aggregate's class
    is part of the name.
    """
    name = f"casetrail:{aggregate_name}:{originator_id}:{originator_version}"
    return uuid5(NAMESPACE_URL, name)


def to_envelope(domain_event: DomainEventProtocol[Any], source: str) -> Envelope | None:
    contract = PUBLISHED.get(type(domain_event))
    if contract is None:
        return None
    # Events stored before an optional field existed take the contract's default for it.
    fields = {
        name: getattr(domain_event, name)
        for name in contract.model_fields
        if hasattr(domain_event, name)
    }
    data = contract.model_validate(fields)
    return Envelope(
        id=event_id(
            type(domain_event).__qualname__.rsplit(".", 1)[0],  # the aggregate's class name
            domain_event.originator_id,
            domain_event.originator_version,
        ),
        source=source,
        type=contract.TYPE,
        time=domain_event.timestamp,
        subject=data.subject_id,
        correlationid=domain_event.correlation_id,  # type: ignore[attr-defined]
        causationid=domain_event.causation_id,  # type: ignore[attr-defined]
        sequence=domain_event.originator_version,
        data=data.model_dump(mode="json"),
    )


class ServiceApplication(Application[UUID]):
    """An Application whose recorder also tracks consumed positions (a process recorder)."""

    def __init__(self, database_url: str, pool_size: int = 8, create_tables: bool = True) -> None:
        super().__init__(env=postgres_env(database_url, pool_size, create_tables))

    @property
    def events_table(self) -> str:
        return self.recorder.events_table_name

    def construct_recorder(self) -> Any:
        return self.factory.process_recorder()

    def save_tracked(
        self,
        *aggregates: Aggregate | None,
        tracking: Tracking | None = None,
        statements: Iterable[Statement] = (),
    ) -> None:
        """Saves new events, the consumed position and the SQL statements in one transaction."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent(tracking=tracking)
        processing_event.collect_events(*aggregates, statements=tuple(statements))
        self._record(processing_event)

    def rebuild_read_models(
        self,
        tables: Sequence[str],
        rows_of: Callable[[Any], Iterable[Statement]],
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> int:
        """Empties the read-model tables and writes them again from the event store alone,
        one aggregate at a time, in one transaction: readers see the old rows until the new
        ones are complete. Returns how many aggregates were folded."""
        originators: dict[UUID, None] = {}
        start: int | None = None
        while batch := self.recorder.select_notifications(
            start, 1000, inclusive_of_start=start is None
        ):
            originators.update((n.originator_id, None) for n in batch)
            start = batch[-1].id
        with self.recorder.datastore.transaction(commit=True) as cursor:
            for table in tables:
                cursor.execute(SQL("DELETE FROM {}").format(Identifier(table)))
            for done, originator_id in enumerate(originators, start=1):
                for statement, params in rows_of(self.repository.get(originator_id)):
                    cursor.execute(statement, params)
                if done % 500 == 0 or done == len(originators):
                    progress(done, len(originators))
        return len(originators)

    def is_tracked(self, position_name: str, next_offset: int) -> bool:
        return self.recorder.has_tracking_id(position_name, next_offset)

    def position(self, position_name: str) -> int | None:
        return self.recorder.max_tracking_id(position_name)

    def record_position(self, tracking: Tracking) -> None:
        try:
            self.recorder.insert_tracking(tracking)
        except IntegrityError:
            pass  # already at or past this position: nothing to do

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
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent, Tracking
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg.sql import SQL, Composable, Identifier

from casetrail.contracts import personal
from casetrail.contracts.envelope import Envelope
from casetrail.contracts.events import Payload
from casetrail.runtime.keyring import Keyring

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


def _personal_type(domain_event_class: type[Any]) -> str | None:
    contract = PUBLISHED.get(domain_event_class)
    if contract is None or contract.TYPE not in personal.PERSONAL_FIELDS:
        return None
    return contract.TYPE


def _with_state(domain_event: Any, state: dict[str, Any]) -> Any:
    twin = object.__new__(type(domain_event))
    object.__setattr__(twin, "__dict__", state)
    return twin


class SealingMapper(Mapper[UUID]):
    """Stores personal fields sealed under their customer's key, and opens them on load.

    So the event store, and everything published from it, holds personal data only in a
    form that erasing the customer's key makes unreadable; aggregates still see plain
    values (or `[erased]`), and the relay publishes the stored, sealed form unchanged.
    """

    def __init__(self, transcoder: Any, keyring: Keyring) -> None:
        super().__init__(transcoder=transcoder)
        self.keyring = keyring

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        event_type = _personal_type(type(domain_event))
        if event_type is not None:
            state = dict(vars(domain_event))
            key = self.keyring.sealing_key(state.get("case_id"), state.get("customer_id"))
            domain_event = _with_state(domain_event, personal.seal_personal(event_type, state, key))
        return super().to_stored_event(domain_event)

    def to_recorded_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        """The event exactly as stored: personal fields still sealed."""
        return super().to_domain_event(stored_event)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        domain_event = self.to_recorded_event(stored_event)
        event_type = _personal_type(type(domain_event))
        if event_type is None:
            return domain_event
        state = dict(vars(domain_event))
        keys = self.keyring.keys(personal.key_ids_in(event_type, state))
        return _with_state(domain_event, personal.reveal_personal(event_type, state, keys))


class ServiceApplication(Application[UUID]):
    """An Application whose recorder also tracks consumed positions (a process recorder).

    Given a keyring, personal fields are stored sealed (`SealingMapper`).
    """

    def __init__(
        self,
        database_url: str,
        pool_size: int = 8,
        create_tables: bool = True,
        *,
        keyring: Keyring | None = None,
    ) -> None:
        self.keyring = keyring
        super().__init__(env=postgres_env(database_url, pool_size, create_tables))

    def construct_mapper(self) -> Mapper[UUID]:
        if self.keyring is None:
            return super().construct_mapper()
        return SealingMapper(self.construct_transcoder(), self.keyring)

    def close(self) -> None:
        super().close()
        if self.keyring is not None:
            self.keyring.close()  # reopened on its next use, should anyone still need it

    def recorded_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        """A stored event as it was recorded, for publishing: nothing sealed is opened."""
        if isinstance(self.mapper, SealingMapper):
            return self.mapper.to_recorded_event(stored_event)
        return self.mapper.to_domain_event(stored_event)

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

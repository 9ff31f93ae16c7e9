"""Intake's event store (cases, customers) and the read model that routes messages to cases.

The read tables are written by the very transaction that stores the events
(`save_tracked(statements=...)`), so the routing view can never disagree with the events.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
)

from casetrail.intake.domain import (
    Customer,
    CustomerAlreadyErased,
    IntakeCase,
    KnownCase,
    Route,
    RoutingFacts,
    as_point,
    case_id_for_idempotency_key,
    change_contacts,
    continue_case,
    customer_id_for,
    message_id_for,
    message_key,
    open_case,
    record_erasure,
    references_in,
    register_customer,
    route,
    stable_id,
)
from casetrail.intake.inbound import Contact, InboundAttachment, InboundMessage
from casetrail.intake.policy import IntakePolicy
from casetrail.runtime.eventstore import ServiceApplication, Statement
from casetrail.runtime.keyring import KeyDestroyed, Keyring, case_owner, customer_owner
from casetrail.runtime.service import DomainError

tables = MetaData()
deliveries = Table(
    "intake_deliveries",
    tables,
    Column("delivery_key", Text, primary_key=True),
    Column("case_id", Uuid, nullable=False),
    Column("message_id", Uuid, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
thread_ids = Table(
    "intake_thread_ids",
    tables,
    Column("rfc_message_id", Text, primary_key=True),
    Column("case_id", Uuid, nullable=False),
)
cases = Table(
    "intake_cases",
    tables,
    Column("case_id", Uuid, primary_key=True),
    Column("customer_id", Uuid),
    Column("reference", String(40), nullable=False, unique=True),
    Column("open", Boolean, nullable=False),
    Column("channel", String(40), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("last_message_at", DateTime(timezone=True), nullable=False),
    Index("intake_cases_customer", "customer_id", "open", "last_message_at"),
)
contacts = Table(
    "intake_contacts",
    tables,
    Column("kind", String(20), nullable=False),
    Column("value", String(320), nullable=False),
    Column("customer_id", Uuid, nullable=False),
    PrimaryKeyConstraint("kind", "value"),
    Index("intake_contacts_customer", "customer_id"),
)
attachments = Table(
    "intake_attachments",
    tables,
    Column("sha256", String(64), primary_key=True),
    Column("media_type", String(255), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("content", LargeBinary),
    Column("path", Text),
    Column("stored_at", DateTime(timezone=True), nullable=False),
)


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "idempotency_key_reused"


class AttachmentTooLarge(DomainError):
    status_code = 413
    code = "attachment_too_large"


class AttachmentRefused(DomainError):
    status_code = 415
    code = "attachment_type_refused"


class TooManyAttachments(DomainError):
    status_code = 422
    code = "too_many_attachments"


class UnknownAttachment(DomainError):
    status_code = 422
    code = "unknown_attachment"


class StillContended(DomainError):
    status_code = 503
    code = "contended"


@dataclass(frozen=True)
class Receipt:
    case_id: UUID
    message_id: UUID
    reference: str | None
    opened: bool
    duplicate: bool
    rule_id: str


@dataclass(frozen=True)
class PreparedAttachment:
    """An attachment checked against the policy, ready to store with the message."""

    ref: dict[str, Any]
    content: bytes | None
    path: str | None


def _known(row: dict[str, Any] | None) -> KnownCase | None:
    if row is None:
        return None
    return KnownCase(row["case_id"], row["reference"], row["open"], row["last_message_at"])


class IntakeApplication(ServiceApplication):
    name = "intake"

    def __init__(
        self,
        database_url: str,
        pool_size: int = 8,
        create_tables: bool = True,
        *,
        attachment_dir: Path | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        super().__init__(database_url, pool_size, create_tables, keyring=keyring)
        self.attachment_dir = attachment_dir

    # -- attachments -----------------------------------------------------------------------

    def prepare_attachments(
        self, files: list[InboundAttachment], policy: IntakePolicy
    ) -> list[PreparedAttachment]:
        rules = policy.attachments
        if len(files) > rules.max_per_message:
            raise TooManyAttachments(
                f"at most {rules.max_per_message} attachments per message", count=len(files)
            )
        return [self._prepare(file, policy) for file in files]

    def _prepare(self, file: InboundAttachment, policy: IntakePolicy) -> PreparedAttachment:
        rules = policy.attachments
        if len(file.content) > rules.max_bytes:
            raise AttachmentTooLarge(
                f"{file.filename} is larger than {rules.max_bytes} bytes",
                filename=file.filename,
                size_bytes=len(file.content),
                max_bytes=rules.max_bytes,
            )
        media_type = file.media_type.lower() or "application/octet-stream"
        if not rules.accepts(media_type):
            raise AttachmentRefused(
                f"{media_type} attachments are not accepted", filename=file.filename
            )
        digest = hashlib.sha256(file.content).hexdigest()
        ref = {
            "filename": file.filename[:255] or "attachment",
            "media_type": media_type,
            "size_bytes": len(file.content),
            "sha256": digest,
        }
        if self.attachment_dir is None:
            return PreparedAttachment(ref, file.content, None)
        return PreparedAttachment(ref, None, str(self._write_file(digest, file.content)))

    def _write_file(self, digest: str, content: bytes) -> Path:
        """Content-addressed and fsynced before the row that points at it is committed."""
        assert self.attachment_dir is not None
        folder = self.attachment_dir / digest[:2]
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / digest
        if not target.exists():
            with tempfile.NamedTemporaryFile(dir=folder, delete=False) as temporary:
                temporary.write(content)
                temporary.flush()
                os.fsync(temporary.fileno())
            os.replace(temporary.name, target)
        return target

    def store_attachment(self, prepared: PreparedAttachment, now: datetime) -> None:
        with self.recorder.datastore.transaction(commit=True) as cursor:
            statement, params = _attachment_row(prepared, now)
            cursor.execute(statement, params)

    def uploaded_attachments(self, wanted: list[tuple[str, str]]) -> list[PreparedAttachment]:
        """Attachments uploaded earlier, named by (sha256, filename)."""
        digests = [sha for sha, _ in wanted]
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT sha256, media_type, size_bytes FROM intake_attachments "
                "WHERE sha256 = ANY(%s)",
                (digests,),
            )
            found = {row["sha256"]: row for row in cursor.fetchall()}
        missing = sorted(set(digests) - set(found))
        if missing:
            raise UnknownAttachment("upload these attachments first", sha256=missing)
        return [
            PreparedAttachment(
                {
                    "filename": filename,
                    "media_type": found[sha]["media_type"],
                    "size_bytes": found[sha]["size_bytes"],
                    "sha256": sha,
                },
                None,
                None,
            )
            for sha, filename in wanted
        ]

    def attachment(self, sha256: str) -> tuple[str, bytes] | None:
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT media_type, content, path FROM intake_attachments WHERE sha256 = %s",
                (sha256,),
            )
            row = cursor.fetchone()
        if row is None:
            return None
        content = row["content"] if row["content"] is not None else Path(row["path"]).read_bytes()
        return row["media_type"], bytes(content)

    # -- messages --------------------------------------------------------------------------

    def receive(
        self,
        message: InboundMessage,
        *,
        policy: IntakePolicy,
        fingerprint: str,
        now: datetime,
        idempotency_key: str | None = None,
        also_known_as: tuple[Contact, ...] = (),
        prepared: list[PreparedAttachment] | None = None,
        always_open: bool = False,
    ) -> Receipt:
        """Records the message on its case (opening one if needed), once per delivery key.

        Optimistic: two messages racing for the same case or customer both read, one
        saves, the other's save fails on the version or the unique contact and it routes
        again with what the winner wrote.
        """
        key = message_key(message, idempotency_key)
        files = prepared or []
        named = list(dict.fromkeys([*([message.sender] if message.sender else []), *also_known_as]))
        for _ in range(10):
            # One round of reads on one connection: each checkout costs round trips.
            with self.recorder.datastore.transaction(commit=False) as cursor:
                earlier = self._earlier_delivery(cursor, key, fingerprint)
                if earlier is not None:
                    return earlier
                owners = self._owners(cursor, named)
                known_customer = next(
                    (owners[c.kind, c.value] for c in named if _in(owners, c)), None
                )
                facts = (
                    RoutingFacts()
                    if always_open
                    else self._routing_facts(cursor, message, known_customer, policy)
                )
            try:
                customer, customer_changed, new_points = self._customer_for(
                    message, named, owners, known_customer, now
                )
            except CustomerAlreadyErased:
                continue  # erased since we read who owns these contacts: they are no one's now
            customer_id = customer.id if customer is not None else None
            if always_open:
                decision = Route(None, "OPEN-REQUESTED")
            else:
                decision = route(facts, policy, now)
            message_id = message_id_for(key)
            refs = [file.ref for file in files]
            if decision.case_id is None:
                case_id = self._new_case_id(key, idempotency_key)
                case = open_case(
                    case_id=case_id,
                    message=message,
                    message_id=message_id,
                    customer_id=customer_id,
                    attachments=refs,
                    route_taken=decision,
                    policy=policy,
                    request_fingerprint=fingerprint,
                    now=now,
                )
            else:
                case = self.repository.get(decision.case_id)
                continue_case(
                    case,
                    message=message,
                    message_id=message_id,
                    customer_id=customer_id,
                    attachments=refs,
                    route_taken=decision,
                    now=now,
                )
            statements = self._read_model_rows(
                case, decision, message, key, message_id, fingerprint, customer_id, now
            )
            statements += [_contact_row(p, customer_id) for p in new_points if customer_id]
            statements += [_attachment_row(f, now) for f in files if f.content or f.path]
            try:
                self.save_tracked(
                    case, customer if customer_changed else None, statements=statements
                )
            except IntegrityError:
                continue
            except KeyDestroyed as erased:
                if customer is None or erased.owner != customer_owner(customer.id):
                    raise
                # The key went first and the erasure's record is not there yet (or never came:
                # its request failed in between). Record it, and the sender is someone new.
                self.erase_customer(
                    customer.id,
                    reason="erasure whose key was destroyed",
                    erased_by="intake",
                    now=now,
                )
                continue
            return Receipt(
                case.id,
                message_id,
                case.reference,
                decision.case_id is None,
                False,
                decision.rule_id,
            )
        raise StillContended("too many concurrent messages for this case; retry")

    def _new_case_id(self, key: str | None, idempotency_key: str | None) -> UUID:
        if idempotency_key:
            return case_id_for_idempotency_key(idempotency_key)
        return stable_id("case", key) if key else uuid4()

    def _earlier_delivery(self, cursor: Any, key: str | None, fingerprint: str) -> Receipt | None:
        if key is None:
            return None
        cursor.execute(
            "SELECT d.case_id, d.message_id, d.fingerprint, c.reference "
            "FROM intake_deliveries d LEFT JOIN intake_cases c USING (case_id) "
            "WHERE d.delivery_key = %s",
            (key,),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        if row["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused(
                "this delivery was recorded before with different content",
                case_id=str(row["case_id"]),
            )
        return Receipt(row["case_id"], row["message_id"], row["reference"], False, True, "REPEAT")

    def _customer_for(
        self,
        message: InboundMessage,
        named: list[Contact],
        owners: dict[tuple[str, str], UUID],
        known_customer: UUID | None,
        now: datetime,
    ) -> tuple[Customer | None, bool, list[dict[str, str]]]:
        """The customer these contacts belong to (registered if new), whether their record
        changed, and the contact points newly theirs."""
        if not named:
            return None, False, []
        updated_by = f"channel:{message.provider}"
        if known_customer is None:
            customer_id = self._unused_customer_id(named[0])
            customer = register_customer(customer_id, named, message.sender_name, updated_by, now)
            return customer, True, list(customer.contacts)
        customer = self.repository.get(known_customer)
        unowned = [c for c in named if not _in(owners, c)]
        name = None if customer.name else message.sender_name
        changed = change_contacts(customer, add=unowned, name=name, updated_by=updated_by, now=now)
        return customer, changed, [as_point(c) for c in unowned] if changed else []

    def _unused_customer_id(self, contact: Contact) -> UUID:
        """The first generation of the contact's customer id no record holds yet."""
        for generation in range(1000):
            customer_id = customer_id_for(contact, generation)
            if self.customer(customer_id) is None:
                return customer_id
        raise StillContended("no customer id is free for this contact")

    def _owners(self, cursor: Any, named: list[Contact]) -> dict[tuple[str, str], UUID]:
        if not named:
            return {}
        cursor.execute(
            "SELECT kind, value, customer_id FROM intake_contacts "
            "WHERE (kind, value) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([c.kind for c in named], [c.value for c in named]),
        )
        return {(r["kind"], r["value"]): r["customer_id"] for r in cursor.fetchall()}

    def _routing_facts(
        self,
        cursor: Any,
        message: InboundMessage,
        customer_id: UUID | None,
        policy: IntakePolicy,
    ) -> RoutingFacts:
        earlier_ids = list(message.thread.earlier_ids)
        text = f"{message.subject or ''}\n{message.body}"
        quoted = list(references_in(text, policy.reference_prefix))
        columns = "c.case_id, c.reference, c.open, c.last_message_at"
        latest_first = "ORDER BY c.last_message_at DESC LIMIT 1"
        threaded = referenced = latest = None
        if earlier_ids:
            cursor.execute(
                f"SELECT {columns} FROM intake_thread_ids t JOIN intake_cases c "
                f"USING (case_id) WHERE t.rfc_message_id = ANY(%s) {latest_first}",
                (earlier_ids,),
            )
            threaded = cursor.fetchone()
        if quoted:
            cursor.execute(
                f"SELECT {columns} FROM intake_cases c WHERE c.reference = ANY(%s) {latest_first}",
                (quoted,),
            )
            referenced = cursor.fetchone()
        if customer_id is not None:
            cursor.execute(
                f"SELECT {columns} FROM intake_cases c WHERE c.customer_id = %s "
                f"AND c.open {latest_first}",
                (customer_id,),
            )
            latest = cursor.fetchone()
        return RoutingFacts(_known(threaded), _known(referenced), _known(latest))

    def _read_model_rows(
        self,
        case: IntakeCase,
        decision: Route,
        message: InboundMessage,
        key: str | None,
        message_id: UUID,
        fingerprint: str,
        customer_id: UUID | None,
        now: datetime,
    ) -> list[Statement]:
        rows: list[Statement] = []
        if key is not None:
            rows.append(
                (
                    "INSERT INTO intake_deliveries "
                    "(delivery_key, case_id, message_id, fingerprint, recorded_at) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (key, case.id, message_id, fingerprint, now),
                )
            )
        if message.thread.message_id:
            rows.append(
                (
                    "INSERT INTO intake_thread_ids (rfc_message_id, case_id) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (message.thread.message_id, case.id),
                )
            )
        if decision.case_id is None:
            rows.append(
                (
                    "INSERT INTO intake_cases (case_id, customer_id, reference, open, channel, "
                    "opened_at, last_message_at) VALUES (%s, %s, %s, true, %s, %s, %s)",
                    (case.id, customer_id, case.reference, message.channel.value, now, now),
                )
            )
        else:
            rows.append(
                (
                    "UPDATE intake_cases SET last_message_at = greatest(last_message_at, %s) "
                    "WHERE case_id = %s",
                    (now, case.id),
                )
            )
        return rows

    # -- reading ---------------------------------------------------------------------------

    def case(self, case_id: UUID) -> IntakeCase | None:
        try:
            return self.repository.get(case_id)
        except AggregateNotFoundError:
            return None

    def customer(self, customer_id: UUID) -> Customer | None:
        try:
            return self.repository.get(customer_id)
        except AggregateNotFoundError:
            return None

    def update_customer(
        self,
        customer_id: UUID,
        *,
        add: list[Contact],
        remove: list[Contact],
        name: str | None,
        updated_by: str,
        now: datetime,
    ) -> Customer | None:
        for _ in range(10):
            customer = self.customer(customer_id)
            if customer is None:
                return None
            with self.recorder.datastore.transaction(commit=False) as cursor:
                owners = self._owners(cursor, add)
            taken = [c for c in add if owners.get((c.kind, c.value), customer_id) != customer_id]
            if taken:
                raise ContactTaken(
                    "these contact points belong to another customer",
                    contacts=[as_point(c) for c in taken],
                )
            fresh = [c for c in add if not _in(owners, c)]
            if not change_contacts(
                customer, add=fresh, remove=remove, name=name, updated_by=updated_by, now=now
            ):
                return customer
            statements = [_contact_row(as_point(c), customer_id) for c in fresh]
            statements += [
                (
                    "DELETE FROM intake_contacts WHERE kind = %s AND value = %s "
                    "AND customer_id = %s",
                    (c.kind, c.value, customer_id),
                )
                for c in remove
            ]
            try:
                self.save_tracked(customer, statements=statements)
            except IntegrityError:
                continue
            return customer
        raise StillContended("the customer's record is changing; retry")

    def erase_customer(
        self, customer_id: UUID, *, reason: str, erased_by: str, now: datetime
    ) -> Customer | None:
        """Destroys the customer's data key, then records the erasure and forgets their
        contact points, so no message finds them again.

        The key goes first: an erasure recorded with its key still alive would be a lie.
        A failure in between leaves the key destroyed; repeating the request records it.
        """
        keyring = self.keyring
        assert keyring is not None, "intake seals personal data: it has a keyring"
        for _ in range(10):
            customer = self.customer(customer_id)
            if customer is None or customer.erased_at is not None:
                return customer
            with self.recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    "SELECT case_id FROM intake_cases WHERE customer_id = %s", (customer_id,)
                )
                their_cases = [row["case_id"] for row in cursor.fetchall()]
            # Their cases' own keys too: what was sealed under a case's key (a message that
            # named no one) is theirs as well.
            owners = [customer_owner(customer_id), *map(case_owner, their_cases)]
            erasure = keyring.destroy(owners, by=erased_by, reason=reason)
            record_erasure(
                customer, key_ids=erasure.key_ids, reason=reason, erased_by=erased_by, now=now
            )
            forget: Statement = (
                "DELETE FROM intake_contacts WHERE customer_id = %s",
                (customer_id,),
            )
            try:
                self.save_tracked(customer, statements=[forget])
            except IntegrityError:
                continue
            return customer
        raise StillContended("the customer's record is changing; retry")


class ContactTaken(DomainError):
    status_code = 409
    code = "contact_belongs_to_another_customer"


def _in(owners: dict[tuple[str, str], UUID], contact: Contact) -> bool:
    return (contact.kind, contact.value) in owners


def _contact_row(point: dict[str, str], customer_id: UUID | None) -> Statement:
    return (
        "INSERT INTO intake_contacts (kind, value, customer_id) VALUES (%s, %s, %s)",
        (point["kind"], point["value"], customer_id),
    )


def _attachment_row(prepared: PreparedAttachment, now: datetime) -> Statement:
    ref = prepared.ref
    return (
        "INSERT INTO intake_attachments (sha256, media_type, size_bytes, content, path, "
        "stored_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (sha256) DO NOTHING",
        (ref["sha256"], ref["media_type"], ref["size_bytes"], prepared.content, prepared.path, now),
    )

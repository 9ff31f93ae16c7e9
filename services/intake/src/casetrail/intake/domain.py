"""Intake's rules: which case a message belongs to, and the records it leaves. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from casetrail.contracts import events as contract
from casetrail.contracts.envelope import fingerprint
from casetrail.intake.inbound import Contact, InboundMessage
from casetrail.intake.policy import IntakePolicy
from casetrail.runtime.eventstore import event_id, publish
from casetrail.runtime.service import DomainError

# Crockford's base32: no I, L, O or U, so a reference read out over the phone survives.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 10


def stable_id(kind: str, value: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"casetrail:intake:{kind}:{value}")


def case_id_for_idempotency_key(key: str) -> UUID:
    """The same Idempotency-Key always names the same case, so a retry cannot open two."""
    return stable_id("idempotency", key)


def message_key(message: InboundMessage, idempotency_key: str | None) -> str | None:
    """What makes a delivery a repeat: the caller's key, else the provider's message id."""
    if idempotency_key:
        return f"key:{idempotency_key}"
    if message.provider_message_id:
        return f"{message.provider}:{message.provider_message_id}"
    return None


def message_id_for(key: str | None) -> UUID:
    return stable_id("message", key) if key else uuid4()


def customer_id_for(contact: Contact, generation: int = 0) -> UUID:
    """The id a new customer first reached at `contact` takes.

    The same for racing first messages, so only one of them registers the customer; once
    that customer is erased (or gave the contact up), the next one takes the next
    generation, a new identity.
    """
    suffix = f"#{generation}" if generation else ""
    return stable_id("customer", f"{contact.kind}:{contact.value}{suffix}")


def case_reference(case_id: UUID, prefix: str) -> str:
    number = case_id.int >> (128 - 5 * REFERENCE_LENGTH)
    digits = (
        REFERENCE_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(REFERENCE_LENGTH))
    )
    return f"{prefix}-{''.join(digits)}"


def references_in(text: str, prefix: str) -> tuple[str, ...]:
    pattern = rf"\b{re.escape(prefix)}-([{REFERENCE_ALPHABET}]{{{REFERENCE_LENGTH}}})\b"
    found = (f"{prefix}-{m.group(1)}" for m in re.finditer(pattern, text.upper()))
    return tuple(dict.fromkeys(found))


class MissingContact(ValueError):
    """The message names no way to find the customer again on its channel."""


def check_contact(message: InboundMessage, policy: IntakePolicy) -> None:
    wanted = policy.channel_contacts.get(message.channel)
    if message.sender is None:
        raise MissingContact(f"a {message.channel.value} message must name its sender")
    if wanted and message.sender.kind not in wanted:
        raise MissingContact(
            f"a {message.channel.value} message must come from one of {list(wanted)}, "
            f"not {message.sender.kind}"
        )


@dataclass(frozen=True)
class KnownCase:
    case_id: UUID
    reference: str
    open: bool
    last_message_at: datetime


@dataclass(frozen=True)
class RoutingFacts:
    """What intake's read model knows that could tie a message to a case."""

    threaded: KnownCase | None = None
    referenced: KnownCase | None = None
    latest_open_of_customer: KnownCase | None = None


@dataclass(frozen=True)
class Route:
    """Continue `case_id`, or open a new case when it is None; `rule_id` says why."""

    case_id: UUID | None
    rule_id: str
    follow_up_of: UUID | None = None


def route(facts: RoutingFacts, policy: IntakePolicy, now: datetime) -> Route:
    for linked, rule_id in ((facts.threaded, "CONT-THREAD"), (facts.referenced, "CONT-REFERENCE")):
        if linked is None:
            continue
        if linked.open:
            return Route(linked.case_id, rule_id)
        # A closed case stays closed: the customer's new words start a case that points back.
        return Route(None, "OPEN-FOLLOW-UP", follow_up_of=linked.case_id)
    latest = facts.latest_open_of_customer
    window = timedelta(days=policy.continue_open_case_within_days)
    if latest is not None and latest.open and now - latest.last_message_at <= window:
        return Route(latest.case_id, "CONT-OPEN-CASE")
    return Route(None, "OPEN-NEW")


class IntakeCase(Aggregate):
    """One complaint, however many messages and channels it took."""

    @staticmethod
    def create_id(case_id: UUID) -> UUID:
        return case_id

    @event("Opened")
    def __init__(
        self,
        *,
        case_id: UUID,
        channel: str,
        customer_ref: str,
        subject: str,
        description: str,
        transaction_id: str | None,
        transaction_time: datetime | None,
        attachments: list[dict[str, Any]],
        opened_at: datetime,
        request_fingerprint: str,
        correlation_id: UUID,
        causation_id: UUID | None,
        # Cases opened before messages and customers were tracked stored none of these.
        customer_id: UUID | None = None,
        reference: str | None = None,
        media: list[dict[str, Any]] | None = None,
        message_id: UUID | None = None,
        provider: str = "api",
        provider_message_id: str | None = None,
        source: dict[str, Any] | None = None,
        follow_up_of: UUID | None = None,
    ) -> None:
        self.case_id = case_id
        self.channel = channel
        self.customer_ref = customer_ref
        self.customer_id = customer_id
        self.reference = reference
        self.subject = subject
        self.opened_at = opened_at
        self.correlation_id = correlation_id
        self.messages: list[dict[str, Any]] = [
            {"message_id": message_id, "channel": channel, "received_at": opened_at}
        ]
        self.attachments = attachments
        self.request_fingerprint = request_fingerprint

    @event("MessageReceived")
    def receive_message(
        self,
        *,
        case_id: UUID,
        message_id: UUID,
        channel: str,
        provider: str,
        provider_message_id: str | None,
        customer_id: UUID | None,
        subject: str | None,
        body: str,
        attachments: list[dict[str, Any]],
        media: list[dict[str, Any]],
        received_at: datetime,
        continued_by: str,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.messages.append(
            {"message_id": message_id, "channel": channel, "received_at": received_at}
        )
        self.attachments = [*self.attachments, *attachments]


publish(IntakeCase.Opened, contract.CaseOpened)
publish(IntakeCase.MessageReceived, contract.MessageReceived)


class Customer(Aggregate):
    """The customer's record: who they are and every way to reach them."""

    @staticmethod
    def create_id(customer_id: UUID) -> UUID:
        return customer_id

    @event("Registered")
    def __init__(self, *, customer_id: UUID) -> None:
        self.customer_id = customer_id
        self.name: str | None = None
        self.contacts: list[dict[str, str]] = []
        self.erased_at: datetime | None = None

    @property
    def correlation_id(self) -> UUID:
        """The record's correlation: its first event's id, shared by all its events."""
        return event_id(Customer.__name__, self.id, 1)

    @event("ContactUpdated")
    def update_contacts(
        self,
        *,
        customer_id: UUID,
        name: str | None,
        contacts: list[dict[str, str]],
        added: list[dict[str, str]],
        removed: list[dict[str, str]],
        updated_by: str,
        updated_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.name = name
        self.contacts = contacts

    @event("Erased")
    def erase(
        self,
        *,
        customer_id: UUID,
        key_ids: list[str],
        reason: str,
        erased_by: str,
        erased_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.name = None
        self.contacts = []
        self.erased_at = erased_at


publish(Customer.ContactUpdated, contract.CustomerContactUpdated)
publish(Customer.Erased, contract.CustomerErased)


class CustomerAlreadyErased(DomainError):
    """An erased customer's record takes no new personal data."""

    status_code = 410
    code = "customer_erased"


def as_point(contact: Contact) -> dict[str, str]:
    return {"kind": contact.kind, "value": contact.value}


def register_customer(
    customer_id: UUID, contacts: list[Contact], name: str | None, updated_by: str, now: datetime
) -> Customer:
    """A new customer's record; its first published event lists every contact point."""
    customer = Customer(customer_id=customer_id)
    change_contacts(customer, add=contacts, name=name, updated_by=updated_by, now=now)
    return customer


def change_contacts(
    customer: Customer,
    *,
    add: list[Contact],
    remove: tuple[Contact, ...] | list[Contact] = (),
    name: str | None = None,
    updated_by: str,
    now: datetime,
) -> bool:
    """Adds and removes contact points; records an event only if something changed."""
    if customer.erased_at is not None:
        raise CustomerAlreadyErased(f"customer {customer.id} was erased")
    current = [dict(p) for p in customer.contacts]
    removed = [as_point(c) for c in remove if as_point(c) in current]
    kept = [p for p in current if p not in removed]
    added = [as_point(c) for c in dict.fromkeys(add) if as_point(c) not in kept]
    new_name = name or customer.name
    if not added and not removed and new_name == customer.name:
        return False
    customer.update_contacts(
        customer_id=customer.id,
        name=new_name,
        contacts=kept + added,
        added=added,
        removed=removed,
        updated_by=updated_by,
        updated_at=now,
        correlation_id=customer.correlation_id,
        causation_id=None,
    )
    return True


def record_erasure(
    customer: Customer, *, key_ids: tuple[str, ...], reason: str, erased_by: str, now: datetime
) -> bool:
    """Records that the customer's keys are destroyed; False if that was recorded before."""
    if customer.erased_at is not None:
        return False
    customer.erase(
        customer_id=customer.id,
        key_ids=list(key_ids),
        reason=reason,
        erased_by=erased_by,
        erased_at=now,
        correlation_id=customer.correlation_id,
        causation_id=None,
    )
    return True


def customer_ref_of(message: InboundMessage, customer_id: UUID | None) -> str:
    if message.sender is not None and message.sender.kind == "account":
        return message.sender.value
    return f"customer:{customer_id}" if customer_id else "unknown"


def open_case(
    *,
    case_id: UUID,
    message: InboundMessage,
    message_id: UUID,
    customer_id: UUID | None,
    attachments: list[dict[str, Any]],
    route_taken: Route,
    policy: IntakePolicy,
    request_fingerprint: str,
    now: datetime,
) -> IntakeCase:
    """A new case from a message; its first event starts the case's correlation."""
    details = message.source_details
    return IntakeCase(
        case_id=case_id,
        channel=message.channel.value,
        customer_ref=customer_ref_of(message, customer_id),
        customer_id=customer_id,
        reference=case_reference(case_id, policy.reference_prefix),
        subject=(message.subject or _subject_from(message.body))[:500],
        description=message.body[:100_000],
        transaction_id=details.get("transaction_id"),
        transaction_time=details.get("transaction_time"),
        attachments=attachments,
        media=[{"url": m.url, "media_type": m.media_type} for m in message.media],
        opened_at=now,
        message_id=message_id,
        provider=message.provider,
        provider_message_id=message.provider_message_id,
        source={k: v for k, v in details.items() if k not in {"transaction_time"}},
        follow_up_of=route_taken.follow_up_of,
        request_fingerprint=request_fingerprint,
        correlation_id=event_id(IntakeCase.__name__, case_id, 1),
        causation_id=None,
    )


def continue_case(
    case: IntakeCase,
    *,
    message: InboundMessage,
    message_id: UUID,
    customer_id: UUID | None,
    attachments: list[dict[str, Any]],
    route_taken: Route,
    now: datetime,
) -> None:
    case.receive_message(
        case_id=case.id,
        message_id=message_id,
        channel=message.channel.value,
        provider=message.provider,
        provider_message_id=message.provider_message_id,
        customer_id=customer_id,
        subject=message.subject[:500] if message.subject else None,
        body=message.body[:100_000],
        attachments=attachments,
        media=[{"url": m.url, "media_type": m.media_type} for m in message.media],
        received_at=now,
        continued_by=route_taken.rule_id,
        correlation_id=case.correlation_id,
        causation_id=None,
    )


def message_fingerprint(message: InboundMessage, attachment_digests: list[str]) -> str:
    """Equal for a redelivery of the same message, different for anything else."""
    return fingerprint(
        {
            "channel": message.channel.value,
            "provider": message.provider,
            "provider_message_id": message.provider_message_id,
            "sender": as_point(message.sender) if message.sender else None,
            "subject": message.subject,
            "body": message.body,
            "thread": [message.thread.message_id, *message.thread.earlier_ids],
            "attachments": attachment_digests,
            "media": [m.url for m in message.media],
            "source": {k: str(v) for k, v in message.source_details.items()},
        }
    )


def _subject_from(body: str) -> str:
    first_line = body.strip().splitlines()[0] if body.strip() else "(no subject)"
    return first_line[:120]

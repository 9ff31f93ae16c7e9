"""Intake's HTTP API for callers with a token: channel adapters, staff, regulators' batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field, ValidationError, model_validator
from sqlalchemy import select

from casetrail.contracts.events import AttachmentRef, Channel, ContactKind, ContactPoint
from casetrail.intake import cfpb
from casetrail.intake.domain import MissingContact, check_contact, message_fingerprint
from casetrail.intake.inbound import Contact, InboundAttachment, InboundMessage, Thread
from casetrail.intake.mail import MailFormatError, parse_email
from casetrail.intake.policy import IntakePolicy
from casetrail.intake.store import IntakeApplication, PreparedAttachment, Receipt, cases
from casetrail.runtime.models import StrictRequest
from casetrail.runtime.service import (
    DomainError,
    NotFound,
    application_of,
    components_of,
    service_of,
)

router = APIRouter(prefix="/v1")

E164 = r"^\+[1-9][0-9]{6,14}$"
ACCEPTED = {503: {"description": "PostgreSQL or Kafka unreachable: retry after Retry-After"}}


class InvalidMessage(DomainError):
    status_code = 422
    code = "invalid_message"


def policy_of(request: Request) -> IntakePolicy:
    return request.app.state.policy  # type: ignore[no-any-return]


def principal_name(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return str(getattr(principal, "subject", "unknown"))


# -- requests and answers ----------------------------------------------------------------


class CustomerIdentity(StrictRequest):
    """Who the customer is; at least one way to find them again."""

    account_id: str | None = Field(None, min_length=1, max_length=200)
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
    phone: str | None = Field(None, pattern=E164)
    whatsapp: str | None = Field(None, pattern=E164)
    social: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _reachable(self) -> CustomerIdentity:
        if not self.contacts():
            raise ValueError("name at least one of account_id, email, phone, whatsapp, social")
        return self

    def contacts(self) -> list[Contact]:
        given: list[tuple[ContactKind, str | None]] = [
            ("account", self.account_id),
            ("email", self.email),
            ("phone", self.phone),
            ("whatsapp", self.whatsapp),
            ("social", self.social),
        ]
        return [Contact.normalised(kind, value) for kind, value in given if value]


class PhoneSource(StrictRequest):
    callback_consent: bool = Field(description="the caller pressed 1 to accept a callback")
    callback_number: str | None = Field(None, pattern=E164)
    ivr_path: str | None = Field(None, max_length=200)


class RegulatorySource(StrictRequest):
    agency: str = Field(min_length=1, max_length=100)
    agency_complaint_id: str = Field(min_length=1, max_length=100)
    received_by_agency_at: AwareDatetime | None = None
    response_due_at: AwareDatetime | None = None


class LegalSource(StrictRequest):
    sender_firm: str = Field(min_length=1, max_length=200)
    matter_reference: str | None = Field(None, max_length=200)


class NodSource(StrictRequest):
    nod_reference: str = Field(min_length=1, max_length=200)
    claimant_counsel: str | None = Field(None, max_length=200)
    platform: Literal["fairshake", "other"] = "fairshake"


class ExecutiveSource(StrictRequest):
    executive: str = Field(min_length=1, max_length=200)


class SocialSource(StrictRequest):
    platform: str = Field(min_length=1, max_length=50)
    post_url: str | None = Field(None, max_length=2000)
    public: bool = True


class CorporateSource(StrictRequest):
    department: str | None = Field(None, max_length=200)


class NoSource(StrictRequest):
    pass


SOURCES: dict[Channel, type[StrictRequest]] = {
    Channel.PHONE: PhoneSource,
    Channel.REGULATORY: RegulatorySource,
    Channel.LEGAL: LegalSource,
    Channel.NOD: NodSource,
    Channel.EXECUTIVE: ExecutiveSource,
    Channel.SOCIAL: SocialSource,
    Channel.CORPORATE: CorporateSource,
}


class ThreadIds(StrictRequest):
    message_id: str | None = Field(None, max_length=500)
    in_reply_to: str | None = Field(None, max_length=500)
    references: list[str] = Field(default_factory=list, max_length=100)


class UploadedAttachment(StrictRequest):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    filename: str = Field(min_length=1, max_length=255)


class AccountFacts(StrictRequest):
    """What the adapter knows of the customer's account: it decides which SLA clocks run."""

    plan: Literal["Basic", "Standard", "Premium", "Enterprise"] | None = None
    market: str | None = Field(None, pattern=r"^[A-Z]{2}$", description="e.g. US, GB, DE")
    new_account: bool | None = Field(None, description="Reg E: opened within 30 days")
    billing_cycle_days: int | None = Field(None, ge=1, le=366)
    payment_services: bool | None = Field(None, description="a payment-services complaint")
    incident: bool | None = Field(None, description="a payments or fraud incident (24/7)")
    provisional_credit: bool | None = None
    exceptional: bool | None = Field(None, description="the regulator's exceptional extension")
    regimes: list[Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")]] | None = Field(
        None, max_length=10, description="regulatory regimes named for the case, e.g. REG_E"
    )


class ChannelMessage(StrictRequest):
    customer: CustomerIdentity
    account: AccountFacts | None = None
    subject: str | None = Field(None, max_length=500)
    body: str = Field(min_length=1, max_length=100_000)
    sent_at: AwareDatetime | None = None
    provider_message_id: str | None = Field(
        None, max_length=500, description="the adapter's own id: a redelivery records nothing"
    )
    thread: ThreadIds | None = None
    transaction_id: str | None = Field(None, max_length=200)
    transaction_time: AwareDatetime | None = Field(None, description="ISO 8601 with offset")
    attachments: list[UploadedAttachment] = Field(default_factory=list, max_length=50)
    source: dict[str, Any] = Field(
        default_factory=dict, description="what the channel adds: see the channel's schema"
    )


class OpenCaseRequest(StrictRequest):
    channel: Channel
    customer_ref: str = Field(min_length=1, max_length=200, description="account id or e-mail")
    subject: str = Field(min_length=1, max_length=500)
    description: str = Field(min_length=1, max_length=20_000)
    transaction_id: str | None = Field(None, max_length=200)
    transaction_time: AwareDatetime | None = Field(None, description="ISO 8601 with offset")
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=50)


class MessageAccepted(BaseModel):
    case_id: UUID
    message_id: UUID
    reference: str | None
    status: Literal["opened", "continued", "already_recorded"]
    rule_id: str
    history_url: str


class CaseAccepted(BaseModel):
    case_id: UUID
    status: str
    history_url: str


class IntakeCaseView(BaseModel):
    case_id: UUID
    reference: str | None
    channel: Channel
    customer_ref: str
    customer_id: UUID | None
    subject: str
    opened_at: datetime
    messages: int
    channels: list[Channel]
    attachments: list[AttachmentRef]


def accepted(receipt: Receipt) -> dict[str, Any]:
    if receipt.duplicate:
        status = "already_recorded"
    else:
        status = "opened" if receipt.opened else "continued"
    return {
        "case_id": str(receipt.case_id),
        "message_id": str(receipt.message_id),
        "reference": receipt.reference,
        "status": status,
        "rule_id": receipt.rule_id,
        "history_url": f"/v1/cases/{receipt.case_id}/history",
    }


async def record(
    request: Request,
    message: InboundMessage,
    *,
    idempotency_key: str | None = None,
    also_known_as: tuple[Contact, ...] = (),
    files: list[InboundAttachment] = (),  # type: ignore[assignment]
    uploaded: list[tuple[str, str]] = (),  # type: ignore[assignment]
    referenced: list[AttachmentRef] = (),  # type: ignore[assignment]
    always_open: bool = False,
) -> Receipt:
    """Every entry point ends here: checked, stored durably, then answered."""
    service_of(request).require_ready()
    if _carries_nul(message):
        raise InvalidMessage("NUL characters are not accepted in a message")
    policy = policy_of(request)
    try:
        # The original open-case API names the customer by reference, whatever the channel.
        if not always_open:
            check_contact(message, policy)
    except MissingContact as error:
        raise InvalidMessage(str(error)) from None
    store = application_of(request, IntakeApplication)

    def store_durably() -> Receipt:
        prepared = store.prepare_attachments(list(files), policy)
        if uploaded:
            prepared += store.uploaded_attachments(list(uploaded))
        # The original open-case API names attachments stored elsewhere: kept as given.
        prepared += [PreparedAttachment(ref.model_dump(), None, None) for ref in referenced]
        digests = [p.ref["sha256"] for p in prepared]
        return store.receive(
            message,
            policy=policy,
            fingerprint=message_fingerprint(message, digests),
            now=datetime.now(UTC),
            idempotency_key=idempotency_key,
            also_known_as=also_known_as,
            prepared=prepared,
            always_open=always_open,
        )

    # One hop to a worker thread: the event store is synchronous.
    return await run_in_threadpool(store_durably)


def _carries_nul(message: InboundMessage) -> bool:
    """Providers deliver form fields and e-mail headers that JSON checks never see."""
    texts = [
        message.subject or "",
        message.body,
        message.sender_name or "",
        message.sender.value if message.sender else "",
        message.provider_message_id or "",
        *(m for m in (message.thread.message_id, *message.thread.earlier_ids) if m),
        repr(message.source_details),
    ]
    return any("\x00" in text for text in texts)


# -- cases and messages --------------------------------------------------------------------


@router.post(
    "/cases",
    status_code=202,
    response_model=CaseAccepted,
    tags=["cases"],
    responses={409: {"description": "Idempotency-Key reused with a different body"}, **ACCEPTED},
)
async def open_case(
    body: OpenCaseRequest,
    request: Request,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> Any:
    """Opens a new case outright (no continuation); records `CaseOpened` durably, answers 202."""
    ref = body.customer_ref.strip()
    sender = Contact.normalised("email" if "@" in ref else "account", ref)
    message = InboundMessage(
        channel=body.channel,
        provider="api",
        provider_message_id=None,
        sender=sender,
        sender_name=None,
        subject=body.subject,
        body=body.description,
        source_details=_transaction(body.transaction_id, body.transaction_time),
    )
    receipt = await record(
        request,
        message,
        idempotency_key=idempotency_key,
        referenced=list(body.attachments),
        always_open=True,
    )
    status = "accepted" if not receipt.duplicate else "already_accepted"
    return JSONResponse(
        {
            "case_id": str(receipt.case_id),
            "status": status,
            "history_url": f"/v1/cases/{receipt.case_id}/history",
        },
        status_code=202,
    )


def _transaction(transaction_id: str | None, at: datetime | None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if transaction_id:
        details["transaction_id"] = transaction_id
    if at:
        details["transaction_time"] = at
    return details


def _primary_contact(channel: Channel, contacts: list[Contact], policy: IntakePolicy) -> Contact:
    wanted = policy.channel_contacts.get(channel, ())
    for kind in wanted:
        for contact in contacts:
            if contact.kind == kind:
                return contact
    return contacts[0]


@router.post(
    "/channels/{channel}/messages",
    status_code=202,
    response_model=MessageAccepted,
    tags=["messages"],
    responses={
        409: {"description": "the same delivery was recorded before with different content"},
        413: {"description": "an attachment is over the size limit"},
        422: {"description": "the message or its channel's source facts are not valid"},
        **ACCEPTED,
    },
)
async def receive_message(
    channel: Channel,
    body: ChannelMessage,
    request: Request,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> Any:
    """A message from any channel: it continues the customer's case or opens a new one."""
    source = _validated_source(channel, body.source)
    contacts = body.customer.contacts()
    sender = _primary_contact(channel, contacts, policy_of(request))
    thread = body.thread or ThreadIds()
    message = InboundMessage(
        channel=channel,
        provider="api",
        provider_message_id=body.provider_message_id,
        sender=sender,
        sender_name=body.customer.name,
        subject=body.subject,
        body=body.body,
        sent_at=body.sent_at,
        thread=Thread(thread.message_id, thread.in_reply_to, tuple(thread.references)),
        source_details={
            **source,
            **(body.account.model_dump(exclude_none=True) if body.account else {}),
            **_transaction(body.transaction_id, body.transaction_time),
        },
    )
    receipt = await record(
        request,
        message,
        idempotency_key=idempotency_key,
        also_known_as=tuple(c for c in contacts if c != sender),
        uploaded=[(a.sha256, a.filename) for a in body.attachments],
    )
    return JSONResponse(accepted(receipt), status_code=202)


def _validated_source(channel: Channel, source: dict[str, Any]) -> dict[str, Any]:
    model = SOURCES.get(channel, NoSource)
    try:
        return model.model_validate(source).model_dump(mode="json", exclude_none=True)
    except ValidationError as error:
        raise InvalidMessage(
            f"source facts do not fit the {channel.value} channel",
            detail=[
                {"loc": ["body", "source", *item["loc"]], "msg": item["msg"], "type": item["type"]}
                for item in error.errors()
            ],
        ) from None


@router.post(
    "/email/messages",
    status_code=202,
    response_model=MessageAccepted,
    tags=["messages"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={413: {"description": "an attachment is over the size limit"}, **ACCEPTED},
)
async def receive_email(request: Request) -> Any:
    """A raw RFC 822 e-mail from the mail gateway; replies thread onto their case."""
    raw = await request.body()
    try:
        message = parse_email(raw)
    except (MailFormatError, ValueError) as error:
        raise InvalidMessage(f"not a usable e-mail: {error}") from None
    receipt = await record(request, message, files=list(message.attachments))
    return JSONResponse(accepted(receipt), status_code=202)


@router.get("/cases/{case_id}", response_model=IntakeCaseView, tags=["cases"])
async def read_case(case_id: UUID, request: Request) -> Any:
    case = await run_in_threadpool(application_of(request, IntakeApplication).case, case_id)
    if case is None:
        raise NotFound("no such case", case_id=str(case_id))
    return IntakeCaseView(
        case_id=case.id,
        reference=case.reference,
        channel=Channel(case.channel),
        customer_ref=case.customer_ref,
        customer_id=case.customer_id,
        subject=case.subject,
        opened_at=case.opened_at,
        messages=len(case.messages),
        channels=list(dict.fromkeys(Channel(m["channel"]) for m in case.messages)),
        attachments=[AttachmentRef.model_validate(a) for a in case.attachments],
    )


# -- attachments -------------------------------------------------------------------------


@router.post(
    "/attachments",
    status_code=201,
    response_model=AttachmentRef,
    tags=["attachments"],
    responses={413: {"description": "over the size limit"}, 415: {"description": "type refused"}},
)
async def upload_attachment(file: UploadFile, request: Request) -> Any:
    """Stores a document once (by its SHA-256); messages then name it."""
    service_of(request).require_ready()
    policy = policy_of(request)
    limit = policy.attachments.max_bytes
    content = await file.read(limit + 1)
    store = application_of(request, IntakeApplication)
    attachment = InboundAttachment(
        file.filename or "attachment", file.content_type or "application/octet-stream", content
    )
    (prepared,) = await run_in_threadpool(store.prepare_attachments, [attachment], policy)
    await run_in_threadpool(store.store_attachment, prepared, datetime.now(UTC))
    return JSONResponse(prepared.ref, status_code=201)


@router.get(
    "/attachments/{sha256}",
    tags=["attachments"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_attachment(
    request: Request, sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
) -> Response:
    store = application_of(request, IntakeApplication)
    found = await run_in_threadpool(store.attachment, sha256)
    if found is None:
        raise NotFound("no such attachment", sha256=sha256)
    media_type, content = found
    return Response(content, media_type=media_type)


# -- customers ---------------------------------------------------------------------------


class CustomerCase(BaseModel):
    case_id: UUID
    reference: str
    channel: str
    open: bool
    opened_at: datetime
    last_message_at: datetime


class CustomerProfile(BaseModel):
    customer_id: UUID
    name: str | None
    contacts: list[ContactPoint]
    cases: list[CustomerCase]
    erased_at: datetime | None = Field(None, description="when their personal data was erased")


class ErasureRequest(StrictRequest):
    reason: str = Field(
        min_length=1, max_length=2000, description="the request and its ground, e.g. GDPR 17"
    )


class ContactChange(StrictRequest):
    name: str | None = Field(None, min_length=1, max_length=200)
    add: list[ContactPoint] = Field(default_factory=list, max_length=20)
    remove: list[ContactPoint] = Field(default_factory=list, max_length=20)


@router.get("/customers/{customer_id}", response_model=CustomerProfile, tags=["customers"])
async def read_customer(customer_id: UUID, request: Request) -> Any:
    """The customer's record and every case they have opened, newest first."""
    store = application_of(request, IntakeApplication)
    customer = await run_in_threadpool(store.customer, customer_id)
    if customer is None:
        raise NotFound("no such customer", customer_id=str(customer_id))
    return CustomerProfile(
        customer_id=customer.id,
        name=customer.name,
        contacts=[ContactPoint.model_validate(p) for p in customer.contacts],
        cases=await _cases_of(request, customer_id),
        erased_at=customer.erased_at,
    )


async def _cases_of(request: Request, customer_id: UUID) -> list[CustomerCase]:
    async with components_of(request).engine.connect() as conn:
        rows = await conn.execute(
            select(cases)
            .where(cases.c.customer_id == customer_id)
            .order_by(cases.c.opened_at.desc())
        )
        return [
            CustomerCase(
                case_id=UUID(str(r.case_id)),
                reference=r.reference,
                channel=r.channel,
                open=r.open,
                opened_at=r.opened_at,
                last_message_at=r.last_message_at,
            )
            for r in rows
        ]


@router.patch(
    "/customers/{customer_id}/contacts", response_model=CustomerProfile, tags=["customers"]
)
async def change_customer_contacts(customer_id: UUID, body: ContactChange, request: Request) -> Any:
    """Adds or removes contact points (recorded as `CustomerContactUpdated`)."""
    return await _changed_customer(
        request,
        customer_id,
        lambda store: store.update_customer(
            customer_id,
            add=[Contact.normalised(p.kind, p.value) for p in body.add],
            remove=[Contact.normalised(p.kind, p.value) for p in body.remove],
            name=body.name,
            updated_by=principal_name(request),
            now=datetime.now(UTC),
        ),
    )


@router.post("/customers/{customer_id}/erasure", response_model=CustomerProfile, tags=["customers"])
async def erase_customer(customer_id: UUID, body: ErasureRequest, request: Request) -> Any:
    """Erases the customer's personal data by destroying their data key (crypto-shredding).

    Every case still replays and every hash, proof and signature still verifies; the
    customer's names, contact details and narratives read as `[erased]` everywhere.
    Recorded as `CustomerErased`; asking again changes nothing.
    """
    return await _changed_customer(
        request,
        customer_id,
        lambda store: store.erase_customer(
            customer_id,
            reason=body.reason,
            erased_by=principal_name(request),
            now=datetime.now(UTC),
        ),
    )


async def _changed_customer(
    request: Request, customer_id: UUID, change: Callable[[IntakeApplication], object | None]
) -> Any:
    """Changes the customer's record in a worker thread; answers the record as it now is."""
    service_of(request).require_ready()
    if await run_in_threadpool(change, application_of(request, IntakeApplication)) is None:
        raise NotFound("no such customer", customer_id=str(customer_id))
    return await read_customer(customer_id, request)


# -- regulators --------------------------------------------------------------------------


class RefusedRow(BaseModel):
    row: int
    complaint_id: str | None
    errors: list[str]


class LoadedRow(BaseModel):
    complaint_id: str
    case_id: UUID
    status: Literal["opened", "continued", "already_recorded"]


class RegulatorBatchResult(BaseModel):
    rows: int
    opened: int
    continued: int = Field(description="a newer version of a complaint already on a case")
    already_recorded: int
    refused: list[RefusedRow]
    loaded: list[LoadedRow]


@router.post(
    "/regulators/cfpb/complaints",
    response_model=RegulatorBatchResult,
    tags=["regulators"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
    responses=ACCEPTED,
)
async def load_cfpb(request: Request) -> Any:
    """A batch in the CFPB Consumer Complaint Database format (CSV export or JSON).

    Every row is either recorded as a case or refused with its own errors; loading the
    same batch again records nothing new.
    """
    service_of(request).require_ready()
    raw = await request.body()
    items = list(cfpb.read_any(raw, request.headers.get("content-type")))
    result = RegulatorBatchResult(
        rows=len(items), opened=0, continued=0, already_recorded=0, refused=[], loaded=[]
    )
    for item in items:
        if isinstance(item, cfpb.RowError):
            result.refused.append(
                RefusedRow(row=item.row, complaint_id=item.complaint_id, errors=list(item.errors))
            )
            continue
        receipt = await record(request, versioned(cfpb.to_inbound(item)))
        status = accepted(receipt)["status"]
        result.opened += status == "opened"
        result.continued += status == "continued"
        result.already_recorded += status == "already_recorded"
        result.loaded.append(
            LoadedRow(complaint_id=item.complaint_id, case_id=receipt.case_id, status=status)
        )
    return result


def versioned(message: InboundMessage) -> InboundMessage:
    """Regulators re-publish a complaint as it changes (the company's response, a dispute):
    each version is a delivery of its own, and a newer one continues the complaint's case."""
    version = message_fingerprint(message, [])[:16]
    return replace(message, provider_message_id=f"{message.provider_message_id}@{version}")

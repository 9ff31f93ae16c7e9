"""Audit's HTTP API: a case's history with its proofs, the case at any instant, what
changed between two, evidence bundles, and the signed log they all lead to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from casetrail.audit.domain import (
    LogBreak,
    LoggedRecord,
    as_it_stood,
    changes_between,
    first_bad_tree_head,
    first_unlogged,
    rehashed_leaf,
    retention_of,
    verify_chain,
)
from casetrail.audit.log import LogMirror
from casetrail.audit.policy import AuditPolicy
from casetrail.audit.store import (
    all_tree_heads,
    case_history,
    chain_of,
    latest_tree_head,
    log_entries,
    tree_head_at,
    unlogged_record,
)
from casetrail.audit.timeline import render_timeline
from casetrail.contracts.case import fold, state_hash
from casetrail.contracts.envelope import Envelope
from casetrail.evidence.bundle import BundleRecord, build_bundle
from casetrail.evidence.merkle import MerkleLog
from casetrail.evidence.tree_head import TreeHead, public_key_pem
from casetrail.runtime.keyring import Keyring
from casetrail.runtime.service import DomainError, NotFound, NotReady, components_of

router = APIRouter(prefix="/v1", tags=["audit"])


class NoSuchTreeHead(DomainError):
    status_code = 404
    code = "no_such_tree_head"


class InvalidPeriod(DomainError):
    status_code = 422
    code = "invalid_period"


def mirror_of(request: Request) -> LogMirror:
    return request.app.state.log  # type: ignore[no-any-return]


async def revealed(request: Request, envelopes: Sequence[Envelope]) -> list[Envelope]:
    """The events as a reader sees them: personal fields opened, or `[erased]`.

    Only what is shown is opened; hashes, proofs and state hashes are always taken over
    the events as recorded, so they hold before and after an erasure.
    """
    keyring: Keyring = request.app.state.keyring
    return await asyncio.to_thread(keyring.reveal, envelopes)


class TreeHeadView(BaseModel):
    tree_size: int
    root_hash: str
    timestamp: datetime
    key_id: str
    signature: str

    @classmethod
    def of(cls, head: TreeHead) -> TreeHeadView:
        return cls.model_validate(head.to_json_dict())


class HistoryRecord(BaseModel):
    seq: int
    event_id: UUID
    type: str
    causationid: UUID | None
    recorded_at: datetime
    prev_hash: str
    hash: str
    leaf_index: int | None
    leaf_hash: str | None
    inclusion_proof: list[str] | None
    event: dict[str, Any] = Field(description="the event as recorded, personal fields sealed")
    data: dict[str, Any] = Field(
        description="its data as you may read it: personal fields "
        "opened, or '[erased]' once the customer was erased"
    )


class History(BaseModel):
    case_id: UUID
    tree_head: TreeHeadView | None
    records: list[HistoryRecord]
    next_after: int | None


async def _tree_head(conn: Any, tree_size: int | None) -> TreeHead | None:
    if tree_size is None:
        return await latest_tree_head(conn)
    head = await tree_head_at(conn, tree_size)
    if head is None:
        raise NoSuchTreeHead("no tree head was signed at that size", tree_size=tree_size)
    return head


def _proof(mirror: LogMirror, leaf_index: int | None, head: TreeHead | None) -> list[str] | None:
    """The leaf's inclusion proof in the head's tree; None until a head covers the leaf."""
    if leaf_index is None or head is None or leaf_index >= head.tree_size:
        return None
    return [node.hex() for node in mirror.tree.inclusion_proof(leaf_index, head.tree_size)]


@router.get("/cases/{case_id}/history", response_model=History)
async def read_history(
    case_id: UUID,
    request: Request,
    after: int = Query(0, ge=0, le=2**31 - 1, description="records after this sequence number"),
    limit: int = Query(100, ge=1, le=1000),
    tree_size: int | None = Query(
        None, ge=1, description="prove against this signed tree head (default: the latest)"
    ),
) -> Any:
    mirror = mirror_of(request)
    async with components_of(request).engine.connect() as conn:
        rows = await case_history(conn, case_id, after, limit + 1)
        head = await _tree_head(conn, tree_size)
        await mirror.catch_up(conn)
    if not rows and after == 0:
        raise NotFound("audit has recorded nothing for this case", case_id=str(case_id))
    page = rows[:limit]
    shown = await revealed(request, [Envelope.model_validate_json(r.envelope) for r in page])
    return History(
        case_id=case_id,
        tree_head=TreeHeadView.of(head) if head else None,
        records=[
            HistoryRecord(
                seq=r.case_seq,
                event_id=r.event_id,
                type=r.event_type,
                causationid=r.causation_id,
                recorded_at=r.recorded_at,
                prev_hash=r.prev_hash,
                hash=r.hash,
                leaf_index=r.leaf_index,
                leaf_hash=bytes(r.leaf_hash).hex() if r.leaf_hash is not None else None,
                inclusion_proof=_proof(mirror, r.leaf_index, head),
                event=json.loads(r.envelope),
                data=readable.data,
            )
            for r, readable in zip(page, shown, strict=True)
        ],
        next_after=page[-1].case_seq if len(rows) > limit else None,
    )


async def _envelopes(request: Request, case_id: UUID) -> list[Envelope]:
    async with components_of(request).engine.connect() as conn:
        rows = await case_history(conn, case_id)
    if not rows:
        raise NotFound("audit has recorded nothing for this case", case_id=str(case_id))
    return [Envelope.model_validate_json(r.envelope) for r in rows]


class CaseAsOf(BaseModel):
    case_id: UUID
    as_of: datetime
    events_folded: int
    state: dict[str, Any] | None
    state_hash: str


@router.get("/cases/{case_id}/state", response_model=CaseAsOf)
async def read_state(
    case_id: UUID,
    request: Request,
    as_of: AwareDatetime | None = Query(None, description="ISO 8601 with an offset; default now"),
) -> Any:
    instant = as_of or datetime.now(UTC)
    events = as_it_stood(await _envelopes(request, case_id), instant)
    shown = fold(await revealed(request, events))
    return CaseAsOf(
        case_id=case_id,
        as_of=instant,
        events_folded=len(events),
        state=shown.to_json_dict() if shown else None,
        state_hash=state_hash(fold(events)),
    )


class ChangeView(BaseModel):
    path: str
    before: Any
    after: Any


class EventSummary(BaseModel):
    event_id: UUID
    type: str
    time: datetime


class CaseDiff(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    case_id: UUID
    from_: datetime = Field(alias="from")
    to: datetime
    from_state_hash: str
    to_state_hash: str
    changes: list[ChangeView]
    events: list[EventSummary]


@router.get("/cases/{case_id}/diff", response_model=CaseDiff)
async def read_diff(
    case_id: UUID,
    request: Request,
    since: AwareDatetime = Query(alias="from", description="ISO 8601 with an offset"),
    until: AwareDatetime = Query(alias="to", description="ISO 8601 with an offset"),
) -> Any:
    if since > until:
        raise InvalidPeriod("'from' is after 'to'", since=since.isoformat(), to=until.isoformat())
    history = await _envelopes(request, case_id)
    before, after = as_it_stood(history, since), as_it_stood(history, until)
    # Every event before `from` is also before `to`: one opening serves both folds.
    readable = {e.id: e for e in await revealed(request, after)}
    shown_before = fold([readable[e.id] for e in before])
    shown_after = fold([readable[e.id] for e in after])
    return CaseDiff(
        case_id=case_id,
        from_=since,
        to=until,
        from_state_hash=state_hash(fold(before)),
        to_state_hash=state_hash(fold(after)),
        changes=[
            ChangeView(path=c.path, before=c.before, after=c.after)
            for c in changes_between(shown_before, shown_after)
        ],
        events=[
            EventSummary(event_id=e.id, type=e.type, time=e.time)
            for e in after
            if e.id not in {b.id for b in before}
        ],
    )


class ChainBreakView(BaseModel):
    seq: int
    event_id: UUID | None
    reason: str


class Verification(BaseModel):
    case_id: UUID
    valid: bool
    records: int
    head_hash: str | None
    first_bad_record: ChainBreakView | None


@router.get("/cases/{case_id}/verify", response_model=Verification)
async def verify(case_id: UUID, request: Request) -> Any:
    async with components_of(request).engine.connect() as conn:
        chain, head_length = await chain_of(conn, case_id)
        leaves = await case_history(conn, case_id)
    if not chain and head_length is None:
        raise NotFound("audit has recorded nothing for this case", case_id=str(case_id))
    broken = verify_chain(chain, head_length) or first_unlogged(
        LoggedRecord(r.case_seq, r.event_id, r.envelope, r.leaf_hash) for r in leaves
    )
    return Verification(
        case_id=case_id,
        valid=broken is None,
        records=len(chain),
        head_hash=chain[-1].hash if chain else None,
        first_bad_record=ChainBreakView(
            seq=broken.case_seq, event_id=broken.event_id, reason=broken.reason
        )
        if broken
        else None,
    )


@router.get(
    "/cases/{case_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "evidence bundle"}},
)
async def export(case_id: UUID, request: Request) -> Response:
    """The case's evidence bundle, proven against a tree head signed now if the log grew."""
    mirror = mirror_of(request)
    engine = components_of(request).engine
    await mirror.sign_if_grown(engine)
    async with engine.connect() as conn:
        rows = await case_history(conn, case_id)
        head = await latest_tree_head(conn)
        await mirror.catch_up(conn)
    if not rows:
        raise NotFound("audit has recorded nothing for this case", case_id=str(case_id))
    # Leaves and a case's chain grow in the same order, so what the head covers is a prefix
    # of the chain: the bundle is the case as that signed head saw it.
    rows = [r for r in rows if head and r.leaf_index is not None and r.leaf_index < head.tree_size]
    if head is None or not rows:
        raise NotReady("the log has not been signed past this case's events yet; retry")
    envelopes = [Envelope.model_validate_json(r.envelope) for r in rows]
    exported_at = datetime.now(UTC)
    policy: AuditPolicy = request.app.state.policy
    bundle = build_bundle(
        case_id,
        [
            BundleRecord(
                case_seq=r.case_seq,
                envelope=r.envelope.encode(),
                prev_hash=r.prev_hash,
                hash=r.hash,
                leaf_index=r.leaf_index,
                inclusion_proof=mirror.tree.inclusion_proof(r.leaf_index, head.tree_size),
            )
            for r in rows
        ],
        head,
        render_timeline(case_id, await revealed(request, envelopes), exported_at),
        mirror.signing_key,
        exported_at,
        retention_of(envelopes, policy).to_json_dict(),
    )
    return Response(
        bundle,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="case-{case_id}.zip"'},
    )


@router.get("/log/tree-heads/latest", response_model=TreeHeadView)
async def read_latest_tree_head(request: Request) -> Any:
    async with components_of(request).engine.connect() as conn:
        head = await latest_tree_head(conn)
    if head is None:
        raise NoSuchTreeHead("no tree head has been signed yet")
    return TreeHeadView.of(head)


@router.post("/log/tree-heads", response_model=TreeHeadView)
async def publish_tree_head(request: Request) -> Any:
    """Signs the log now if it grew since the last head; answers the latest head."""
    await mirror_of(request).sign_if_grown(components_of(request).engine)
    return await read_latest_tree_head(request)


@router.get("/log/tree-heads/{tree_size}", response_model=TreeHeadView)
async def read_tree_head(tree_size: int, request: Request) -> Any:
    async with components_of(request).engine.connect() as conn:
        head = await _tree_head(conn, tree_size)
    return TreeHeadView.of(head)


class ConsistencyProof(BaseModel):
    first: TreeHeadView
    second: TreeHeadView
    proof: list[str]


@router.get("/log/consistency", response_model=ConsistencyProof)
async def read_consistency(
    request: Request,
    first: int = Query(ge=1, description="size of the earlier signed tree head"),
    second: int = Query(ge=1, description="size of the later signed tree head"),
) -> Any:
    """That the later signed tree only extends the earlier one (RFC 9162 section 2.1.4)."""
    if first > second:
        raise InvalidPeriod("'first' must not be larger than 'second'", first=first, second=second)
    mirror = mirror_of(request)
    async with components_of(request).engine.connect() as conn:
        earlier, later = await _tree_head(conn, first), await _tree_head(conn, second)
        await mirror.catch_up(conn)
    assert earlier is not None and later is not None
    return ConsistencyProof(
        first=TreeHeadView.of(earlier),
        second=TreeHeadView.of(later),
        proof=[node.hex() for node in mirror.tree.consistency_proof(first, second)],
    )


class LogBreakView(BaseModel):
    leaf_index: int | None
    event_id: UUID | None
    tree_size: int | None
    reason: str


class LogVerification(BaseModel):
    valid: bool
    leaves: int
    tree_heads: int
    first_bad: LogBreakView | None


@router.get("/log/verify", response_model=LogVerification)
async def verify_log(request: Request) -> Any:
    """Rehashes every record into the log, and checks every signed tree head against it.

    Names the first leaf whose record changed or disappeared, a record missing from the
    log, or a head whose signature or root fails.
    """
    key = mirror_of(request).signing_key.public_key()
    log, broken = MerkleLog(), None
    async with components_of(request).engine.connect() as conn:
        async with aclosing(log_entries(conn)) as entries:
            async for entry in entries:
                leaf = rehashed_leaf(len(log), entry)
                if isinstance(leaf, LogBreak):
                    broken = leaf
                    break
                log.append(leaf)
        unlogged = await unlogged_record(conn)
        heads = await all_tree_heads(conn)
    if broken is None and unlogged is not None:
        broken = LogBreak(None, unlogged.event_id, None, "the record is not in the log")
    broken = broken or first_bad_tree_head(log, heads, key)
    return LogVerification(
        valid=broken is None,
        leaves=len(log),
        tree_heads=len(heads),
        first_bad=LogBreakView(**broken.__dict__) if broken else None,
    )


@router.get("/log/public-key", response_class=Response)
async def read_public_key(request: Request) -> Response:
    """The key tree heads and bundles are signed with; give auditors a copy out of band."""
    key = mirror_of(request).signing_key.public_key()
    return Response(public_key_pem(key), media_type="application/x-pem-file")

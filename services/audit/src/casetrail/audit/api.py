"""Audit's HTTP API: a case's history in causal order, and whether its chain holds."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from casetrail.audit.domain import verify_chain
from casetrail.audit.store import case_history, chain_of
from casetrail.runtime.service import NotFound, components_of

router = APIRouter(prefix="/v1", tags=["audit"])


class HistoryRecord(BaseModel):
    seq: int
    event_id: UUID
    type: str
    causationid: UUID | None
    recorded_at: datetime
    prev_hash: str
    hash: str
    event: dict[str, Any]


class History(BaseModel):
    case_id: UUID
    records: list[HistoryRecord]
    next_after: int | None


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


@router.get("/cases/{case_id}/history", response_model=History)
async def read_history(
    case_id: UUID,
    request: Request,
    after: int = Query(0, ge=0, le=2**31 - 1, description="records after this sequence number"),
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    async with components_of(request).engine.connect() as conn:
        rows = await case_history(conn, case_id, after, limit + 1)
    if not rows and after == 0:
        raise NotFound("audit has recorded nothing for this case", case_id=str(case_id))
    page = rows[:limit]
    return History(
        case_id=case_id,
        records=[
            HistoryRecord(
                seq=r.case_seq,
                event_id=r.event_id,
                type=r.event_type,
                causationid=r.causation_id,
                recorded_at=r.recorded_at,
                prev_hash=r.prev_hash,
                hash=r.hash,
                event=json.loads(r.envelope),
            )
            for r in page
        ],
        next_after=page[-1].case_seq if len(rows) > limit else None,
    )


@router.get("/cases/{case_id}/verify", response_model=Verification)
async def verify(case_id: UUID, request: Request) -> Any:
    async with components_of(request).engine.connect() as conn:
        chain, head_length = await chain_of(conn, case_id)
    if not chain and head_length is None:
        raise NotFound("audit has recorded nothing for this case", case_id=str(case_id))
    broken = verify_chain(chain, head_length)
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

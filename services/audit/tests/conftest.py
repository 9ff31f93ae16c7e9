from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from casetrail.contracts.envelope import Envelope

NewEvent = Callable[..., Envelope]


@pytest.fixture
def new_event() -> NewEvent:
    """An envelope for a case, optionally caused by another event."""

    def make(
        case_id: UUID, event_type: str = "casetrail.case.opened.v1", cause: Envelope | None = None
    ) -> Envelope:
        return Envelope(
            id=uuid4(),
            source="/test",
            type=event_type,
            time=datetime(2026, 11, 23, tzinfo=UTC),
            subject=case_id,
            correlationid=case_id,
            causationid=cause.id if cause else None,
            sequence=1,
            data={"case_id": str(case_id)},
        )

    return make

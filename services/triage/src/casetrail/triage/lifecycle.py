"""A case's lifecycle: statuses, the legal moves between them, closing, reopening, CSAT."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from casetrail.runtime.models import Strict


class Status(StrEnum):
    ASSIGNED = "Assigned"
    ACKNOWLEDGED = "Acknowledged"
    PENDING_ON = "Pending On"
    AWAITING_CUSTOMER = "Awaiting Customer"
    ESL_QA = "ESL QA"
    LEGAL_REVIEW = "Legal Review"
    RESOLVED = "Resolved"
    CLOSED = "Closed"
    INCOMPLETE = "Incomplete"


_S = Status
DEFAULT_TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    _S.ASSIGNED: (_S.ACKNOWLEDGED, _S.INCOMPLETE),
    # An ESLI quick hit records the complaint and resolves it in the same interaction.
    _S.ACKNOWLEDGED: (_S.PENDING_ON, _S.RESOLVED, _S.INCOMPLETE),
    _S.PENDING_ON: (_S.AWAITING_CUSTOMER, _S.ESL_QA, _S.LEGAL_REVIEW, _S.RESOLVED, _S.INCOMPLETE),
    _S.AWAITING_CUSTOMER: (_S.PENDING_ON, _S.RESOLVED, _S.INCOMPLETE),
    _S.ESL_QA: (_S.PENDING_ON, _S.LEGAL_REVIEW, _S.RESOLVED),
    _S.LEGAL_REVIEW: (_S.PENDING_ON, _S.RESOLVED),
    _S.RESOLVED: (_S.CLOSED, _S.PENDING_ON),
    _S.CLOSED: (),
    _S.INCOMPLETE: (),
}
# The statuses allowed to be dead ends; any other status must lead somewhere.
ENDINGS = frozenset({Status.CLOSED, Status.INCOMPLETE})


def reachable(transitions: dict[Status, tuple[Status, ...]], start: Status) -> frozenset[Status]:
    """Every status reachable from `start` (itself included) through the table."""
    seen = {start}
    frontier = [start]
    while frontier:
        for target in transitions.get(frontier.pop(), ()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return frozenset(seen)


class LifecyclePolicy(Strict):
    transitions: dict[Status, tuple[Status, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_TRANSITIONS)
    )
    closing_requires_customer_confirmation: bool = True
    # How long after resolution a case may go back to being worked (Resolved -> Pending On).
    reopen_window_days: int = Field(ge=0)
    satisfaction_survey_after_hours: int = Field(24, ge=0)
    csat_scale: tuple[int, int] = (1, 5)

    @model_validator(mode="after")
    def _consistent(self) -> LifecyclePolicy:
        missing = [s.value for s in Status if s not in self.transitions]
        if missing:
            raise ValueError(f"transitions has no entry for {missing}")
        for status, targets in self.transitions.items():
            if status in targets:
                raise ValueError(f"{status.value} lists itself as a transition")
            if len(set(targets)) != len(targets):
                raise ValueError(f"{status.value} lists a transition twice")
            if not targets and status not in ENDINGS:
                raise ValueError(f"{status.value} is a dead end; only Closed or Incomplete may be")
            if targets and Status.CLOSED not in reachable(self.transitions, status):
                raise ValueError(f"{status.value} can never reach Closed")
        low, high = self.csat_scale
        if low >= high:
            raise ValueError(f"csat_scale {self.csat_scale} must run from low to high")
        return self


class TransitionRefused(Exception):
    """A lifecycle rule refused a status change; `rule_id` names the rule."""

    rule_id = "LIFECYCLE"


class IllegalTransition(TransitionRefused):
    rule_id = "LIFECYCLE-ILLEGAL-TRANSITION"

    def __init__(self, current: Status, requested: Status, allowed: tuple[Status, ...]) -> None:
        self.current = current
        self.requested = requested
        self.allowed = allowed
        options = ", ".join(s.value for s in allowed) or "nothing: it is final"
        super().__init__(
            f"a case in {current.value} cannot move to {requested.value}; allowed: {options}"
        )


class ConfirmationRequired(TransitionRefused):
    rule_id = "LIFECYCLE-CLOSE-NEEDS-CONFIRMATION"

    def __init__(self) -> None:
        super().__init__("closing needs the customer's explicit confirmation of the resolution")


class ReopenWindowPassed(TransitionRefused):
    rule_id = "LIFECYCLE-REOPEN-WINDOW"

    def __init__(self, resolved_at: datetime, window_closed_at: datetime) -> None:
        self.resolved_at = resolved_at
        self.window_closed_at = window_closed_at
        super().__init__(
            f"resolved at {resolved_at.isoformat()}; it could be reopened until "
            f"{window_closed_at.isoformat()}"
        )


def allowed_next(policy: LifecyclePolicy, status: Status) -> tuple[Status, ...]:
    return policy.transitions[status]


def is_terminal(policy: LifecyclePolicy, status: Status) -> bool:
    return not policy.transitions[status]


def require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


def check_transition(
    policy: LifecyclePolicy,
    current: Status,
    requested: Status,
    *,
    customer_confirmed: bool,
    resolved_at: datetime | None,
    now: datetime,
) -> None:
    """Raise a `TransitionRefused` unless the case may move from `current` to `requested`."""
    require_aware("now", now)
    allowed = allowed_next(policy, current)
    if requested not in allowed:
        raise IllegalTransition(current, requested, allowed)
    if (
        requested is Status.CLOSED
        and policy.closing_requires_customer_confirmation
        and not customer_confirmed
    ):
        raise ConfirmationRequired()
    # Leaving Resolved for anything but an ending takes the case back into work.
    if current is Status.RESOLVED and requested not in ENDINGS:
        if resolved_at is None:
            raise ValueError("reopening a Resolved case needs the time it was resolved")
        require_aware("resolved_at", resolved_at)
        window_closed_at = resolved_at + timedelta(days=policy.reopen_window_days)
        if now > window_closed_at:
            raise ReopenWindowPassed(resolved_at, window_closed_at)


def status_after_reassignment(status: Status) -> Status:
    """Reassigning is not a transition; a case not yet being worked waits for its new owner."""
    if status in (Status.ASSIGNED, Status.ACKNOWLEDGED):
        return Status.ASSIGNED
    return status


def survey_due_at(policy: LifecyclePolicy, resolved_at: datetime) -> datetime:
    require_aware("resolved_at", resolved_at)
    return resolved_at + timedelta(hours=policy.satisfaction_survey_after_hours)


def validate_csat(policy: LifecyclePolicy, score: int) -> int:
    low, high = policy.csat_scale
    # bool is an int in Python; a True score is a bug upstream, not a 1.
    if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
        raise ValueError(f"CSAT score must be a whole number from {low} to {high}, got {score!r}")
    return score


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class WorklogEntry(Strict):
    """One interaction: when, the kind of issue, what was done and what came of it."""

    at: AwareDatetime
    issue_type: Annotated[Text, StringConstraints(max_length=200)]
    action: Annotated[Text, StringConstraints(max_length=2000)]
    outcome: Annotated[Text, StringConstraints(max_length=2000)]
    author: Text
    next_action: Annotated[Text, StringConstraints(max_length=500)] | None = None

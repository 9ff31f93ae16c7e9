"""Who works a case: shifts in local time, skills and tiers, least-loaded choice, shift-end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, field_validator, model_validator

from casetrail.contracts.events import CaseType
from casetrail.runtime.models import Strict
from casetrail.triage.lifecycle import require_aware

RuleId = Annotated[str, Field(pattern=r"^[A-Z0-9-]+$")]
Skill = Annotated[str, Field(min_length=1)]
Tier = Annotated[int, Field(ge=1, le=3)]

SHIFT_END_RULE = "SHIFT-END-LEFT-ASSIGNED"
# A shift ends at the instant the agent goes off; one tick earlier they were still on.
_TICK = timedelta(microseconds=1)
# A stretch on shift longer than this never ends (a 24/7 rota).
_LOOKAHEAD = timedelta(days=8)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class ShiftInterval(Strict):
    """One working stretch on one weekday, local time; a night shift is two intervals."""

    weekday: int = Field(ge=0, le=6)  # Monday is 0, as in datetime.weekday()
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")

    @model_validator(mode="after")
    def _ends_after_start(self) -> ShiftInterval:
        if self.end_minute <= self.start_minute:
            raise ValueError(f"shift interval {self.start}-{self.end} must end after it starts")
        return self

    @property
    def start_minute(self) -> int:
        return _minutes(self.start)

    @property
    def end_minute(self) -> int:
        return _minutes(self.end)


class ShiftCalendar(Strict):
    timezone: str
    intervals: tuple[ShiftInterval, ...]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown IANA time zone {name!r}") from error
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances per key


def _micros_of_day(local: datetime) -> int:
    return ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond


def on_shift(calendar: ShiftCalendar, now: datetime) -> bool:
    """Whether the local wall clock at `now` falls in one of the calendar's intervals."""
    require_aware("now", now)
    local = now.astimezone(calendar.zone)
    moment = _micros_of_day(local)
    return any(
        interval.weekday == local.weekday()
        and interval.start_minute * 60_000_000 <= moment < interval.end_minute * 60_000_000
        for interval in calendar.intervals
    )


def _wall_instants(zone: ZoneInfo, wall: datetime) -> set[datetime]:
    # Both folds: a wall time repeated at a fall-back happens twice; one skipped by a
    # spring-forward yields the gap's bounds, and the gap itself is found as a transition.
    return {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}


def _transitions(zone: ZoneInfo, day: date) -> set[datetime]:
    """The UTC instant the zone's offset changes around local `day`, if it does."""
    low = int(datetime.combine(day, time(), zone).timestamp()) - 3600
    high = low + 26 * 3600
    before = datetime.fromtimestamp(low, zone).utcoffset()
    if datetime.fromtimestamp(high, zone).utcoffset() == before:
        return set()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return {datetime.fromtimestamp(high, UTC)}


def _shift_ends(calendar: ShiftCalendar, first_day: date, last_day: date) -> list[datetime]:
    """Every instant, around local days first_day..last_day, at which the agent goes off shift.

    The agent can only go off when the wall clock reaches an interval's end or jumps at a
    DST change; of those instants, the ones where the next interval does not carry on are ends.
    """
    zone = calendar.zone
    candidates: set[datetime] = set()
    day = first_day
    while day <= last_day:
        midnight = datetime.combine(day, time())
        for interval in calendar.intervals:
            if interval.weekday == day.weekday():
                wall = midnight + timedelta(minutes=interval.end_minute)
                candidates |= _wall_instants(zone, wall)
        candidates |= _transitions(zone, day)
        day += timedelta(days=1)
    return sorted(
        instant
        for instant in candidates
        if on_shift(calendar, instant - _TICK) and not on_shift(calendar, instant)
    )


def shift_end(calendar: ShiftCalendar, now: datetime) -> datetime | None:
    """When (UTC) the shift `now` is in ends; None off shift or on a rota that never stops."""
    if not on_shift(calendar, now):
        return None
    today = now.astimezone(calendar.zone).date()
    ends = _shift_ends(calendar, today, today + _LOOKAHEAD)
    return next((end for end in ends if end > now), None)


def last_shift_end_between(
    calendar: ShiftCalendar, start: datetime, end: datetime
) -> datetime | None:
    """The latest shift end in (start, end], in UTC."""
    require_aware("start", start)
    require_aware("end", end)
    if end <= start:
        return None
    zone = calendar.zone
    # A day either side: an interval ending at 24:00, or a DST fold, crosses the date line.
    first_day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date() + timedelta(days=1)
    ends = [e for e in _shift_ends(calendar, first_day, last_day) if start < e <= end]
    return ends[-1] if ends else None


class Agent(Strict):
    agent_id: str = Field(min_length=1)
    name: str
    team: str
    skills: frozenset[Skill] = frozenset()
    tiers: frozenset[Tier] = Field(min_length=1)
    shift: ShiftCalendar
    capacity: int = Field(ge=1)  # how many open cases the agent can carry at once
    active: bool = True


class Requirement(Strict):
    tier: Tier
    skills: frozenset[Skill] = frozenset()


class AssignmentRuleIds(Strict):
    least_loaded: RuleId = "ASSIGN-LEAST-LOADED"
    dual_partner: RuleId = "ASSIGN-DUAL-PARTNER"
    # A Dual case type, but nobody else qualified is on shift to partner.
    no_partner: RuleId = "ASSIGN-DUAL-NO-PARTNER"
    none_available: RuleId = "ASSIGN-NONE-AVAILABLE"

    @model_validator(mode="after")
    def _distinct(self) -> AssignmentRuleIds:
        ids = list(self.model_dump().values())
        if len(ids) != len(set(ids)):
            raise ValueError("assignment rule ids must be distinct")
        return self


class AssignmentPolicy(Strict):
    skills_by_case_type: dict[CaseType, tuple[Skill, ...]] = Field(
        default_factory=lambda: {
            CaseType.REGULATORY: ("regulatory",),
            CaseType.LEGAL: ("legal",),
            CaseType.NOD: ("legal",),
            CaseType.EXECUTIVE: ("executive",),
        }
    )
    # Keyed by the triage rule ids that fired, e.g. a fraud alert wants a fraud specialist.
    skills_by_rule: dict[RuleId, tuple[Skill, ...]] = Field(
        default_factory=lambda: {"SEV-FRAUD": ("fraud",)}
    )
    dual_assignment_case_types: tuple[CaseType, ...] = (
        CaseType.EXECUTIVE,
        CaseType.REGULATORY,
        CaseType.LEGAL,
        CaseType.NOD,
    )
    rule_ids: AssignmentRuleIds = AssignmentRuleIds()


class AssignmentKind(StrEnum):
    # Dual: the partner must also enter classification and resolution details.
    DUAL = "Dual"
    # Task: one owner; anyone else on the case only adds worklog updates.
    TASK = "Task"


class AssignmentDecision(Strict):
    primary: str | None  # None: nobody qualified is on shift with room; the case queues
    partner: str | None
    team: str | None  # the primary's team
    kind: AssignmentKind
    requirement: Requirement
    rules_fired: tuple[str, ...]


def requirement_for(
    policy: AssignmentPolicy, *, tier: int, case_type: CaseType, rules_fired: Iterable[str]
) -> Requirement:
    skills = set(policy.skills_by_case_type.get(case_type, ()))
    for rule in rules_fired:
        skills.update(policy.skills_by_rule.get(rule, ()))
    return Requirement(tier=tier, skills=frozenset(skills))


def _qualified(
    agent: Agent, requirement: Requirement, loads: Mapping[str, int], now: datetime
) -> bool:
    return (
        agent.active
        and requirement.tier in agent.tiers
        and requirement.skills <= agent.skills
        and loads.get(agent.agent_id, 0) < agent.capacity
        and on_shift(agent.shift, now)
    )


def _least_loaded(candidates: Iterable[Agent], loads: Mapping[str, int]) -> Agent | None:
    def key(agent: Agent) -> tuple[Fraction, int, str]:
        load = loads.get(agent.agent_id, 0)
        # Fraction, not float: equal ratios (1/2, 2/4) must tie exactly.
        return Fraction(load, agent.capacity), load, agent.agent_id

    return min(candidates, key=key, default=None)


def choose_agent(
    requirement: Requirement, agents: Iterable[Agent], loads: Mapping[str, int], now: datetime
) -> Agent | None:
    """The qualified agent on shift with room, least loaded for their capacity."""
    return _least_loaded((a for a in agents if _qualified(a, requirement, loads, now)), loads)


def choose_partner(
    requirement: Requirement,
    agents: Iterable[Agent],
    loads: Mapping[str, int],
    now: datetime,
    *,
    primary: str,
) -> Agent | None:
    """A Dual partner: chosen as the primary was, but never the primary."""
    others = (a for a in agents if a.agent_id != primary)
    return choose_agent(requirement, others, loads, now)


def assign(
    policy: AssignmentPolicy,
    *,
    tier: int,
    case_type: CaseType,
    rules_fired: Iterable[str],
    agents: Sequence[Agent],
    loads: Mapping[str, int],
    now: datetime,
) -> AssignmentDecision:
    requirement = requirement_for(policy, tier=tier, case_type=case_type, rules_fired=rules_fired)
    dual = case_type in policy.dual_assignment_case_types
    kind = AssignmentKind.DUAL if dual else AssignmentKind.TASK
    ids = policy.rule_ids
    primary = choose_agent(requirement, agents, loads, now)
    if primary is None:
        return AssignmentDecision(
            primary=None,
            partner=None,
            team=None,
            kind=kind,
            requirement=requirement,
            rules_fired=(ids.none_available,),
        )
    fired = [ids.least_loaded]
    partner = None
    if dual:
        partner = choose_partner(requirement, agents, loads, now, primary=primary.agent_id)
        fired.append(ids.dual_partner if partner else ids.no_partner)
    return AssignmentDecision(
        primary=primary.agent_id,
        partner=partner.agent_id if partner else None,
        team=primary.team,
        kind=kind,
        requirement=requirement,
        rules_fired=tuple(fired),
    )


class EndOfShiftItem(Strict):
    """A case its agent's shift ended on while it still sat in Assigned."""

    case_id: UUID
    agent_id: str
    shift_ended_at: AwareDatetime
    rule_id: str = SHIFT_END_RULE


def end_of_shift_report(
    agents: Iterable[Agent],
    cases_in_assigned: Mapping[str, Sequence[UUID]],
    since: datetime,
    until: datetime,
) -> list[EndOfShiftItem]:
    """Every case still Assigned to an agent whose shift ended in (since, until].

    Cases of agents missing from `agents` are left out: without a calendar there is no
    shift end to report against.
    """
    roster = {agent.agent_id: agent for agent in agents}
    items: list[EndOfShiftItem] = []
    for agent_id, case_ids in cases_in_assigned.items():
        agent = roster.get(agent_id)
        if agent is None or not case_ids:
            continue
        ended = last_shift_end_between(agent.shift, since, until)
        if ended is not None:
            items.extend(
                EndOfShiftItem(case_id=case_id, agent_id=agent_id, shift_ended_at=ended)
                for case_id in case_ids
            )
    return sorted(items, key=lambda item: (item.shift_ended_at, item.agent_id, str(item.case_id)))

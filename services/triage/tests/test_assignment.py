from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from casetrail.contracts.events import CaseType
from casetrail.triage.assignment import (
    Agent,
    AssignmentKind,
    AssignmentPolicy,
    EndOfShiftItem,
    Requirement,
    ShiftCalendar,
    ShiftInterval,
    assign,
    choose_agent,
    choose_partner,
    end_of_shift_report,
    last_shift_end_between,
    on_shift,
    requirement_for,
    shift_end,
)

POLICY = AssignmentPolicy()
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)  # a Monday
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
TIER_1 = Requirement(tier=1)


def calendar(zone="UTC", start="00:00", end="24:00", days=range(7)):
    intervals = tuple(ShiftInterval(weekday=d, start=start, end=end) for d in days)
    return ShiftCalendar(timezone=zone, intervals=intervals)


ALWAYS = calendar()
WEEKDAYS_NY = calendar("America/New_York", "08:00", "20:00", range(5))


def agent(agent_id, *, tiers=(1,), skills=(), capacity=5, active=True, shift=ALWAYS, team="core"):
    return Agent(
        agent_id=agent_id,
        name=agent_id.title(),
        team=team,
        skills=frozenset(skills),
        tiers=frozenset(tiers),
        shift=shift,
        capacity=capacity,
        active=active,
    )


def pick(agents, loads=None, requirement=TIER_1, now=NOW):
    chosen = choose_agent(requirement, agents, loads or {}, now)
    return chosen.agent_id if chosen else None


def test_the_least_loaded_agent_for_their_capacity_is_chosen():
    # 4 of 10 is lighter than 1 of 2, although 1 case is fewer than 4.
    assert pick(
        [agent("big", capacity=10), agent("small", capacity=2)], {"big": 4, "small": 1}
    ) == ("big")


def test_equal_ratios_go_to_the_agent_with_fewer_cases():
    assert pick([agent("a", capacity=4), agent("b", capacity=2)], {"a": 2, "b": 1}) == "b"


def test_a_full_tie_goes_to_the_lowest_agent_id():
    assert pick([agent("zoe"), agent("amy"), agent("max")]) == "amy"


@given(st.permutations([agent("zoe"), agent("amy"), agent("max"), agent("bob", capacity=2)]))
def test_the_choice_does_not_depend_on_roster_order(roster):
    assert pick(roster, {"zoe": 1, "amy": 2, "max": 1, "bob": 1}) == "max"


def test_an_agent_at_capacity_is_not_chosen():
    assert pick([agent("a", capacity=2), agent("b", capacity=9)], {"a": 2, "b": 8}) == "b"
    assert pick([agent("a", capacity=2)], {"a": 2}) is None


def test_an_agent_off_shift_or_inactive_is_not_chosen():
    night = agent("night", shift=calendar(start="22:00", end="24:00"))
    assert pick([night, agent("away", active=False)]) is None


def test_an_agent_without_the_tier_or_every_skill_is_not_chosen():
    need = Requirement(tier=2, skills=frozenset({"regulatory", "fraud"}))
    roster = [
        agent("tier1", tiers=(1,), skills=("regulatory", "fraud")),
        agent("half", tiers=(2,), skills=("regulatory",)),
        agent("fit", tiers=(1, 2), skills=("regulatory", "fraud", "legal")),
    ]
    assert pick(roster, {"fit": 4}, requirement=need) == "fit"


def test_the_requirement_joins_the_case_types_and_the_fired_rules_skills():
    need = requirement_for(
        POLICY, tier=2, case_type=CaseType.REGULATORY, rules_fired=("SEV-FRAUD", "TIER-CRITICAL")
    )
    assert need == Requirement(tier=2, skills=frozenset({"regulatory", "fraud"}))
    assert requirement_for(POLICY, tier=1, case_type=CaseType.GENERAL, rules_fired=()) == TIER_1
    assert requirement_for(POLICY, tier=3, case_type=CaseType.NOD, rules_fired=()).skills == {
        "legal"
    }


def test_a_general_case_is_a_task_for_one_agent():
    decision = assign(
        POLICY,
        tier=1,
        case_type=CaseType.GENERAL,
        rules_fired=(),
        agents=[agent("a", team="frontline"), agent("b")],
        loads={"a": 0, "b": 3},
        now=NOW,
    )
    assert (decision.primary, decision.partner, decision.team) == ("a", None, "frontline")
    assert decision.kind is AssignmentKind.TASK
    assert decision.rules_fired == ("ASSIGN-LEAST-LOADED",)


def test_an_executive_case_gets_a_dual_partner_with_the_same_tier_and_skills():
    roster = [
        agent("e1", tiers=(2,), skills=("executive",)),
        agent("e2", tiers=(2,), skills=("executive",)),
        agent("t1", tiers=(1,), skills=("executive",)),
        agent("g2", tiers=(2,)),
    ]
    decision = assign(
        POLICY,
        tier=2,
        case_type=CaseType.EXECUTIVE,
        rules_fired=(),
        agents=roster,
        loads={"e1": 1},
        now=NOW,
    )
    assert (decision.primary, decision.partner) == ("e2", "e1")
    assert decision.kind is AssignmentKind.DUAL
    assert decision.rules_fired == ("ASSIGN-LEAST-LOADED", "ASSIGN-DUAL-PARTNER")


def test_a_dual_case_with_one_qualified_agent_goes_without_a_partner_and_says_so():
    decision = assign(
        POLICY,
        tier=3,
        case_type=CaseType.LEGAL,
        rules_fired=(),
        agents=[agent("lawyer", tiers=(3,), skills=("legal",)), agent("other")],
        loads={},
        now=NOW,
    )
    assert (decision.primary, decision.partner) == ("lawyer", None)
    assert decision.rules_fired == ("ASSIGN-LEAST-LOADED", "ASSIGN-DUAL-NO-PARTNER")


def test_with_nobody_available_the_case_queues_under_its_own_rule():
    decision = assign(
        POLICY,
        tier=2,
        case_type=CaseType.REGULATORY,
        rules_fired=(),
        agents=[agent("a")],
        loads={},
        now=NOW,
    )
    assert (decision.primary, decision.partner, decision.team) == (None, None, None)
    assert decision.rules_fired == ("ASSIGN-NONE-AVAILABLE",)


@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcdef"),
            st.integers(1, 3),
            st.integers(1, 4),
            st.integers(0, 4),
        ),
        max_size=8,
        unique_by=lambda row: row[0],
    )
)
def test_a_dual_partner_is_never_the_primary_and_both_qualify(rows):
    roster = [agent(i, capacity=c, tiers=(t,), skills=("executive",)) for i, t, c, _ in rows]
    loads = {i: load for i, _, _, load in rows}
    decision = assign(
        POLICY,
        tier=2,
        case_type=CaseType.EXECUTIVE,
        rules_fired=(),
        agents=roster,
        loads=loads,
        now=NOW,
    )
    if decision.partner is not None:
        assert decision.partner != decision.primary
    for chosen in (decision.primary, decision.partner):
        if chosen is not None:
            assert any(a.agent_id == chosen and 2 in a.tiers for a in roster)
            assert loads.get(chosen, 0) < min(a.capacity for a in roster if a.agent_id == chosen)


def test_choose_partner_skips_the_primary_even_when_it_is_the_lightest():
    roster = [agent("a"), agent("b")]
    assert choose_partner(TIER_1, roster, {"b": 4}, NOW, primary="a").agent_id == "b"
    assert choose_partner(TIER_1, roster[:1], {}, NOW, primary="a") is None


def test_a_shift_covers_its_start_and_not_its_end_in_local_time():
    monday = datetime(2026, 11, 23, tzinfo=NY)
    assert not on_shift(WEEKDAYS_NY, monday.replace(hour=7, minute=59))
    assert on_shift(WEEKDAYS_NY, monday.replace(hour=8))
    assert on_shift(WEEKDAYS_NY, monday.replace(hour=19, minute=59, second=59))
    assert not on_shift(WEEKDAYS_NY, monday.replace(hour=20))
    assert not on_shift(WEEKDAYS_NY, datetime(2026, 11, 22, 12, tzinfo=NY))  # Sunday


def test_a_shift_ends_at_local_20_00_on_both_sides_of_a_dst_change():
    # US DST starts Sunday 2026-03-08: 20:00 local is 01:00 UTC on Friday, 00:00 UTC on Monday.
    every_day = calendar("America/New_York", "08:00", "20:00")
    friday = datetime(2026, 3, 6, 15, tzinfo=UTC)
    assert shift_end(every_day, friday) == datetime(2026, 3, 7, 1, tzinfo=UTC)
    assert shift_end(every_day, friday + timedelta(days=3)) == datetime(2026, 3, 10, tzinfo=UTC)


def test_a_shift_ending_in_the_skipped_hour_ends_when_the_clocks_jump():
    early = calendar("America/New_York", "00:00", "02:30", [6])
    assert shift_end(early, datetime(2026, 3, 8, 1, tzinfo=NY)) == datetime(
        2026, 3, 8, 7, tzinfo=UTC
    )


def test_a_shift_split_at_midnight_ends_in_the_morning_not_at_midnight():
    night = ShiftCalendar(
        timezone="Europe/London",
        intervals=(
            ShiftInterval(weekday=0, start="22:00", end="24:00"),
            ShiftInterval(weekday=1, start="00:00", end="06:00"),
        ),
    )
    monday_late = datetime(2026, 11, 23, 23, tzinfo=LONDON)
    assert shift_end(night, monday_late) == datetime(2026, 11, 24, 6, tzinfo=UTC)
    around_midnight = (monday_late, monday_late + timedelta(hours=2))
    assert last_shift_end_between(night, *around_midnight) is None


def test_a_round_the_clock_rota_has_no_shift_end():
    assert shift_end(ALWAYS, NOW) is None
    assert shift_end(WEEKDAYS_NY, datetime(2026, 11, 22, 12, tzinfo=NY)) is None  # off shift


def test_the_latest_shift_end_in_a_window_is_found_in_utc():
    # British Summer Time ends Sunday 2026-10-25: 17:00 local is 16:00 UTC before, 17:00 after.
    every_day = calendar("Europe/London", "09:00", "17:00")
    start = datetime(2026, 10, 23, 12, tzinfo=UTC)
    assert last_shift_end_between(every_day, start, start + timedelta(days=1)) == datetime(
        2026, 10, 23, 16, tzinfo=UTC
    )
    assert last_shift_end_between(every_day, start, start + timedelta(days=3, hours=6)) == (
        datetime(2026, 10, 26, 17, tzinfo=UTC)
    )


DST_WEEKS = {
    "America/New_York": (datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC)),
    "Europe/London": (datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 10, 23, tzinfo=UTC)),
}
half_hours = st.integers(0, 48).map(lambda n: f"{n // 2:02d}:{n % 2 * 30:02d}")
intervals = st.tuples(st.integers(0, 6), half_hours, half_hours).filter(lambda i: i[1] < i[2])
zones_and_instants = st.sampled_from(sorted(DST_WEEKS)).flatmap(
    lambda zone: st.tuples(
        st.just(zone),
        st.sampled_from(DST_WEEKS[zone]).flatmap(
            lambda week: st.integers(0, 5 * 24 * 60).map(
                lambda minutes: week + timedelta(minutes=minutes, seconds=7)
            )
        ),
    )
)


def random_calendar(zone, rows):
    return ShiftCalendar(
        timezone=zone,
        intervals=tuple(ShiftInterval(weekday=d, start=s, end=e) for d, s, e in rows),
    )


@given(zones_and_instants, st.lists(intervals, max_size=6))
def test_on_shift_agrees_with_the_local_wall_clock_across_dst_changes(zone_and_now, rows):
    zone, now = zone_and_now
    wall = now.astimezone(ZoneInfo(zone))
    clock = wall.strftime("%H:%M:%S")
    expected = any(d == wall.weekday() and f"{s}:00" <= clock < f"{e}:00" for d, s, e in rows)
    assert on_shift(random_calendar(zone, rows), now) == expected


@settings(max_examples=60)
@given(zones_and_instants, st.lists(intervals, min_size=1, max_size=6))
def test_shift_end_is_the_first_instant_off_shift_across_dst_changes(zone_and_now, rows):
    zone, now = zone_and_now
    shifts = random_calendar(zone, rows)
    end = shift_end(shifts, now)
    if end is None:
        return
    assert end > now
    assert not on_shift(shifts, end)
    assert on_shift(shifts, end - timedelta(microseconds=1))
    probe = now
    while probe < end:
        assert on_shift(shifts, probe)
        probe += timedelta(minutes=10)
    assert last_shift_end_between(shifts, now, end) == end


def test_end_of_shift_lists_every_case_still_assigned_when_the_shift_ended_in_the_window():
    since = datetime(2026, 11, 23, 17, tzinfo=UTC)
    until = since + timedelta(hours=1)
    ends_at_since = agent("a", shift=calendar(start="09:00", end="17:00"))
    ends_at_until = agent("b", shift=calendar(start="10:00", end="18:00"))
    ends_later = agent("c", shift=calendar(start="12:00", end="20:00"))
    also_in_window = agent("d", shift=calendar(start="09:30", end="17:30"), active=False)
    b1, b2, a1, c1, d1 = (uuid4() for _ in range(5))
    report = end_of_shift_report(
        [ends_at_since, ends_at_until, ends_later, also_in_window, agent("idle")],
        {"a": [a1], "b": [b2, b1], "c": [c1], "d": [d1], "idle": [], "gone": [uuid4()]},
        since,
        until,
    )
    assert report == [
        EndOfShiftItem(case_id=d1, agent_id="d", shift_ended_at=since + timedelta(minutes=30)),
        *sorted(
            (EndOfShiftItem(case_id=c, agent_id="b", shift_ended_at=until) for c in (b1, b2)),
            key=lambda item: str(item.case_id),
        ),
    ]
    assert {item.rule_id for item in report} == {"SHIFT-END-LEFT-ASSIGNED"}


@pytest.mark.parametrize(
    ("start", "end"),
    [("09:00", "09:00"), ("17:00", "09:00"), ("24:00", "24:00"), ("9:00", "17:00")],
)
def test_a_malformed_shift_interval_is_refused(start, end):
    with pytest.raises(ValidationError):
        ShiftInterval(weekday=0, start=start, end=end)


def test_unknown_time_zones_weekdays_and_tiers_are_refused():
    with pytest.raises(ValidationError, match="time zone"):
        ShiftCalendar(timezone="Mars/Olympus_Mons", intervals=())
    with pytest.raises(ValidationError):
        ShiftInterval(weekday=7, start="08:00", end="20:00")
    with pytest.raises(ValidationError):
        agent("a", tiers=(4,))
    with pytest.raises(ValidationError):
        agent("a", tiers=())


def test_an_assignment_policy_with_an_unknown_case_type_or_clashing_rule_ids_is_refused():
    with pytest.raises(ValidationError):
        AssignmentPolicy.model_validate({"skills_by_case_type": {"Billing": ["billing"]}})
    with pytest.raises(ValidationError, match="distinct"):
        AssignmentPolicy.model_validate({"rule_ids": {"no_partner": "ASSIGN-LEAST-LOADED"}})

import tomllib
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from casetrail.triage.assignment import AssignmentPolicy
from casetrail.triage.lifecycle import (
    DEFAULT_TRANSITIONS,
    ConfirmationRequired,
    IllegalTransition,
    LifecyclePolicy,
    ReopenWindowPassed,
    Status,
    WorklogEntry,
    check_transition,
    status_after_reassignment,
    survey_due_at,
    validate_csat,
)

# The [lifecycle] and [assignment] sections of triage's policy.toml, as handed over.
POLICY_TOML = """
[lifecycle]
closing_requires_customer_confirmation = true
# A Resolved case can go back to Pending On for this long after resolution.
reopen_window_days = 14
satisfaction_survey_after_hours = 24
csat_scale = [1, 5]

# Allowed next statuses; Closed and Incomplete are final. Reassignment is not a transition.
[lifecycle.transitions]
Assigned = ["Acknowledged", "Incomplete"]
Acknowledged = ["Pending On", "Resolved", "Incomplete"]
"Pending On" = ["Awaiting Customer", "ESL QA", "Legal Review", "Resolved", "Incomplete"]
"Awaiting Customer" = ["Pending On", "Resolved", "Incomplete"]
"ESL QA" = ["Pending On", "Legal Review", "Resolved"]
"Legal Review" = ["Pending On", "Resolved"]
Resolved = ["Closed", "Pending On"]
Closed = []
Incomplete = []

[assignment]
# These case types get a Dual partner, who also enters classification and resolution.
dual_assignment_case_types = ["Executive", "Regulatory", "Legal", "NOD"]

[assignment.skills_by_case_type]
Executive = ["executive"]
Regulatory = ["regulatory"]
Legal = ["legal"]
NOD = ["legal"]

# Skills wanted when a triage rule fired.
[assignment.skills_by_rule]
SEV-FRAUD = ["fraud"]

[assignment.rule_ids]
least_loaded = "ASSIGN-LEAST-LOADED"
dual_partner = "ASSIGN-DUAL-PARTNER"
no_partner = "ASSIGN-DUAL-NO-PARTNER"
none_available = "ASSIGN-NONE-AVAILABLE"
"""

PARSED = tomllib.loads(POLICY_TOML)
POLICY = LifecyclePolicy.model_validate(PARSED["lifecycle"])
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
TICK = timedelta(microseconds=1)
LEGAL = [
    (current, target) for current, targets in DEFAULT_TRANSITIONS.items() for target in targets
]
NON_TERMINAL = [s for s, targets in DEFAULT_TRANSITIONS.items() if targets]


def move(current, requested, *, confirmed=True, resolved_at=NOW, now=NOW, policy=POLICY):
    check_transition(
        policy,
        current,
        requested,
        customer_confirmed=confirmed,
        resolved_at=resolved_at,
        now=now,
    )


def path_to_closed(transitions, start):
    """A shortest route from start to Closed, or None; independent of the module's own search."""
    routes = {start: [start]}
    frontier = [start]
    while frontier:
        status = frontier.pop(0)
        if status is Status.CLOSED:
            return routes[status]
        for target in transitions[status]:
            if target not in routes:
                routes[target] = [*routes[status], target]
                frontier.append(target)
    return None


def test_the_policy_toml_snippet_validates_and_matches_the_code_defaults():
    assert POLICY == LifecyclePolicy(reopen_window_days=14)
    assert AssignmentPolicy.model_validate(PARSED["assignment"]) == AssignmentPolicy()


@pytest.mark.parametrize(("current", "requested"), LEGAL)
def test_every_transition_in_the_default_table_is_allowed(current, requested):
    move(current, requested)


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (Status.ASSIGNED, Status.RESOLVED),
        (Status.ASSIGNED, Status.CLOSED),
        (Status.ACKNOWLEDGED, Status.ESL_QA),
        (Status.LEGAL_REVIEW, Status.ESL_QA),
        (Status.PENDING_ON, Status.CLOSED),
        (Status.RESOLVED, Status.ACKNOWLEDGED),
    ],
)
def test_an_illegal_transition_is_refused_naming_what_is_allowed(current, requested):
    with pytest.raises(IllegalTransition) as refused:
        move(current, requested)
    allowed = DEFAULT_TRANSITIONS[current]
    assert refused.value.allowed == allowed
    assert (refused.value.current, refused.value.requested) == (current, requested)
    for status in allowed:
        assert status.value in str(refused.value)


def test_closed_and_incomplete_are_final():
    for final in (Status.CLOSED, Status.INCOMPLETE):
        with pytest.raises(IllegalTransition, match="it is final"):
            move(final, Status.PENDING_ON)


@given(st.sampled_from(Status), st.sampled_from(Status))
def test_any_move_outside_the_table_is_refused(current, requested):
    if (current, requested) in LEGAL:
        move(current, requested)
    else:
        with pytest.raises(IllegalTransition):
            move(current, requested)


def test_an_esli_quick_hit_resolves_straight_from_acknowledged():
    move(Status.ACKNOWLEDGED, Status.RESOLVED)


def test_closing_without_the_customers_confirmation_is_refused():
    with pytest.raises(ConfirmationRequired) as refused:
        move(Status.RESOLVED, Status.CLOSED, confirmed=False)
    assert refused.value.rule_id == "LIFECYCLE-CLOSE-NEEDS-CONFIRMATION"


def test_a_playbook_may_close_without_confirmation():
    lenient = POLICY.model_copy(update={"closing_requires_customer_confirmation": False})
    move(Status.RESOLVED, Status.CLOSED, confirmed=False, policy=lenient)


def test_a_resolved_case_reopens_up_to_the_last_instant_of_the_window():
    resolved_at = NOW - timedelta(days=14)
    move(Status.RESOLVED, Status.PENDING_ON, resolved_at=resolved_at)
    with pytest.raises(ReopenWindowPassed) as refused:
        move(
            Status.RESOLVED, Status.PENDING_ON, resolved_at=resolved_at - timedelta(microseconds=1)
        )
    assert refused.value.window_closed_at == NOW - TICK


def test_reopening_needs_to_know_when_the_case_was_resolved():
    with pytest.raises(ValueError, match="resolved"):
        move(Status.RESOLVED, Status.PENDING_ON, resolved_at=None)


def test_closing_long_after_resolution_is_not_a_reopen():
    move(Status.RESOLVED, Status.CLOSED, resolved_at=NOW - timedelta(days=400))


def test_naive_clocks_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        move(Status.ASSIGNED, Status.ACKNOWLEDGED, now=datetime(2026, 11, 23, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        survey_due_at(POLICY, datetime(2026, 11, 23, 10))


@pytest.mark.parametrize("start", NON_TERMINAL)
def test_closed_is_reachable_from_every_open_status_through_accepted_moves(start):
    route = path_to_closed(POLICY.transitions, start)
    assert route is not None
    for current, requested in pairwise(route):
        move(current, requested)


def test_reassignment_puts_an_unstarted_case_back_to_assigned_and_keeps_work_in_progress():
    assert status_after_reassignment(Status.ACKNOWLEDGED) is Status.ASSIGNED
    assert status_after_reassignment(Status.ASSIGNED) is Status.ASSIGNED
    assert status_after_reassignment(Status.PENDING_ON) is Status.PENDING_ON
    assert status_after_reassignment(Status.LEGAL_REVIEW) is Status.LEGAL_REVIEW


def test_the_satisfaction_survey_is_due_a_day_after_resolution():
    assert survey_due_at(POLICY, NOW) == NOW + timedelta(hours=24)


@pytest.mark.parametrize("score", [1, 3, 5])
def test_a_csat_score_on_the_scale_is_accepted(score):
    assert validate_csat(POLICY, score) == score


@pytest.mark.parametrize("score", [0, 6, -1, True, 4.5])
def test_a_csat_score_off_the_scale_is_refused(score):
    with pytest.raises(ValueError, match="from 1 to 5"):
        validate_csat(POLICY, score)


def table(**changes):
    transitions = {
        s.value: [t.value for t in targets] for s, targets in DEFAULT_TRANSITIONS.items()
    }
    transitions.update(changes)
    return {"reopen_window_days": 14, "transitions": transitions}


@pytest.mark.parametrize(
    ("transitions", "complaint"),
    [
        ({k: v for k, v in table()["transitions"].items() if k != "Incomplete"}, "no entry"),
        (table(**{"Legal Review": []})["transitions"], "dead end"),
        (table(Resolved=["Resolved", "Closed"])["transitions"], "itself"),
        (table(Assigned=["Acknowledged", "Acknowledged"])["transitions"], "twice"),
        (table(Assigned=["Escalated"])["transitions"], "Assigned"),
        (
            table(
                **{
                    "Pending On": ["ESL QA"],
                    "ESL QA": ["Legal Review"],
                    "Legal Review": ["ESL QA"],
                }
            )["transitions"],
            "never reach Closed",
        ),
    ],
)
def test_a_broken_transition_table_is_refused(transitions, complaint):
    with pytest.raises(ValidationError, match=complaint):
        LifecyclePolicy.model_validate({"reopen_window_days": 14, "transitions": transitions})


def test_a_playbook_may_let_a_closed_case_reopen():
    policy = LifecyclePolicy.model_validate(table(Closed=["Pending On"]))
    move(Status.CLOSED, Status.PENDING_ON, policy=policy)


def test_a_backwards_csat_scale_is_refused():
    with pytest.raises(ValidationError, match="csat_scale"):
        LifecyclePolicy(reopen_window_days=14, csat_scale=(5, 1))


@given(
    st.fixed_dictionaries(
        {s: st.lists(st.sampled_from(Status), unique=True, max_size=4).map(tuple) for s in Status}
    )
)
def test_a_table_is_accepted_exactly_when_every_open_status_can_reach_closed(transitions):
    sound = all(
        status not in targets
        and (path_to_closed(transitions, status) if targets else status in ("Closed", "Incomplete"))
        for status, targets in transitions.items()
    )
    try:
        LifecyclePolicy(reopen_window_days=1, transitions=transitions)
    except ValidationError:
        assert not sound
    else:
        assert sound


def test_a_worklog_entry_keeps_date_issue_action_and_outcome():
    entry = WorklogEntry(
        at=NOW, issue_type="Billing", action="Refunded $20", outcome="Customer happy", author="a1"
    )
    assert (entry.issue_type, entry.outcome) == ("Billing", "Customer happy")


@pytest.mark.parametrize(
    "bad",
    [
        {"at": datetime(2026, 11, 23, 10)},
        {"issue_type": "   "},
        {"issue_type": "x" * 201},
        {"action": "x" * 2001},
        {"outcome": "x" * 2001},
        {"author": ""},
    ],
)
def test_a_worklog_entry_refuses_naive_times_and_blank_or_overlong_text(bad):
    fields = {"at": NOW, "issue_type": "Billing", "action": "a", "outcome": "o", "author": "a1"}
    with pytest.raises(ValidationError):
        WorklogEntry(**fields | bad)

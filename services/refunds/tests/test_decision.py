"""The refund and credit policy of section 6, branch by branch and boundary by boundary."""

import ast
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path as FilePath

import pytest
from pydantic import ValidationError

from casetrail.contracts.events import CaseType, RefundReason, UsageFacts
from casetrail.refunds import decision as decision_module
from casetrail.refunds.decision import (
    Approver,
    CreditFacts,
    EvidenceKind,
    InvalidFacts,
    JustificationRequired,
    Path,
    RefundDecision,
    RefundFacts,
    UnsupportedCurrency,
    days_since_charge,
    decide_credit,
    decide_package_restoration,
    decide_refund,
)
from casetrail.refunds.policy import RefundPolicy, load_policy

POLICY = load_policy()
REQUESTED = datetime(2026, 11, 23, 12, tzinfo=UTC)
NO_USAGE = UsageFacts(logged_in=False, reports_pulled=False, build_it_used=False)
SUPERVISOR, LEADERSHIP, MANAGER = Approver.SUPERVISOR, Approver.LEADERSHIP, Approver.MANAGER
OVER_LIMIT = (SUPERVISOR, "REF-APPROVAL-OVER-LIMIT")
THREAT = (SUPERVISOR, "REF-APPROVAL-THREAT")
NOD_LEADERSHIP = (LEADERSHIP, "REF-APPROVAL-NOD-LEADERSHIP")
NO_EVIDENCE = (SUPERVISOR, "REF-CANCEL-NO-EVIDENCE")


def refund(**changes) -> RefundFacts:
    """A plain $50 dissatisfaction request, three days after the charge, with changes."""
    days = changes.pop("day", 3)
    usage = changes.pop("usage", {})
    facts = RefundFacts(
        reason=RefundReason.NOT_SATISFIED,
        usage=NO_USAGE.model_copy(update=usage),
        cancellation_evidence=frozenset(),
        technical_fault=False,
        fault_resolved=False,
        goodwill_declined=False,
        plan="Premium",
        amount_minor=5_000,
        currency="USD",
        case_type=CaseType.GENERAL,
        threat=False,
        charged_at=REQUESTED - timedelta(days=days),
        requested_at=REQUESTED,
    )
    return replace(facts, **changes)


def outcome(decision: RefundDecision) -> tuple:
    """What the agent sees; each approval as (who, which rule)."""
    return (
        decision.path,
        decision.downgrade_to_basic,
        decision.plan_correction,
        decision.reasons,
        tuple((need.approver, need.rule_id) for need in decision.approvals),
    )


def pays(rule_id: str, *approvals, plan_correction=False) -> tuple:
    """A dissatisfaction refund in the window: downgraded to Basic, then paid."""
    held = tuple(rule for _, rule in approvals if rule != rule_id)
    return (
        Path.DISSATISFACTION,
        True,
        plan_correction,
        ("REF-WINDOW-OK", rule_id, *held),
        tuple(approvals),
    )


def goodwill(*approvals) -> tuple:
    """Goodwill in the window: paid, and the customer keeps their plan."""
    reasons = ("REF-WINDOW-OK", "REF-FAULT-GOODWILL", *(rule for _, rule in approvals))
    return (Path.GOODWILL, False, False, reasons, tuple(approvals))


def refused(*reasons) -> tuple:
    return (Path.NO_REFUND, True, False, reasons, ())


RESOLVE_FIRST = (Path.RESOLVE_FIRST, False, False, ("REF-WINDOW-OK", "REF-FAULT-RESOLVE-FIRST"), ())
DISPUTE = (Path.CHARGEBACK_OR_DISPUTE, True, False, ("REF-OUTSIDE-REFUND-WINDOW",), ())
FORGOT = RefundReason.FORGOT_TO_CANCEL
FAULT_REASONS = (
    RefundReason.TECHNICAL_ERROR,
    RefundReason.UNABLE_TO_USE_BUILD_IT,
    RefundReason.REPORTS_NOT_UPDATED,
)
CANCEL_REASONS = (RefundReason.CHARGED_AFTER_CANCEL, RefundReason.CANCELLED_ON_DUE_DATE)

WINDOWS = [
    pytest.param({"day": 0}, pays("REF-DISSATISFACTION"), id="same-day-in-window"),
    pytest.param({"day": 30}, pays("REF-DISSATISFACTION"), id="day-30-in-window"),
    pytest.param({"day": 31}, DISPUTE, id="day-31-chargeback-or-dispute"),
    pytest.param({"day": 120}, DISPUTE, id="day-120-chargeback-or-dispute"),
    pytest.param({"day": 121}, refused("REF-OUTSIDE-CHARGEBACK-WINDOW"), id="day-121-no-refund"),
    pytest.param(
        {"day": 31, "reason": RefundReason.TECHNICAL_ERROR, "technical_fault": True},
        DISPUTE,
        id="window-decides-before-an-unresolved-fault",
    ),
    pytest.param(
        {"day": 31, "amount_minor": 60_000, "threat": True, "case_type": CaseType.NOD},
        DISPUTE,
        id="dispute-issues-nothing-so-needs-no-approval",
    ),
    pytest.param(
        {"day": 121, "amount_minor": 60_000, "threat": True},
        refused("REF-OUTSIDE-CHARGEBACK-WINDOW"),
        id="outside-every-window-needs-no-approval",
    ),
]

FAULTS = [
    pytest.param(
        {"technical_fault": True}, RESOLVE_FIRST, id="reported-fault-unresolved-resolve-first"
    ),
    *(
        pytest.param({"reason": reason}, RESOLVE_FIRST, id=f"{reason}-unresolved-resolve-first")
        for reason in FAULT_REASONS
    ),
    pytest.param(
        {"technical_fault": True, "fault_resolved": True},
        goodwill(),
        id="reported-fault-resolved-goodwill-keeps-plan",
    ),
    *(
        pytest.param(
            {"reason": reason, "fault_resolved": True},
            goodwill(),
            id=f"{reason}-resolved-goodwill-keeps-plan",
        )
        for reason in FAULT_REASONS
    ),
    pytest.param(
        {"technical_fault": True, "fault_resolved": True, "goodwill_declined": True},
        pays("REF-FAULT-GOODWILL-DECLINED"),
        id="goodwill-declined-dissatisfaction-downgrades",
    ),
    pytest.param(
        {"technical_fault": True, "fault_resolved": True, "amount_minor": 20_001},
        goodwill(OVER_LIMIT),
        id="goodwill-over-200-needs-supervisor",
    ),
    pytest.param(
        {"technical_fault": True, "fault_resolved": True, "threat": True},
        goodwill(THREAT),
        id="goodwill-with-threat-needs-supervisor",
    ),
    pytest.param(
        {"technical_fault": True, "amount_minor": 60_000, "threat": True},
        RESOLVE_FIRST,
        id="resolve-first-issues-nothing-so-needs-no-approval",
    ),
    pytest.param(
        {"reason": FORGOT, "usage": {"logged_in": True}, "technical_fault": True},
        RESOLVE_FIRST,
        id="our-fault-comes-before-forgot-to-cancel",
    ),
]

FORGOT_TO_CANCEL = [
    pytest.param({"reason": FORGOT}, pays("REF-FORGOT-UNUSED"), id="forgot-no-usage-refunded"),
    *(
        pytest.param(
            {"reason": FORGOT, "usage": {signal: True}},
            refused("REF-WINDOW-OK", "REF-FORGOT-USED"),
            id=f"forgot-{signal}-no-refund",
        )
        for signal in ("logged_in", "reports_pulled", "build_it_used", "reward_it_redeemed")
    ),
    pytest.param(
        {"reason": FORGOT, "usage": {"contacted_support_before": True}},
        pays("REF-FORGOT-UNUSED"),
        id="forgot-contacted-support-only-is-not-usage",
    ),
    pytest.param(
        {"reason": FORGOT, "usage": {"logged_in": True}, "amount_minor": 60_000, "threat": True},
        refused("REF-WINDOW-OK", "REF-FORGOT-USED"),
        id="forgot-used-issues-nothing-so-needs-no-approval",
    ),
]

CANCEL_FAILED = [
    *(
        pytest.param(
            {"reason": reason, "cancellation_evidence": frozenset({kind})},
            pays("REF-CANCEL-FAILED", plan_correction=True),
            id=f"{reason}-{kind}-refund-and-plan-correction",
        )
        for reason in CANCEL_REASONS
        for kind in EvidenceKind
    ),
    pytest.param(
        {
            "reason": RefundReason.CHARGED_AFTER_CANCEL,
            "cancellation_evidence": frozenset(EvidenceKind),
        },
        pays("REF-CANCEL-FAILED", plan_correction=True),
        id="all-evidence-kinds-refund-and-plan-correction",
    ),
    *(
        pytest.param(
            {"reason": reason},
            pays("REF-CANCEL-NO-EVIDENCE", NO_EVIDENCE),
            id=f"{reason}-without-evidence-held-for-supervisor",
        )
        for reason in CANCEL_REASONS
    ),
    pytest.param(
        {"reason": RefundReason.CHARGED_AFTER_CANCEL, "amount_minor": 20_001, "threat": True},
        pays("REF-CANCEL-NO-EVIDENCE", NO_EVIDENCE, OVER_LIMIT, THREAT),
        id="without-evidence-over-200-with-threat-lists-every-rule",
    ),
    pytest.param(
        {"cancellation_evidence": frozenset({EvidenceKind.ACTIVITY_LOG})},
        pays("REF-DISSATISFACTION"),
        id="evidence-on-another-reason-corrects-no-plan",
    ),
]

DISSATISFACTION = [
    pytest.param({}, pays("REF-DISSATISFACTION"), id="not-satisfied-refunded"),
    pytest.param(
        {"reason": RefundReason.NOT_USED}, pays("REF-DISSATISFACTION"), id="not-used-refunded"
    ),
    pytest.param(
        {"reason": RefundReason.NOT_SATISFIED, "usage": {"logged_in": True}},
        pays("REF-DISSATISFACTION"),
        id="usage-only-matters-when-forgot-to-cancel",
    ),
]

APPROVALS = [
    pytest.param({"amount_minor": 20_000}, pays("REF-DISSATISFACTION"), id="200.00-no-approval"),
    pytest.param(
        {"amount_minor": 20_001},
        pays("REF-DISSATISFACTION", OVER_LIMIT),
        id="200.01-needs-supervisor",
    ),
    pytest.param(
        {"threat": True}, pays("REF-DISSATISFACTION", THREAT), id="threat-needs-supervisor"
    ),
    pytest.param(
        {"amount_minor": 20_001, "threat": True},
        pays("REF-DISSATISFACTION", OVER_LIMIT, THREAT),
        id="over-200-and-threat-each-recorded",
    ),
    pytest.param(
        {"amount_minor": 50_000, "case_type": CaseType.NOD},
        pays("REF-DISSATISFACTION", OVER_LIMIT),
        id="nod-500.00-supervisor-only",
    ),
    pytest.param(
        {"amount_minor": 50_001, "case_type": CaseType.NOD},
        pays("REF-DISSATISFACTION", OVER_LIMIT, NOD_LEADERSHIP),
        id="nod-500.01-supervisor-and-leadership",
    ),
    pytest.param(
        {"amount_minor": 50_001, "case_type": CaseType.LEGAL},
        pays("REF-DISSATISFACTION", OVER_LIMIT),
        id="legal-500.01-no-leadership",
    ),
    pytest.param(
        {"amount_minor": 20_000, "case_type": CaseType.NOD},
        pays("REF-DISSATISFACTION"),
        id="nod-200.00-no-approval",
    ),
    pytest.param(
        {"amount_minor": 50_001, "case_type": CaseType.NOD, "threat": True},
        pays("REF-DISSATISFACTION", OVER_LIMIT, THREAT, NOD_LEADERSHIP),
        id="nod-500.01-with-threat-three-approvals",
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected"),
    WINDOWS + FAULTS + FORGOT_TO_CANCEL + CANCEL_FAILED + DISSATISFACTION + APPROVALS,
)
def test_refund_decision(changes, expected):
    assert outcome(decide_refund(refund(**changes), POLICY)) == expected


@pytest.mark.parametrize("reason", list(RefundReason), ids=str)
def test_every_refund_reason_has_a_rule(reason):
    decision = decide_refund(refund(reason=reason, fault_resolved=True), POLICY)
    assert decision.reasons[0] == "REF-WINDOW-OK" and len(decision.reasons) >= 2


def test_every_approval_explains_itself_in_a_sentence():
    decision = decide_refund(
        refund(
            reason=RefundReason.CHARGED_AFTER_CANCEL,
            amount_minor=50_001,
            case_type=CaseType.NOD,
            threat=True,
        ),
        POLICY,
    )
    assert len(decision.approvals) == 4
    for need in decision.approvals:
        assert need.reason[0].isupper() and need.reason.endswith("."), need


@pytest.mark.parametrize(
    ("charged_at", "requested_at", "days"),
    [
        pytest.param(REQUESTED, REQUESTED, 0, id="same-instant"),
        pytest.param(
            datetime(2026, 11, 23, 0, 0, tzinfo=UTC),
            datetime(2026, 11, 23, 23, 59, tzinfo=UTC),
            0,
            id="same-utc-date-a-day-apart-in-hours",
        ),
        pytest.param(
            datetime(2026, 11, 22, 23, 59, tzinfo=UTC),
            datetime(2026, 11, 23, 0, 1, tzinfo=UTC),
            1,
            id="two-minutes-across-utc-midnight",
        ),
        pytest.param(
            datetime(2026, 10, 24, 0, 1, tzinfo=UTC),
            datetime(2026, 11, 23, 23, 59, tzinfo=UTC),
            30,
            id="day-30-lasts-all-day",
        ),
        pytest.param(
            datetime(2026, 10, 24, 20, 0, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
            29,
            id="charge-counted-on-its-utc-date",
        ),
        pytest.param(
            datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
            datetime(2026, 11, 23, 22, 0, tzinfo=timezone(timedelta(hours=-5))),
            1,
            id="request-counted-on-its-utc-date",
        ),
    ],
)
def test_days_since_charge(charged_at, requested_at, days):
    assert days_since_charge(charged_at, requested_at) == days


def test_a_charge_late_on_day_31_in_utc_is_outside_the_refund_window():
    charged = datetime(2026, 10, 23, 23, 59, tzinfo=UTC)
    requested = datetime(2026, 11, 23, 0, 1, tzinfo=UTC)
    decision = decide_refund(refund(charged_at=charged, requested_at=requested), POLICY)
    assert decision.path is Path.CHARGEBACK_OR_DISPUTE


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"charged_at": datetime(2026, 11, 20, 12)}, id="naive-charge-time"),
        pytest.param({"requested_at": datetime(2026, 11, 23, 12)}, id="naive-request-time"),
        pytest.param({"charged_at": REQUESTED + timedelta(seconds=1)}, id="charged-after-request"),
        pytest.param({"amount_minor": -1}, id="negative-amount"),
    ],
)
def test_impossible_facts_are_refused(changes):
    with pytest.raises(InvalidFacts):
        decide_refund(refund(**changes), POLICY)


def test_a_refund_in_a_currency_without_limits_is_refused():
    with pytest.raises(UnsupportedCurrency, match="EUR"):
        decide_refund(refund(currency="EUR"), POLICY)


def credit(**changes) -> CreditFacts:
    facts = CreditFacts(
        amount_minor=10_000,
        currency="USD",
        case_type=CaseType.GENERAL,
        justification="billed twice in October",
        threat=False,
    )
    return replace(facts, **changes)


OVER_AGENT_LIMIT = (SUPERVISOR, "CRD-APPROVAL-OVER-AGENT-LIMIT")
CREDIT_THREAT = (SUPERVISOR, "CRD-APPROVAL-THREAT")
CREDIT_NOD = (LEADERSHIP, "CRD-APPROVAL-NOD-LEADERSHIP")


@pytest.mark.parametrize(
    ("changes", "approvals"),
    [
        pytest.param({"amount_minor": 0}, (), id="nothing-within-limit"),
        pytest.param({"amount_minor": 30_000}, (), id="300.00-agent-alone"),
        pytest.param({"amount_minor": 30_001}, (OVER_AGENT_LIMIT,), id="300.01-needs-supervisor"),
        pytest.param({"threat": True}, (CREDIT_THREAT,), id="threat-needs-supervisor"),
        pytest.param(
            {"amount_minor": 30_000, "case_type": CaseType.NOD}, (), id="nod-300.00-agent-alone"
        ),
        pytest.param(
            {"amount_minor": 50_000, "case_type": CaseType.NOD},
            (OVER_AGENT_LIMIT,),
            id="nod-500.00-supervisor-only",
        ),
        pytest.param(
            {"amount_minor": 50_001, "case_type": CaseType.NOD},
            (OVER_AGENT_LIMIT, CREDIT_NOD),
            id="nod-500.01-supervisor-and-leadership",
        ),
        pytest.param(
            {"amount_minor": 50_001},
            (OVER_AGENT_LIMIT,),
            id="general-500.01-no-leadership",
        ),
        pytest.param(
            {"amount_minor": 50_001, "case_type": CaseType.NOD, "threat": True},
            (OVER_AGENT_LIMIT, CREDIT_THREAT, CREDIT_NOD),
            id="nod-500.01-with-threat-three-approvals",
        ),
    ],
)
def test_credit_decision(changes, approvals):
    decision = decide_credit(credit(**changes), POLICY)
    got = tuple((need.approver, need.rule_id) for need in decision.approvals)
    assert got == approvals
    assert decision.allowed is (not approvals)
    assert decision.reasons == (tuple(rule for _, rule in approvals) or ("CRD-WITHIN-AGENT-LIMIT",))


BLANK_JUSTIFICATIONS = [
    pytest.param(None, id="none"),
    pytest.param("", id="empty"),
    pytest.param(" \t\n", id="whitespace"),
]


@pytest.mark.parametrize("justification", BLANK_JUSTIFICATIONS)
def test_a_credit_needs_a_written_justification(justification):
    with pytest.raises(JustificationRequired):
        decide_credit(credit(justification=justification), POLICY)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"currency": "GBP"}, UnsupportedCurrency, id="currency-without-limits"),
        pytest.param({"amount_minor": -1}, InvalidFacts, id="negative-amount"),
    ],
)
def test_a_credit_the_policy_cannot_decide_is_refused(changes, error):
    with pytest.raises(error):
        decide_credit(credit(**changes), POLICY)


def test_restoring_a_grandfathered_package_always_needs_a_manager():
    decision = decide_package_restoration("customer since 2015, moved by our error")
    assert not decision.allowed
    assert decision.reasons == ("CRD-PACKAGE-RESTORATION",)
    assert [(n.approver, n.rule_id) for n in decision.approvals] == [
        (MANAGER, "CRD-PACKAGE-RESTORATION")
    ]


@pytest.mark.parametrize("justification", BLANK_JUSTIFICATIONS)
def test_restoring_a_package_needs_a_written_justification(justification):
    with pytest.raises(JustificationRequired):
        decide_package_restoration(justification)


def policy_with(**changes) -> RefundPolicy:
    return RefundPolicy.model_validate({**POLICY.model_dump(), **changes})


def test_the_shipped_policy_carries_the_section_6_numbers():
    usd = POLICY.currencies["USD"]
    assert (POLICY.refund_window_days, POLICY.chargeback_window_days) == (30, 120)
    assert POLICY.dispute_investigation_days == 45
    assert (
        usd.supervisor_review_over_minor,
        usd.agent_credit_limit_minor,
        usd.nod_leadership_over_minor,
    ) == (20_000, 30_000, 50_000)


def test_every_number_comes_from_the_policy():
    limits = {
        "supervisor_review_over_minor": 100,
        "agent_credit_limit_minor": 200,
        "nod_leadership_over_minor": 300,
    }
    tight = policy_with(
        refund_window_days=10, chargeback_window_days=20, currencies={"GBP": limits}
    )
    in_gbp = {"currency": "GBP"}
    assert decide_refund(refund(day=11, **in_gbp), tight).path is Path.CHARGEBACK_OR_DISPUTE
    assert decide_refund(refund(day=21, **in_gbp), tight).path is Path.NO_REFUND
    paid = decide_refund(refund(day=10, amount_minor=301, case_type=CaseType.NOD, **in_gbp), tight)
    assert [n.rule_id for n in paid.approvals] == [
        "REF-APPROVAL-OVER-LIMIT",
        "REF-APPROVAL-NOD-LEADERSHIP",
    ]
    assert not decide_credit(credit(amount_minor=201, **in_gbp), tight).allowed
    with pytest.raises(UnsupportedCurrency):
        decide_refund(refund(), tight)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"chargeback_window_days": 29}, id="chargeback-shorter-than-refund-window"),
        pytest.param({"currencies": {"usd": {}}}, id="lowercase-currency"),
        pytest.param({"dispute_investigation_days": 0}, id="no-investigation-time"),
    ],
)
def test_an_inconsistent_policy_fails_at_start(changes):
    with pytest.raises(ValidationError):
        policy_with(**changes)


@pytest.mark.parametrize("key", ["chargeback_window_days", "dispute_investigation_days"])
def test_a_policy_file_without_the_windows_fails_at_start(key):
    data = POLICY.model_dump()
    del data[key]
    with pytest.raises(ValidationError):
        RefundPolicy.model_validate(data)


def test_the_decision_module_imports_no_infrastructure():
    tree = ast.parse(FilePath(decision_module.__file__).read_text())
    imported = {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
        )
    }
    roots = {name.split(".")[0] for name in imported}
    assert roots <= {"__future__", "dataclasses", "datetime", "enum", "casetrail"}, roots
    assert not any(name.startswith("casetrail.runtime") for name in imported)

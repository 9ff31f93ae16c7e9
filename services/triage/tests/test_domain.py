from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from casetrail.contracts.events import CaseOpened, CaseType, Severity
from casetrail.triage.domain import classify
from casetrail.triage.policy import TriagePolicy, load_policy

POLICY = load_policy()


def case(subject="Question about my statement", description="Please explain.", channel="email"):
    return CaseOpened(
        case_id=uuid4(),
        channel=channel,
        customer_ref="acct-1",
        subject=subject,
        description=description,
        opened_at=datetime(2026, 11, 23, 10, tzinfo=UTC),
    )


def test_payment_failure_is_critical_tier_2_high_priority():
    decision = classify(case("Payment failed", "My payment failed three times"), POLICY)
    assert decision.severity is Severity.S1
    assert decision.high_priority
    assert decision.tier == 2
    assert "SEV-PAYMENT-FAILURE" in decision.rules_fired


def test_fraud_asks_for_a_phone_call_within_15_minutes():
    decision = classify(case("Unauthorized transaction", "This looks like fraud"), POLICY)
    assert decision.severity is Severity.S1
    assert decision.phone_contact_within_minutes == 15
    assert "SEV-FRAUD" in decision.rules_fired


def test_an_outage_goes_to_tier_3_as_a_systemic_incident():
    decision = classify(case("Outage", "The app is down for everyone"), POLICY)
    assert decision.tier == 3
    assert "TIER-SYSTEMIC" in decision.rules_fired


def test_case_type_follows_the_source():
    assert classify(case(channel="regulatory"), POLICY).case_type is CaseType.REGULATORY
    assert classify(case(channel="nod"), POLICY).tier == 3
    executive = classify(case(channel="executive"), POLICY)
    assert executive.case_type is CaseType.EXECUTIVE and executive.high_priority


def test_an_ordinary_complaint_gets_the_default_severity_and_tier_1():
    decision = classify(case(), POLICY)
    assert decision.severity is Severity.S3
    assert decision.tier == 1
    assert not decision.high_priority
    assert decision.rules_fired == ("SEV-DEFAULT-S3", "TYPE-GENERAL", "KIND-ESL")
    assert decision.tags == ("complaint",)


def test_keywords_match_whole_words_only():
    assert (
        classify(case("Refraud", "defrauding is not a word here"), POLICY).severity is Severity.S3
    )


def test_the_most_severe_rule_wins_and_only_it_is_named():
    decision = classify(case("Locked out and payment failed"), POLICY)
    assert decision.severity is Severity.S1
    assert "SEV-MAJOR-IMPACT" not in decision.rules_fired


def test_a_policy_with_a_tier_rule_naming_an_unknown_rule_is_refused():
    raw = POLICY.model_dump(mode="json")
    raw["tier_rules"][0]["when_rules"] = ["SEV-NOPE"]
    with pytest.raises(ValidationError, match="unknown rules"):
        TriagePolicy.model_validate(raw)


def test_a_cfpb_older_american_tag_raises_priority_and_names_its_rule():
    older = case().model_copy(update={"source": {"tags": ["Older American"]}})
    decision = classify(older, POLICY)
    assert decision.high_priority
    assert decision.vulnerabilities == ("Older American",)
    assert "VULN-OLDER-AMERICAN" in decision.rules_fired


def test_a_servicemember_goes_to_at_least_tier_2():
    member = case().model_copy(update={"source": {"tags": ["Servicemember"]}})
    assert classify(member, POLICY).tier == 2


def test_a_low_severity_chat_is_a_quick_hit_esli():
    chat = case("Password reset", "I need a password reset", channel="chat")
    decision = classify(chat, POLICY)
    assert (decision.severity, decision.kind) == (Severity.S4, "ESLI")


def test_reclassifying_records_the_change_and_recomputes_high_priority():
    from casetrail.triage import casework
    from casetrail.triage.domain import triage

    opened = case()
    triaged = triage(opened, POLICY, uuid4(), uuid4())
    assert not triaged.high_priority
    before = triaged.severity
    triaged.collect_events()
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    casework.reclassify(
        triaged,
        severity=Severity.S1,
        case_type=None,
        policy=POLICY,
        reason="the outage affects payments",
        reclassified_by="sup-1",
        now=now,
    )
    [event] = triaged.collect_events()
    assert (event.from_severity, event.severity) == (before, "S1")
    assert triaged.high_priority and triaged.severity == "S1"
    with pytest.raises(casework.NothingToReclassify):
        casework.reclassify(
            triaged,
            severity=Severity.S1,
            case_type=None,
            policy=POLICY,
            reason="again",
            reclassified_by="sup-1",
            now=now,
        )

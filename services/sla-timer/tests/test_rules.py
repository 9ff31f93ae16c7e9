import copy
import tomllib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from casetrail.contracts.events import CaseType, Channel, ClockKind, Severity
from casetrail.sla_timer.policy import DEFAULT_POLICY, EventMatcher, SlaPolicy, load_policy
from casetrail.sla_timer.rules import (
    CaseFacts,
    UnknownMarket,
    UnknownRegime,
    active_regimes,
    applicable_clocks,
    calendars_of,
    headline,
)

POLICY = load_policy()  # builds the calendars once for the module
with DEFAULT_POLICY.open("rb") as _file:
    RAW = tomllib.load(_file)
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 11, 23, 10, tzinfo=NY)  # Thanksgiving is that Thursday


def clocks(**facts):
    facts.setdefault("opened_at", MONDAY)
    return {spec.rule_id: spec for spec in applicable_clocks(CaseFacts(**facts), POLICY)}


def deadlines(**facts):
    return {rule_id: spec.deadline for rule_id, spec in clocks(**facts).items()}


def invalid(mutate):
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(ValidationError) as error:
        SlaPolicy.model_validate(raw)
    return str(error.value)


def rule(raw, rule_id):
    return next(entry for entry in raw["rules"] if entry["rule_id"] == rule_id)


# --- which clocks a case runs ------------------------------------------------------------


def test_a_phone_s1_general_case_opened_friday_evening_runs_every_clock_that_applies():
    friday = datetime(2026, 11, 20, 19, 50, tzinfo=NY)
    specs = applicable_clocks(
        CaseFacts(
            opened_at=friday,
            channel=Channel.PHONE,
            severity=Severity.S1,
            case_type=CaseType.GENERAL,
            tier=1,
        ),
        POLICY,
    )

    assert [(spec.rule_id, spec.deadline) for spec in specs] == [
        ("FR-SEV-S1", datetime(2026, 11, 20, 20, 5, tzinfo=NY)),
        ("ESC-HIGH-SEV-120", datetime(2026, 11, 20, 21, 50, tzinfo=NY)),
        ("RP-SEV-S1", datetime(2026, 11, 20, 21, 50, tzinfo=NY)),
        ("RES-SEV-S1", datetime(2026, 11, 21, 19, 50, tzinfo=NY)),
        # Ten open minutes on Friday, five on Monday morning.
        ("FR-CHANNEL-phone", datetime(2026, 11, 23, 8, 5, tzinfo=NY)),
        # After 15:00: by noon on the next business day.
        ("IC-TYPE-General", datetime(2026, 11, 23, 12, tzinfo=NY)),
        # Four business days after Friday, Thanksgiving closed: the end of Friday the 27th.
        ("RES-TYPE-General", datetime(2026, 11, 28, tzinfo=NY)),
    ]
    by_id = {spec.rule_id: spec for spec in specs}
    assert by_id["ESC-HIGH-SEV-120"].clock is ClockKind.ESCALATION
    assert by_id["ESC-HIGH-SEV-120"].escalate_to_tier == 2
    assert by_id["RP-SEV-S1"].clock is ClockKind.REMEDIATION_PLAN
    assert by_id["FR-CHANNEL-phone"].measure == "business"
    assert by_id["RES-TYPE-General"].measure == "calendar"
    assert all(spec.pausable and spec.regime is None for spec in specs)
    assert {(spec.calendar, spec.calendar_version) for spec in specs} == {("us-business", "1")}
    assert all(spec.started_at == friday and spec.deadline.tzinfo is UTC for spec in specs)
    assert headline(specs) == by_id["FR-SEV-S1"]


def test_headline_of_no_clocks_is_none():
    assert headline([]) is None


def test_escalation_clock_stops_applying_once_the_case_is_at_tier_2():
    assert "ESC-HIGH-SEV-120" in clocks(severity=Severity.S2, tier=1)
    assert "ESC-HIGH-SEV-120" not in clocks(severity=Severity.S2, tier=2)
    assert "ESC-HIGH-SEV-120" not in clocks(severity=Severity.S3, tier=1)


def test_an_incident_runs_on_the_24_7_calendar():
    saturday = datetime(2026, 11, 21, 10, tzinfo=NY)
    facts = {"opened_at": saturday, "channel": Channel.PHONE, "severity": Severity.S2}

    incident = clocks(**facts, incident=True)
    ordinary = clocks(**facts)

    assert incident["FR-CHANNEL-phone"].deadline == saturday + timedelta(minutes=15)
    assert incident["FR-CHANNEL-phone"].calendar == "always-open"
    assert incident["FR-INCIDENT"].deadline == saturday + timedelta(minutes=15)
    assert ordinary["FR-CHANNEL-phone"].deadline == datetime(2026, 11, 23, 8, 15, tzinfo=NY)
    assert "FR-INCIDENT" not in ordinary


def test_plan_rules_wait_until_the_plan_is_known():
    assert not any(rule_id.startswith("FR-PLAN-") for rule_id in clocks(channel=Channel.CHAT))
    assert not any(rule_id.startswith("FR-PLAN-") for rule_id in clocks(plan="Gold"))
    premium = clocks(plan="Premium")
    assert premium["FR-PLAN-Premium"].deadline == MONDAY + timedelta(hours=4)
    assert [rule_id for rule_id in premium if rule_id.startswith("FR-PLAN-")] == ["FR-PLAN-Premium"]


def test_enterprise_first_response_is_15_minutes_around_the_clock():
    sunday = datetime(2026, 11, 22, 3, tzinfo=NY)
    assert deadlines(opened_at=sunday, plan="Enterprise")["FR-PLAN-Enterprise"] == (
        sunday + timedelta(minutes=15)
    )


def test_a_non_urgent_email_has_24_business_hours_instead_of_4():
    urgent = deadlines(channel=Channel.EMAIL, severity=Severity.S3)
    non_urgent = deadlines(channel=Channel.EMAIL, severity=Severity.S4)
    assert urgent["FR-CHANNEL-email"] == datetime(2026, 11, 23, 14, tzinfo=NY)
    assert "FR-CHANNEL-email-non-urgent" not in urgent
    # Ten open hours left on Monday, twelve on Tuesday, two on Wednesday morning.
    assert non_urgent["FR-CHANNEL-email-non-urgent"] == datetime(2026, 11, 25, 10, tzinfo=NY)
    assert "FR-CHANNEL-email" not in non_urgent


def test_low_severity_resolves_by_the_end_of_the_fifth_working_day():
    # Tue 24, Wed 25, (Thanksgiving), Fri 27, Mon 30, Tue 1 December.
    assert deadlines(severity=Severity.S4)["RES-SEV-S4"] == datetime(2026, 12, 2, tzinfo=NY)


# --- initial contact ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (datetime(2026, 11, 23, 14, 59, tzinfo=NY), datetime(2026, 11, 23, 20, tzinfo=NY)),
        (datetime(2026, 11, 23, 15, 1, tzinfo=NY), datetime(2026, 11, 24, 12, tzinfo=NY)),
        # The day after is Thanksgiving: noon on Friday.
        (datetime(2026, 11, 25, 15, 1, tzinfo=NY), datetime(2026, 11, 27, 12, tzinfo=NY)),
        # Received on a Sunday: noon on Monday.
        (datetime(2026, 11, 22, 9, tzinfo=NY), datetime(2026, 11, 23, 12, tzinfo=NY)),
    ],
)
def test_general_initial_contact_depends_on_the_15_00_cutoff(received, due):
    spec = clocks(opened_at=received, case_type=CaseType.GENERAL)["IC-TYPE-General"]
    assert spec.clock is ClockKind.INITIAL_CONTACT
    assert spec.deadline == due


def test_executive_and_regulatory_initial_contact():
    friday = datetime(2026, 11, 20, 19, tzinfo=NY)
    executive = deadlines(opened_at=friday, case_type=CaseType.EXECUTIVE)
    regulatory = deadlines(opened_at=friday, case_type=CaseType.REGULATORY)
    assert executive["IC-TYPE-Executive"] == datetime(2026, 11, 23, 9, tzinfo=NY)
    assert regulatory["IC-TYPE-Regulatory"] == datetime(2026, 11, 21, 19, tzinfo=NY)


# --- regulatory regimes ------------------------------------------------------------------


def test_a_cfpb_complaint_needs_a_response_in_15_and_a_final_one_in_60_calendar_days():
    specs = clocks(case_type=CaseType.REGULATORY, agency="CFPB")

    response, final = specs["CFPB-RESPONSE-15CD"], specs["CFPB-FINAL-60CD"]
    assert response.clock is ClockKind.REGULATORY_RESPONSE
    assert response.deadline == datetime(2026, 12, 9, tzinfo=NY)
    assert final.clock is ClockKind.REGULATORY_FINAL
    assert final.deadline == datetime(2027, 1, 23, tzinfo=NY)
    assert {response.regime, final.regime} == {"CFPB"}
    assert not response.pausable and not final.pausable
    assert "CFPB-RESPONSE-15CD" not in clocks(case_type=CaseType.REGULATORY, agency="OCC")


@pytest.mark.parametrize(
    ("new_account", "provisional_credit", "rule_id", "due"),
    [
        # Ten business days, Thanksgiving closed.
        (False, False, "REG-E-10BD", datetime(2026, 12, 9, tzinfo=NY)),
        (False, True, "REG-E-45CD", datetime(2027, 1, 8, tzinfo=NY)),
        (True, False, "REG-E-NEW-20BD", datetime(2026, 12, 23, tzinfo=NY)),
        (True, True, "REG-E-NEW-90CD", datetime(2027, 2, 22, tzinfo=NY)),
    ],
)
def test_reg_e_investigation_deadline_depends_on_credit_and_account_age(
    new_account, provisional_credit, rule_id, due
):
    specs = clocks(
        regimes=frozenset({"REG_E"}),
        new_account=new_account,
        provisional_credit=provisional_credit,
    )
    reg_e = {rule_id: spec for rule_id, spec in specs.items() if spec.regime == "REG_E"}
    assert list(reg_e) == [rule_id]
    assert reg_e[rule_id].deadline == due


@pytest.mark.parametrize(
    ("cycle_days", "due"),
    [
        (None, datetime(2026, 3, 7, tzinfo=NY)),  # the policy's default 30-day cycle
        (30, datetime(2026, 3, 7, tzinfo=NY)),
        (45, datetime(2026, 4, 6, tzinfo=NY)),  # two cycles: exactly the 90-day cap
        (60, datetime(2026, 4, 6, tzinfo=NY)),  # two cycles would be 120 days: capped
    ],
)
def test_reg_z_resolves_within_two_billing_cycles_and_at_most_90_days(cycle_days, due):
    opened = datetime(2026, 1, 5, 10, tzinfo=NY)
    specs = clocks(opened_at=opened, regimes=frozenset({"REG_Z"}), billing_cycle_days=cycle_days)
    assert specs["REG-Z-RESOLVE-2BC"].deadline == due
    assert specs["REG-Z-ACK-30CD"].deadline == datetime(2026, 2, 5, tzinfo=NY)


def test_fcra_reinvestigation_takes_30_days():
    assert deadlines(regimes=frozenset({"FCRA"}))["FCRA-30CD"] == datetime(2026, 12, 24, tzinfo=NY)


def test_fca_final_response_is_due_at_the_end_of_eight_weeks_across_the_clock_change():
    opened = datetime(2026, 3, 10, 10, tzinfo=LONDON)  # GMT; BST from 29 March
    spec = clocks(opened_at=opened, market="GB")["FCA-DISP-8W"]
    assert spec.regime == "FCA_DISP"
    assert spec.calendar == "uk-business"
    assert spec.deadline == datetime(2026, 5, 6, tzinfo=LONDON)
    assert spec.deadline == datetime(2026, 5, 5, 23, tzinfo=UTC)


def test_fca_payment_services_complaints_take_15_business_days_or_35_exceptionally():
    opened = datetime(2026, 3, 27, 10, tzinfo=LONDON)
    ordinary = deadlines(opened_at=opened, market="GB", payment_services=True)
    exceptional = deadlines(opened_at=opened, market="GB", payment_services=True, exceptional=True)
    # Good Friday and Easter Monday are English bank holidays.
    assert ordinary["FCA-DISP-PSD-15BD"] == datetime(2026, 4, 22, tzinfo=LONDON)
    assert "FCA-DISP-8W" not in ordinary
    assert exceptional["FCA-DISP-PSD-HOLDING-15BD"] == datetime(2026, 4, 22, tzinfo=LONDON)
    # 4 May is the early May bank holiday; 1 May and Ascension Day are working days here.
    assert exceptional["FCA-DISP-PSD-35BD"] == datetime(2026, 5, 21, tzinfo=LONDON)
    assert "FCA-DISP-PSD-15BD" not in exceptional


def test_psd2_counts_german_business_days_15_or_35_exceptionally():
    opened = datetime(2026, 3, 27, 10, tzinfo=BERLIN)
    ordinary = clocks(opened_at=opened, market="DE", payment_services=True)
    exceptional = deadlines(opened_at=opened, market="DE", payment_services=True, exceptional=True)
    # Good Friday and Easter Monday closed.
    assert ordinary["PSD2-15BD"].deadline == datetime(2026, 4, 22, tzinfo=BERLIN)
    assert ordinary["PSD2-15BD"].calendar == "de-business"
    # Labour Day and Ascension Day closed as well.
    assert exceptional["PSD2-HOLDING-15BD"] == datetime(2026, 4, 22, tzinfo=BERLIN)
    assert exceptional["PSD2-35BD"] == datetime(2026, 5, 22, tzinfo=BERLIN)
    assert "PSD2-15BD" not in exceptional


def test_psd2_applies_only_to_payment_services_complaints_in_germany():
    assert "PSD2" not in active_regimes(CaseFacts(opened_at=MONDAY, market="DE"), POLICY)
    assert "PSD2" not in active_regimes(
        CaseFacts(opened_at=MONDAY, market="US", payment_services=True), POLICY
    )


def test_regimes_come_from_the_market_the_case_and_applies_when():
    facts = CaseFacts(opened_at=MONDAY, market="GB", agency="CFPB", regimes=frozenset({"FCRA"}))
    assert active_regimes(facts, POLICY) == ("CFPB", "DISPUTE", "FCA_DISP", "FCRA")


def test_an_incident_does_not_turn_regulatory_business_days_into_calendar_days():
    spec = clocks(regimes=frozenset({"REG_E"}), incident=True)["REG-E-10BD"]
    assert spec.calendar == "us-business"
    assert spec.deadline == datetime(2026, 12, 9, tzinfo=NY)


# --- refunds and disputes ----------------------------------------------------------------


def test_refund_and_chargeback_windows_run_only_from_a_known_charge():
    assert not {"RF-WINDOW-REFUND-30D", "RF-WINDOW-CHARGEBACK-120D"} & set(clocks())
    charged = datetime(2026, 11, 1, 12, tzinfo=NY)

    specs = clocks(charged_at=charged)

    refund, chargeback = specs["RF-WINDOW-REFUND-30D"], specs["RF-WINDOW-CHARGEBACK-120D"]
    assert refund.clock is ClockKind.REFUND_WINDOW
    assert refund.started_at == charged
    assert refund.deadline == datetime(2026, 12, 2, tzinfo=NY)
    assert chargeback.clock is ClockKind.CHARGEBACK_WINDOW
    assert chargeback.deadline == datetime(2027, 3, 2, tzinfo=NY)
    assert not refund.pausable and not chargeback.pausable
    assert refund.regime is None


def test_a_dispute_investigation_runs_45_days_from_the_dispute():
    assert "DISPUTE-45CD" not in clocks()
    disputed = datetime(2026, 12, 1, 9, tzinfo=NY)
    spec = clocks(dispute_opened_at=disputed)["DISPUTE-45CD"]
    assert spec.clock is ClockKind.DISPUTE_INVESTIGATION
    assert spec.regime == "DISPUTE"
    assert spec.started_at == disputed
    assert spec.deadline == datetime(2027, 1, 16, tzinfo=NY)
    assert not spec.pausable


# --- facts the policy does not know ------------------------------------------------------


def test_a_case_without_a_market_is_in_the_default_market():
    assert clocks(case_type=CaseType.GENERAL)["IC-TYPE-General"].calendar == "us-business"


def test_an_unknown_market_is_refused():
    with pytest.raises(UnknownMarket, match="FR"):
        applicable_clocks(CaseFacts(opened_at=MONDAY, market="FR"), POLICY)


def test_an_unknown_regime_is_refused():
    with pytest.raises(UnknownRegime, match="GDPR"):
        applicable_clocks(CaseFacts(opened_at=MONDAY, regimes=frozenset({"GDPR"})), POLICY)


def test_case_facts_need_aware_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        CaseFacts(opened_at=datetime(2026, 11, 23, 10))


# --- the policy ---------------------------------------------------------------------------


def test_the_default_policy_builds_each_calendar_once():
    built = calendars_of(POLICY)
    assert set(built) == {"us-business", "uk-business", "de-business", "always-open"}
    assert calendars_of(POLICY) is built
    assert built["always-open"].always_open
    assert POLICY.market_calendar(None) == "us-business"
    assert POLICY.market_calendar("GB") == "uk-business"


def test_every_clock_kind_a_rule_uses_has_a_met_by_entry():
    used = {rule.clock for _, rule in POLICY.all_rules()}
    assert used == set(ClockKind)
    assert used <= set(POLICY.met_by)


def test_a_duplicate_rule_id_is_refused():
    def mutate(raw):
        raw["regimes"]["FCRA"]["deadlines"][0]["rule_id"] = "FR-SEV-S1"

    assert "duplicate rule ids: ['FR-SEV-S1']" in invalid(mutate)


def test_a_pausable_regulatory_deadline_is_refused():
    def mutate(raw):
        raw["regimes"]["CFPB"]["deadlines"][0]["pausable"] = True

    assert "cannot be paused" in invalid(mutate)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: rule(raw, "FR-SEV-S1").update(calendar="mars-business"),
        lambda raw: raw["markets"]["GB"].update(calendar="mars-business"),
        lambda raw: raw["regimes"]["FCRA"].update(calendar="mars-business"),
    ],
)
def test_an_unknown_calendar_is_refused(mutate):
    assert "unknown calendar 'mars-business'" in invalid(mutate)


def test_a_rule_with_two_targets_is_refused():
    def mutate(raw):
        rule(raw, "FR-SEV-S1")["business_days"] = 1

    assert "exactly one target" in invalid(mutate)


def test_a_rule_without_a_target_is_refused():
    def mutate(raw):
        del rule(raw, "RES-SEV-S4")["business_days"]

    assert "exactly one target" in invalid(mutate)


def test_a_basis_without_minutes_is_refused():
    def mutate(raw):
        rule(raw, "RES-SEV-S4")["basis"] = "business"

    assert "`basis` goes with `minutes`" in invalid(mutate)


def test_a_clock_nothing_can_meet_is_refused():
    def mutate(raw):
        del raw["met_by"]["refund_window"]

    assert "no met_by entry" in invalid(mutate)
    assert "refund_window" in invalid(mutate)


def test_an_empty_policy_is_refused():
    def mutate(raw):
        raw["rules"] = []
        raw["regimes"] = {}
        for market in raw["markets"].values():
            market["regimes"] = []

    assert "no rules" in invalid(mutate)


def test_an_unknown_regime_in_a_market_is_refused():
    assert "unknown regimes ['MIFID']" in invalid(
        lambda raw: raw["markets"]["DE"].update(regimes=["MIFID"])
    )


def test_a_calendar_that_cannot_be_built_is_refused():
    assert "unknown timezone" in invalid(
        lambda raw: raw["calendars"]["de-business"].update(timezone="Europe/Atlantis")
    )


def test_warning_fractions_must_increase_inside_0_and_1():
    assert "strictly increasing" in invalid(lambda raw: raw.update(warning_fractions=[0.9, 0.75]))
    assert "between 0 and 1" in invalid(lambda raw: raw.update(warning_fractions=[0.5, 1.0]))


def test_an_unknown_key_is_refused():
    assert "Extra inputs are not permitted" in invalid(
        lambda raw: rule(raw, "FR-SEV-S1").update(minuets=15)
    )


# --- event matchers ------------------------------------------------------------------------


def test_an_event_matcher_checks_the_type_and_each_named_field():
    resolved = EventMatcher(
        type="casetrail.case.status_changed.v1", fields={"to_status": ["Resolved", "Closed"]}
    )
    assert resolved.matches("casetrail.case.status_changed.v1", {"to_status": "Closed"})
    assert not resolved.matches("casetrail.case.status_changed.v1", {"to_status": "Pending On"})
    assert not resolved.matches("casetrail.case.status_changed.v1", {})
    assert not resolved.matches("casetrail.case.opened.v1", {"to_status": "Closed"})


def test_a_flag_matcher_does_not_take_a_number_for_a_boolean():
    reached = EventMatcher(type="casetrail.case.contact_attempted.v1", fields={"reached": [True]})
    assert reached.matches("casetrail.case.contact_attempted.v1", {"reached": True})
    assert not reached.matches("casetrail.case.contact_attempted.v1", {"reached": 1})


def test_the_default_policy_pauses_while_awaiting_the_customer():
    changed = "casetrail.case.status_changed.v1"
    assert any(m.matches(changed, {"to_status": "Awaiting Customer"}) for m in POLICY.pause_on)
    assert any(
        m.matches(changed, {"from_status": "Awaiting Customer", "to_status": "Pending On"})
        for m in POLICY.resume_on
    )
    assert any(m.matches("casetrail.case.message_received.v1", {}) for m in POLICY.resume_on)

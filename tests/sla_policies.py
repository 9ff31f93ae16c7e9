"""SLA policies for runs that must see clocks fall due in seconds, not hours."""

from __future__ import annotations

import json
from pathlib import Path

from casetrail.sla_timer.policy import load_policy

CLOCK_FAMILIES = ("first_response", "resolution")


def short_clocks(
    work_dir: Path,
    *,
    minutes: int = 1,
    warning_fractions: tuple[float, ...] = (),
    late_after_seconds: int = 60,
    name: str = "short-clocks",
) -> Path:
    """The default policy's calendars and matchers with two calendar-minute clocks a case.

    Only the resolution clock escalates, to tier 3, above any tier triage gives these
    cases; the first-response clock names tier 1, which every case already has. So each
    case gets exactly one escalation and a run's event counts per case are fixed.
    """
    policy = load_policy().model_dump(mode="json", exclude_none=True)
    policy.update(
        version=f"{name}-{minutes}m",
        warning_fractions=list(warning_fractions),
        late_after_seconds=late_after_seconds,
        regimes={},
        rules=[
            {
                "rule_id": f"SHORT-{family.upper()}",
                "clock": family,
                "minutes": minutes,
                "basis": "calendar",
                "escalate_to_tier": 3 if family == "resolution" else 1,
            }
            for family in CLOCK_FAMILIES
        ],
    )
    for market in policy["markets"].values():
        market["regimes"] = []
    path = work_dir / f"{name}-sla-policy.json"
    path.write_text(json.dumps(policy, indent=1))
    load_policy(path)  # refuse to start a run on a policy the service would refuse
    return path

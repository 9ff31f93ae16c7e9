"""Operations on the SLA timer's clocks: `python -m casetrail.sla_timer.cli --help`."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from casetrail.runtime.cli import rebuild_from_events
from casetrail.sla_timer.policy import load_policy
from casetrail.sla_timer.rules import calendars_of
from casetrail.sla_timer.settings import SlaTimerSettings
from casetrail.sla_timer.store import SlaApplication

app = typer.Typer(help="SLA timer operations (reads SLA_TIMER_* settings from the environment).")


@app.callback()
def main() -> None:
    """SLA timer operations."""


@app.command("repair")
def repair() -> None:
    """Recomputes every open case's clocks under the current policy and calendars.

    Each correction is a new event (ClockRecomputed, ClockStarted or ClockWithdrawn)
    naming the policy and calendar versions it used; nothing recorded is rewritten.
    """
    settings = SlaTimerSettings()
    policy = load_policy(settings.policy_file)
    calendars = calendars_of(policy)
    store = SlaApplication(settings.database_url, pool_size=1, create_tables=False)
    now = datetime.now(UTC)
    try:
        corrected = store.repair(policy, calendars, now)
    finally:
        store.close()
    typer.echo(f"policy {policy.version}: clocks of {corrected} open cases corrected")


@app.command("rebuild-read-models")
def rebuild_read_models() -> None:
    """Drops and rebuilds the clock list (sla_clocks) from the SLA timer's stored events."""
    settings = SlaTimerSettings()
    rebuild_from_events(
        lambda: SlaApplication(settings.database_url, pool_size=1, create_tables=False),
        SlaApplication.rebuild_clock_list,
        "clock list",
        "cases",
    )


if __name__ == "__main__":
    app()

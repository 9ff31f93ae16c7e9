"""Operations on triage's own data: `python -m casetrail.triage.cli --help`."""

from __future__ import annotations

import typer

from casetrail.runtime.cli import rebuild_from_events
from casetrail.triage.settings import TriageSettings
from casetrail.triage.store import TriageApplication

app = typer.Typer(help="Triage operations (reads TRIAGE_* settings from the environment).")


@app.callback()
def main() -> None:
    """Triage operations."""


@app.command("rebuild-case-list")
def rebuild_case_list() -> None:
    """Drops and rebuilds the case list and QA queue from triage's stored events."""
    settings = TriageSettings()
    rebuild_from_events(
        lambda: TriageApplication(settings.database_url, pool_size=1, create_tables=False),
        TriageApplication.rebuild_case_list,
        "case list",
        "cases",
    )


if __name__ == "__main__":
    app()

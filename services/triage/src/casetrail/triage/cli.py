"""Operations on triage's own data: `python -m casetrail.triage.cli --help`."""

from __future__ import annotations

import typer

from casetrail.triage.settings import TriageSettings
from casetrail.triage.store import TriageApplication

app = typer.Typer(help="Triage operations (reads TRIAGE_* settings from the environment).")


@app.callback()
def main() -> None:
    """Triage operations."""


@app.command("rebuild-case-list")
def rebuild_case_list() -> None:
    """Drops and rebuilds the case list (triage_cases) from triage's stored events."""
    settings = TriageSettings()
    store = TriageApplication(settings.database_url, pool_size=1, create_tables=False)
    try:
        rebuilt = store.rebuild_case_list(
            lambda done, total: typer.echo(f"rebuilt {done}/{total} cases")
        )
    finally:
        store.close()
    typer.echo(f"case list rebuilt from events: {rebuilt} cases")


if __name__ == "__main__":
    app()

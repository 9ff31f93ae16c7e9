"""Operations on the refunds service's data: `python -m casetrail.refunds.cli --help`."""

from __future__ import annotations

import typer

from casetrail.refunds.settings import RefundsSettings
from casetrail.refunds.store import RefundsApplication
from casetrail.runtime.cli import rebuild_from_events

app = typer.Typer(help="Refunds operations (reads REFUNDS_* settings from the environment).")


@app.callback()
def main() -> None:
    """Refunds operations."""


@app.command("rebuild-read-models")
def rebuild_read_models() -> None:
    """Drops and rebuilds the request list (refund_requests) from the stored events."""
    settings = RefundsSettings()
    rebuild_from_events(
        lambda: RefundsApplication(settings.database_url, pool_size=1, create_tables=False),
        RefundsApplication.rebuild_request_list,
        "request list",
        "requests",
    )


if __name__ == "__main__":
    app()

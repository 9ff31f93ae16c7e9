"""`casetrail verify BUNDLE --key PUBLIC_KEY`: check an evidence bundle offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from casetrail.evidence.bundle import verify_bundle
from casetrail.evidence.tree_head import EvidenceError, load_public_key

EXIT_FAILED = 1
EXIT_UNREADABLE = 2


def verify(
    bundle: Annotated[Path, typer.Argument(help="the evidence bundle (.zip) audit exported")],
    key: Annotated[Path, typer.Option("--key", help="the audit log's Ed25519 public key (PEM)")],
) -> None:
    """Check every signature, hash, chain link and Merkle proof in an evidence bundle.

    Needs only the bundle and the key: no Kafka, no PostgreSQL, no network.
    """
    try:
        public_key = load_public_key(key.read_bytes())
        content = bundle.read_bytes()
    except (OSError, EvidenceError) as error:
        typer.echo(f"cannot verify: {error}", err=True)
        raise typer.Exit(EXIT_UNREADABLE) from error
    report = verify_bundle(content, public_key)
    for check in report.checks:
        typer.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    typer.echo("VERIFIED" if report.ok else "NOT VERIFIED")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)

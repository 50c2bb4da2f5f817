"""`sanad audit …`: check the hash-chained audit log."""

from __future__ import annotations

import typer

from sanad.cli._common import group, print_json, registry

audit_app = group("audit", "Check the audit log.")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit hash chain. Exit 0 intact, 1 with the first broken row."""
    from sanad.audit import verify_chain

    reg = registry()
    try:
        with reg.sessions() as session:
            report = verify_chain(session)
    finally:
        reg.close()
    print_json({"ok": report.ok, "events": report.events,
                "first_broken_seq": report.first_broken_seq, "problem": report.problem})
    raise typer.Exit(0 if report.ok else 1)

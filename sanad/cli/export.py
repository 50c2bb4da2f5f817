"""`sanad export …`: suppressed aggregates, and record exports under an approved agreement.

Agreements are proposed and approved only through the API (`/sharing/agreements`), where each
approval is tied to an authenticated admin: a command line cannot prove who is typing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sanad.cli._common import actor, group, parse_uuid, print_json, registry

export_app = group("export", "Exports: suppressed aggregates; records under an agreement.")


@export_app.command("aggregates")
def export_aggregates(
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")],
    by: Annotated[str, typer.Option(help="Comma-separated dimensions.")] = "province,sex",
) -> None:
    """Counts by dimension with small-cell suppression (SANAD_EXPORT_MIN_CELL)."""
    from sanad.exports.aggregates import export_aggregates as run
    from sanad.registry.db import transaction

    fmt = "parquet" if out.suffix.lower() == ".parquet" else "csv"
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            data = run(session, by=[d.strip() for d in by.split(",") if d.strip()], fmt=fmt,
                       min_cell=reg.settings.export_min_cell, actor=actor())
    finally:
        reg.close()
    out.write_bytes(data)
    print_json({"file": str(out), "format": fmt, "bytes": len(data)})


@export_app.command("records")
def export_records(
    agreement: Annotated[str, typer.Option(help="Sharing agreement id.")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .jsonl).")],
) -> None:
    """Agreed fields of people who consented to the agreement's purpose (audited)."""
    from sanad.exports import sharing

    fmt = "jsonl" if out.suffix.lower() == ".jsonl" else "csv"
    reg = registry()
    try:
        agreement_id = parse_uuid(agreement, "agreement")
        data, rows = sharing.audited(
            reg.sessions, actor=actor(), what=str(agreement_id),
            fn=lambda s: sharing.export_records(s, reg.settings, agreement_id=agreement_id,
                                                fmt=fmt, actor=actor()))
    finally:
        reg.close()
    out.write_bytes(data)
    print_json({"file": str(out), "rows": rows})

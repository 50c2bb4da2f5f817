"""`sanad mrz check`: validate a TD1, TD2 or TD3 machine-readable zone."""

from __future__ import annotations

from typing import Annotated

import typer

from sanad.cli._common import group, print_json

mrz_app = group("mrz", "Machine-readable zones (ICAO Doc 9303).")


@mrz_app.command("check")
def mrz_check(
    line1: Annotated[str, typer.Argument(help="First MRZ line.")],
    line2: Annotated[str, typer.Argument(help="Second MRZ line.")],
    line3: Annotated[str | None, typer.Argument(help="Third line (TD1 only).")] = None,
) -> None:
    """Check a TD1 (3×30), TD2 (2×36) or TD3 (2×44) MRZ; prints JSON with `valid`, the
    fields and every failing check digit. Exit 0 valid, 1 invalid or not an MRZ."""
    from sanad.credentials.mrz import parse_mrz

    lines = [line1, line2] + ([line3] if line3 is not None else [])
    # Shells and OCR tools hand over spaces at the ends; inner characters are kept as given.
    result = parse_mrz([line.strip() for line in lines])
    print_json(result.to_json())
    raise typer.Exit(0 if result.valid else 1)

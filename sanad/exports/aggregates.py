"""Aggregate statistics with small-cell suppression (CSV, Parquet, JSON).

Counts of persons grouped by the requested dimensions. A cell counting fewer than
`export_min_cell` people is *suppressed*: its count is withheld (null) and flagged, because a
cell of 1-9 refugees of a given district, sex and age can identify them. Totals are not
published next to the cells, so a suppressed cell cannot be recovered by subtraction from one
table; publishing several overlapping tables can still leak (secondary suppression is not done
here — see docs/interop.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.errors import InvalidInput
from sanad.registry.models import Person
from sanad.registry.sync_models import ExportRecord

DIMENSIONS = ("province", "district", "sex", "nationality", "status", "age_band")
_COLUMNS = {"province": Person.province, "district": Person.district, "sex": Person.sex,
            "nationality": Person.nationality, "status": Person.status}
AGE_BANDS = ((0, 4), (5, 11), (12, 17), (18, 59), (60, 200))


def _band(age: int) -> str:
    for low, high in AGE_BANDS:
        if low <= age <= high:
            return f"{low}-{high}" if high < 200 else f"{low}+"
    return "unknown"


def aggregate(session: Session, *, by: list[str], min_cell: int,
              today: date | None = None) -> list[dict[str, Any]]:
    """Rows of {dimension..., count, suppressed}, sorted by the dimensions."""
    if not by:
        raise InvalidInput("choose at least one dimension", field="by")
    bad = [d for d in by if d not in DIMENSIONS]
    if bad or len(set(by)) != len(by):
        raise InvalidInput(f"dimensions are distinct values of {', '.join(DIMENSIONS)}",
                           field="by")
    today = today or date.today()
    cols = [_COLUMNS[d] for d in by if d != "age_band"]
    year = extract("year", Person.date_of_birth)
    query = select(*cols, *([year] if "age_band" in by else []), func.count()).group_by(
        *cols, *([year] if "age_band" in by else []))
    counts: Counter[tuple[str, ...]] = Counter()
    for row in session.execute(query):
        values = dict(zip([d for d in by if d != "age_band"], row[:len(cols)], strict=True))
        if "age_band" in by:
            # Age from birth year: day-level precision is not needed for 5-year-ish bands.
            values["age_band"] = _band(today.year - int(row[len(cols)]))
        counts[tuple(str(values[d]) for d in by)] += int(row[-1])
    out = []
    for key in sorted(counts):
        n = counts[key]
        suppressed = n < min_cell
        out.append({**dict(zip(by, key, strict=True)), "count": None if suppressed else n,
                    "suppressed": suppressed})
    return out


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buf.getvalue().encode()


def to_parquet(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]) if rows \
        else pa.table({c: pa.array([], type=pa.string()) for c in columns})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def export_aggregates(
    session: Session, *, by: list[str], fmt: str, min_cell: int, actor: str
) -> bytes:
    """Build, log and audit an aggregate export; returns the file content."""
    rows = aggregate(session, by=by, min_cell=min_cell)
    columns = [*by, "count", "suppressed"]
    if fmt == "csv":
        data = to_csv(rows, columns)
    elif fmt == "parquet":
        data = to_parquet(rows, columns)
    else:
        raise InvalidInput("format is csv or parquet", field="format")
    digest = hashlib.sha256(data).hexdigest()
    record = ExportRecord(kind="aggregate", actor=actor, rows=len(rows), sha256=digest,
                          details={"by": by, "format": fmt, "min_cell": min_cell,
                                   "suppressed": sum(1 for r in rows if r["suppressed"])})
    session.add(record)
    session.flush()
    audit.record(session, actor=actor, action="export.aggregate", subject_type="export",
                 subject_id=str(record.id),
                 details={"by": by, "format": fmt, "rows": len(rows), "sha256": digest})
    return data

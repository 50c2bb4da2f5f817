"""Bulk import of legacy registrations (CSV, JSON Lines) as a resumable background job.

A *mapping* (JSON) names the source column of each field, value translations and the date
format. Every row is validated on its own: bad rows go to the validation report (row, field,
error) and are not imported; good rows are. Rows are processed in batches, each batch in one
transaction that also advances the job's checkpoint, so an interrupted import (crash, kill,
deploy) resumes at the first row not yet committed, and no row is imported twice.

Deduplication, two tiers:

* **Same record again** — every row gets a normalised biographic key (name skeletons from
  `sanad.abis.biographic`, father's name, date of birth, sex). A row whose key appears earlier
  in the same batch, or in any earlier import, is the same legacy record repeated: reported
  (row → the row or person it repeats) and not imported. This is what makes re-importing a
  file, or two overlapping extracts, safe.
* **Probable duplicate** — a row that is not the same record but *biographically similar*
  (same name skeletons and sex, birth dates compatible within their precision, similarity ≥
  ``biographic_threshold`` with the father's name weighing in, as in enrolment) to an earlier
  row of the batch or to a registered person is **imported and sent to adjudication**: an
  adjudication case (kind ``biographic``) lists the candidates, the validation report has a
  line for the row, and the job counts it under ``adjudication``. Biographic similarity never
  decides "duplicate" on its own; an adjudicator (or biometric enrolment later) does.

Imported persons have no biometrics: they are created with status `pending_biometrics`, so
they can never get a card before biometric enrolment and deduplication.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ARRAY, String, Table, func, insert, literal, or_, select, text, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from sanad import audit
from sanad.abis import biographic
from sanad.credentials.ids import REGISTRATION_NUMBER_LENGTH, verhoeff_check_digit
from sanad.errors import InvalidInput, NotFound
from sanad.notify.outbox import emit
from sanad.registry.db import Base, transaction, utcnow
from sanad.registry.models import AdjudicationCase, Household, Person
from sanad.registry.schemas import CandidatePublic
from sanad.registry.sync_models import (
    ImportCheckpoint,
    ImportedRecord,
    ImportJob,
    ImportRowError,
)

PENDING_BIOMETRICS = "pending_biometrics"
FIELDS = (
    "given_name", "family_name", "father_name", "given_name_ar", "family_name_ar",
    "father_name_ar", "date_of_birth", "sex", "nationality", "province", "district", "phone",
    "relationship_to_head", "legacy_id", "household_ref",
)
REQUIRED = ("given_name", "family_name", "date_of_birth", "sex", "nationality", "province",
            "district")
RELATIONSHIPS = frozenset({"head", "spouse", "child", "parent", "sibling", "other"})
_LATIN = re.compile(r"^[A-Za-z\u00C0-\u024F][A-Za-z\u00C0-\u024F '\-.]*$")
_ARABIC = re.compile(r"^[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF\s'-]*$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_NATIONALITY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Mapping:
    """How a legacy file's columns map onto sanad fields.

    JSON form: ``{"source": "census-2019", "format": "csv", "fields": {"given_name":
    "FirstName", ...}, "values": {"sex": {"Male": "M"}}, "date_formats": ["%d/%m/%Y"],
    "defaults": {"nationality": "SYR"}}``. Unmapped optional fields are empty.
    """

    source: str
    fields: dict[str, str]
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    defaults: dict[str, str] = field(default_factory=dict)
    file_format: str | None = None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Mapping:
        if not isinstance(doc, dict) or not isinstance(doc.get("fields"), dict):
            raise InvalidInput("mapping needs a `fields` object", field="mapping.fields")
        unknown = set(doc["fields"]) - set(FIELDS)
        if unknown:
            raise InvalidInput(f"unknown field(s) in mapping: {', '.join(sorted(unknown))}",
                               field="mapping.fields")
        defaults = {str(k): str(v) for k, v in (doc.get("defaults") or {}).items()}
        missing = [f for f in REQUIRED if f not in doc["fields"] and f not in defaults]
        if missing:
            raise InvalidInput(f"mapping lacks required field(s): {', '.join(missing)}",
                               field="mapping.fields")
        fmt = doc.get("format")
        if fmt not in (None, "csv", "jsonl"):
            raise InvalidInput("format is csv or jsonl", field="mapping.format")
        source = str(doc.get("source") or "legacy")[:80]
        return cls(
            source=source, fields={str(k): str(v) for k, v in doc["fields"].items()},
            values={str(k): {str(a): str(b) for a, b in v.items()}
                    for k, v in (doc.get("values") or {}).items()},
            date_formats=tuple(doc.get("date_formats") or ("%Y-%m-%d",)),
            defaults=defaults, file_format=fmt,
        )

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "fields": self.fields, "values": self.values,
                "date_formats": list(self.date_formats), "defaults": self.defaults,
                "format": self.file_format}


def load_mapping(path: Path) -> Mapping:
    try:
        return Mapping.from_json(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"mapping {path} is not JSON: {exc}", field="mapping") from exc


def file_format_of(path: Path, mapping: Mapping) -> str:
    if mapping.file_format:
        return mapping.file_format
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    raise InvalidInput(f"cannot tell the format of {path.name}; set `format` in the mapping",
                       field="mapping.format")


# --- reading and validating -----------------------------------------------------------------


RawRow = dict[str, Any] | None  # None: the line could not be parsed at all


def read_rows(path: Path, file_format: str) -> Iterator[tuple[int, RawRow]]:
    """Yield (row number from 1, raw record) for every data row of the file.

    A file that is not UTF-8 raises `InvalidInput` (field `file`) naming the row it broke at.
    """
    row = 0
    try:
        for row, raw in _read_rows(path, file_format):
            yield row, raw
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path.name} is not UTF-8 text (after row {row}: {exc.reason})", field="file"
        ) from exc


def _read_rows(path: Path, file_format: str) -> Iterator[tuple[int, RawRow]]:
    if file_format == "csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for i, rec in enumerate(csv.DictReader(fh), start=1):
                yield i, rec
    else:
        with path.open(encoding="utf-8") as fh:
            i = 0
            for line in fh:
                if not line.strip():
                    continue
                i += 1
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    yield i, None
                    continue
                yield i, obj if isinstance(obj, dict) else None


@dataclass
class Row:
    """A validated row, ready to insert (its person id is drawn up front so that biographic
    candidates can name rows of the same batch)."""

    row: int
    values: dict[str, Any]
    dedup_key: str
    person_id: uuid.UUID = field(default_factory=uuid.uuid4)


# Common numeric formats parsed without strptime (which costs ~20 µs a call): the order of
# day, month and year in the regex groups.
_FAST_DATES: dict[str, tuple[re.Pattern[str], tuple[int, int, int]]] = {
    "%d/%m/%Y": (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})"), (0, 1, 2)),
    "%m/%d/%Y": (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})"), (1, 0, 2)),
    "%d.%m.%Y": (re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})"), (0, 1, 2)),
    "%d-%m-%Y": (re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})"), (0, 1, 2)),
    "%Y-%m-%d": (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), (2, 1, 0)),
}


def _parse_date(text: str, formats: tuple[str, ...]) -> tuple[date, str] | None:
    if len(text) == 4 and text.isdigit():
        return date(int(text), 1, 1), "year"
    for fmt in formats:
        fast = _FAST_DATES.get(fmt)
        if fast is not None:
            match = fast[0].fullmatch(text)
            if match is None:
                continue
            parts = match.groups()
            d, m, y = (int(parts[i]) for i in fast[1])
            try:
                return date(y, m, d), "exact"
            except ValueError:
                continue
        try:
            return datetime.strptime(text, fmt).date(), "exact"
        except ValueError:
            continue
    return None


# Legacy files repeat the same few thousand names millions of times: cache the skeletons.
latin_skeleton = functools.lru_cache(maxsize=200_000)(biographic.latin_skeleton)


def name_key(given_name: str, family_name: str) -> str:
    """`sanad.abis.biographic.name_key`, computed from the cached skeletons."""
    return f"{latin_skeleton(given_name)}|{latin_skeleton(family_name)}"[:120]


def dedup_key(values: dict[str, Any]) -> str:
    """Normalised biographic key: name skeletons, father's name, birth date, sex."""
    dob: date = values["date_of_birth"]
    born = str(dob.year) if values["dob_precision"] == "year" else dob.isoformat()
    text = "|".join((values["name_key"], latin_skeleton(values["father_name"]), born,
                     values["sex"]))
    return hashlib.sha256(text.encode()).hexdigest()


def validate(row: int, raw: RawRow, mapping: Mapping) -> tuple[Row | None, list[tuple[str, str]]]:
    """One row → (validated row, []) or (None, [(field, error), ...])."""
    if raw is None:
        return None, [("*", "line is not a JSON object")]
    errors: list[tuple[str, str]] = []
    v: dict[str, Any] = {}
    for name in FIELDS:
        column = mapping.fields.get(name)
        value = raw.get(column) if column is not None else None
        text = "" if value is None else str(value).strip()
        if not text:
            text = mapping.defaults.get(name, "")
        text = mapping.values.get(name, {}).get(text, text)
        v[name] = text
    for name in REQUIRED:
        if not v[name]:
            errors.append((name, "required"))
    for name in ("given_name", "family_name", "father_name"):
        if v[name] and (len(v[name]) > 100 or not _LATIN.match(v[name])):
            errors.append((name, "must be a Latin-script name of at most 100 characters"))
    for name in ("given_name_ar", "family_name_ar", "father_name_ar"):
        if v[name] and (len(v[name]) > 100 or not _ARABIC.match(v[name])):
            errors.append((name, "must be written in Arabic script"))
    if v["date_of_birth"]:
        parsed = _parse_date(v["date_of_birth"], mapping.date_formats)
        if parsed is None:
            errors.append(("date_of_birth", f"not a date in {', '.join(mapping.date_formats)}"))
        elif parsed[0] > date.today() or parsed[0].year < 1900:
            errors.append(("date_of_birth", "outside 1900..today"))
        else:
            v["date_of_birth"], v["dob_precision"] = parsed
    if v["sex"] and v["sex"] not in {"M", "F", "X"}:
        errors.append(("sex", "must be M, F or X (map other codes in `values`)"))
    if v["nationality"] and not _NATIONALITY.match(v["nationality"]):
        errors.append(("nationality", "must be an ISO 3166 alpha-3 code"))
    for name in ("province", "district"):
        if len(v[name]) > 80:
            errors.append((name, "at most 80 characters"))
    if v["phone"] and not _PHONE.match(v["phone"]):
        errors.append(("phone", "must be in E.164 form (+ and 7-15 digits)"))
    if not v["relationship_to_head"]:
        v["relationship_to_head"] = "head"
    elif v["relationship_to_head"] not in RELATIONSHIPS:
        errors.append(("relationship_to_head", f"one of {', '.join(sorted(RELATIONSHIPS))}"))
    for name in ("legacy_id", "household_ref"):
        if len(v[name]) > 80:
            errors.append((name, "at most 80 characters"))
    if errors:
        return None, errors
    v["name_key"] = name_key(v["given_name"], v["family_name"])
    return Row(row=row, values=v, dedup_key=dedup_key(v)), []


# --- jobs -----------------------------------------------------------------------------------


def submit_job(session: Session, *, path: Path, mapping: Mapping, actor: str) -> ImportJob:
    """Queue an import of `path` for `sanad worker` (or `run_job`)."""
    if not path.is_file():
        raise InvalidInput(f"no file {path}", field="file")
    fmt = file_format_of(path, mapping)
    job = ImportJob(path=str(path.resolve()), file_format=fmt, mapping=mapping.to_json(),
                    source=mapping.source, created_by=actor, created_at=utcnow())
    session.add(job)
    session.flush()
    session.add(ImportCheckpoint(job_id=job.id, last_row=0, updated_at=utcnow()))
    audit.record(session, actor=actor, action="import.submit", subject_type="import_job",
                 subject_id=str(job.id), details={"file": path.name, "source": mapping.source})
    return job


def job_summary(session: Session, job_id: uuid.UUID) -> dict[str, Any]:
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"no import job {job_id}")
    checkpoint = session.get(ImportCheckpoint, job_id)
    return {
        "id": str(job.id), "status": job.status, "source": job.source,
        "file": Path(job.path).name, "format": job.file_format,
        "total_rows": job.total_rows, "processed_rows": checkpoint.last_row if checkpoint else 0,
        "imported": job.imported, "rejected": job.rejected, "duplicates": job.duplicates,
        "adjudication": job.adjudication, "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def job_errors(session: Session, job_id: uuid.UUID, *, limit: int = 1000, offset: int = 0
               ) -> list[dict[str, Any]]:
    """The validation report: one line per (row, field, error), in row order."""
    if session.get(ImportJob, job_id) is None:
        raise NotFound(f"no import job {job_id}")
    rows = session.scalars(
        select(ImportRowError).where(ImportRowError.job_id == job_id)
        .order_by(ImportRowError.row, ImportRowError.id).limit(limit).offset(offset))
    return [{"row": r.row, "field": r.field, "error": r.error} for r in rows]


def claim_job(sessions: sessionmaker[Session], *, lease_seconds: float,
              job_id: uuid.UUID | None = None) -> uuid.UUID | None:
    """Take a queued job (or a running one whose worker's lease expired)."""
    now = utcnow()
    with transaction(sessions) as session:
        query = select(ImportJob).where(
            or_(ImportJob.status == "queued",
                (ImportJob.status == "running") & (ImportJob.lease_until < now)),
        ).order_by(ImportJob.created_at).limit(1)
        if job_id is not None:
            query = query.where(ImportJob.id == job_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = session.scalar(query)
        if job is None:
            return None
        job.status = "running"
        job.started_at = job.started_at or now
        job.lease_until = now + timedelta(seconds=lease_seconds)
        return job.id


@dataclass
class Timings:
    """Where an import spends its time (seconds), for `sanad bench import`."""

    read_validate: float = 0.0
    dedup: float = 0.0
    database: float = 0.0


def _batches(rows: Iterator[tuple[int, RawRow]], size: int
             ) -> Iterator[list[tuple[int, RawRow]]]:
    batch: list[tuple[int, RawRow]] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_BODY_DIGITS = REGISTRATION_NUMBER_LENGTH - 1


def _registration_number() -> str:
    """Same distribution as `sanad.credentials.ids.new_registration_number` (11 random digits,
    first non-zero, + Verhoeff), drawn in one call: millions are needed per import."""
    low = 10 ** (_BODY_DIGITS - 1)
    body = str(low + secrets.randbelow(9 * low))
    return body + verhoeff_check_digit(body)


def _existing(session: Session, column: InstrumentedAttribute[str], values: set[str]
              ) -> set[str]:
    """Which of `values` are already in `column` (one array parameter on PostgreSQL: an IN
    list of thousands of bind parameters costs more to compile than to run)."""
    if not values:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        condition = column == func.any(literal(list(values), ARRAY(String())))
    else:
        condition = column.in_(values)
    return set(session.scalars(select(column).where(condition)))


def _numbers(session: Session, n: int) -> list[str]:
    """`n` fresh registration numbers unused by households and persons."""
    out: set[str] = set()
    while len(out) < n:
        fresh = {_registration_number() for _ in range(n - len(out))} - out
        taken = _existing(session, Person.registration_number, fresh)
        taken |= _existing(session, Household.registration_number, fresh)
        out |= fresh - taken
    return list(out)


@dataclass(frozen=True)
class Probable:
    """A row that biographically resembles an earlier row of its batch or a registered person."""

    row: Row
    candidates: list[tuple[uuid.UUID, float, int | None]]  # person id, similarity, row or None


def _bio(values: dict[str, Any]) -> biographic.BioRecord:
    return biographic.BioRecord(
        given_name=values["given_name"], family_name=values["family_name"],
        father_name=values["father_name"], given_name_ar=values["given_name_ar"],
        family_name_ar=values["family_name_ar"], date_of_birth=values["date_of_birth"],
        dob_precision=values["dob_precision"], sex=values["sex"])


def _year_window(probe_precision: str, stored_precision: str, born: date
                 ) -> tuple[date, date]:
    """Birth dates a stored person may have and still be compatible with the probe."""
    tol = biographic.dob_tolerance_years(probe_precision, stored_precision)
    if probe_precision == "exact" and stored_precision == "exact":
        return born, born
    return date(born.year - tol, 1, 1), date(born.year + tol, 12, 31)


@functools.lru_cache(maxsize=100_000)
def _windows(probe_precision: str, born: date) -> tuple[tuple[str, str, str], ...]:
    """(stored precision, first, last ISO birth date) to look up for one probe."""
    out = []
    for stored in _PRECISIONS:
        lo, hi = _year_window(probe_precision, stored, born)
        out.append((stored, lo.isoformat(), hi.isoformat()))
    return tuple(out)


_PRECISIONS = ("exact", "year", "estimated")
# Registered people sharing a row's name skeletons, sex and a compatible birth date: one range
# scan of ix_persons_biographic_block per (probe, stored precision), in one statement. LATERAL
# with LIMIT (which also stops the planner flattening it) keeps it a nested loop of index
# scans: a merge join would sort all of `persons` per batch. Like enrolment, at most
# `_PER_PROBE` registered people per block are considered.
_PER_PROBE = 50
_REGISTERED_BLOCK = text("""
    SELECT DISTINCT p.id, p.name_key, p.sex, p.given_name, p.family_name, p.father_name,
           p.given_name_ar, p.family_name_ar, p.date_of_birth, p.dob_precision
    FROM json_to_recordset(CAST(:probes AS json)) AS b(k text, pr text, lo date, hi date,
                                                        s text)
    CROSS JOIN LATERAL (
        SELECT * FROM persons q
        WHERE q.name_key = b.k AND q.dob_precision = b.pr
          AND q.date_of_birth BETWEEN b.lo AND b.hi AND q.sex = b.s AND q.status <> 'linked'
        LIMIT :per_probe
    ) AS p
""")


def _registered(session: Session, rows: list[Row]) -> list[tuple[uuid.UUID, biographic.BioRecord,
                                                                   str]]:
    """Registered people in the blocks of `rows` (id, biographic record, name key)."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        probes: set[tuple[str, str, str, str, str]] = set()
        for r in rows:
            v = r.values
            for stored, lo, hi in _windows(v["dob_precision"], v["date_of_birth"]):
                probes.add((v["name_key"], stored, lo, hi, v["sex"]))
        # One JSON parameter: psycopg adapts Python lists element by element (~0.5 s for the
        # 15,000 probes of a 5,000-row batch); json.dumps and the server's parser are faster.
        doc = json.dumps([{"k": k, "pr": pr, "lo": lo, "hi": hi, "s": sx}
                          for k, pr, lo, hi, sx in probes])
        # Thousands of cheap index probes look expensive to the planner, which would JIT-compile
        # the statement (tens of ms per batch for nothing); off for this transaction only.
        session.execute(text("SET LOCAL jit = off"))
        result = session.execute(_REGISTERED_BLOCK,
                                 {"probes": doc, "per_probe": _PER_PROBE}).all()
    else:
        keys = sorted({r.values["name_key"] for r in rows})
        result = []
        for chunk in range(0, len(keys), 500):
            result += session.execute(
                select(Person.id, Person.name_key, Person.sex, Person.given_name,
                       Person.family_name, Person.father_name, Person.given_name_ar,
                       Person.family_name_ar, Person.date_of_birth, Person.dob_precision)
                .where(Person.name_key.in_(keys[chunk:chunk + 500]),
                       Person.status != "linked")).all()
    return [(pid, biographic.BioRecord(
        given_name=g, family_name=f, father_name=fa, given_name_ar=ga, family_name_ar=fa_ar,
        date_of_birth=dob, dob_precision=prec, sex=sex), nk)
        for pid, nk, sex, g, f, fa, ga, fa_ar, dob, prec in result]


def probable_duplicates(session: Session, rows: list[Row], *, threshold: float
                        ) -> list[Probable]:
    """Rows resembling an earlier row of `rows` or a registered person (see module doc).

    Blocking as in enrolment: same name skeletons (`name_key`) and sex; then birth dates
    compatible within their precision and `biographic.similarity` ≥ `threshold`.
    """
    blocks: dict[tuple[str, str], list[tuple[uuid.UUID, biographic.BioRecord, int | None]]] = {}
    for pid, record, nk in _registered(session, rows):
        blocks.setdefault((nk, record.sex), []).append((pid, record, None))
    out: list[Probable] = []
    for row in rows:
        v = row.values
        probe = _bio(v)
        block = blocks.setdefault((v["name_key"], v["sex"]), [])
        found = [(pid, score, source_row) for pid, record, source_row in block
                 if (score := biographic.similarity(probe, record)) >= threshold]
        if found:
            found.sort(key=lambda c: -c[1])
            out.append(Probable(row, found))
        block.append((row.person_id, probe, row.row))
    return out


def _candidate_json(person_id: uuid.UUID, score: float) -> dict[str, Any]:
    return CandidatePublic(person_id=person_id, score=score, source="biographic"
                           ).model_dump(mode="json")


def _open_cases(session: Session, job: ImportJob, probable: list[Probable]
                ) -> list[dict[str, Any]]:
    """One biographic adjudication case per probable duplicate; returns its report lines."""
    lines: list[dict[str, Any]] = []
    actor = f"import:{job.created_by}"[:80]
    now = utcnow()
    cases: list[dict[str, Any]] = []
    for p in probable:
        case_id = uuid.uuid4()
        cases.append({"id": case_id, "person_id": p.row.person_id, "kind": "biographic",
                      "status": "open", "needs_second": False, "created_at": now,
                      "candidates": [_candidate_json(pid, score)
                                     for pid, score, _ in p.candidates]})
        what = ", ".join(
            (f"row {src}" if src is not None else f"registered person {pid}") + f" ({score:.2f})"
            for pid, score, src in p.candidates[:5])
        lines.append({"job_id": job.id, "row": p.row.row, "field": "*",
                      "error": f"probable duplicate of {what}: imported, sent to adjudication "
                               f"(case {case_id})"})
    # Few rows, with a JSON column: a plain executemany (COPY would need it pre-encoded).
    session.execute(insert(AdjudicationCase), cases)
    for case in cases:
        audit.record(session, actor=actor, action="adjudication.open",
                     subject_type="adjudication_case", subject_id=str(case["id"]),
                     details={"person_id": str(case["person_id"]), "kind": "biographic",
                              "best_score": case["candidates"][0]["score"],
                              "import_job": str(job.id)})
    return lines


def _import_batch(
    session: Session, job: ImportJob, mapping: Mapping, batch: list[tuple[int, RawRow]],
    timings: Timings, *, biographic_threshold: float = 0.85,
) -> tuple[int, int, int, int]:
    t0 = time.perf_counter()
    good: list[Row] = []
    errors: list[dict[str, Any]] = []
    for row_no, raw in batch:
        row, row_errors = validate(row_no, raw, mapping)
        if row is None:
            errors.extend({"job_id": job.id, "row": row_no, "field": f, "error": e}
                          for f, e in row_errors)
        else:
            good.append(row)
    rejected_rows = len({e["row"] for e in errors})
    t1 = time.perf_counter()
    # In-batch and cross-import deduplication on the normalised key.
    first_seen: dict[str, int] = {}
    unique: list[Row] = []
    duplicates = 0
    for row in good:
        if row.dedup_key in first_seen:
            errors.append({"job_id": job.id, "row": row.row, "field": "*",
                           "error": f"duplicate of row {first_seen[row.dedup_key]} "
                                    "(same normalised name, birth date and sex)"})
            duplicates += 1
        else:
            first_seen[row.dedup_key] = row.row
            unique.append(row)
    if unique:
        keys = {r.dedup_key for r in unique}
        if session.get_bind().dialect.name == "postgresql":
            condition = ImportedRecord.dedup_key == func.any(literal(list(keys), ARRAY(String())))
        else:
            condition = ImportedRecord.dedup_key.in_(keys)
        existing = dict(session.execute(
            select(ImportedRecord.dedup_key, ImportedRecord.person_id).where(condition)).all())
        if existing:
            kept = []
            for row in unique:
                if row.dedup_key in existing:
                    errors.append({"job_id": job.id, "row": row.row, "field": "*",
                                   "error": "duplicate of already imported person "
                                            f"{existing[row.dedup_key]}"})
                    duplicates += 1
                else:
                    kept.append(row)
            unique = kept
    probable = probable_duplicates(session, unique, threshold=biographic_threshold)
    t2 = time.perf_counter()
    if unique:
        _insert(session, job, unique)
    t3 = time.perf_counter()
    errors += _open_cases(session, job, probable) if probable else []
    t4 = time.perf_counter()
    bulk_insert(session, ImportRowError, errors)
    t5 = time.perf_counter()
    timings.read_validate += t1 - t0
    timings.dedup += (t2 - t1) + (t4 - t3)
    timings.database += (t3 - t2) + (t5 - t4)
    return len(unique), rejected_rows, duplicates, len(probable)


def _column_defaults(table: Table, present: set[str]) -> dict[str, Any]:
    """Python-side defaults of columns the caller did not fill (COPY does not apply them)."""
    out: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in present or default is None:
            continue
        if default.is_scalar:
            out[column.name] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            out[column.name] = default.arg(None)  # type: ignore[attr-defined]
    return out


def bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert `rows` in the session's transaction: COPY on PostgreSQL, executemany elsewhere.

    COPY is several times faster than multi-row INSERT for large batches. Columns other
    organs add later with a Python default are filled in, so the import keeps working.
    """
    if not rows:
        return
    table = cast(Table, model.__table__)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    names = list(rows[0])
    defaults = _column_defaults(table, set(names))
    columns = names + list(defaults)
    fill = tuple(defaults.values())
    raw = connection.connection.driver_connection
    assert raw is not None  # a live connection inside the session's transaction
    quoted = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row((*(row[c] for c in names), *fill))


def _insert(session: Session, job: ImportJob, rows: list[Row]) -> None:
    now = utcnow()
    refs = {r.values["household_ref"] for r in rows if r.values["household_ref"]}
    households: dict[str, uuid.UUID] = {}
    next_member: dict[uuid.UUID, int] = {}
    if refs:
        # Households started by an earlier batch or import of the same source.
        for ref, hid in session.execute(
            select(ImportedRecord.household_ref, ImportedRecord.household_id)
            .where(ImportedRecord.source == job.source, ImportedRecord.household_ref.in_(refs))
            .distinct()).all():
            if ref is not None:
                households[ref] = hid
        if households:
            for hid, top in session.execute(
                select(Person.household_id, func.max(Person.member_no))
                .where(Person.household_id.in_(set(households.values())))
                .group_by(Person.household_id)).all():
                next_member[hid] = int(top) + 1
    new_households: list[dict[str, Any]] = []
    plan: list[tuple[Row, uuid.UUID, int]] = []
    for row in rows:
        ref = row.values["household_ref"]
        known = households.get(ref) if ref else None
        if known is None:
            hid = uuid.uuid4()
            new_households.append({"id": hid, "province": row.values["province"],
                                   "district": row.values["district"], "created_at": now})
            if ref:
                households[ref] = hid
        else:
            hid = known
        member_no = next_member.get(hid, 1)
        next_member[hid] = member_no + 1
        plan.append((row, hid, member_no))
    numbers = _numbers(session, len(new_households) + len(plan))
    for h in new_households:
        h["registration_number"] = numbers.pop()
    bulk_insert(session, Household, new_households)
    persons, records = [], []
    for row, hid, member_no in plan:
        v = row.values
        pid = row.person_id
        persons.append({
            "id": pid, "household_id": hid, "member_no": member_no,
            "registration_number": numbers.pop(),
            "relationship_to_head": v["relationship_to_head"],
            "given_name": v["given_name"], "family_name": v["family_name"],
            "father_name": v["father_name"], "given_name_ar": v["given_name_ar"],
            "family_name_ar": v["family_name_ar"], "father_name_ar": v["father_name_ar"],
            "date_of_birth": v["date_of_birth"], "dob_precision": v["dob_precision"],
            "sex": v["sex"], "nationality": v["nationality"], "province": v["province"],
            "district": v["district"], "phone": v["phone"] or None,
            "status": PENDING_BIOMETRICS, "version": 1, "created_at": now, "updated_at": now,
            "name_key": v["name_key"],
        })
        records.append({
            "job_id": job.id, "row": row.row, "source": job.source,
            "legacy_id": v["legacy_id"] or None, "household_ref": v["household_ref"] or None,
            "person_id": pid, "household_id": hid, "dedup_key": row.dedup_key,
        })
    bulk_insert(session, Person, persons)
    bulk_insert(session, ImportedRecord, records)


def count_rows(path: Path, file_format: str) -> int:
    return sum(1 for _ in read_rows(path, file_format))


def run_job(
    sessions: sessionmaker[Session], job_id: uuid.UUID, *, batch_rows: int,
    lease_seconds: float, max_batches: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    timings: Timings | None = None, between_batches: Callable[[], None] | None = None,
    biographic_threshold: float = 0.85,
) -> dict[str, Any]:
    """Process a claimed job from its checkpoint; stops after `max_batches` if given.

    `biographic_threshold` (the `biographic_threshold` setting) is the similarity from which
    a row is a probable duplicate and goes to adjudication.

    Each batch commits rows, report lines, counters and the checkpoint together. Returns the
    job summary. `progress(processed_rows, total_rows)` is called after each batch, and
    `between_batches()` too (the worker delivers due events there, so a long import never
    holds up a webhook by more than one batch).
    """
    timings = timings or Timings()
    with transaction(sessions) as session:
        job = session.get(ImportJob, job_id)
        if job is None:
            raise NotFound(f"no import job {job_id}")
        checkpoint = session.get(ImportCheckpoint, job_id)
        start_after = checkpoint.last_row if checkpoint else 0
        mapping = Mapping.from_json(job.mapping)
        path, fmt = Path(job.path), job.file_format
        total = job.total_rows
        session.expunge(job)
    try:
        if total is None:
            total = count_rows(path, fmt)
            with transaction(sessions) as session:
                session.execute(update(ImportJob).where(ImportJob.id == job_id)
                                .values(total_rows=total))
        if progress:
            progress(start_after, total)
        rows = ((n, raw) for n, raw in read_rows(path, fmt) if n > start_after)
        for done_batches, batch in enumerate(_batches(rows, batch_rows), start=1):
            with transaction(sessions) as session:
                imported, rejected, duplicates, flagged = _import_batch(
                    session, job, mapping, batch, timings,
                    biographic_threshold=biographic_threshold)
                last = batch[-1][0]
                session.execute(update(ImportCheckpoint).where(ImportCheckpoint.job_id == job_id)
                                .values(last_row=last, updated_at=utcnow()))
                session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
                    imported=ImportJob.imported + imported,
                    rejected=ImportJob.rejected + rejected,
                    duplicates=ImportJob.duplicates + duplicates,
                    adjudication=ImportJob.adjudication + flagged,
                    lease_until=utcnow() + timedelta(seconds=lease_seconds)))
                audit.record(session, actor=f"import:{job.created_by}"[:80],
                             action="import.batch", subject_type="import_job",
                             subject_id=str(job_id),
                             details={"rows": [batch[0][0], last], "imported": imported,
                                      "rejected": rejected, "duplicates": duplicates,
                                      "adjudication": flagged})
            if progress:
                progress(last, total)
            if between_batches:
                between_batches()
            if max_batches is not None and done_batches >= max_batches:
                with transaction(sessions) as session:
                    return job_summary(session, job_id)
    except (OSError, UnicodeDecodeError, csv.Error, InvalidInput) as exc:
        # The job fails with the reason recorded; rows of earlier batches stay imported.
        with transaction(sessions) as session:
            session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
                status="failed", error=f"{type(exc).__name__}: {exc}"[:2000],
                finished_at=utcnow(), lease_until=None))
            return job_summary(session, job_id)
    with transaction(sessions) as session:
        session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
            status="done", finished_at=utcnow(), lease_until=None))
        summary = job_summary(session, job_id)
        audit.record(session, actor=f"import:{job.created_by}"[:80], action="import.done",
                     subject_type="import_job", subject_id=str(job_id),
                     details={k: summary[k] for k in ("imported", "rejected", "duplicates",
                                                      "adjudication")})
        emit(session, event_type="import.done", subject_id=job_id,
             payload={k: summary[k] for k in ("id", "imported", "rejected", "duplicates",
                                              "adjudication")})
        return summary

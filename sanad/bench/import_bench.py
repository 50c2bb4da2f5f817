"""``sanad bench import``: bulk-import throughput on PostgreSQL, and where the time goes.

One synthetic legacy file of ``n`` rows (households of 1-6 people; a share of rows repeat an
earlier person under a spelling variant, a share are invalid) is imported by the real import
job (validation, in-batch + cross-import dedup — exact normalised key, then fuzzy biographic
candidates sent to adjudication — inserts, report lines, checkpoints, audit).
The baseline, measured in the same run on the same file and database, is PostgreSQL ``COPY`` of
the parsed rows into a bare table: the fastest way to put those rows in that server at all.
``ratio_vs_copy`` = import rows/s ÷ COPY rows/s is the figure to compare across machines.

The run creates a scratch database (``sanad_bench_import_<pid>``) on the server named by
``SANAD_BENCH_POSTGRES_URL`` (default: the test server) and drops it afterwards.
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

from sanad.bench import BenchmarkParamError, BenchResult
from sanad.config import Settings
from sanad.registry import importer
from sanad.registry.db import transaction
from sanad.registry.runtime import init_registry, open_registry

_GIVEN = ["Muhammad", "Ahmad", "Omar", "Ali", "Yusuf", "Khalid", "Hassan", "Ibrahim", "Sami",
          "Fatima", "Aisha", "Maryam", "Huda", "Layla", "Noor", "Rana", "Sara", "Zainab",
          "Amal", "Dina", "Rami", "Tariq", "Walid", "Bilal", "Hiba", "Salma", "Yara", "Mona"]
_FAMILY = ["Haddad", "Nasser", "Saleh", "Khoury", "Darwish", "Hamdan", "Mansour", "Qasim",
           "Shami", "Halabi", "Zoubi", "Masri", "Obeid", "Rashid", "Najjar", "Attar", "Sabbagh"]
_VARIANT = {"Muhammad": "Mohammed", "Yusuf": "Yousef", "Omar": "Umar", "Haddad": "Hadad",
            "Khoury": "Khouri", "Qasim": "Kassem", "Aisha": "Aysha", "Zainab": "Zaynab"}
_PROVINCES = [("Amman", "Marka"), ("Amman", "Sahab"), ("Irbid", "Ramtha"), ("Zarqa", "Russeifa"),
              ("Mafraq", "Zaatari"), ("Azraq", "Azraq")]
HEADER = ["CaseNo", "FamilyNo", "First", "Last", "Father", "DOB", "Gender", "Gov", "Dist", "Rel"]
MAPPING = {
    "source": "bench-census", "format": "csv",
    "fields": {"legacy_id": "CaseNo", "household_ref": "FamilyNo", "given_name": "First",
               "family_name": "Last", "father_name": "Father", "date_of_birth": "DOB",
               "sex": "Gender", "province": "Gov", "district": "Dist",
               "relationship_to_head": "Rel"},
    "values": {"sex": {"male": "M", "female": "F"}},
    "date_formats": ["%d/%m/%Y"], "defaults": {"nationality": "SYR"},
}


def write_file(path: Path, n: int, *, dup_rate: float, bad_rate: float, seed: int
               ) -> tuple[int, int]:
    """Write `n` rows; returns (rows meant as repeats, rows meant as invalid)."""
    rng = random.Random(seed)
    base = date(1940, 1, 1)
    recent: list[list[str]] = []
    dups = bads = 0
    family = 0
    left_in_family = 0
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(n):
            r = rng.random()
            if r < dup_rate and recent:
                # The same person again, spelled differently, under another case number.
                row = list(rng.choice(recent))
                row[0] = f"D{i}"
                row[2] = _VARIANT.get(row[2], row[2])
                row[3] = _VARIANT.get(row[3], row[3])
                row[1] = f"DF{i}"
                row[9] = "head"
                dups += 1
            else:
                if left_in_family == 0:
                    family += 1
                    left_in_family = rng.randint(1, 6)
                    surname = rng.choice(_FAMILY)
                    province, district = rng.choice(_PROVINCES)
                    rel = "head"
                else:
                    rel = "child"
                left_in_family -= 1
                sex = rng.choice(("male", "female"))
                dob = base + timedelta(days=rng.randrange(0, 30_000))
                row = [f"C{i}", f"F{family}", rng.choice(_GIVEN), surname, rng.choice(_GIVEN),
                       dob.strftime("%d/%m/%Y"), sex, province, district, rel]
                if r > 1 - bad_rate:
                    row[5] = "31/02/1990"  # no such date
                    bads += 1
                else:
                    recent.append(row)
                    if len(recent) > 5000:
                        recent.pop(0)
            writer.writerow(row)
    return dups, bads


def _copy_baseline(conninfo: str, path: Path) -> float:
    """Seconds to parse the file and COPY every row into a bare table (no checks)."""
    start = time.perf_counter()
    with psycopg.connect(conninfo) as conn:
        conn.execute("CREATE TABLE bench_copy (case_no text, family_no text, given text, "
                     "family text, father text, dob text, sex text, province text, "
                     "district text, rel text)")
        with conn.cursor() as cur, cur.copy("COPY bench_copy FROM STDIN") as copy, \
                path.open(newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            for row in reader:
                copy.write_row(row)
        conn.commit()
    return time.perf_counter() - start


def run_import(
    n: int = 1_450_000, batch_rows: int = 5000, dup_rate: float = 0.01,
    bad_rate: float = 0.005, seed: int = 7,
) -> BenchResult:
    """Import ``n`` synthetic legacy rows through the real import job on PostgreSQL."""
    if n < 1 or batch_rows < 1 or not 0 <= dup_rate < 1 or not 0 <= bad_rate < 1:
        raise BenchmarkParamError("n, batch_rows ≥ 1; 0 ≤ dup_rate, bad_rate < 1")
    admin_url = os.environ.get("SANAD_BENCH_POSTGRES_URL",
                               "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    admin_info = admin_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"sanad_bench_import_{os.getpid()}"
    db_url = admin_url.rpartition("/")[0] + "/" + name
    with psycopg.connect(admin_info, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory(prefix="sanad-bench-import-") as tmp:
            work = Path(tmp)
            data = work / "legacy.csv"
            t0 = time.perf_counter()
            dups, bads = write_file(data, n, dup_rate=dup_rate, bad_rate=bad_rate, seed=seed)
            generate_s = time.perf_counter() - t0
            settings = Settings(home=work / "home", database_url=db_url)
            init_registry(settings)
            copy_s = _copy_baseline(db_url.replace("postgresql+psycopg://", "postgresql://"),
                                    data)
            reg = open_registry(settings)
            try:
                with transaction(reg.sessions) as session:
                    job = importer.submit_job(session, path=data,
                                              mapping=importer.Mapping.from_json(MAPPING),
                                              actor="bench")
                importer.claim_job(reg.sessions, lease_seconds=3600)
                timings = importer.Timings()
                start = time.perf_counter()
                summary = importer.run_job(reg.sessions, job.id, batch_rows=batch_rows,
                                           lease_seconds=3600, timings=timings)
                import_s = time.perf_counter() - start
            finally:
                reg.close()
    finally:
        with psycopg.connect(admin_info, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    rows_per_s = n / import_s
    copy_rows_per_s = n / copy_s
    accounted = timings.read_validate + timings.dedup + timings.database
    figures = {
        "rows": float(n),
        "import_s": import_s,
        "rows_per_s": rows_per_s,
        "copy_rows_per_s": copy_rows_per_s,
        "ratio_vs_copy": rows_per_s / copy_rows_per_s,
        "share_validate": timings.read_validate / import_s,
        "share_dedup": timings.dedup / import_s,
        "share_database": timings.database / import_s,
        "share_other": max(0.0, 1 - accounted / import_s),
        "imported": float(summary["imported"]),
        "rejected": float(summary["rejected"]),
        "duplicates": float(summary["duplicates"]),
        "adjudication": float(summary["adjudication"]),
        "planted_duplicates": float(dups),
        "planted_invalid": float(bads),
        "generate_s": generate_s,
    }
    notes = {
        "baseline": "PostgreSQL COPY of the same parsed rows into a bare table, same run",
        "share_database": "inserts of households, persons, provenance and report lines",
        "share_dedup": "exact key: in-batch check + one indexed lookup of the batch's keys; "
                       "fuzzy: one blocked query of registered people (name skeletons, "
                       "precision, birth-date window), similarity scoring, opening cases",
        "adjudication": "rows imported but sent to adjudication as probable biographic "
                        "duplicates (same name skeletons and sex, compatible birth date, "
                        "similarity >= 0.85); synthetic names come from short lists, so "
                        "distinct people collide far more often than in real registers",
        "share_other": "file reading between batches, checkpoint, counters, audit, commit",
        "duplicates": "differs from planted_duplicates both ways: random people may collide on "
                      "name skeletons + birth date + sex; a variant changing a name's first "
                      "letter (Omar/Umar) escapes the exact normalised key",
    }
    return BenchResult(name="import", params={"n": n, "batch_rows": batch_rows,
                                              "dup_rate": dup_rate, "bad_rate": bad_rate,
                                              "seed": seed},
                       figures=figures, notes=notes)

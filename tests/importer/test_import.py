"""Bulk import: validation report, in-batch and cross-import dedup, resume, background job."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sanad.notify.worker import run_worker
from sanad.registry import importer
from sanad.registry.db import transaction
from sanad.registry.models import Household, Person
from sanad.registry.runtime import Registry
from sanad.registry.sync_models import ImportCheckpoint, ImportedRecord, ImportJob
from tests.factories import count_rows

MAPPING = {
    "source": "census-2019", "format": "csv",
    "fields": {"given_name": "First", "family_name": "Last", "father_name": "Father",
               "date_of_birth": "DOB", "sex": "Gender", "nationality": "Nat",
               "province": "Gov", "district": "Dist", "phone": "Mobile",
               "relationship_to_head": "Rel", "legacy_id": "CaseNo",
               "household_ref": "FamilyNo"},
    "values": {"sex": {"Male": "M", "Female": "F"},
               "relationship_to_head": {"HH": "head", "WF": "spouse", "CH": "child"}},
    "date_formats": ["%d/%m/%Y"],
    "defaults": {"nationality": "SYR"},
}
HEADER = ["CaseNo", "FamilyNo", "First", "Last", "Father", "DOB", "Gender", "Nat", "Gov",
          "Dist", "Mobile", "Rel"]
ROWS = [
    ["C1", "F1", "Muhammad", "Haddad", "Yusuf", "02/03/1985", "Male", "", "Amman", "Marka",
     "+962791234567", "HH"],
    ["C2", "F1", "Fatima", "Haddad", "Ali", "1990", "Female", "", "Amman", "Marka", "", "WF"],
    ["C3", "F1", "Sara", "Haddad", "Muhammad", "31/02/2015", "Female", "", "Amman", "Marka",
     "", "CH"],  # bad date
    ["C4", "F2", "Omar", "", "Khalid", "01/01/1970", "Male", "", "Irbid", "Ramtha", "", "HH"],
    ["C5", "F3", "Layla", "Nasser", "Samir", "05/05/1999", "Q", "", "Irbid", "Ramtha", "12",
     "HH"],  # bad sex and phone
    ["C6", "F4", "Mohammed", "Hadad", "Yousef", "02/03/1985", "Male", "", "Amman", "Marka", "",
     "HH"],  # same person as C1, spelled differently
    ["C7", "F1", "Adam", "Haddad", "Muhammad", "01/06/2018", "Male", "", "Amman", "Marka", "",
     "CH"],
    ["C8", "F5", "Huda", "Salem", "Amir", "12/12/1960", "Female", "JOR", "Zarqa", "Russeifa",
     "", "HH"],
]


def _write(tmp_path: Path, rows: list[list[str]]) -> tuple[Path, Path]:
    data = tmp_path / "legacy.csv"
    with data.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    return data, mapping


def _run(registry: Registry, data: Path, mapping: Path, **kw: int) -> dict[str, object]:
    with transaction(registry.sessions) as session:
        job = importer.submit_job(session, path=data, mapping=importer.load_mapping(mapping),
                                  actor="test")
    assert importer.claim_job(registry.sessions, lease_seconds=60) == job.id
    return importer.run_job(registry.sessions, job.id, lease_seconds=60,
                            batch_rows=kw.get("batch_rows", 3))


def test_bad_rows_are_reported_and_good_rows_imported(registry: Registry, tmp_path: Path
                                                      ) -> None:
    data, mapping = _write(tmp_path, ROWS)
    summary = _run(registry, data, mapping, batch_rows=10)  # one batch: dedup within it
    assert summary["status"] == "done" and summary["total_rows"] == 8
    assert (summary["imported"], summary["rejected"], summary["duplicates"]) == (4, 3, 1)
    with transaction(registry.sessions) as session:
        report = importer.job_errors(session, importer_job_id(registry))
        people = session.scalars(select(Person).order_by(Person.given_name)).all()
        assert [p.given_name for p in people] == ["Adam", "Fatima", "Huda", "Muhammad"]
        assert {p.status for p in people} == {"pending_biometrics"}
        fatima = next(p for p in people if p.given_name == "Fatima")
        assert (fatima.dob_precision, fatima.relationship_to_head) == ("year", "spouse")
        # F1's three good rows form one household; F5 its own.
        assert session.scalar(select(func.count()).select_from(Household)) == 2
        f1 = {p.household_id for p in people if p.family_name == "Haddad"}
        assert len(f1) == 1
        assert sorted(p.member_no for p in people if p.family_name == "Haddad") == [1, 2, 3]
    fields = {(e["row"], e["field"]) for e in report}
    assert fields == {(3, "date_of_birth"), (4, "family_name"), (5, "sex"), (5, "phone"),
                      (6, "*")}
    assert next(e for e in report if e["row"] == 6)["error"].startswith("duplicate of row 1")


def importer_job_id(registry: Registry) -> uuid.UUID:
    with transaction(registry.sessions) as session:
        job_id = session.scalar(select(ImportJob.id).order_by(ImportJob.created_at.desc()))
    assert job_id is not None
    return job_id


def test_interrupted_import_resumes_where_it_stopped(registry: Registry, tmp_path: Path
                                                     ) -> None:
    data, mapping = _write(tmp_path, ROWS)
    with transaction(registry.sessions) as session:
        job = importer.submit_job(session, path=data, mapping=importer.load_mapping(mapping),
                                  actor="test")
    assert importer.claim_job(registry.sessions, lease_seconds=0) == job.id
    first = importer.run_job(registry.sessions, job.id, batch_rows=3, lease_seconds=0,
                             max_batches=1)  # the process "dies" after one batch
    assert first["status"] == "running" and first["processed_rows"] == 3
    assert count_rows(registry, Person) == 2
    # Its lease has expired: another worker takes the job over from the checkpoint.
    assert importer.claim_job(registry.sessions, lease_seconds=60) == job.id
    final = importer.run_job(registry.sessions, job.id, batch_rows=3, lease_seconds=60)
    assert final["status"] == "done" and final["imported"] == 4
    assert count_rows(registry, Person) == 4 and count_rows(registry, ImportedRecord) == 4
    with transaction(registry.sessions) as session:
        assert session.get(ImportCheckpoint, job.id).last_row == 8  # type: ignore[union-attr]
        report = importer.job_errors(session, job.id)
    assert len(report) == 5  # each bad row reported once
    # Row 6 repeats row 1, imported by an earlier batch: dedup spans batches too.
    assert report[-1]["row"] == 6
    assert report[-1]["error"].startswith("duplicate of already imported person")


def test_reimport_and_jsonl(registry: Registry, tmp_path: Path) -> None:
    data, mapping = _write(tmp_path, ROWS)
    _run(registry, data, mapping)
    again = _run(registry, data, mapping)  # the same people, a second time
    assert again["imported"] == 0 and again["duplicates"] == 5
    lines = tmp_path / "more.jsonl"
    records = [dict(zip(HEADER, row, strict=True)) for row in ROWS[7:]]
    records[0].update(CaseNo="C9", First="Rami", DOB="03/03/1993")
    lines.write_text(json.dumps(records[0]) + "\n{not json\n[1, 2]\n")
    jmap = tmp_path / "j.json"
    jmap.write_text(json.dumps({**MAPPING, "format": "jsonl"}))
    summary = _run(registry, lines, jmap)
    assert (summary["imported"], summary["rejected"]) == (1, 2)
    assert count_rows(registry, Person) == 5


def test_api_job_runs_in_background_worker(
    client: TestClient, admin_headers: dict[str, str], registry: Registry, tmp_path: Path,
) -> None:
    data, _ = _write(tmp_path, ROWS)
    resp = client.post("/imports", headers=admin_headers,
                       files={"file": ("legacy.csv", data.read_bytes(), "text/csv")},
                       data={"mapping": json.dumps(MAPPING)})
    assert resp.status_code == 202, resp.text
    url = resp.headers["Location"]
    assert client.get(url, headers=admin_headers).json()["status"] == "queued"
    assert count_rows(registry, Person) == 0  # nothing happened inside the request
    run_worker(registry, until_idle=True, max_seconds=60)
    status = client.get(url, headers=admin_headers).json()
    assert status["status"] == "done" and status["imported"] == 4
    errors = client.get(url + "/errors", headers=admin_headers).json()
    assert {"row": 4, "field": "family_name", "error": "required"} in errors
    bad = client.post("/imports", headers=admin_headers,
                      files={"file": ("x.csv", b"a,b\n", "text/csv")},
                      data={"mapping": json.dumps({"fields": {"given_name": "a"}})})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "mapping.fields"
    assert client.get("/imports/00000000-0000-0000-0000-000000000000",
                      headers=admin_headers).status_code == 404


@pytest.mark.slow
def test_cli_import_with_report(db_env: dict[str, str], registry: Registry, tmp_path: Path
                                ) -> None:
    data, mapping = _write(tmp_path, ROWS)
    report = tmp_path / "report.csv"
    done = subprocess.run([sys.executable, "-m", "sanad", "import", str(data), "--mapping",
                           str(mapping), "--report", str(report)], env=db_env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imported"] == 4
    rows = list(csv.DictReader(report.open()))
    assert len(rows) == 5 and rows[0] == {"row": "3", "field": "date_of_birth",
                                          "error": rows[0]["error"]}
    missing = subprocess.run([sys.executable, "-m", "sanad", "import", str(data)], env=db_env,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "error [invalid_input]" in missing.stderr

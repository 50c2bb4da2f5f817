"""Fuzzy biographic dedup of imports: probable duplicates (of an earlier row or of a registered
person) are imported and sent to adjudication — never dropped, never merged, never decided by
biographic similarity alone."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.registry import importer
from sanad.registry.adjudication import Verdict, decide_case
from sanad.registry.db import transaction
from sanad.registry.models import AdjudicationCase, Person
from sanad.registry.runtime import Registry
from sanad.registry.sync_models import ImportedRecord
from tests.factories import household
from tests.importer.test_import import _run, _write

ROWS = [
    # 1: the registered Mohammad Al-Rashid (b. 2 Mar 1985, father Yusuf), recorded with a year
    #    only and other spellings: a probable duplicate of a registered person.
    ["L1", "G1", "Muhammad", "Al Rashid", "Yousef", "1985", "Male", "", "Amman", "Marka", "",
     "HH"],
    ["L2", "G2", "Fatima", "Nasser", "Ali", "05/05/1990", "Female", "", "Irbid", "Ramtha", "",
     "HH"],
    # 3: row 2's person again, year-only birth date and another spelling: probable duplicate.
    ["L3", "G3", "Fatima", "Nassar", "Ali", "1990", "Female", "", "Irbid", "Ramtha", "", "HH"],
    # 4: same name as row 2 but born 20 years earlier: a different person, not flagged.
    ["L4", "G4", "Fatima", "Nasser", "Ali", "05/05/1970", "Female", "", "Irbid", "Ramtha", "",
     "HH"],
    # 5, 6: same name and birth date, fathers' names unlike: below the threshold, not flagged.
    ["L5", "G5", "Omar", "Saleh", "Khalid", "01/01/1970", "Male", "", "Zarqa", "Russeifa", "",
     "HH"],
    ["L6", "G6", "Omar", "Saleh", "Ibrahim", "01/01/1970", "Male", "", "Zarqa", "Russeifa", "",
     "HH"],
]


def _person_of_row(registry: Registry, row: int) -> uuid.UUID:
    with transaction(registry.sessions) as session:
        pid = session.scalar(select(ImportedRecord.person_id).where(ImportedRecord.row == row))
    assert pid is not None
    return pid


@pytest.mark.parametrize("batch_rows", [10, 2])  # one batch, or rows 2 and 3 in two batches
def test_probable_duplicates_are_imported_and_sent_to_adjudication(
    registry: Registry, client: TestClient, admin_headers: dict[str, str], tmp_path: Path,
    batch_rows: int,
) -> None:
    enrolled = client.post("/households", json=household([4100], np.random.default_rng(41)),
                           headers=admin_headers)
    assert enrolled.status_code == 201, enrolled.text
    registered = uuid.UUID(enrolled.json()["members"][0]["person_id"])
    data, mapping = _write(tmp_path, ROWS)
    summary = _run(registry, data, mapping, batch_rows=batch_rows)
    assert summary["status"] == "done"
    assert (summary["imported"], summary["rejected"], summary["duplicates"],
            summary["adjudication"]) == (6, 0, 0, 2)
    row1, row2, row3 = (_person_of_row(registry, r) for r in (1, 2, 3))
    with transaction(registry.sessions) as session:
        cases = {c.person_id: c for c in session.scalars(select(AdjudicationCase))}
        assert set(cases) == {row1, row3}
        assert {(c.kind, c.status) for c in cases.values()} == {("biographic", "open")}
        [cand1] = cases[row1].candidates
        assert (cand1["person_id"], cand1["source"]) == (str(registered), "biographic")
        assert 0.85 <= cand1["score"] <= 1
        [cand3] = cases[row3].candidates
        assert cand3["person_id"] == str(row2) and cand3["source"] == "biographic"
        # Nothing merged, nothing decided: all imported records wait for biometrics; the
        # registered person is untouched.
        imported = session.scalars(select(Person).where(Person.id != registered)).all()
        assert len(imported) == 6 and {p.status for p in imported} == {"pending_biometrics"}
        assert session.get(Person, registered).status == "active"  # type: ignore[union-attr]
        report = importer.job_errors(session, uuid.UUID(str(summary["id"])))
    flagged = {e["row"]: e["error"] for e in report}
    assert set(flagged) == {1, 3}
    assert "probable duplicate of registered person" in flagged[1]
    assert "sent to adjudication" in flagged[3]
    if batch_rows == 10:
        assert "probable duplicate of row 2" in flagged[3]
    # The cases sit in the adjudicators' ordinary queue, with their candidates.
    listed = client.get("/adjudication/cases", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    assert {c["kind"] for c in listed.json()} == {"biographic"} and len(listed.json()) == 2
    detail = client.get(f"/adjudication/cases/{cases[row1].id}", headers=admin_headers)
    assert detail.status_code == 200, detail.text
    assert str(registered) in detail.text


def test_adjudicating_an_imported_record_keeps_it_without_a_card(
    registry: Registry, tmp_path: Path,
) -> None:
    data, mapping = _write(tmp_path, ROWS[1:3])
    summary = _run(registry, data, mapping, batch_rows=10)
    assert summary["adjudication"] == 1
    with transaction(registry.sessions) as session:
        case = session.scalar(select(AdjudicationCase))
        assert case is not None
        decided = decide_case(session, case_id=case.id, verdict=Verdict.DIFFERENT_PERSON,
                              reason="different mothers per the legacy file", actor="adj-1",
                              sealer=registry.sealer, match_threshold=0.5)
        assert decided.status == "resolved"
        person = session.get(Person, case.person_id)
        # "Different person" settles the pair but gives no card: biometrics come first.
        assert person is not None and person.status == "pending_biometrics"


def test_threshold_is_honoured(registry: Registry, tmp_path: Path) -> None:
    data, mapping = _write(tmp_path, ROWS[4:6])
    with transaction(registry.sessions) as session:
        job = importer.submit_job(session, path=data, mapping=importer.load_mapping(mapping),
                                  actor="test")
    assert importer.claim_job(registry.sessions, lease_seconds=60) == job.id
    # The two Omar Salehs (same name and birth date, fathers unlike) score 0.8: a lower
    # threshold flags them, the default does not (test above).
    summary = importer.run_job(registry.sessions, job.id, lease_seconds=60, batch_rows=10,
                               biographic_threshold=0.75)
    assert summary["adjudication"] == 1

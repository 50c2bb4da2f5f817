"""Object factories: household payloads with synthetic faces (and, on request, fingerprints)
whose ground truth tests know."""

from __future__ import annotations

import base64
import csv
import json
import uuid
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from sanad.abis.templates import encode_template
from sanad.biometrics.finger import encode_record
from sanad.biometrics.finger.synthetic import SyntheticFingers
from sanad.biometrics.synthetic import SyntheticPopulation
from sanad.registry import importer
from sanad.registry.db import transaction
from sanad.registry.models import Person

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from sanad.registry.runtime import Registry
    from sanad.registry.schemas import EnrolmentResult

POPULATION = SyntheticPopulation(seed=2026)


def count_rows(registry: Registry, model: Any) -> int:
    """Rows of ``model``'s table (e.g. to show that a refused request wrote nothing)."""
    with registry.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)

# Fingers of identity i belong to the same person as face identity i.
FINGERS = SyntheticFingers(seed=2026)
INDEX_FINGERS = (2, 7)  # right and left index, what most field kits capture


def face_capture(vector: np.ndarray) -> dict[str, Any]:
    """``vector`` (a unit template) as the API's FaceCapture JSON."""
    return {"template": base64.b64encode(encode_template(vector.astype(np.float32))).decode(),
            "quality": 0.9}


def face(identity: int, rng: np.random.Generator) -> dict[str, Any]:
    """A fresh capture of synthetic `identity` as the API's FaceCapture JSON."""
    return face_capture(POPULATION.capture(identity, rng))


def member(identity: int, rng: np.random.Generator, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "given_name": "Mohammad",
        "family_name": "Al-Rashid",
        "father_name": "Yusuf",
        "given_name_ar": "محمد",
        "family_name_ar": "الرشيد",
        "father_name_ar": "يوسف",
        "date_of_birth": date(1985, 3, 2).isoformat(),
        "dob_precision": "exact",
        "sex": "M",
        "nationality": "SYR",
        "relationship_to_head": "head",
        "phone": "+962791234567",
        "face": face(identity, rng),
    }
    data.update(overrides)
    return data


def household(identities: list[int], rng: np.random.Generator, **overrides: Any) -> dict[str, Any]:
    """A household payload: the first identity is the head, the others children."""
    members = [member(identities[0], rng)]
    for n, identity in enumerate(identities[1:], start=1):
        members.append(
            member(
                identity, rng, given_name=f"Child{'abcdefghij'[n % 10]}", given_name_ar="سارة",
                relationship_to_head="child", sex="F", date_of_birth=date(2015, 1, n).isoformat(),
                dob_precision="year" if n == 2 else "exact", phone=None,
            )
        )
    data: dict[str, Any] = {
        "province": "Amman", "district": "Marka", "site": "test-site", "station": "st-1",
        "members": members,
    }
    data.update(overrides)
    return data


def finger_record(identity: int, position: int, rng: np.random.Generator) -> bytes:
    """A fresh capture of one finger of synthetic `identity` as an ISO/IEC 19794-2 record."""
    return encode_record(FINGERS.capture_record(identity, (position,), rng))


def fingers(
    identity: int, rng: np.random.Generator, positions: tuple[int, ...] = INDEX_FINGERS
) -> list[dict[str, Any]]:
    """Fresh captures of `positions` of synthetic `identity` as the API's `fingers` JSON."""
    return [
        {"position": p, "record": base64.b64encode(finger_record(identity, p, rng)).decode()}
        for p in positions
    ]


def face_near(identity: int, cosine: float, rng: np.random.Generator) -> dict[str, Any]:
    """A face template whose cosine with `identity`'s template is `cosine` (a look-alike or a
    poor capture), as the API's FaceCapture JSON."""
    t = POPULATION.identity_template(identity).astype(np.float64)
    u = rng.standard_normal(t.shape)
    u -= (u @ t) * t
    u /= np.linalg.norm(u)
    return face_capture(cosine * t + np.sqrt(1.0 - cosine * cosine) * u)


def alone(member: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A one-member household payload around ``member``."""
    return {"province": "Amman", "district": "Marka", "members": [member], **overrides}


def enrol(
    registry: Registry, payload: dict[str, Any], officer: str = "officer-1"
) -> EnrolmentResult:
    """Enrol ``payload`` through the service, as an officer would (no HTTP)."""
    from sanad.registry.enrolment import EnrolmentContext, enrol_household
    from sanad.registry.schemas import HouseholdCreate

    return enrol_household(
        registry.sessions, registry.gallery, registry.settings,
        data=HouseholdCreate.model_validate(payload), ctx=EnrolmentContext(officer=officer),
    )


def role_headers(client: TestClient, admin_headers: dict[str, str], role: str) -> dict[str, str]:
    """Bearer headers of a new user holding only ``role`` (created by the admin)."""
    name = f"{role.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    made = client.post("/users", headers=admin_headers,
                       json={"username": name, "roles": [role]})
    assert made.status_code == 201, made.text
    token = client.post("/auth/token", json={"username": name,
                                             "password": made.json()["password"]})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def enrol_over_api(client: TestClient, headers: dict[str, str], member: dict[str, Any]) -> str:
    """Enrol ``member`` alone through ``POST /households``; the new person's id."""
    resp = client.post("/households", headers=headers, json=alone(member))
    assert resp.status_code == 201, resp.text
    person_id = resp.json()["members"][0]["person_id"]
    assert person_id
    return str(person_id)


LEGACY_MAPPING = {
    "source": "census-2019", "format": "csv",
    "fields": {"given_name": "First", "family_name": "Last", "father_name": "Father",
               "date_of_birth": "DOB", "sex": "Gender", "province": "Gov",
               "district": "Dist", "relationship_to_head": "Rel", "legacy_id": "CaseNo",
               "household_ref": "FamilyNo"},
    "values": {"sex": {"Male": "M", "Female": "F"}, "relationship_to_head": {"HH": "head"}},
    "date_formats": ["%d/%m/%Y"],
    "defaults": {"nationality": "SYR"},
}
LEGACY_HEADER = ["CaseNo", "FamilyNo", "First", "Last", "Father", "DOB", "Gender", "Gov", "Dist",
                 "Rel"]


def import_legacy(registry: Registry, tmp_path: Path, rows: list[list[str]]
                  ) -> dict[str, uuid.UUID]:
    """Import legacy rows (`legacy_row`) through the real import job: ``pending_biometrics``
    people; their ids by given name."""
    data, mapping = tmp_path / "legacy.csv", tmp_path / "mapping.json"
    with data.open("w", newline="") as fh:
        csv.writer(fh).writerows([LEGACY_HEADER, *rows])
    mapping.write_text(json.dumps(LEGACY_MAPPING))
    with transaction(registry.sessions) as session:
        job = importer.submit_job(session, path=data, mapping=importer.load_mapping(mapping),
                                  actor="test")
    assert importer.claim_job(registry.sessions, lease_seconds=60) == job.id
    summary = importer.run_job(registry.sessions, job.id, lease_seconds=60, batch_rows=10)
    assert summary["status"] == "done" and summary["imported"] == len(rows), summary
    with registry.sessions() as s:
        people = s.scalars(select(Person).where(Person.given_name.in_([r[2] for r in rows])))
        return {p.given_name: p.id for p in people}


def legacy_row(case_no: str, given: str, family: str = "Khalil", born: str = "14/07/1979"
               ) -> list[str]:
    """One row of a legacy register (`LEGACY_HEADER`): a man heading his own household."""
    return [case_no, f"F{case_no}", given, family, "Ibrahim", born, "Male", "Amman", "Marka",
            "HH"]

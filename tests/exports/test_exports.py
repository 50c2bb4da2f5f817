"""Aggregates with small-cell suppression; record exports only under an approved agreement, to
consenting people, never to country-of-origin authorities; every export audited."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.exports.aggregates import aggregate
from sanad.registry.db import transaction
from sanad.registry.models import AuditEvent, Household, Person, Role
from sanad.registry.runtime import Registry
from sanad.registry.users import create_user


def _people(registry: Registry, spec: list[tuple[str, str, int]]) -> list[uuid.UUID]:
    """Insert (province, sex, count) people directly: the export logic is under test."""
    ids = []
    with transaction(registry.sessions) as session:
        for n, (province, sex, count) in enumerate(spec):
            h = Household(registration_number=f"{n:012d}", province=province, district="D")
            session.add(h)
            session.flush()
            for i in range(count):
                p = Person(household_id=h.id, member_no=i + 1,
                           registration_number=f"9{n:03d}{i:08d}", relationship_to_head="head",
                           given_name="Ali", family_name="Saleh", date_of_birth=date(1990, 1, 1),
                           dob_precision="exact", sex=sex, nationality="SYR",
                           province=province, district="D", status="active")
                session.add(p)
                session.flush()
                ids.append(p.id)
    return ids


def test_aggregates_suppress_small_cells(
    registry: Registry, client: TestClient, admin_headers: dict[str, str],
) -> None:
    _people(registry, [("Amman", "F", 12), ("Amman", "M", 3), ("Irbid", "F", 10)])
    with transaction(registry.sessions) as session:
        rows = aggregate(session, by=["province", "sex"], min_cell=10)
    assert rows == [
        {"province": "Amman", "sex": "F", "count": 12, "suppressed": False},
        {"province": "Amman", "sex": "M", "count": None, "suppressed": True},
        {"province": "Irbid", "sex": "F", "count": 10, "suppressed": False},
    ]
    resp = client.get("/exports/aggregates?by=province,sex,age_band", headers=admin_headers)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert {"province": "Amman", "sex": "M", "age_band": "18-59", "count": "",
            "suppressed": "True"} in table
    assert "3" not in [r["count"] for r in table]
    parquet = client.get("/exports/aggregates?by=province&format=parquet",
                         headers=admin_headers)
    assert parquet.status_code == 200
    t = pq.read_table(io.BytesIO(parquet.content)).to_pylist()
    assert t == [{"province": "Amman", "count": 15, "suppressed": False},
                 {"province": "Irbid", "count": 10, "suppressed": False}]
    bad = client.get("/exports/aggregates?by=given_name", headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "by"
    log = client.get("/exports/log", headers=admin_headers).json()
    assert [e["kind"] for e in log] == ["aggregate", "aggregate"]


def _token(client: TestClient, registry: Registry, username: str, roles: list[str]) -> dict[str,
                                                                                             str]:
    with transaction(registry.sessions) as session:
        create_user(session, username=username, password="correct horse 42", roles=roles,
                    actor="test")
    resp = client.post("/auth/token", json={"username": username,
                                            "password": "correct horse 42"})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


AGREEMENT = {
    "recipient": "Livelihoods NGO", "recipient_type": "ngo", "recipient_country": "JOR",
    "purpose": "cash-assistance", "fields": ["registration_number", "given_name", "province"],
    "legal_basis": "Consent, art. 6(1)(a)", "impact_assessment": "DPIA-2026-07, low risk",
}


def test_record_export_needs_two_admins_and_consent(
    registry: Registry, client: TestClient, admin_headers: dict[str, str],
) -> None:
    ids = _people(registry, [("Amman", "F", 3)])
    second = _token(client, registry, "admin2", [Role.ADMIN.value])
    officer = _token(client, registry, "officer", [Role.REGISTRATION_OFFICER.value])
    created = client.post("/sharing/agreements", json=AGREEMENT, headers=admin_headers)
    assert created.status_code == 201 and created.json()["status"] == "proposed"
    aid = created.json()["id"]
    body = {"agreement_id": aid, "format": "jsonl"}

    refused = client.post("/exports/records", json=body, headers=admin_headers)
    assert refused.status_code == 403 and refused.json()["code"] == "sharing_refused"
    assert client.post(f"/sharing/agreements/{aid}/approve",
                       headers=admin_headers).json()["status"] == "proposed"
    twice = client.post(f"/sharing/agreements/{aid}/approve", headers=admin_headers)
    assert twice.status_code == 409  # the same admin cannot be both approvals
    assert client.post(f"/sharing/agreements/{aid}/approve",
                       headers=officer).status_code == 403
    assert client.post(f"/sharing/agreements/{aid}/approve",
                       headers=second).json()["status"] == "approved"

    # Consent per purpose: granted, granted-then-withdrawn, other purpose only.
    for pid, purpose, granted in [(ids[0], "cash-assistance", True),
                                  (ids[1], "cash-assistance", True),
                                  (ids[1], "cash-assistance", False),
                                  (ids[2], "resettlement", True)]:
        r = client.post("/sharing/consents", json={"person_id": str(pid), "purpose": purpose,
                                                   "granted": granted}, headers=officer)
        assert r.status_code == 201
    resp = client.post("/exports/records", json=body, headers=admin_headers)
    assert resp.status_code == 200 and resp.headers["X-Sanad-Rows"] == "1"
    [row] = [json.loads(line) for line in resp.text.splitlines()]
    assert set(row) == {"registration_number", "given_name", "province"}
    with transaction(registry.sessions) as session:
        person = session.get(Person, ids[0])
        assert person is not None and row["registration_number"] == person.registration_number
        actions = [a for (a,) in session.execute(select(AuditEvent.action)
                                                 .where(AuditEvent.action.like("export.%"))
                                                 .order_by(AuditEvent.seq))]
    assert actions == ["export.refused", "export.records"]
    log = client.get("/exports/log", headers=admin_headers).json()
    assert log[0]["kind"] == "records" and log[0]["rows"] == 1


@pytest.mark.parametrize("override", [False, True])
def test_country_of_origin_authorities_refused_by_default(
    registry: Registry, client: TestClient, admin_headers: dict[str, str], override: bool,
) -> None:
    registry.settings.export_countries_of_origin = ["SYR"]
    registry.settings.export_allow_origin_authorities = override
    origin = {**AGREEMENT, "recipient": "Ministry of Interior", "recipient_type": "authority",
              "recipient_country": "SYR"}
    resp = client.post("/sharing/agreements", json=origin, headers=admin_headers)
    if not override:
        assert resp.status_code == 403 and "country of origin" in resp.json()["detail"]
        with transaction(registry.sessions) as session:
            assert session.scalar(select(AuditEvent.action)
                                  .where(AuditEvent.action == "export.refused")) is not None
    else:
        assert resp.status_code == 201
    # An NGO in the same country is not an authority: allowed either way.
    ngo = {**origin, "recipient": "Local NGO", "recipient_type": "ngo"}
    assert client.post("/sharing/agreements", json=ngo, headers=admin_headers).status_code == 201


def test_expired_agreement_and_consent_errors(
    registry: Registry, client: TestClient, admin_headers: dict[str, str],
) -> None:
    second = _token(client, registry, "admin2", [Role.ADMIN.value])
    expired = {**AGREEMENT, "valid_until": "2020-01-01T00:00:00Z"}
    aid = client.post("/sharing/agreements", json=expired, headers=admin_headers).json()["id"]
    client.post(f"/sharing/agreements/{aid}/approve", headers=admin_headers)
    client.post(f"/sharing/agreements/{aid}/approve", headers=second)
    resp = client.post("/exports/records", json={"agreement_id": aid}, headers=admin_headers)
    assert resp.status_code == 403 and "expired" in resp.json()["detail"]
    missing = client.post("/sharing/consents", json={"person_id": str(uuid.uuid4()),
                                                     "purpose": "x", "granted": True},
                          headers=admin_headers)
    assert missing.status_code == 404


def test_refusing_consent_never_blocks_a_card(
    client: TestClient, admin_headers: dict[str, str],
) -> None:
    import numpy as np

    from tests.factories import household

    enrolled = client.post("/households", json=household([7100], np.random.default_rng(3)),
                           headers=admin_headers)
    assert enrolled.status_code == 201, enrolled.text
    person_id = enrolled.json()["members"][0]["person_id"]
    refused = client.post("/sharing/consents", json={"person_id": person_id,
                                                     "purpose": "cash-assistance",
                                                     "granted": False}, headers=admin_headers)
    assert refused.status_code == 201 and refused.json()["granted"] is False
    card = client.post(f"/persons/{person_id}/cards", headers=admin_headers)
    assert card.status_code == 201, card.text

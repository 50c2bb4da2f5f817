"""Fingerprints through the API: round trip, fused duplicate, field-named 422s, nothing written."""

from __future__ import annotations

import base64
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.registry.models import AdjudicationCase, BiometricRecord, Person
from sanad.registry.runtime import Registry
from tests import factories
from tests.factories import count_rows


def test_fingers_round_trip_and_fused_duplicate(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(21)
    payload = factories.household([60, 61], rng)
    payload["members"][0]["fingers"] = factories.fingers(60, rng)
    payload["members"][1]["fingers"] = factories.fingers(61, rng, (2,))
    payload["members"][1]["missing_biometrics"] = [
        {"modality": "finger:7", "reason": "unreadable", "note": "scarred"}
    ]
    resp = client.post("/households", json=payload, headers=admin_headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert [m["outcome"] for m in body["members"]] == ["no_match", "no_match"]
    with registry.sessions() as s:
        mods = sorted(s.scalars(select(BiometricRecord.modality).where(
            BiometricRecord.person_id == uuid.UUID(body["members"][1]["person_id"]))))
    assert mods == ["face", "finger:2"]

    again = factories.household([60], rng)
    again["members"][0]["fingers"] = [
        {**f, "position": name}
        for f, name in zip(factories.fingers(60, rng), ["right_index", "left_index"], strict=True)
    ]
    resp = client.post("/households", json=again, headers=admin_headers)
    assert resp.status_code == 409, resp.text
    cand = resp.json()["members"][0]["candidates"][0]
    assert cand["person_id"] == body["members"][0]["person_id"]
    assert cand["rule"] == "fused" and cand["fingers_compared"] == 2
    assert cand["face_score"] == cand["score"]
    assert cand["fused_llr"] >= registry.settings.dedup_fused_match_threshold
    assert cand["finger_llr"] > 0 and cand["at_match_threshold"] is True


def test_bad_finger_record_is_a_422_naming_the_field_and_writes_nothing(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(22)
    payload = factories.household([62, 63], rng)
    payload["members"][1]["fingers"] = factories.fingers(63, rng)
    good = base64.b64decode(payload["members"][1]["fingers"][1]["record"])
    payload["members"][1]["fingers"][1]["record"] = base64.b64encode(good[:-5]).decode()
    persons, records = count_rows(registry, Person), count_rows(registry, BiometricRecord)
    resp = client.post("/households", json=payload, headers=admin_headers)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    fields = [e["field"] for e in problem["errors"]]
    assert fields == ["members.1.fingers.1.record"]
    assert "19794-2" in problem["errors"][0]["message"]
    assert count_rows(registry, Person) == persons
    assert count_rows(registry, BiometricRecord) == records


def test_finger_listed_as_missing_and_captured_is_a_422(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    rng = np.random.default_rng(23)
    payload = factories.household([64], rng)
    payload["members"][0]["fingers"] = factories.fingers(64, rng)
    payload["members"][0]["missing_biometrics"] = [{"modality": "finger:2", "reason": "other"}]
    resp = client.post("/households", json=payload, headers=admin_headers)
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["members.0.missing_biometrics"]


def test_case_shows_face_finger_and_fused_scores(
    client: TestClient, admin_headers: dict[str, str], registry: Registry,
    initialised: tuple[object, str],
) -> None:
    rng = np.random.default_rng(24)
    first = factories.household([65], rng)
    first["members"][0]["fingers"] = factories.fingers(65, rng)
    assert client.post("/households", json=first, headers=admin_headers).status_code == 201
    # A look-alike (face above the duplicate threshold) whose fingers are someone else's.
    sibling = factories.household([65], rng)
    sibling["members"][0]["face"] = factories.face_near(65, 0.80, rng)
    sibling["members"][0]["fingers"] = factories.fingers(66, rng)
    resp = client.post("/households", json=sibling, headers=admin_headers)
    assert resp.status_code == 201, resp.text
    member = resp.json()["members"][0]
    assert member["outcome"] == "adjudicate"
    cand = member["candidates"][0]
    with registry.sessions() as s:
        case_id = s.scalars(select(AdjudicationCase.id).where(
            AdjudicationCase.person_id == uuid.UUID(member["person_id"]))).one()
    client.get("/login")
    login = client.post("/login", data={"username": "admin", "password": initialised[1],
                                        "csrf": client.cookies["sanad_csrf"]},
                        follow_redirects=False)
    assert login.status_code == 303
    page = client.get(f"/cases/{case_id}")
    assert page.status_code == 200
    assert "Fused evidence" in page.text and "Fingerprints" in page.text
    assert f"{cand['fused_llr']:+.1f}" in page.text
    assert f"{cand['finger_llr']:+.1f}" in page.text
    # Which first stage proposed the candidate: the face, and the finger pre-filter too — its
    # top 10 holds everyone in a one-person registry, whatever the fingers.
    assert cand["via"] == "both"
    assert 'found by <span class="via">face and fingerprints</span>' in page.text
    # The API case view and the queue carry the same per-modality evidence as the page.
    detail = client.get(f"/adjudication/cases/{case_id}", headers=admin_headers).json()
    api_cand = detail["candidates"][0]
    assert api_cand["rule"] == "fused"
    assert api_cand["fingers_compared"] == cand["fingers_compared"] > 0
    assert api_cand["fused_llr"] == pytest.approx(cand["fused_llr"])
    assert api_cand["finger_llr"] == pytest.approx(cand["finger_llr"])
    assert api_cand["face_score"] == pytest.approx(cand["face_score"])
    assert api_cand["via"] == "both"
    queue = client.get("/adjudication/cases", headers=admin_headers).json()
    row = next(c for c in queue if c["id"] == str(case_id))
    assert row["best_fused_llr"] == pytest.approx(cand["fused_llr"])
    queue_page = client.get("/cases")
    assert queue_page.status_code == 200
    assert f"Fused evidence {cand['fused_llr']:+.1f}" in queue_page.text

"""Enrolment through the API: read back identically, duplicates refused, adjudication cases."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.registry.models import AdjudicationCase, AuditEvent, Person
from sanad.registry.runtime import Registry
from tests import factories
from tests.factories import count_rows


def test_household_enrolled_and_read_back_identically(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    rng = np.random.default_rng(1)
    payload = factories.household([10, 11, 12], rng)
    resp = client.post("/households", json=payload, headers=admin_headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["outcome"] == "no_match"
    assert len(body["registration_number"]) == 12
    assert [m["outcome"] for m in body["members"]] == ["no_match"] * 3
    for sent, outcome in zip(payload["members"], body["members"], strict=True):
        got = client.get(f"/persons/{outcome['person_id']}", headers=admin_headers)
        assert got.status_code == 200
        person = got.json()
        for field in ("given_name", "family_name", "father_name", "given_name_ar",
                      "family_name_ar", "father_name_ar", "sex", "nationality",
                      "relationship_to_head", "phone", "dob_precision"):
            assert person[field] == sent[field], field
        if sent["dob_precision"] == "year":
            assert person["date_of_birth"][:4] == sent["date_of_birth"][:4]
            assert person["date_of_birth"][4:] == "-01-01"
        else:
            assert person["date_of_birth"] == sent["date_of_birth"]
        assert person["province"] == "Amman" and person["status"] == "active"
        assert person["household_id"] == body["household_id"]


def test_reenrolment_with_fresh_capture_is_refused_and_creates_nobody(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(2)
    first = client.post("/households", json=factories.household([20, 21], rng),
                        headers=admin_headers)
    assert first.status_code == 201
    persons_before = count_rows(registry, Person)
    # Same person 21, a new noisy capture, a respelled name, alone in a new household.
    again = factories.household([21], rng)
    again["members"][0]["given_name"] = "Muhammad"
    resp = client.post("/households", json=again, headers=admin_headers)
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["code"] == "duplicate_candidate"
    member = problem["members"][0]
    assert member["outcome"] in {"duplicate", "adjudicate"}
    assert member["candidates"][0]["person_id"] == first.json()["members"][1]["person_id"]
    assert count_rows(registry, Person) == persons_before
    with registry.sessions() as s:
        actions = s.scalars(select(AuditEvent.action)).all()
    assert "enrolment.refused_duplicate" in actions


def test_same_person_twice_in_one_submission_is_caught(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(3)
    payload = factories.household([30, 30], rng)  # two captures of one identity
    resp = client.post("/households", json=payload, headers=admin_headers)
    assert resp.status_code == 409
    second = resp.json()["members"][1]
    assert second["outcome"] == "duplicate"
    assert second["candidates"][0]["member_no"] == 1
    assert count_rows(registry, Person) == 0


def test_borderline_score_opens_an_adjudication_case(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    import base64

    from sanad.abis.templates import decode_template, encode_template
    from sanad.biometrics.synthetic import FACE_DIM

    rng = np.random.default_rng(4)
    first_payload = factories.household([40], rng)
    first = client.post("/households", json=first_payload, headers=admin_headers)
    assert first.status_code == 201
    # A probe whose cosine with identity 40's capture lies midway between the two thresholds.
    t = registry.settings
    cos = (t.dedup_review_threshold + t.dedup_match_threshold) / 2
    enrolled = base64.b64decode(first_payload["members"][0]["face"]["template"])
    anchor = decode_template(enrolled, FACE_DIM).astype(np.float64)
    anchor /= np.linalg.norm(anchor)
    other = factories.POPULATION.identity_template(41).astype(np.float64)
    other -= other.dot(anchor) * anchor
    other /= np.linalg.norm(other)
    probe = cos * anchor + np.sqrt(1 - cos**2) * other
    payload = factories.household([41], rng)

    payload["members"][0]["face"]["template"] = base64.b64encode(
        encode_template(probe.astype(np.float32))
    ).decode()
    resp = client.post("/households", json=payload, headers=admin_headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["outcome"] == "adjudicate"
    pid = body["members"][0]["person_id"]
    assert client.get(f"/persons/{pid}", headers=admin_headers).json()["status"] == (
        "pending_adjudication"
    )
    with registry.sessions() as s:
        case = s.scalar(select(AdjudicationCase))
    assert case is not None and case.status == "open"
    assert case.candidates[0]["person_id"] == first.json()["members"][0]["person_id"]
    # No card before the adjudicator has decided.
    card = client.post(f"/persons/{pid}/cards", headers=admin_headers)
    assert card.status_code == 409 and card.json()["code"] == "card_not_issuable"


def test_new_index_catches_up_from_the_database(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    """A process that dies after commit but before the index update loses nothing."""
    from sanad.registry.gallery import Gallery

    rng = np.random.default_rng(5)
    for ids in ([50, 51], [52], [53, 54, 55]):
        assert client.post("/households", json=factories.household(ids, rng),
                           headers=admin_headers).status_code == 201
    fresh = Gallery.open(kind="exact", sealer=registry.sealer, path=None)
    with registry.sessions() as s:
        assert fresh.catch_up(s) == 6
    assert len(fresh.index) == 6
    assert fresh.index.watermark == registry.gallery.index.watermark
    probe = factories.POPULATION.capture(54, rng)[None, :]
    scores, _ = fresh.index.search(probe, 1)
    assert scores[0, 0] > 0.6

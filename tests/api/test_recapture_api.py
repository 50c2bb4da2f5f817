"""`POST /persons/{id}/biometrics`: a re-capture through the API (docs/recapture.md) — stored
when it verifies, 409 problem and nothing stored when it does not, registration officers only,
bad captures are 422."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from sanad.abis.templates import encode_template
from sanad.registry.models import BiometricRecord
from sanad.registry.runtime import Registry
from tests import factories
from tests.factories import count_rows, import_legacy, legacy_row


def test_a_verified_capture_is_stored_and_reported(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(21)
    pid = factories.enrol_over_api(client, admin_headers, factories.member(
        701, rng, missing_biometrics=[{"modality": "finger:2", "reason": "bandaged"}]))
    officer = factories.role_headers(client, admin_headers, "registration_officer")

    resp = client.post(f"/persons/{pid}/biometrics", headers=officer, json={
        "reason": "previously_missing", "note": "bandage off",
        "face": factories.face(701, rng), "fingers": factories.fingers(701, rng, (2,))})

    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["person_id"] == pid and body["verified_by"] == "face"
    assert body["stored"] == ["face", "finger:2"]
    assert body["exceptions_cleared"] == ["finger:2"] and body["version"] == 2
    listed = client.get(f"/persons/{pid}/biometrics", headers=admin_headers).json()
    assert [f["position"] for f in listed["fingers"]] == [2] and listed["exceptions"] == []
    # The person record's ETag moved on with the version.
    assert client.get(f"/persons/{pid}", headers=admin_headers).headers["ETag"] == f'"{pid}.2"'


def test_a_capture_of_someone_else_is_a_409_problem_and_nothing_is_stored(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(22)
    pid = factories.enrol_over_api(client, admin_headers, factories.member(702, rng))
    before = count_rows(registry, BiometricRecord)

    resp = client.post(f"/persons/{pid}/biometrics", headers=admin_headers,
                       json={"reason": "renewal", "face": factories.face(703, rng)})

    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["status"] == 409 and "does not match" in problem["detail"]
    assert count_rows(registry, BiometricRecord) == before


def test_only_registration_officers_capture(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    rng = np.random.default_rng(23)
    pid = factories.enrol_over_api(client, admin_headers, factories.member(704, rng))
    body = {"reason": "renewal", "face": factories.face(704, rng)}
    for role in ("card_officer", "adjudicator", "auditor"):
        headers = factories.role_headers(client, admin_headers, role)
        assert client.post(f"/persons/{pid}/biometrics", headers=headers,
                           json=body).status_code == 403, role
    assert client.post(f"/persons/{pid}/biometrics", json=body).status_code == 401


def test_bad_captures_are_422_and_an_unknown_person_404(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(24)
    pid = factories.enrol_over_api(client, admin_headers, factories.member(705, rng))
    before = count_rows(registry, BiometricRecord)
    short = base64.b64encode(encode_template(np.ones(64, np.float32) / 8)).decode()
    for body in (
        {"reason": "renewal"},  # nothing captured
        {"reason": "whim", "face": factories.face(705, rng)},
        {"reason": "renewal", "face": {"template": short}},  # wrong dimension
        {"reason": "renewal", "fingers": [{"position": 2, "record": "bm90IGEgcmVjb3Jk"}]},
        {"reason": "renewal", "fingers": factories.fingers(705, rng, (2, 2))},
    ):
        resp = client.post(f"/persons/{pid}/biometrics", headers=admin_headers, json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert count_rows(registry, BiometricRecord) == before
    resp = client.post(f"/persons/{uuid.uuid4()}/biometrics", headers=admin_headers,
                       json={"reason": "renewal", "face": factories.face(705, rng)})
    assert resp.status_code == 404


def test_an_imported_person_s_first_capture_over_the_api(
    client: TestClient, admin_headers: dict[str, str], registry: Registry, tmp_path: Path
) -> None:
    """A legacy record has no biometrics: its first capture is searched against everyone and,
    resembling no one, makes the record active (and card-eligible)."""
    rng = np.random.default_rng(25)
    pid = str(import_legacy(registry, tmp_path, [legacy_row("L1", "Bilal")])["Bilal"])
    officer = factories.role_headers(client, admin_headers, "registration_officer")
    assert client.get(f"/persons/{pid}", headers=admin_headers).json()["status"] == (
        "pending_biometrics")

    resp = client.post(f"/persons/{pid}/biometrics", headers=officer, json={
        "reason": "previously_missing", "face": factories.face(705, rng),
        "fingers": factories.fingers(705, rng)})

    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["first_capture"] is True and body["verified_by"] is None
    assert body["status"] == "active" and body["case_id"] is None and body["version"] == 2
    assert body["stored"] == ["face", "finger:2", "finger:7"]
    assert client.get(f"/persons/{pid}", headers=admin_headers).json()["status"] == "active"
    # A second capture is no longer a first one: it must verify against this one.
    again = client.post(f"/persons/{pid}/biometrics", headers=officer, json={
        "reason": "renewal", "face": factories.face(706, rng)})
    assert again.status_code == 409 and "does not match" in again.json()["detail"]


def test_a_capture_that_does_not_verify_can_be_held_for_two_adjudicators(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(26)
    exact = factories.POPULATION.identity_template(707)
    pid = factories.enrol_over_api(client, admin_headers, factories.member(
        707, rng, face=factories.face_capture(exact)))
    officer = factories.role_headers(client, admin_headers, "registration_officer")
    first = factories.role_headers(client, admin_headers, "adjudicator")
    second = factories.role_headers(client, admin_headers, "adjudicator")
    records = count_rows(registry, BiometricRecord)

    resp = client.post(f"/persons/{pid}/biometrics", headers=officer, json={
        "reason": "appearance_changed", "face": factories.face_near(707, 0.42, rng),
        "request_adjudication": True})

    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["held"] is True and body["stored"] == [] and body["case_id"]
    assert count_rows(registry, BiometricRecord) == records
    case = body["case_id"]
    detail = client.get(f"/adjudication/cases/{case}", headers=first).json()
    assert detail["kind"] == "recapture" and detail["candidates"] == []
    held = detail["held"]
    assert held["why"].startswith("the new capture does not match") and held["photo"] is False
    assert held["offered"] == ["face"] and held["reason"] == "appearance_changed"
    assert abs(held["face_score"] - 0.42) < 1e-3
    assert client.get(f"/adjudication/cases/{case}/held-photo", headers=first).status_code == 404
    decision = {"verdict": "same_person", "reason": "same child, older; documents checked"}
    once = client.post(f"/adjudication/cases/{case}/decision", headers=first, json=decision)
    assert once.status_code == 200 and once.json()["status"] == "awaiting_second"
    again = client.post(f"/adjudication/cases/{case}/decision", headers=first, json=decision)
    assert again.status_code == 409  # the second decision must be someone else's
    done = client.post(f"/adjudication/cases/{case}/decision", headers=second, json=decision)
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    assert count_rows(registry, BiometricRecord) == records + 1  # the held face, stored
    assert client.get(f"/persons/{pid}", headers=admin_headers).headers["ETag"] == f'"{pid}.2"'
    assert client.get(f"/adjudication/cases/{case}", headers=first).json()["held"] is None


def test_an_adjudicator_fetches_the_held_photo(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    faces = Path(__file__).resolve().parents[1] / "data" / "faces"
    enrolled = base64.b64encode((faces / "obama.jpg").read_bytes()).decode()
    pid = factories.enrol_over_api(client, admin_headers, factories.member(
        708, np.random.default_rng(27), face={"photo": enrolled}))
    other = (faces / "biden.jpg").read_bytes()
    adjudicator = factories.role_headers(client, admin_headers, "adjudicator")

    resp = client.post(f"/persons/{pid}/biometrics", headers=admin_headers, json={
        "reason": "renewal", "face": {"photo": base64.b64encode(other).decode()},
        "request_adjudication": True})

    assert resp.status_code == 201 and resp.json()["held"] is True, resp.text
    case = resp.json()["case_id"]
    assert client.get(f"/adjudication/cases/{case}", headers=adjudicator).json()["held"][
        "photo"] is True
    photo = client.get(f"/adjudication/cases/{case}/held-photo", headers=adjudicator)
    assert photo.status_code == 200 and photo.content == other
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["cache-control"] == "private, no-store"
    officer = factories.role_headers(client, admin_headers, "registration_officer")
    assert client.get(f"/adjudication/cases/{case}/held-photo",
                      headers=officer).status_code == 403


def test_card_officers_list_the_cards_a_new_face_made_out_of_date(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(28)
    ten = tuple(range(1, 11))
    pid = factories.enrol_over_api(client, admin_headers, factories.member(
        709, rng, fingers=factories.fingers(709, rng, ten)))
    card_officer = factories.role_headers(client, admin_headers, "card_officer")
    issued = client.post(f"/persons/{pid}/cards", headers=card_officer)
    assert issued.status_code == 201, issued.text
    number = issued.json()["card_number"]
    assert client.get("/cards/reissue-due", headers=card_officer).json() == []

    resp = client.post(f"/persons/{pid}/biometrics", headers=admin_headers, json={
        "reason": "renewal", "face": factories.face(709, rng),
        "fingers": factories.fingers(709, rng, ten)})
    assert resp.status_code == 201 and resp.json()["card_to_reissue"] == number

    (due,) = client.get("/cards/reissue-due", headers=card_officer).json()
    assert due["card_number"] == number and due["person_id"] == pid
    assert client.get("/dashboard", headers=admin_headers).json()["cards_to_reissue"] == 1
    officer = factories.role_headers(client, admin_headers, "registration_officer")
    assert client.get("/cards/reissue-due", headers=officer).status_code == 403
    again = client.post(f"/persons/{pid}/cards/reissue", headers=card_officer)
    assert again.status_code == 201
    assert client.get("/cards/reissue-due", headers=card_officer).json() == []
    assert client.get("/dashboard", headers=admin_headers).json()["cards_to_reissue"] == 0

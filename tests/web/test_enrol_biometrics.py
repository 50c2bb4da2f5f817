"""The enrolment page's fingerprint records and biometric exceptions, posted as a browser would
(multipart form, CSRF), and what the person and case pages then show about them."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.biometrics.finger import FingerPosition, encode_record
from sanad.config import Settings
from sanad.registry.access_models import PersonPhoto
from sanad.registry.models import AdjudicationCase, BiometricException, BiometricRecord, Person
from sanad.registry.runtime import Registry
from tests import factories
from tests.factories import count_rows
from tests.web.conftest import web_login

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"


@pytest.fixture
def officer(client: TestClient, initialised: tuple[Settings, str]) -> TestClient:
    web_login(client, "admin", initialised[1])
    return client


def _record(identity: int, positions: tuple[int, ...], seed: int = 0) -> bytes:
    """A multi-view ISO/IEC 19794-2 record, as a scanner's software would write it."""
    rng = np.random.default_rng([identity, seed])
    return encode_record(factories.FINGERS.capture_record(identity, positions, rng))


def _unknown_position_record() -> bytes:
    """A record whose one view does not say which finger it is (ISO position 0)."""
    record = factories.FINGERS.capture_record(602, (2,), np.random.default_rng(0))
    views = tuple(dataclasses.replace(v, position=FingerPosition.UNKNOWN) for v in record.views)
    return encode_record(dataclasses.replace(record, views=views))


def _form(client: TestClient, **fields: str) -> dict[str, str]:
    base = {
        "csrf": client.cookies["sanad_csrf"], "members": "1", "province": "Amman",
        "district": "Marka", "site": "central", "m0_given_name": "Huda",
        "m0_family_name": "Saleh", "m0_date_of_birth": "1990-05-01", "m0_dob_precision": "exact",
        "m0_sex": "F", "m0_nationality": "SYR", "m0_relationship_to_head": "head",
    }
    return {**base, **fields}


def _post(client: TestClient, data: dict[str, str],
          files: list[tuple[str, tuple[str, bytes, str]]] | None = None) -> Any:
    return client.post("/enrol", data=data, files=files or [])


def _photo(name: str = "obama.jpg") -> tuple[str, tuple[str, bytes, str]]:
    return ("m0_photo", (name, (FACES / name).read_bytes(), "image/jpeg"))


def _fingers(data: bytes, name: str = "scan.fmr") -> tuple[str, tuple[str, bytes, str]]:
    return ("m0_fingers", (name, data, "application/octet-stream"))


def _person(registry: Registry) -> Person:
    with registry.sessions() as s:
        return s.scalars(select(Person)).one()


def _modalities(registry: Registry, person_id: uuid.UUID) -> dict[str, str]:
    with registry.sessions() as s:
        recs = {r.modality: "record" for r in s.scalars(
            select(BiometricRecord).where(BiometricRecord.person_id == person_id))}
        excs = {e.modality: e.reason for e in s.scalars(
            select(BiometricException).where(BiometricException.person_id == person_id))}
    return {**recs, **excs}


def test_fingers_from_a_scanner_file_and_a_missing_finger_are_enrolled_and_shown(
    officer: TestClient, registry: Registry
) -> None:
    page = _post(officer, _form(officer, m0_finger7_missing="amputated"),
                 [_photo(), _fingers(_record(601, (1, 2, 6)))])
    assert page.status_code == 200, page.text
    assert 'data-outcome="no_match"' in page.text
    person = _person(registry)
    assert _modalities(registry, person.id) == {
        "face": "record", "photo": "record", "finger:1": "record", "finger:2": "record",
        "finger:6": "record", "finger:7": "amputated"}
    assert count_rows(registry, PersonPhoto) == 0  # the portrait is kept once, sealed

    shown = officer.get(f"/people/{person.id}")
    assert shown.status_code == 200
    section = shown.text[shown.text.index('id="biometrics"'):]
    assert "Fingerprints: 3/10" in section
    assert re.search(r'data-finger="7" data-state="exception" title="Left index">amputated',
                     section)
    assert re.search(r'data-finger="6" data-state="captured"', section)
    assert re.search(r'data-finger="8" data-state="none"', section)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not a fingerprint", "not an ISO/IEC 19794-2 finger minutiae record"),
        (_record(602, (2, 7))[:40], "not an ISO/IEC 19794-2 finger minutiae record"),
        (_unknown_position_record(), "does not say which finger"),
        (b"", "the file is empty"),
        (b"FMR\0" + b"\0" * 300_000, "larger than 200000 bytes"),
    ],
    ids=["garbage", "truncated", "unknown-position", "empty", "oversized"],
)
def test_a_bad_fingerprint_file_is_refused_next_to_its_field_and_nothing_is_enrolled(
    officer: TestClient, registry: Registry, data: bytes, message: str
) -> None:
    page = _post(officer, _form(officer), [_photo(), _fingers(data, "bad.fmr")])
    assert page.status_code == 422
    error = re.search(r'<p class="error" id="m0_fingers-err">([^<]*)</p>', page.text)
    assert error and message in error.group(1) and "bad.fmr" in error.group(1)
    assert count_rows(registry, Person) == 0
    assert count_rows(registry, BiometricRecord) == 0


def test_a_finger_both_captured_and_marked_missing_is_refused(
    officer: TestClient, registry: Registry
) -> None:
    page = _post(officer, _form(officer, m0_finger2_missing="unreadable"),
                 [_photo(), _fingers(_record(603, (1, 2)))])
    assert page.status_code == 422
    assert re.search(r'id="m0_biometrics-err"[^>]*>[^<]*finger:2 is both captured', page.text)
    assert count_rows(registry, Person) == 0


def test_fingers_are_kept_across_a_failed_attempt_and_enrolled_on_the_next(
    officer: TestClient, registry: Registry
) -> None:
    first = _post(officer, _form(officer, m0_family_name=""),
                  [_photo(), _fingers(_record(604, (2, 7)))])
    assert first.status_code == 422
    assert 'id="m0_fingers-kept"' in first.text and "Right index" in first.text
    kept = re.findall(r'name="m0_fingers_b64" value="([^"]+)"', first.text)
    photo = re.search(r'name="m0_photo_b64" value="([^"]+)"', first.text)
    assert len(kept) == 1 and photo
    # The biometrics section opens by itself when it holds something.
    assert re.search(r'<details class="biometrics" id="m0-biometrics" open>', first.text)

    again = _post(officer, {**_form(officer), "m0_fingers_b64": kept[0],
                            "m0_photo_b64": photo.group(1)})
    assert again.status_code == 200, again.text
    assert {"finger:2", "finger:7"} <= set(_modalities(registry, _person(registry).id))


def test_removing_kept_fingers_enrols_without_them(
    officer: TestClient, registry: Registry
) -> None:
    kept = _record(605, (2,))
    page = _post(officer, {**_form(officer), "m0_fingers_b64": base64.b64encode(kept).decode(),
                           "m0_fingers_clear": "1"}, [_photo()])
    assert page.status_code == 200, page.text
    assert not any(m.startswith("finger:") for m in _modalities(registry, _person(registry).id))


def test_no_face_but_fingers_goes_to_an_adjudicator_who_sees_why(
    officer: TestClient, registry: Registry
) -> None:
    page = _post(officer, _form(officer, m0_face_missing="bandaged"),
                 [_fingers(_record(606, (1, 2, 6, 7)))])
    assert page.status_code == 200, page.text
    assert 'data-outcome="adjudicate"' in page.text
    person = _person(registry)
    with registry.sessions() as s:
        case = s.scalars(select(AdjudicationCase)
                         .where(AdjudicationCase.person_id == person.id)).one()
    assert case.kind == "face_exception"
    shown = officer.get(f"/cases/{case.id}")
    assert shown.status_code == 200
    assert re.search(r'id="case-kind">face exception<', shown.text)
    captures = re.search(r'<dd class="captures">(.*?)</dd>', shown.text, re.S)
    assert captures and "not captured (bandaged)" in captures.group(1)
    assert "Fingerprints: 4/10" in captures.group(1)


def test_a_refusal_needs_no_photo_and_is_recorded_with_its_reason(
    officer: TestClient, registry: Registry
) -> None:
    page = _post(officer, _form(officer, m0_refused_reason="refuses on religious grounds"))
    assert page.status_code == 200, page.text
    assert 'data-outcome="adjudicate"' in page.text
    person = _person(registry)
    assert _modalities(registry, person.id) == {"all": "refused"}
    shown = officer.get(f"/people/{person.id}")
    assert re.search(r'id="bio-refused" dir="auto">refuses on religious grounds<', shown.text)


@pytest.mark.parametrize(
    ("fields", "files", "where", "message"),
    [
        # The face excused, but nothing to deduplicate the person with.
        ({"m0_face_missing": "other"}, [], "m0_biometrics-err", "face is required"),
        # A refusal of all biometrics, yet fingers were attached.
        ({"m0_refused_reason": "does not consent"}, ["fingers"], "m0_biometrics-err",
         "either fingers or biometrics_refused_reason"),
        # No photo and no reason for its absence.
        ({}, [], "m0_photo-feedback", "missing"),
    ],
    ids=["face-excused-no-fingers", "refused-with-fingers", "no-photo-no-reason"],
)
def test_inconsistent_biometrics_are_explained_and_nothing_is_enrolled(
    officer: TestClient, registry: Registry, fields: dict[str, str], files: list[str],
    where: str, message: str,
) -> None:
    attached = [_fingers(_record(607, (2, 7)))] if "fingers" in files else []
    page = _post(officer, _form(officer, **fields), attached)
    assert page.status_code == 422
    shown = page.text.index(f'id="{where}')
    assert message in page.text[shown:shown + 400]
    assert count_rows(registry, Person) == 0


def test_send_to_adjudication_after_a_duplicate_carries_the_fingers(
    officer: TestClient, registry: Registry
) -> None:
    first = _post(officer, _form(officer), [_photo("obama.jpg"), _fingers(_record(610, (2, 7)))])
    assert 'data-outcome="no_match"' in first.text
    again = _post(officer, _form(officer, m0_given_name="Hoda"),
                  [_photo("obama2.jpg"), _fingers(_record(610, (2, 7), seed=1))])
    assert 'data-outcome="duplicate"' in again.text
    before_button = again.text[:again.text.index('id="send-to-adjudication"')]
    retry_form = before_button[before_button.rindex("<form"):]
    hidden: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                                  retry_form):
        hidden.setdefault(name, []).append(html.unescape(value))
    assert len(hidden["m0_fingers_b64"]) == 1 and hidden["request_adjudication"] == ["1"]
    sent = officer.post("/enrol", data=hidden)
    assert 'data-outcome="adjudicate"' in sent.text, sent.text
    with registry.sessions() as s:
        hoda = s.scalars(select(Person).where(Person.given_name == "Hoda")).one()
    assert {"finger:2", "finger:7"} <= set(_modalities(registry, hoda.id))


def test_the_fingers_check_says_what_each_file_holds(officer: TestClient) -> None:
    good = _record(620, (2, 7))
    resp = officer.post("/enrol/fingers-check", data={"csrf": officer.cookies["sanad_csrf"]},
                        files=[("fingers", ("two.fmr", good, "application/octet-stream")),
                               ("fingers", ("bad.fmr", b"junk", "application/octet-stream"))])
    assert resp.status_code == 200
    first, second = resp.json()["files"]
    assert first["ok"] and [v["position"] for v in first["views"]] == [2, 7]
    assert [v["finger"] for v in first["views"]] == ["Right index", "Left index"]
    assert all(v["minutiae"] > 0 for v in first["views"])
    assert second == {"name": "bad.fmr", "ok": False,
                      "error": second["error"]} and "bad.fmr: not an ISO" in second["error"]
    forged = officer.post("/enrol/fingers-check", data={"csrf": "forged"},
                          files=[("fingers", ("two.fmr", good, "application/octet-stream"))])
    assert forged.status_code == 400

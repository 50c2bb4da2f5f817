"""The person page's re-capture form posted as a browser would (multipart, CSRF): bad uploads
and bad fields are refused on the page with nothing stored; a good fingerprint is stored."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sanad.biometrics.finger import encode_record
from sanad.config import Settings
from sanad.registry.models import BiometricRecord
from sanad.registry.runtime import Registry
from sanad.web.capture import MAX_PHOTO_BYTES
from tests import factories
from tests.factories import count_rows
from tests.web.conftest import web_login


@pytest.fixture
def officer(client: TestClient, initialised: tuple[Settings, str]) -> TestClient:
    web_login(client, "admin", initialised[1])
    return client


def _post(client: TestClient, person_id: str, files: list[tuple[str, tuple[str, bytes, str]]],
          **fields: str) -> tuple[int, str]:
    data = {"csrf": client.cookies["sanad_csrf"], "reason": "renewal", **fields}
    resp = client.post(f"/people/{person_id}/recapture", data=data, files=files,
                       follow_redirects=False)
    return resp.status_code, resp.text


def test_bad_uploads_and_fields_change_nothing(officer: TestClient, registry: Registry) -> None:
    rng = np.random.default_rng(31)
    enrolled = factories.enrol(registry, factories.alone(factories.member(901, rng)))
    pid = str(enrolled.members[0].person_id)
    before = count_rows(registry, BiometricRecord)
    finger = encode_record(factories.FINGERS.capture_record(901, (2,), rng))
    cases = [
        ([("photo", ("big.jpg", b"\xff" * (MAX_PHOTO_BYTES + 10), "image/jpeg"))], {},
         "too_large"),
        ([("photo", ("notes.txt", b"not an image", "text/plain"))], {}, "not_an_image"),
        ([("fingers", ("scan.fmr", b"FMR\x00garbage", "application/octet-stream"))], {},
         "not an ISO/IEC 19794-2 finger minutiae record"),
        ([("fingers", ("scan.fmr", finger, "application/octet-stream"))], {"reason": "whim"},
         "reason"),
        ([], {}, "give a face, fingers or both"),
    ]
    for files, fields, expected in cases:
        status, page = _post(officer, pid, files, **fields)
        assert status == 422, (expected, status)
        assert expected in page, expected
    assert count_rows(registry, BiometricRecord) == before

    # A fingerprint alone cannot be verified (no finger enrolled, no face given): refused.
    status, page = _post(officer, pid, [("fingers", ("scan.fmr", finger,
                                                     "application/octet-stream"))])
    assert status == 409 and "nothing enrolled to verify" in page
    assert count_rows(registry, BiometricRecord) == before


def test_a_field_station_shows_no_capture_form_and_refuses_a_post(
    officer: TestClient, registry: Registry
) -> None:
    rng = np.random.default_rng(33)
    pid = str(factories.enrol(registry, factories.alone(factories.member(
        903, rng))).members[0].person_id)
    assert 'id="recapture-form"' in officer.get(f"/people/{pid}").text
    registry.settings.station_mode = True  # as a field kit runs (SANAD_STATION_MODE=1)
    try:
        assert 'id="recapture-form"' not in officer.get(f"/people/{pid}").text
        status, page = _post(officer, pid, [("fingers", ("scan.fmr", encode_record(
            factories.FINGERS.capture_record(903, (2,), rng)), "application/octet-stream"))])
        assert status == 409 and "field stations" in page
    finally:
        registry.settings.station_mode = False

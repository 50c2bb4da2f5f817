"""`GET /persons/{id}/biometrics`: what was captured for a person and every recorded exception,
metadata only, audited, and not for card officers (`sanad.registry.captures`)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.registry.access_models import PersonPhoto
from sanad.registry.db import transaction
from sanad.registry.gallery import template_aad
from sanad.registry.models import AuditEvent
from sanad.registry.runtime import Registry
from tests import factories
from tests.factories import count_rows

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"
_login, _enrol = factories.role_headers, factories.enrol_over_api


def test_fingers_and_exceptions_are_listed_without_any_template(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    rng = np.random.default_rng(1)
    member = factories.member(
        501, rng, fingers=factories.fingers(501, rng, (1, 2, 6)),
        missing_biometrics=[{"modality": "finger:7", "reason": "amputated",
                             "note": "lost in 2019"},
                            {"modality": "finger:10", "reason": "unreadable"}])
    person_id = _enrol(client, admin_headers, member)

    resp = client.get(f"/persons/{person_id}/biometrics", headers=admin_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["person_id"] == person_id
    assert body["face"] is True and 0 < body["face_quality"] <= 1
    assert [(f["position"], f["name"]) for f in body["fingers"]] == [
        (1, "right_thumb"), (2, "right_index"), (6, "left_thumb")]
    assert [(e["modality"], e["reason"], e["note"]) for e in body["exceptions"]] == [
        ("finger:7", "amputated", "lost in 2019"), ("finger:10", "unreadable", "")]
    assert body["refused_reason"] is None
    # Metadata only: nothing that looks like a template or an image leaves the registry.
    assert set(body) == {"person_id", "face", "face_quality", "face_captured_at", "photo",
                         "fingers", "exceptions", "refused_reason"}
    assert {k for f in body["fingers"] for k in f} == {"position", "name", "quality",
                                                       "captured_at"}

    with registry.sessions() as s:
        reads = s.scalars(select(AuditEvent).where(AuditEvent.subject_id == person_id)
                          .where(AuditEvent.action == "person.read")).all()
    assert any(e.details.get("view") == "biometrics" for e in reads)


def test_a_refusal_and_a_face_exception_are_reported(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    rng = np.random.default_rng(2)
    refused = factories.member(502, rng, biometrics_refused_reason="religious objection")
    del refused["face"]
    body = client.get(f"/persons/{_enrol(client, admin_headers, refused)}/biometrics",
                      headers=admin_headers).json()
    assert body["face"] is False and body["fingers"] == []
    assert body["refused_reason"] == "religious objection"
    assert [(e["modality"], e["reason"]) for e in body["exceptions"]] == [("all", "refused")]

    faceless = factories.member(
        503, rng, fingers=factories.fingers(503, rng, (1, 2, 6, 7)),
        missing_biometrics=[{"modality": "face", "reason": "bandaged"}])
    del faceless["face"]
    body = client.get(f"/persons/{_enrol(client, admin_headers, faceless)}/biometrics",
                      headers=admin_headers).json()
    assert body["face"] is False and body["photo"] is False
    assert [f["position"] for f in body["fingers"]] == [1, 2, 6, 7]
    assert [(e["modality"], e["reason"]) for e in body["exceptions"]] == [("face", "bandaged")]


def test_card_officers_are_refused_and_unknown_people_are_404(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    person_id = _enrol(client, admin_headers, factories.member(504, np.random.default_rng(3)))
    card_officer = _login(client, admin_headers, "card_officer")
    refused = client.get(f"/persons/{person_id}/biometrics", headers=card_officer)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    adjudicator = _login(client, admin_headers, "adjudicator")
    assert client.get(f"/persons/{person_id}/biometrics", headers=adjudicator).status_code == 200
    missing = client.get(f"/persons/{uuid.uuid4()}/biometrics", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_the_enrolment_photo_is_the_one_portrait_served_and_legacy_rows_still_read(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    photo = (FACES / "obama.jpg").read_bytes()
    member = factories.member(505, np.random.default_rng(4))
    member["face"]["photo"] = base64.b64encode(photo).decode()
    person_id = _enrol(client, admin_headers, member)
    served = client.get(f"/persons/{person_id}/photo", headers=admin_headers)
    assert served.status_code == 200 and served.content == photo
    assert served.headers["content-type"] == "image/jpeg"
    assert client.get(f"/persons/{person_id}/biometrics",
                      headers=admin_headers).json()["photo"] is True
    assert count_rows(registry, PersonPhoto) == 0  # one sealed copy, with the templates

    # A person enrolled before the photo joined the sealed captures: the old row is read.
    older = _enrol(client, admin_headers, factories.member(506, np.random.default_rng(5)))
    assert client.get(f"/persons/{older}/photo", headers=admin_headers).status_code == 404
    kept = b"\x89PNG\r\n\x1a\n legacy portrait bytes"
    with transaction(registry.sessions) as s:
        s.add(PersonPhoto(person_id=uuid.UUID(older), content_type="image/png",
                          data=registry.sealer.seal(kept, aad=template_aad(uuid.UUID(older),
                                                                          "portrait"))))
    legacy = client.get(f"/persons/{older}/photo", headers=admin_headers)
    assert legacy.status_code == 200 and legacy.content == kept
    assert legacy.headers["content-type"] == "image/png"
    with registry.sessions() as s:
        reads = s.scalars(select(AuditEvent).where(AuditEvent.subject_id == older)
                          .where(AuditEvent.action == "person.photo_read")).all()
    assert len(reads) == 1  # the 404 read nothing

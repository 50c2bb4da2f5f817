"""Fingerprints and missing-finger exceptions captured on a field kit reach the centre."""

from __future__ import annotations

import base64

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.registry.db import transaction
from sanad.registry.gallery import template_aad
from sanad.registry.models import AdjudicationCase, BiometricException, BiometricRecord, Person
from sanad.registry.runtime import Registry
from sanad.sync.client import sync_station
from tests import factories
from tests.sync.conftest import Kit

URL = "http://testserver"


def test_kit_fingers_and_exceptions_are_carried_to_the_centre(
    kit: Kit, registry: Registry, client: TestClient, admin_headers: dict[str, str],
    admin_token: str,
) -> None:
    rng = np.random.default_rng(31)
    payload = factories.household([920], rng)
    payload["members"][0]["fingers"] = factories.fingers(920, rng, (2,))
    payload["members"][0]["missing_biometrics"] = [
        {"modality": "finger:7", "reason": "amputated", "note": "left index"}
    ]
    resp = kit.client.post("/households", json=payload, headers=kit.headers)
    assert resp.status_code == 201, resp.text
    report = sync_station(kit.registry, client=client, url=URL, token=admin_token)
    assert report.receipted == 1 and report.rejected == 0
    with transaction(registry.sessions) as s:
        (person,) = s.scalars(select(Person)).all()
        recs = {r.modality: r for r in s.scalars(
            select(BiometricRecord).where(BiometricRecord.person_id == person.id))}
        assert set(recs) == {"face", "finger:2"}
        sent = base64.b64decode(payload["members"][0]["fingers"][0]["record"])
        got = registry.sealer.open(recs["finger:2"].template,
                                   aad=template_aad(person.id, "finger:2"), session=s)
        assert got == sent
        exc = s.scalars(select(BiometricException).where(
            BiometricException.person_id == person.id)).one()
        assert (exc.modality, exc.reason, exc.note) == ("finger:7", "amputated", "left index")
        central_id = person.id
    # Central deduplication now compares that finger: a re-enrolment is judged on the fusion.
    again = factories.household([920], rng)
    again["members"][0]["fingers"] = factories.fingers(920, rng, (2, 7))
    resp = client.post("/households", json=again, headers=admin_headers)
    assert resp.status_code == 409, resp.text
    cand = resp.json()["members"][0]["candidates"][0]
    assert cand["person_id"] == str(central_id)
    assert cand["rule"] == "fused" and cand["fingers_compared"] == 1  # finger 7 is missing


def test_members_without_a_face_record_are_carried_to_the_centre(
    kit: Kit, registry: Registry, client: TestClient, admin_token: str,
) -> None:
    """A kit member enrolled on fingers alone (the face excused) and one who refused
    biometrics have no face record: both reach the centre on the same paths, each with its
    mandatory case, instead of stopping the kit's queue."""
    rng = np.random.default_rng(37)
    payload = factories.household([930, 931], rng)
    faceless = payload["members"][0]
    del faceless["face"]
    faceless["fingers"] = factories.fingers(930, rng, (1, 2, 6, 7))
    faceless["missing_biometrics"] = [{"modality": "face", "reason": "bandaged", "note": ""}]
    refused = payload["members"][1]
    del refused["face"]
    refused["biometrics_refused_reason"] = "refuses to be photographed"
    resp = kit.client.post("/households", json=payload, headers=kit.headers)
    assert resp.status_code == 201, resp.text
    report = sync_station(kit.registry, client=client, url=URL, token=admin_token)
    assert report.receipted == 1 and report.rejected == 0
    with transaction(registry.sessions) as s:
        people = {p.member_no: p for p in s.scalars(select(Person)).all()}
        assert set(people) == {1, 2}
        assert people[2].biometrics_refused_reason == "refuses to be photographed"
        modalities = {r.modality for r in s.scalars(
            select(BiometricRecord).where(BiometricRecord.person_id == people[1].id))}
        assert modalities == {"finger:1", "finger:2", "finger:6", "finger:7"}
        exc = s.scalars(select(BiometricException).where(
            BiometricException.person_id == people[1].id)).one()
        assert (exc.modality, exc.reason) == ("face", "bandaged")
        kinds = {c.person_id: c.kind for c in s.scalars(select(AdjudicationCase)).all()}
        assert kinds == {people[1].id: "face_exception", people[2].id: "refusal"}

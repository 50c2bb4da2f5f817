"""A re-capture that does not verify, held for an adjudicator at the officer's request
(`sanad.registry.recapture`, docs/recapture.md), on both databases: nothing is stored until two
adjudicators accept it; one adjudicator can discard it; anyone else it resembles is on the
case; an erasure takes the held capture with the rest."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from sanad.abis.templates import decode_template
from sanad.biometrics.synthetic import FACE_DIM
from sanad.errors import InvalidInput
from sanad.registry.adjudication import SecondAdjudicatorRequired, Verdict, decide_case
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext
from sanad.registry.erasure import erase_person
from sanad.registry.gallery import FACE
from sanad.registry.models import (
    AdjudicationCase,
    AuditEvent,
    BiometricRecord,
    HeldCapture,
    Person,
)
from sanad.registry.recapture import held_capture, recapture_person
from sanad.registry.runtime import Registry
from sanad.registry.schemas import BiometricsUpdate, RecaptureResult
from tests import factories
from tests.factories import count_rows

CTX = EnrolmentContext(officer="officer-4")


def _enrol_exact(registry: Registry, identity: int, rng: np.random.Generator,
                 **overrides: Any) -> uuid.UUID:
    """Enrol synthetic ``identity`` with its exact template (so `face_near` sets the score)."""
    exact = factories.POPULATION.identity_template(identity)
    result = factories.enrol(registry, factories.alone(factories.member(
        identity, rng, face=factories.face_capture(exact), **overrides)))
    pid = result.members[0].person_id
    assert result.outcome == "no_match" and pid is not None
    return pid


def _capture(registry: Registry, person_id: uuid.UUID, **body: Any) -> RecaptureResult:
    return recapture_person(
        registry.sessions, registry.gallery, registry.settings, person_id=person_id,
        data=BiometricsUpdate.model_validate({"reason": "appearance_changed", **body}),
        ctx=CTX)


def _decide(registry: Registry, case_id: uuid.UUID, verdict: Verdict, actor: str
            ) -> AdjudicationCase:
    with transaction(registry.sessions) as s:
        return decide_case(s, case_id=case_id, verdict=verdict, reason="compared photos",
                           actor=actor, sealer=registry.sealer,
                           match_threshold=registry.settings.dedup_match_threshold)


def _actions(registry: Registry, person_id: uuid.UUID) -> list[str]:
    with registry.sessions() as s:
        return list(s.scalars(select(AuditEvent.action).where(
            AuditEvent.subject_id == str(person_id)).order_by(AuditEvent.seq)).all())


def test_a_changed_face_is_held_and_stored_only_when_two_adjudicators_accept_it(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(41)
    pid = _enrol_exact(registry, 901, rng)
    records = count_rows(registry, BiometricRecord)
    changed = factories.face_near(901, 0.42, rng)  # a child two years on: below review

    result = _capture(registry, pid, face=changed, request_adjudication=True)

    assert result.held and result.stored == [] and result.verified_by is None
    assert result.face_score == pytest.approx(0.42, abs=1e-3) and result.version == 1
    assert count_rows(registry, BiometricRecord) == records  # nothing stored yet
    assert result.case_id is not None
    with registry.sessions() as s:
        case = s.get(AdjudicationCase, result.case_id)
        assert case is not None and case.kind == "recapture" and case.candidates == []
        (held,) = s.scalars(select(HeldCapture)).all()
        assert held.person_id == pid and held.officer == "officer-4"
        assert held.verification["why"].startswith("the new capture does not match")
        payload = held.payload
    sent = decode_template(base64.b64decode(changed["template"]), FACE_DIM)
    with transaction(registry.sessions) as s:
        found = held_capture(s, registry.sealer, result.case_id, actor="adj-1")
        assert found is not None and found[1].face is not None
        template = found[1].face.template
        assert template is not None
        assert np.allclose(decode_template(base64.b64decode(template), FACE_DIM),
                           sent / np.linalg.norm(sent), atol=1e-6)
    assert template.encode() not in payload  # sealed: not readable in the row

    assert _decide(registry, result.case_id, Verdict.SAME_PERSON, "adj-1").status == (
        "awaiting_second")
    assert count_rows(registry, BiometricRecord) == records
    with pytest.raises(SecondAdjudicatorRequired):
        _decide(registry, result.case_id, Verdict.SAME_PERSON, "adj-1")
    assert _decide(registry, result.case_id, Verdict.SAME_PERSON, "adj-2").status == "resolved"

    with registry.sessions() as s:
        faces = s.scalars(select(BiometricRecord).where(
            BiometricRecord.person_id == pid, BiometricRecord.modality == FACE)
            .order_by(BiometricRecord.id)).all()
        assert len(faces) == 2
        newest = decode_template(registry.sealer.open(
            faces[-1].template, aad=f"{pid}:face".encode()), FACE_DIM)
        assert np.allclose(newest, sent / np.linalg.norm(sent), atol=1e-6)
        assert s.scalars(select(HeldCapture)).all() == []
        person = s.get(Person, pid)
        assert person is not None and person.version == 2
        (accepted,) = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "biometrics.recaptured")).all()
    assert accepted.details["rule"] == "adjudicated"
    assert accepted.details["accepted_by"] == ["adj-1", "adj-2"]
    assert accepted.details["officer"] == "officer-4"
    actions = _actions(registry, pid)
    assert actions.index("biometrics.recapture_held") < actions.index("biometrics.held_read")
    assert actions.index("biometrics.held_read") < actions.index("biometrics.recaptured")
    # From now on the changed face is enrolled: the same capture verifies by itself.
    assert _capture(registry, pid, face=changed).verified_by == "face"


def test_one_adjudicator_can_discard_a_held_capture(registry: Registry) -> None:
    rng = np.random.default_rng(42)
    pid = _enrol_exact(registry, 902, rng)
    records = count_rows(registry, BiometricRecord)
    result = _capture(registry, pid, face=factories.face_near(902, 0.2, rng),
                      request_adjudication=True)
    assert result.case_id is not None

    assert _decide(registry, result.case_id, Verdict.DIFFERENT_PERSON, "adj-1").status == (
        "resolved")

    assert count_rows(registry, BiometricRecord) == records
    assert count_rows(registry, HeldCapture) == 0
    assert "biometrics.recapture_rejected" in _actions(registry, pid)
    with registry.sessions() as s:
        person = s.get(Person, pid)
        assert person is not None and person.version == 1


def test_a_held_capture_resembling_someone_else_names_them_on_the_case(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(43)
    pid = _enrol_exact(registry, 903, rng)
    other = _enrol_exact(registry, 904, rng, given_name="Walid")

    result = _capture(registry, pid, face=factories.face(904, rng), request_adjudication=True)

    assert result.held and result.case_id is not None
    with registry.sessions() as s:
        case = s.get(AdjudicationCase, result.case_id)
        assert case is not None
        assert [c["person_id"] for c in case.candidates] == [str(other)]
        assert case.candidates[0]["at_match_threshold"]
        (event,) = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "biometrics.recapture_held")).all()
    assert event.details["candidates"] == [str(other)]


def test_without_the_request_a_capture_that_does_not_verify_is_refused_as_before(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(44)
    pid = _enrol_exact(registry, 905, rng)
    cases = count_rows(registry, AdjudicationCase)
    with pytest.raises(Exception, match="does not match"):
        _capture(registry, pid, face=factories.face_near(905, 0.42, rng))
    assert count_rows(registry, AdjudicationCase) == cases
    assert count_rows(registry, HeldCapture) == 0


def test_an_erasure_takes_the_held_capture_and_its_case_can_only_reject(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(45)
    pid = _enrol_exact(registry, 906, rng)
    result = _capture(registry, pid, face=factories.face_near(906, 0.42, rng),
                      request_adjudication=True)
    assert result.case_id is not None
    with transaction(registry.sessions) as s:
        erase_person(s, person_id=pid, reason="court order 12/2026", actor="dpo")
    assert count_rows(registry, HeldCapture) == 0
    with pytest.raises(InvalidInput, match="erased"):
        _decide(registry, result.case_id, Verdict.SAME_PERSON, "adj-1")
    assert _decide(registry, result.case_id, Verdict.DIFFERENT_PERSON, "adj-1").status == (
        "resolved")

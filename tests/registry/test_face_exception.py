"""Enrolment with fingerprints but no usable face photo (``missing_biometrics`` lists the face).

Such a person is deduplicated by fingers alone (the pre-filter proposes candidates, the second
stage compares them, the fused rule judges them without face evidence), always goes to an
adjudicator (``face_exception``) unless the fingers make them a duplicate, and can hold a card
without a face template.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.registry import cards as card_svc
from sanad.registry.adjudication import Verdict, decide_case
from sanad.registry.db import transaction
from sanad.registry.models import (
    AdjudicationCase,
    AuditEvent,
    BiometricException,
    BiometricRecord,
    Person,
)
from sanad.registry.runtime import Registry
from sanad.registry.schemas import CandidatePublic, EnrolmentResult
from sanad.verify import verify
from sanad.verify.face import FaceProbe
from tests import factories
from tests.cards.helpers import issue
from tests.factories import alone as _alone
from tests.factories import count_rows
from tests.factories import enrol as _enrol

FOUR = (1, 2, 6, 7)  # thumbs and index fingers: the pre-filter's fingers
NO_FACE = {"modality": "face", "reason": "bandaged", "note": "burns, dressing on the face"}


def _faceless(identity: int, rng: np.random.Generator, **overrides: Any) -> dict[str, Any]:
    """Synthetic ``identity``'s fingers (fresh captures of FOUR), no face, the face excused."""
    data = factories.member(identity, rng, fingers=factories.fingers(identity, rng, FOUR),
                            missing_biometrics=[NO_FACE], **overrides)
    del data["face"]
    return data


def _case(registry: Registry, person_id: uuid.UUID | None) -> AdjudicationCase:
    with registry.sessions() as s:
        return s.scalars(select(AdjudicationCase)
                         .where(AdjudicationCase.person_id == person_id)).one()


def _expected(registry: Registry, fused: float | None) -> str:
    s = registry.settings
    assert fused is not None and fused >= s.dedup_fused_review_threshold
    return "duplicate" if fused >= s.dedup_fused_match_threshold else "adjudicate"


def _biometric(candidates: list[CandidatePublic]) -> list[CandidatePublic]:
    return [c for c in candidates if c.source != "biographic"]


# --- the schema: what the API refuses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "update", "field", "message"),
    [
        # No face, no fingers, no refusal reason (with or without the face excused).
        (("face", "fingers", "missing_biometrics"), {}, "members.0", "face is required"),
        (("face", "fingers"), {}, "members.0", "face is required"),
        # Fingers but the missing face is not explained.
        (("face", "missing_biometrics"), {}, "members.0", "list the face in missing_biometrics"),
        # A face captured and also listed as missing.
        ((), {}, "members.0.missing_biometrics", "face is both captured"),
        # Refusal with fingers stays refused.
        (("face",), {"biometrics_refused_reason": "refuses photographs"}, "members.0",
         "either fingers or biometrics_refused_reason"),
    ],
    ids=["nothing", "excused-without-fingers", "unexplained", "face-and-missing",
         "refusal-with-fingers"],
)
def test_face_exception_rules_are_422s_naming_the_field(
    client: TestClient, admin_headers: dict[str, str], registry: Registry,
    drop: tuple[str, ...], update: dict[str, str], field: str, message: str,
) -> None:
    rng = np.random.default_rng(90)
    member = factories.member(900, rng, fingers=factories.fingers(900, rng, FOUR),
                              missing_biometrics=[NO_FACE], **update)
    for key in drop:
        del member[key]
    persons = count_rows(registry, Person)
    resp = client.post("/households", json=_alone(member), headers=admin_headers)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    errors = resp.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    assert message in errors[0]["message"]
    assert count_rows(registry, Person) == persons


# --- enrolment --------------------------------------------------------------------------------


def test_faceless_person_enrols_with_a_case_and_the_exception_recorded(
    client: TestClient, admin_headers: dict[str, str], registry: Registry,
) -> None:
    rng = np.random.default_rng(91)
    resp = client.post("/households", json=_alone(_faceless(910, rng)), headers=admin_headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    (member,) = body["members"]
    assert body["outcome"] == member["outcome"] == "adjudicate"
    pid = uuid.UUID(member["person_id"])
    assert not [c for c in member["candidates"] if c["source"] != "biographic"]
    case = _case(registry, pid)
    assert case.kind == "face_exception" and case.status == "open"
    with registry.sessions() as s:
        person = s.get(Person, pid)
        assert person is not None and person.status == "pending_adjudication"
        exceptions = s.scalars(select(BiometricException)
                               .where(BiometricException.person_id == pid)).all()
        modalities = sorted(s.scalars(select(BiometricRecord.modality)
                                      .where(BiometricRecord.person_id == pid)))
        created = s.scalars(select(AuditEvent).where(AuditEvent.action == "person.create",
                                                     AuditEvent.subject_id == str(pid))).one()
        opened = s.scalars(select(AuditEvent)
                           .where(AuditEvent.action == "adjudication.open")).one()
    assert [(e.modality, e.reason, e.note) for e in exceptions] == [
        ("face", "bandaged", "burns, dressing on the face")]
    assert modalities == [f"finger:{p}" for p in sorted(FOUR)]  # no face, no photo
    assert created.details["face_exception"] == "bandaged"
    assert opened.details["kind"] == "face_exception"
    # Their descriptor is in the finger index, so the next enrolment can find them.
    assert registry.gallery.fingers is not None and len(registry.gallery.fingers) == 1


@pytest.mark.parametrize("seed", [92, 98])
def test_same_fingers_again_without_a_face_are_found(registry: Registry, seed: int) -> None:
    """Fresh captures of the same four fingers (thumbs, index fingers), no face either time.

    With no face evidence the pair is judged on the fingers' log-likelihood ratio alone (at
    most 8 per finger). Four genuine synthetic fingers gave 8–32 over 16 sampled pairs: always
    at or above the fused review threshold (5), so the person is never let through as new,
    and at or above the match threshold (21.1) for about four pairs in ten. So the second
    enrolment is either refused as a duplicate, exactly as a face duplicate is (nothing
    written), or enrolled with a `face_exception` case listing the first person; the two
    seeds here give one of each, and the test checks whichever the thresholds give.
    """
    rng = np.random.default_rng(seed)
    first = _enrol(registry, _alone(_faceless(920, rng)))
    a = first.members[0].person_id
    persons = count_rows(registry, Person)
    again = _enrol(registry, _alone(_faceless(920, rng, given_name="Ahmad")))
    member = again.members[0]
    (cand,) = [c for c in member.candidates if c.person_id == a and c.source != "biographic"]
    assert cand.via == "finger" and cand.rule == "fused" and cand.fingers_compared == 4
    assert cand.face_score is None and cand.finger_llr == cand.fused_llr
    expected = _expected(registry, cand.fused_llr)
    assert member.outcome == again.outcome == expected
    assert cand.at_match_threshold == (expected == "duplicate")
    with registry.sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action.in_(
            ["enrolment.refused_duplicate", "household.enrol"])).order_by(AuditEvent.seq)).all()
    assert str(a) in events[-1].details["fingers_read"]
    if expected == "duplicate":
        assert count_rows(registry, Person) == persons
        assert events[-1].action == "enrolment.refused_duplicate"
    else:
        case = _case(registry, member.person_id)
        assert case.kind == "face_exception"
        (stored,) = [c for c in case.candidates if c["source"] != "biographic"]
        assert stored["person_id"] == str(a) and stored["via"] == "finger"


@pytest.mark.parametrize("seed", [93, 99])  # one below the match threshold, one above
def test_faceless_duplicate_of_a_face_person_on_request_goes_to_a_case(
    registry: Registry, seed: int,
) -> None:
    """A person enrolled with face and fingers, then without a face: found by the fingers
    (no face evidence: the probe has none). On the officer's request a duplicate becomes an
    `override` case, as a face match does; below the match threshold it stays a
    `face_exception` case (see the previous test for why either can happen; the two seeds
    give one of each)."""
    rng = np.random.default_rng(seed)
    first = _enrol(registry, _alone(factories.member(
        930, rng, fingers=factories.fingers(930, rng, FOUR))))
    a = first.members[0].person_id
    again = _enrol(registry, _alone(_faceless(930, rng), request_adjudication=True))
    member = again.members[0]
    (cand,) = _biometric(member.candidates)
    assert cand.person_id == a and cand.via == "finger" and cand.face_score is None
    expected = _expected(registry, cand.fused_llr)
    assert member.outcome == "adjudicate"
    case = _case(registry, member.person_id)
    assert case.kind == ("override" if expected == "duplicate" else "face_exception")
    assert [c["person_id"] for c in case.candidates if c["source"] != "biographic"] == [str(a)]


@pytest.mark.parametrize("faceless_first", [False, True])
def test_same_fingers_twice_in_one_submission_are_caught(
    registry: Registry, faceless_first: bool,
) -> None:
    """Member 2 has member 1's fingers; one of the two has no face (either order): the
    later one finds the earlier by descriptor, the fingers are compared, no face evidence."""
    rng = np.random.default_rng(94)
    with_face = factories.member(940, rng, fingers=factories.fingers(940, rng, FOUR))
    without = _faceless(940, rng, given_name="Ahmad", relationship_to_head="sibling")
    if faceless_first:
        without["relationship_to_head"], with_face["relationship_to_head"] = "head", "sibling"
    payload = _alone(without) if faceless_first else _alone(with_face)
    payload["members"].append(with_face if faceless_first else without)
    result = _enrol(registry, payload)
    second = result.members[1]
    (cand,) = [c for c in second.candidates if c.member_no == 1]
    assert cand.via == "finger" and cand.rule == "fused" and cand.fingers_compared == 4
    assert cand.face_score is None  # one side has no face: no face evidence
    expected = _expected(registry, cand.fused_llr)
    assert second.outcome == result.outcome == expected
    assert count_rows(registry, Person) == (0 if expected == "duplicate" else 2)


def test_a_face_member_decides_the_same_beside_a_faceless_member(registry: Registry) -> None:
    rng = np.random.default_rng(95)
    first = _enrol(registry, _alone(factories.member(
        950, rng, fingers=factories.fingers(950, rng, FOUR))))
    a = first.members[0].person_id
    probe = factories.member(950, rng, fingers=factories.fingers(950, rng, FOUR))
    stranger = _faceless(951, rng, given_name="Omar", family_name="Haddad",
                         relationship_to_head="sibling")

    def outcome_of_probe(members: list[dict[str, Any]]) -> dict[str, Any]:
        result = _enrol(registry, {"province": "Amman", "district": "Marka",
                                   "members": members, "request_adjudication": False})
        (out,) = [m for m in result.members if m.member_no == members.index(probe) + 1]
        return out.model_dump(exclude={"member_no"})

    alone = outcome_of_probe([probe])
    assert alone["outcome"] == "duplicate"
    assert alone["candidates"][0]["person_id"] == a
    assert outcome_of_probe([stranger, probe]) == alone
    assert outcome_of_probe([probe, stranger]) == alone


def test_without_the_prefilter_the_faceless_member_finds_no_finger_candidates(
    make_registry: Callable[..., Registry],
) -> None:
    reg = make_registry(finger_prefilter_candidates=0)
    assert reg.gallery.fingers is None
    rng = np.random.default_rng(96)
    first = _enrol(reg, _alone(_faceless(960, rng)))
    again = _enrol(reg, _alone(_faceless(960, rng)))
    for result in (first, again):
        (member,) = result.members
        assert member.outcome == "adjudicate" and not _biometric(member.candidates)
        assert _case(reg, member.person_id).kind == "face_exception"
    # The biographic search still links them for the adjudicator.
    assert [c.person_id for c in again.members[0].candidates] == [first.members[0].person_id]


# --- the card ---------------------------------------------------------------------------------


def _activate(registry: Registry, result: EnrolmentResult) -> uuid.UUID:
    pid = result.members[0].person_id
    assert pid is not None
    case = _case(registry, pid)
    with transaction(registry.sessions) as s:
        decide_case(s, case_id=case.id, verdict=Verdict.DIFFERENT_PERSON,
                    reason="face dressing seen, fingers checked", actor="adj-1",
                    sealer=registry.sealer,
                    match_threshold=registry.settings.dedup_match_threshold)
    return pid


def test_card_for_a_faceless_person_has_no_face_template_and_verifies(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(97)
    pid = _activate(registry, _enrol(registry, _alone(_faceless(970, rng))))
    issued = issue(registry, pid)
    result = verify(issued.qr, trust=registry.trust_list)
    assert result.valid and result.claims is not None
    assert "face_template" not in result.claims
    assert result.claims["given_name"] == "Mohammad"
    # A checkpoint with a live face capture is told there is nothing to compare it with.
    probe = FaceProbe.from_vector(rng.normal(size=128))
    assert verify(issued.qr, trust=registry.trust_list, face=probe).reasons == (
        "face_unavailable",)
    with transaction(registry.sessions) as s:
        pdf = card_svc.card_pdf_bytes(s, card_id=issued.card.id, actor="card-officer-1",
                                      settings=registry.settings, sealer=registry.sealer)
    assert pdf.startswith(b"%PDF")

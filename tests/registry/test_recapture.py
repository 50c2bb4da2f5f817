"""Re-capture of an enrolled person's biometrics (`sanad.registry.recapture`), on both
databases: stored only when it verifies against what is enrolled, by the enrolment match rule;
the gallery follows the database; someone else's capture is refused with nothing stored."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from sanad.abis.templates import decode_template, quantise_int8
from sanad.biometrics.synthetic import FACE_DIM
from sanad.errors import Conflict, NotFound
from sanad.registry.adjudication import Verdict, decide_case
from sanad.registry.cards import (
    _face_capture,
    cards_to_reissue,
    outdated_cards,
    reissue_card,
)
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext
from sanad.registry.gallery import FACE
from sanad.registry.models import (
    AdjudicationCase,
    AuditEvent,
    BiometricException,
    BiometricRecord,
    HeldCapture,
    Person,
    PersonStatus,
)
from sanad.registry.recapture import recapture_person
from sanad.registry.runtime import Registry
from sanad.registry.schemas import BiometricsUpdate, RecaptureResult
from sanad.registry.sync_models import OutboxEvent
from tests import factories
from tests.cards.helpers import issue
from tests.factories import count_rows

CTX = EnrolmentContext(officer="officer-7")


def _enrol(registry: Registry, member: dict[str, Any], outcome: str = "no_match") -> uuid.UUID:
    result = factories.enrol(registry, factories.alone(member))
    assert result.outcome == outcome, result
    pid = result.members[0].person_id
    assert pid is not None
    return pid


def _recapture(registry: Registry, person_id: uuid.UUID, **body: Any) -> RecaptureResult:
    return recapture_person(
        registry.sessions, registry.gallery, registry.settings, person_id=person_id,
        data=BiometricsUpdate.model_validate({"reason": "renewal", **body}), ctx=CTX)


def _audits(registry: Registry, person_id: uuid.UUID, action: str) -> list[AuditEvent]:
    with registry.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.subject_id == str(person_id),
                                                       AuditEvent.action == action)).all())


def test_a_fresh_capture_of_the_same_person_is_stored_and_goes_on_the_next_card(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(11)
    pid = _enrol(registry, factories.member(
        601, rng, fingers=factories.fingers(601, rng, (2, 7)),
        missing_biometrics=[{"modality": "finger:1", "reason": "bandaged"}]))
    before = len(registry.gallery.index)
    new_face = factories.face(601, rng)

    result = _recapture(registry, pid, face=new_face,
                        fingers=factories.fingers(601, rng, (1,)), reason="previously_missing")

    assert result.verified_by == "face"  # finger 1 was never enrolled: nothing to compare
    assert result.face_score is not None
    assert result.face_score >= registry.settings.dedup_match_threshold
    assert result.fingers_compared == 0 and result.finger_llr is None
    assert result.stored == ["face", "finger:1"]
    assert result.exceptions_cleared == ["finger:1"]
    assert result.case_id is None and result.version == 2
    with transaction(registry.sessions) as s:
        faces = s.scalars(select(BiometricRecord).where(BiometricRecord.person_id == pid,
                                                        BiometricRecord.modality == FACE)
                          .order_by(BiometricRecord.id)).all()
        assert len(faces) == 2  # the earlier capture is kept
        assert s.scalar(select(func.count()).select_from(BiometricException)
                        .where(BiometricException.person_id == pid)) == 0
        person = s.get(Person, pid)
        assert person is not None and person.version == 2
        # The next card carries the new template, not the enrolment one.
        expected = quantise_int8(decode_template(base64.b64decode(new_face["template"]),
                                                 FACE_DIM))
        assert _face_capture(s, person, registry.sealer)[1] == expected
        newest = faces[-1].id
    # The gallery caught up from the database: the new template is searchable.
    assert len(registry.gallery.index) == before + 1
    assert registry.gallery.index.watermark >= newest
    _, ids = registry.gallery.index.search(
        decode_template(base64.b64decode(new_face["template"]), FACE_DIM)[None, :], 1)
    assert ids[0][0] == newest
    with registry.sessions() as s:
        (changed,) = s.scalars(select(OutboxEvent).where(
            OutboxEvent.event_type == "person.updated")).all()
    assert changed.payload == {"person_id": str(pid), "version": 2, "fields": ["biometrics"]}
    (event,) = _audits(registry, pid, "biometrics.recaptured")
    assert event.actor == "officer-7"
    assert event.details["reason"] == "previously_missing"
    assert event.details["exceptions_cleared"] == ["finger:1"]


def test_someone_else_s_face_is_refused_and_nothing_is_stored(registry: Registry) -> None:
    rng = np.random.default_rng(12)
    pid = _enrol(registry, factories.member(602, rng))
    records, exceptions, events = (count_rows(registry, BiometricRecord),
                                   count_rows(registry, BiometricException),
                                   count_rows(registry, OutboxEvent))
    size = len(registry.gallery.index)

    with pytest.raises(Conflict, match="does not match"):
        _recapture(registry, pid, face=factories.face(603, rng))

    assert count_rows(registry, BiometricRecord) == records
    assert count_rows(registry, BiometricException) == exceptions
    assert len(registry.gallery.index) == size
    with registry.sessions() as s:
        person = s.get(Person, pid)
        assert person is not None and person.version == 1
    (event,) = _audits(registry, pid, "biometrics.recapture_refused")
    assert event.details["face_score"] < registry.settings.dedup_match_threshold
    assert not _audits(registry, pid, "biometrics.recaptured")
    assert count_rows(registry, OutboxEvent) == events


def test_a_changed_face_is_accepted_on_matching_fingers_and_refused_on_others(
    registry: Registry,
) -> None:
    """A child's face five years on may no longer match; their four fingers still do (fused
    rule: the face alone is below the match threshold). The
    same weak face with someone else's fingers is refused."""
    rng = np.random.default_rng(13)
    four = (1, 2, 6, 7)
    pid = _enrol(registry, factories.member(604, rng, fingers=factories.fingers(604, rng, four)))
    weak = factories.face_near(604, 0.66, rng)

    with pytest.raises(Conflict):
        _recapture(registry, pid, face=weak, fingers=factories.fingers(605, rng, four),
                   reason="appearance_changed")
    result = _recapture(registry, pid, face=weak, fingers=factories.fingers(604, rng, four),
                        reason="appearance_changed")

    assert result.verified_by == "fused" and result.fingers_compared == 4
    assert result.face_score is not None
    assert result.face_score < registry.settings.dedup_match_threshold  # not on its own
    assert result.finger_llr is not None and result.finger_llr > 0
    assert result.stored == ["face", "finger:1", "finger:2", "finger:6", "finger:7"]


def test_nothing_enrolled_to_verify_against_is_refused(registry: Registry) -> None:
    """Only a face is enrolled and only fingers are offered: nothing to compare them with.
    (A person with no biometrics at all gets a first capture: test_first_capture.py.)"""
    rng = np.random.default_rng(14)
    pid = _enrol(registry, factories.member(606, rng))
    before = count_rows(registry, BiometricRecord)
    with pytest.raises(Conflict, match="nothing enrolled"):
        _recapture(registry, pid, fingers=factories.fingers(606, rng))
    assert count_rows(registry, BiometricRecord) == before
    (event,) = _audits(registry, pid, "biometrics.recapture_refused")
    assert event.details["offered"] == ["finger:2", "finger:7"]


def test_only_an_active_person_and_an_existing_one(registry: Registry) -> None:
    rng = np.random.default_rng(15)
    pid = _enrol(registry, factories.member(607, rng))
    with transaction(registry.sessions) as s:
        person = s.get(Person, pid)
        assert person is not None
        person.status = PersonStatus.RETURNED
    with pytest.raises(Conflict, match="returned"):
        _recapture(registry, pid, face=factories.face(607, rng))
    with pytest.raises(NotFound):
        _recapture(registry, uuid.uuid4(), face=factories.face(607, rng))


def test_a_new_capture_resembling_someone_else_opens_a_recheck_case(registry: Registry) -> None:
    """The capture verifies against its own record yet sits between the review and match
    thresholds of another person: stored, and a `recheck` case names the other person."""
    rng = np.random.default_rng(16)
    a, b = rng.standard_normal((2, FACE_DIM))
    a /= np.linalg.norm(a)
    b /= np.linalg.norm(b)
    other = _enrol(registry, factories.member(608, rng, face=factories.face_capture(a)))
    pid = _enrol(registry, factories.member(609, rng, face=factories.face_capture(b),
                                            given_name="Samir"))
    st = registry.settings
    target = np.array([(st.dedup_review_threshold + st.dedup_match_threshold) / 2, 0.8])
    g = np.array([[1.0, a @ b], [a @ b, 1.0]])
    x = np.linalg.solve(g, target)  # v = x0 a + x1 b has these cosines with a and b
    u = rng.standard_normal(FACE_DIM)
    u -= np.linalg.lstsq(np.stack([a, b]).T, u, rcond=None)[0] @ np.stack([a, b])
    v = x[0] * a + x[1] * b + np.sqrt(1 - x @ target) * u / np.linalg.norm(u)

    # Earlier, a capture that did not verify was held for adjudicators (a `recapture` case).
    held = _recapture(registry, pid, face=factories.face_capture(a - b), request_adjudication=True)
    assert held.held and held.case_id is not None

    result = _recapture(registry, pid, face=factories.face_capture(v))

    assert result.verified_by == "face" and result.case_id is not None
    # "Same person" on the recheck links the record; its other undecided case is closed and
    # the capture that case held is discarded.
    with transaction(registry.sessions) as s:
        decide_case(s, case_id=result.case_id, verdict=Verdict.SAME_PERSON, reason="one man",
                    actor="adj-1", sealer=registry.sealer,
                    match_threshold=st.dedup_match_threshold, link_to=other)
    with registry.sessions() as s:
        closed = s.get(AdjudicationCase, held.case_id)
        assert closed is not None and (closed.status, closed.decision) == ("resolved", "closed")
        assert closed.reason is not None and "linked to" in closed.reason
        assert s.scalars(select(HeldCapture)).all() == []
        (event,) = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "adjudication.closed")).all()
        assert event.details["held_capture_discarded"] is True
    with registry.sessions() as s:
        case = s.get(AdjudicationCase, result.case_id)
        assert case is not None and case.kind == "recheck" and case.person_id == pid
        assert [c["person_id"] for c in case.candidates] == [str(other)]


def test_a_new_face_makes_the_card_in_hand_out_of_date_until_it_is_reissued(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(17)
    ten = tuple(range(1, 11))
    pid = _enrol(registry, factories.member(610, rng, fingers=factories.fingers(610, rng, ten)))
    card = issue(registry, pid).card
    with registry.sessions() as s:
        enrolled_face = s.scalar(select(BiometricRecord.id).where(
            BiometricRecord.person_id == pid, BiometricRecord.modality == FACE))
        assert card.face_record_id == enrolled_face  # the card says which face it carries
        assert outdated_cards(s, [pid]) == {}

    fingers_only = _recapture(registry, pid, fingers=factories.fingers(610, rng, ten))
    assert fingers_only.card_to_reissue is None  # the card carries no fingers
    with registry.sessions() as s:
        assert cards_to_reissue(s) == []

    result = _recapture(registry, pid, face=factories.face(610, rng),
                        fingers=factories.fingers(610, rng))

    assert result.card_to_reissue == card.card_number
    with transaction(registry.sessions) as s:
        assert outdated_cards(s, [pid])[pid].id == card.id
        assert [(c.id, p.id) for c, p in cards_to_reissue(s)] == [(card.id, pid)]
        again = reissue_card(s, person_id=pid, officer="card-1", key=registry.issuer_key,
                             sealer=registry.sealer, settings=registry.settings)
        newest = s.scalar(select(func.max(BiometricRecord.id)).where(
            BiometricRecord.person_id == pid, BiometricRecord.modality == FACE))
        assert again.card.issue_reason == "update" and again.card.face_record_id == newest
    with registry.sessions() as s:
        assert outdated_cards(s, [pid]) == {}
        assert cards_to_reissue(s) == []  # the new card carries the newest face


def test_a_field_station_does_not_capture_enrolled_people_again(registry: Registry) -> None:
    """Sync would never carry the capture to the centre: refused, nothing stored."""
    rng = np.random.default_rng(18)
    pid = _enrol(registry, factories.member(611, rng))
    before = count_rows(registry, BiometricRecord)
    station = registry.settings.model_copy(update={"station_mode": True})
    with pytest.raises(Conflict, match="field stations"):
        recapture_person(registry.sessions, registry.gallery, station, person_id=pid,
                         data=BiometricsUpdate.model_validate(
                             {"reason": "renewal", "face": factories.face(611, rng)}),
                         ctx=CTX)
    assert count_rows(registry, BiometricRecord) == before

"""A person's first biometric capture (`sanad.registry.recapture`, docs/recapture.md), on both
databases: the biometric enrolment of a record imported from a legacy register, and of a person
who refused biometrics at enrolment. Nothing to verify against, so the capture is searched
against everyone, stored, and adjudicated when it resembles someone."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from sanad.errors import CardNotIssuable, Conflict, InvalidInput
from sanad.registry.adjudication import Verdict, decide_case
from sanad.registry.cards import cards_to_reissue
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext
from sanad.registry.gallery import FACE
from sanad.registry.models import (
    AdjudicationCase,
    AuditEvent,
    BiometricException,
    BiometricRecord,
    Card,
    Person,
    PersonStatus,
)
from sanad.registry.recapture import recapture_person
from sanad.registry.runtime import Registry
from sanad.registry.schemas import BiometricsUpdate, RecaptureResult
from sanad.registry.sync_models import OutboxEvent
from tests import factories
from tests.cards.helpers import issue
from tests.factories import count_rows, import_legacy, legacy_row

CTX = EnrolmentContext(officer="officer-9")
def _capture(registry: Registry, person_id: uuid.UUID, **body: Any) -> RecaptureResult:
    return recapture_person(
        registry.sessions, registry.gallery, registry.settings, person_id=person_id,
        data=BiometricsUpdate.model_validate({"reason": "previously_missing", **body}),
        ctx=CTX)


def _person(registry: Registry, person_id: uuid.UUID) -> Person:
    with registry.sessions() as s:
        person = s.get(Person, person_id)
        assert person is not None
        return person


def _case(registry: Registry, case_id: uuid.UUID | None) -> AdjudicationCase:
    assert case_id is not None
    with registry.sessions() as s:
        case = s.get(AdjudicationCase, case_id)
        assert case is not None
        return case


def _decide(registry: Registry, case_id: uuid.UUID, verdict: Verdict, actor: str = "adj-1",
            **kw: Any) -> AdjudicationCase:
    with transaction(registry.sessions) as s:
        return decide_case(s, case_id=case_id, verdict=verdict, reason="checked documents",
                           actor=actor, sealer=registry.sealer,
                           match_threshold=registry.settings.dedup_match_threshold, **kw)


def test_an_imported_person_resembling_no_one_becomes_active_and_can_get_a_card(
    registry: Registry, tmp_path: Path,
) -> None:
    rng = np.random.default_rng(31)
    factories.enrol(registry, factories.alone(factories.member(801, rng)))  # someone else
    pid = import_legacy(registry, tmp_path, [legacy_row("C1", "Yousef")])["Yousef"]
    assert _person(registry, pid).status == PersonStatus.PENDING_BIOMETRICS
    with pytest.raises(CardNotIssuable):
        issue(registry, pid)  # no card before biometric enrolment
    face = factories.face(802, rng)

    result = _capture(registry, pid, face=face, fingers=factories.fingers(802, rng))

    assert result.first_capture and result.verified_by is None
    assert result.case_id is None and result.status == PersonStatus.ACTIVE
    assert result.stored == ["face", "finger:2", "finger:7"] and result.version == 2
    person = _person(registry, pid)
    assert person.status == PersonStatus.ACTIVE and person.version == 2
    assert issue(registry, pid).card.person_id == pid  # a card can follow now
    # The new face is in the gallery (caught up from the database) and finds this person.
    probe = factories.POPULATION.capture(802, rng)[None, :]
    _, ids = registry.gallery.index.search(probe, 1)
    with registry.sessions() as s:
        record = s.get(BiometricRecord, int(ids[0][0]))
        assert record is not None and record.person_id == pid and record.modality == FACE
        (event,) = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "biometrics.first_capture")).all()
        changed = s.scalars(select(OutboxEvent).where(
            OutboxEvent.event_type == "person.updated")).all()
    assert event.subject_id == str(pid) and event.actor == "officer-9"
    assert event.details["outcome"] == "no_match" and event.details["candidates"] == []
    assert event.details["status"] == {"from": "pending_biometrics", "to": "active"}
    assert [e.payload["fields"] for e in changed] == [["biometrics", "status"]]


def test_an_imported_person_already_enrolled_goes_to_an_adjudicator_who_links_them(
    registry: Registry, tmp_path: Path,
) -> None:
    rng = np.random.default_rng(32)
    enrolled = factories.enrol(registry, factories.alone(factories.member(
        803, rng, fingers=factories.fingers(803, rng)))).members[0].person_id
    assert enrolled is not None
    pid = import_legacy(registry, tmp_path, [legacy_row("C2", "Rami")])["Rami"]

    # A fresh capture of the person enrolled under the other record: a duplicate.
    result = _capture(registry, pid, face=factories.face(803, rng),
                      fingers=factories.fingers(803, rng))

    assert result.first_capture and result.status == PersonStatus.PENDING_ADJUDICATION
    case = _case(registry, result.case_id)
    assert case.kind == "first_capture" and case.person_id == pid and case.status == "open"
    (candidate,) = case.candidates
    assert candidate["person_id"] == str(enrolled) and candidate["at_match_threshold"]
    assert candidate["fingers_compared"] == 2
    with pytest.raises(CardNotIssuable):
        issue(registry, pid)  # waiting for the adjudicator
    # Overriding a match as "different" needs a second adjudicator (two-person rule).
    assert _decide(registry, case.id, Verdict.DIFFERENT_PERSON).status == "awaiting_second"
    assert _person(registry, pid).status == PersonStatus.PENDING_ADJUDICATION
    _decide(registry, case.id, Verdict.SAME_PERSON, actor="adj-2", link_to=enrolled)
    person = _person(registry, pid)
    assert person.status == PersonStatus.LINKED and person.duplicate_of == enrolled
    with registry.sessions() as s:  # the captures moved onto the existing identity
        assert s.scalars(select(BiometricRecord.id)
                         .where(BiometricRecord.person_id == pid)).all() == []
        assert len(s.scalars(select(BiometricRecord.id)
                             .where(BiometricRecord.person_id == enrolled)).all()) == 6


def test_fingers_without_a_face_always_go_to_an_adjudicator(
    registry: Registry, tmp_path: Path,
) -> None:
    rng = np.random.default_rng(33)
    pid = import_legacy(registry, tmp_path, [legacy_row("C3", "Nabil")])["Nabil"]

    result = _capture(registry, pid, fingers=factories.fingers(804, rng))

    case = _case(registry, result.case_id)
    assert case.kind == "face_exception" and case.candidates == []
    assert result.status == PersonStatus.PENDING_ADJUDICATION
    _decide(registry, case.id, Verdict.DIFFERENT_PERSON)
    assert _person(registry, pid).status == PersonStatus.ACTIVE


def test_an_open_biographic_case_keeps_the_person_waiting_until_every_case_is_decided(
    registry: Registry, tmp_path: Path,
) -> None:
    """Two rows of one legacy person spelled differently: the second is imported with a
    biographic case. Its first capture also resembles an enrolled person: two open cases,
    and the record becomes active only when the last is decided."""
    rng = np.random.default_rng(34)
    exact = factories.POPULATION.identity_template(805)
    enrolled = factories.enrol(registry, factories.alone(factories.member(
        805, rng, given_name="Tariq", face=factories.face_capture(exact),
    ))).members[0].person_id
    st = registry.settings
    between = (st.dedup_review_threshold + st.dedup_match_threshold) / 2
    ids = import_legacy(registry, tmp_path, [legacy_row("C4", "Muhammad", "Haddad"),
                        legacy_row("C5", "Mohammed", "Hadad", "1979")])
    pid = ids["Mohammed"]
    with registry.sessions() as s:
        (biographic,) = s.scalars(select(AdjudicationCase).where(
            AdjudicationCase.person_id == pid)).all()
    assert biographic.kind == "biographic"

    result = _capture(registry, pid, face=factories.face_near(805, between, rng))

    assert result.status == PersonStatus.PENDING_ADJUDICATION
    case = _case(registry, result.case_id)
    assert case.kind == "first_capture"
    assert [c["person_id"] for c in case.candidates] == [str(enrolled)]
    _decide(registry, biographic.id, Verdict.DIFFERENT_PERSON)
    assert _person(registry, pid).status == PersonStatus.PENDING_ADJUDICATION
    _decide(registry, case.id, Verdict.DIFFERENT_PERSON)
    assert _person(registry, pid).status == PersonStatus.ACTIVE


def test_an_imported_person_with_only_a_biographic_case_waits_for_it(
    registry: Registry, tmp_path: Path,
) -> None:
    rng = np.random.default_rng(35)
    ids = import_legacy(registry, tmp_path, [legacy_row("C6", "Muhammad", "Haddad"),
                        legacy_row("C7", "Mohammad", "Hadad", "1979")])
    result = _capture(registry, ids["Mohammad"], face=factories.face(806, rng))
    assert result.case_id is None and result.status == PersonStatus.PENDING_ADJUDICATION
    with registry.sessions() as s:
        (biographic,) = s.scalars(select(AdjudicationCase).where(
            AdjudicationCase.person_id == ids["Mohammad"])).all()
    _decide(registry, biographic.id, Verdict.DIFFERENT_PERSON)
    assert _person(registry, ids["Mohammad"]).status == PersonStatus.ACTIVE


def test_a_person_who_refused_biometrics_at_enrolment_can_give_them_later(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(36)
    result = factories.enrol(registry, factories.alone(factories.member(
        807, rng, face=None, biometrics_refused_reason="religious grounds")))
    assert result.outcome == "adjudicate"  # a refusal is always adjudicated
    pid = result.members[0].person_id
    assert pid is not None
    with pytest.raises(Conflict, match="pending_adjudication"):
        _capture(registry, pid, face=factories.face(807, rng))  # decide the refusal first
    with registry.sessions() as s:
        (refusal,) = s.scalars(select(AdjudicationCase).where(
            AdjudicationCase.person_id == pid)).all()
    _decide(registry, refusal.id, Verdict.DIFFERENT_PERSON)
    assert _person(registry, pid).status == PersonStatus.ACTIVE

    card = issue(registry, pid).card  # a card without a face template
    assert card.face_record_id is None

    captured = _capture(registry, pid, face=factories.face(807, rng))

    assert captured.first_capture and captured.case_id is None
    assert captured.card_to_reissue == card.card_number  # now a face exists to carry
    with registry.sessions() as s:
        assert [c.id for c, _ in cards_to_reissue(s)] == [card.id]
    assert captured.status == PersonStatus.ACTIVE
    assert captured.exceptions_cleared == ["all"]  # the refusal no longer stands
    with registry.sessions() as s:
        assert s.scalars(select(BiometricException)
                         .where(BiometricException.person_id == pid)).all() == []
    # From now on a capture must verify against this one.
    with pytest.raises(Conflict, match="does not match"):
        _capture(registry, pid, face=factories.face(808, rng))


def test_a_first_capture_that_cannot_be_read_stores_nothing_and_changes_nothing(
    registry: Registry, tmp_path: Path,
) -> None:
    pid = import_legacy(registry, tmp_path, [legacy_row("C8", "Hasan")])["Hasan"]
    records, cases = count_rows(registry, BiometricRecord), count_rows(registry,
                                                                       AdjudicationCase)
    with pytest.raises(InvalidInput):
        _capture(registry, pid, face={"template": "AAAA", "quality": 0.9})
    assert count_rows(registry, BiometricRecord) == records
    assert count_rows(registry, AdjudicationCase) == cases
    person = _person(registry, pid)
    assert person.status == PersonStatus.PENDING_BIOMETRICS and person.version == 1


def test_a_linked_or_returned_record_gets_no_first_capture(
    registry: Registry, tmp_path: Path,
) -> None:
    rng = np.random.default_rng(37)
    pid = import_legacy(registry, tmp_path, [legacy_row("C9", "Karim")])["Karim"]
    for status in (PersonStatus.LINKED, PersonStatus.RETURNED):
        with transaction(registry.sessions) as s:
            person = s.get(Person, pid)
            assert person is not None
            person.status = status
        with pytest.raises(Conflict, match=status.value):
            _capture(registry, pid, face=factories.face(809, rng))
    assert count_rows(registry, BiometricRecord) == 0


def test_a_carded_person_whose_first_capture_shows_an_earlier_identity_loses_the_card(
    registry: Registry,
) -> None:
    """Refused biometrics, got a card; later gives them, and they are someone already
    enrolled: the adjudicator links the record and its card is revoked (`duplicate`)."""
    rng = np.random.default_rng(38)
    earlier = factories.enrol(registry, factories.alone(factories.member(
        810, rng, given_name="Adnan"))).members[0].person_id
    result = factories.enrol(registry, factories.alone(factories.member(
        811, rng, face=None, biometrics_refused_reason="afraid of cameras")))
    pid = result.members[0].person_id
    assert pid is not None and earlier is not None
    with registry.sessions() as s:
        (refusal,) = s.scalars(select(AdjudicationCase).where(
            AdjudicationCase.person_id == pid)).all()
    _decide(registry, refusal.id, Verdict.DIFFERENT_PERSON)
    card = issue(registry, pid).card

    captured = _capture(registry, pid, face=factories.face(810, rng))

    assert captured.status == PersonStatus.ACTIVE  # a carded person stays active meanwhile
    case = _case(registry, captured.case_id)
    assert case.kind == "first_capture"
    assert [c["person_id"] for c in case.candidates] == [str(earlier)]
    theirs = issue(registry, earlier).card  # the earlier identity's own card
    _decide(registry, case.id, Verdict.SAME_PERSON, link_to=earlier)
    assert _person(registry, pid).status == PersonStatus.LINKED
    with registry.sessions() as s:
        revoked = s.get(Card, card.id)
        assert revoked is not None
        assert (revoked.status, revoked.revocation_reason) == ("revoked", "duplicate")
        # The newer face moved onto the earlier identity: its card now carries an older one.
        assert [c.id for c, _ in cards_to_reissue(s)] == [theirs.id]

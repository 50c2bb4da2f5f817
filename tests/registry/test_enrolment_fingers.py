"""Fingerprints in enrolment: sealed storage, the fused second stage, exceptions, erasure."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from sanad.biometrics.finger import (
    FingerMinutiaeRecord,
    FingerPosition,
    FingerView,
    decode_record,
    encode_record,
)
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext, recheck_person
from sanad.registry.erasure import ERASED_MODALITY, drop_from_gallery, erase_person
from sanad.registry.fingers import finger_modality
from sanad.registry.gallery import template_aad
from sanad.registry.models import (
    AuditEvent,
    BiometricException,
    BiometricRecord,
    Person,
)
from sanad.registry.runtime import Registry
from sanad.registry.schemas import FingerCapture, HouseholdCreate
from tests import factories
from tests.factories import alone as _alone
from tests.factories import count_rows
from tests.factories import enrol as _enrol

CTX = EnrolmentContext(officer="officer-1")
FOUR = (1, 2, 6, 7)  # thumbs and index fingers


def test_fingers_are_stored_sealed_one_record_per_finger(registry: Registry) -> None:
    rng = np.random.default_rng(1)
    member = factories.member(40, rng, fingers=factories.fingers(40, rng))
    result = _enrol(registry, _alone(member))
    assert result.outcome == "no_match"
    pid = result.members[0].person_id
    assert pid is not None
    with registry.sessions() as s:
        recs = {r.modality: r for r in s.scalars(
            select(BiometricRecord).where(BiometricRecord.person_id == pid))}
        assert set(recs) == {"face", "finger:2", "finger:7"}
        for f in member["fingers"]:
            sent = decode_record(base64.b64decode(f["record"]))
            stored = recs[finger_modality(f["position"])].template
            # Not readable in the row: no ISO magic, no minutiae bytes in clear.
            assert b"FMR" not in stored
            minutiae = base64.b64decode(f["record"])[32:64]
            assert minutiae not in stored
            opened = registry.sealer.open(
                stored, aad=template_aad(pid, finger_modality(f["position"])), session=s)
            assert decode_record(opened).views == sent.views
            # Sealed to this person and finger: another finger's AAD does not open it.
            with pytest.raises(Exception, match="authentication"):
                registry.sealer.open(stored, aad=template_aad(pid, "finger:3"), session=s)


def test_reenrolment_with_fresh_face_and_fingers_is_a_fused_duplicate(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(2)
    first = _enrol(registry, _alone(factories.member(41, rng, fingers=factories.fingers(41, rng))))
    persons = count_rows(registry, Person)
    again = _enrol(registry, _alone(factories.member(41, rng, fingers=factories.fingers(41, rng))))
    assert again.outcome == "duplicate"
    cand = again.members[0].candidates[0]
    assert cand.person_id == first.members[0].person_id
    assert cand.rule == "fused" and cand.fingers_compared == 2
    assert cand.fused_llr is not None
    assert cand.fused_llr >= registry.settings.dedup_fused_match_threshold
    assert cand.finger_llr is not None and cand.finger_llr > 0
    assert cand.at_match_threshold
    assert count_rows(registry, Person) == persons
    with registry.sessions() as s:
        refused = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "enrolment.refused_duplicate")).one()
    assert refused.details["fingers_read"] == [str(first.members[0].person_id)]


def test_weak_face_with_strongly_matching_fingers_is_not_let_through(registry: Registry) -> None:
    """Fingers catch what the face misses (a poor photo, a changed appearance)."""
    rng = np.random.default_rng(3)
    first = _enrol(registry, _alone(
        factories.member(42, rng, fingers=factories.fingers(42, rng, FOUR))))
    weak = factories.member(42, rng, face=factories.face_near(42, 0.45, rng),
                            fingers=factories.fingers(42, rng, FOUR), given_name="Ahmad")
    result = _enrol(registry, _alone(weak, request_adjudication=True))
    member = result.members[0]
    assert member.outcome in {"adjudicate", "duplicate"}
    cand = member.candidates[0]
    assert cand.person_id == first.members[0].person_id
    # The face alone would have let this person through as new.
    assert cand.face_score is not None
    assert cand.face_score < registry.settings.dedup_review_threshold
    assert cand.rule == "fused" and cand.fingers_compared == 4
    assert cand.fused_llr is not None
    assert cand.fused_llr >= registry.settings.dedup_fused_review_threshold


def test_look_alike_face_with_different_fingers_is_not_a_duplicate(registry: Registry) -> None:
    """A sibling whose face scores above the face duplicate threshold, fingers of another."""
    rng = np.random.default_rng(4)
    first = _enrol(registry, _alone(factories.member(43, rng, fingers=factories.fingers(43, rng))))
    sibling = factories.member(43, rng, face=factories.face_near(43, 0.80, rng),
                               fingers=factories.fingers(44, rng), given_name="Omar")
    result = _enrol(registry, _alone(sibling))
    member = result.members[0]
    assert member.outcome != "duplicate"
    assert result.outcome != "duplicate" and member.person_id is not None
    cand = [c for c in member.candidates if c.person_id == first.members[0].person_id]
    if member.outcome == "adjudicate":
        (c,) = cand
        assert c.face_score is not None
        assert c.face_score >= registry.settings.dedup_match_threshold  # face alone: duplicate
        assert c.rule == "fused" and c.finger_llr is not None and c.finger_llr < 0
        assert c.fused_llr is not None
        assert c.fused_llr < registry.settings.dedup_fused_match_threshold
        assert not c.at_match_threshold


def test_look_alike_face_without_fingers_keeps_the_face_thresholds(registry: Registry) -> None:
    rng = np.random.default_rng(5)
    _enrol(registry, _alone(factories.member(45, rng, fingers=factories.fingers(45, rng))))
    # No fingers on the new side: no fingerprint evidence, today's face rule decides.
    lookalike = factories.member(45, rng, face=factories.face_near(45, 0.80, rng))
    result = _enrol(registry, _alone(lookalike))
    assert result.outcome == "duplicate"
    cand = result.members[0].candidates[0]
    assert cand.rule == "face" and cand.fingers_compared == 0 and cand.finger_llr is None


def test_missing_finger_recorded_and_matching_uses_what_exists(registry: Registry) -> None:
    rng = np.random.default_rng(6)
    member = factories.member(46, rng, fingers=factories.fingers(46, rng, (2,)),
                              missing_biometrics=[{"modality": "finger:7", "reason": "amputated",
                                                   "note": "left index"}])
    first = _enrol(registry, _alone(member))
    pid = first.members[0].person_id
    with registry.sessions() as s:
        exc = s.scalars(select(BiometricException).where(
            BiometricException.person_id == pid)).one()
        assert (exc.modality, exc.reason, exc.note) == ("finger:7", "amputated", "left index")
        mods = set(s.scalars(select(BiometricRecord.modality).where(
            BiometricRecord.person_id == pid)))
    assert mods == {"face", "finger:2"}
    again = _enrol(registry, _alone(factories.member(46, rng, fingers=factories.fingers(46, rng))))
    assert again.outcome == "duplicate"
    assert again.members[0].candidates[0].fingers_compared == 1  # only the shared finger


def test_same_person_twice_in_one_household_caught_by_fingers(registry: Registry) -> None:
    rng = np.random.default_rng(7)
    payload = factories.household([47, 48], rng)
    payload["members"][0]["fingers"] = factories.fingers(47, rng, FOUR)
    # The second member is person 47 again with a poor face capture: only fingers tell.
    payload["members"][1]["face"] = factories.face_near(47, 0.45, rng)
    payload["members"][1]["fingers"] = factories.fingers(47, rng, FOUR)
    result = _enrol(registry, {**payload, "request_adjudication": True})
    second = result.members[1]
    assert second.outcome in {"adjudicate", "duplicate"}
    (cand,) = [c for c in second.candidates if c.member_no == 1]
    assert cand.face_score is not None
    assert cand.face_score < registry.settings.dedup_review_threshold
    assert cand.rule == "fused" and cand.fingers_compared == 4


def test_distinct_people_with_fingers_are_all_new(registry: Registry) -> None:
    rng = np.random.default_rng(8)
    payload = factories.household([50, 51, 52], rng)
    for i, m in enumerate(payload["members"]):
        m["fingers"] = factories.fingers(50 + i, rng)
    first = _enrol(registry, payload)
    assert [m.outcome for m in first.members] == ["no_match"] * 3
    more = factories.household([53, 54], rng)
    for i, m in enumerate(more["members"]):
        m["fingers"] = factories.fingers(53 + i, rng)
    assert _enrol(registry, more).outcome == "no_match"


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda m: m["fingers"][1].update(record="not base64!"), ("fingers", 1, "record"),
         "base64"),
        (lambda m: m["fingers"][1].update(record=base64.b64encode(b"FMR\0 20\0junk").decode()),
         ("fingers", 1, "record"), "19794-2"),
        (lambda m: m["fingers"][1].update(position=3), ("fingers", 1, "record"),
         "no view of finger 3"),
        (lambda m: m["fingers"][1].update(position="left_thumb_x"), ("fingers", 1, "position"),
         "unknown finger"),
        (lambda m: m["fingers"].append(dict(m["fingers"][0])), ("fingers",), "twice"),
        (lambda m: m.update(missing_biometrics=[{"modality": "finger:7", "reason": "other"}]),
         ("missing_biometrics",), "both captured"),
    ],
)
def test_bad_fingers_are_refused_naming_the_field(
    mutate: Any, field: tuple[Any, ...], message: str,
) -> None:
    rng = np.random.default_rng(9)
    member = factories.member(55, rng, fingers=factories.fingers(55, rng))
    mutate(member)
    with pytest.raises(ValidationError) as info:
        HouseholdCreate.model_validate(_alone(member))
    errors = [e for e in info.value.errors() if e["loc"][:2] == ("members", 0)]
    assert any(e["loc"][2:] == field and message in e["msg"] for e in errors), errors


def test_finger_position_by_name_and_lone_unknown_view() -> None:
    rng = np.random.default_rng(10)
    view = factories.FINGERS.capture_view(56, 2, rng)
    unknown = FingerMinutiaeRecord(
        views=(FingerView(position=FingerPosition.UNKNOWN, minutiae=view.minutiae),),
        image_width=320, image_height=400,
    )
    member = factories.member(56, rng, fingers=[
        {"position": "right_index", "record": factories.fingers(56, rng, (2,))[0]["record"]},
        {"position": "LEFT INDEX", "record": base64.b64encode(encode_record(unknown)).decode()},
    ])
    parsed = HouseholdCreate.model_validate(_alone(member)).members[0].fingers
    assert [f.position for f in parsed] == [2, 7]
    # The unknown-position view is stored as the declared finger.
    stored = decode_record(parsed[1].stored_record())
    assert [v.position for v in stored.views] == [FingerPosition.LEFT_INDEX]
    assert stored.views[0].minutiae == view.minutiae


def test_erasure_shreds_finger_records_and_later_enrolments_still_work(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(11)
    first = _enrol(registry, _alone(factories.member(57, rng, fingers=factories.fingers(57, rng))))
    pid = first.members[0].person_id
    assert pid is not None
    with registry.sessions() as s:
        sealed = [r.template for r in s.scalars(select(BiometricRecord).where(
            BiometricRecord.person_id == pid, BiometricRecord.modality.like("finger:%")))]
    assert len(sealed) == 2
    with transaction(registry.sessions) as s:
        report = erase_person(s, person_id=pid, reason="court order 12/2026", actor="dpo")
    drop_from_gallery(registry.gallery, report.records_erased, report.dek_ids)
    assert report.keys_destroyed >= 3  # face + two fingers, each under its own data key
    with registry.sessions() as s:
        mods = list(s.scalars(select(BiometricRecord.modality).where(
            BiometricRecord.person_id == pid)))
        assert mods and set(mods) == {ERASED_MODALITY}
        for blob in sealed:  # old copies (e.g. in a backup) can no longer be opened
            with pytest.raises(Exception, match="destroyed"):
                registry.sealer.open(blob, aad=template_aad(pid, "finger:2"), session=s)
    # The same person enrols again: nothing left to compare with, so no crash and no match.
    again = _enrol(registry, _alone(factories.member(57, rng, fingers=factories.fingers(57, rng))))
    assert again.outcome == "no_match"


def test_recheck_uses_the_fused_rule(registry: Registry) -> None:
    rng = np.random.default_rng(12)
    first = _enrol(registry, _alone(
        factories.member(58, rng, fingers=factories.fingers(58, rng, FOUR))))
    a = first.members[0].person_id
    assert a is not None
    assert recheck_person(registry.sessions, registry.gallery, registry.settings,
                          person_id=a, ctx=CTX) is None  # alone: nothing to find
    # The same person again with a poor face: only the fingers tie the two records.
    weak = factories.member(58, rng, face=factories.face_near(58, 0.45, rng),
                            fingers=factories.fingers(58, rng, FOUR), given_name="Ahmad")
    b = _enrol(registry, _alone(weak, request_adjudication=True)).members[0].person_id
    assert b is not None
    case = recheck_person(registry.sessions, registry.gallery, registry.settings,
                          person_id=b, ctx=CTX)
    assert case is not None and case.kind == "recheck"
    (cand,) = case.candidates
    assert cand["person_id"] == str(a) and cand["rule"] == "fused"
    assert cand["face_score"] < registry.settings.dedup_review_threshold
    assert cand["fused_llr"] >= registry.settings.dedup_fused_review_threshold
    with registry.sessions() as s:
        audited = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "biometrics.fingers_compared")).all()
    assert [e.details["with"] for e in audited] == [[str(a)]]


_VALID = factories.finger_record(59, 2, np.random.default_rng(13))


@settings(max_examples=300, deadline=None, database=None)
@given(
    flips=st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)),
                   max_size=6),
    cut=st.integers(0, len(_VALID)),
    tail=st.binary(max_size=8),
)
def test_mangled_records_are_validation_errors_never_crashes(
    flips: list[tuple[int, int]], cut: int, tail: bytes,
) -> None:
    data = bytearray(_VALID)
    for at, value in flips:
        data[at] = value
    blob = bytes(data[:cut]) + tail
    try:
        capture = FingerCapture(position=2, record=base64.b64encode(blob).decode())
    except ValidationError as exc:
        assert [e["loc"] for e in exc.errors()] == [("record",)]
        return
    view, stored = capture.parsed()  # accepted: usable as stored
    assert view.position == 2 and view.minutiae
    assert decode_record(stored).views == (view,)

"""Adjudication rules: two-person override, linking, judged pairs, refusal path."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from sanad.abis.templates import decode_template, encode_template
from sanad.biometrics.synthetic import FACE_DIM
from sanad.registry.adjudication import (
    CaseClosed,
    SecondAdjudicatorRequired,
    Verdict,
    decide_case,
    get_case,
    judged_different,
    list_cases,
)
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.gallery import template_aad
from sanad.registry.models import (
    AdjudicationCase,
    AuditEvent,
    BiometricException,
    BiometricRecord,
    Person,
)
from sanad.registry.runtime import Registry
from sanad.registry.schemas import EnrolmentResult, HouseholdCreate
from tests import factories

OFFICER = EnrolmentContext(officer="officer-1")


def _enrol(registry: Registry, payload: dict[str, Any]) -> EnrolmentResult:
    return enrol_household(registry.sessions, registry.gallery, registry.settings,
                           data=HouseholdCreate.model_validate(payload), ctx=OFFICER)


def _decide(registry: Registry, case_id: uuid.UUID, verdict: Verdict, actor: str,
            **kw: Any) -> AdjudicationCase:
    with transaction(registry.sessions) as s:
        return decide_case(s, case_id=case_id, verdict=verdict, reason="checked documents",
                           actor=actor, sealer=registry.sealer,
                           match_threshold=registry.settings.dedup_match_threshold, **kw)


def _only_case(registry: Registry) -> AdjudicationCase:
    with registry.sessions() as s:
        cases = s.scalars(select(AdjudicationCase)).all()
    assert len(cases) == 1
    return cases[0]


def test_overriding_a_match_needs_a_second_adjudicator(registry: Registry) -> None:
    rng = np.random.default_rng(1)
    first = _enrol(registry, factories.household([7], rng))
    twin = factories.household([7], rng, request_adjudication=True)
    twin["members"][0]["given_name"] = "Hasan"
    result = _enrol(registry, twin)
    assert result.outcome == "adjudicate"
    case = _only_case(registry)
    assert case.kind == "override" and case.candidates[0]["score"] >= 0.6
    assert case.candidates[0]["person_id"] == str(first.members[0].person_id)

    decided = _decide(registry, case.id, Verdict.DIFFERENT_PERSON, "adj-1")
    assert decided.status == "awaiting_second"
    with registry.sessions() as s:
        pending = s.get(Person, result.members[0].person_id)
        assert pending is not None
        assert pending.status == "pending_adjudication"
    with pytest.raises(SecondAdjudicatorRequired):
        _decide(registry, case.id, Verdict.DIFFERENT_PERSON, "adj-1")
    final = _decide(registry, case.id, Verdict.DIFFERENT_PERSON, "adj-2")
    assert final.status == "resolved" and final.decision == "different_person"
    assert final.first_decided_by == "adj-1" and final.decided_by == "adj-2"
    with pytest.raises(CaseClosed):
        _decide(registry, case.id, Verdict.SAME_PERSON, "adj-3")
    new_id, old_id = result.members[0].person_id, first.members[0].person_id
    assert new_id and old_id
    with transaction(registry.sessions) as s:
        activated = s.get(Person, new_id)
        assert activated is not None
        assert activated.status == "active"
        assert judged_different(s, new_id, old_id)
        old = s.get(Person, old_id)
        assert old is not None
        old.version += 1  # a record changes: the verdict no longer holds
    with registry.sessions() as s:
        assert not judged_different(s, new_id, old_id)
        actions = s.scalars(select(AuditEvent.action)).all()
    assert {"adjudication.first_decision", "adjudication.decide", "person.activate"} <= set(
        actions
    )
    from sanad.registry.sync_models import OutboxEvent

    with registry.sessions() as s:
        events = s.scalars(select(OutboxEvent.event_type)).all()
    # Events are written in the same transactions: two enrolments, one final decision.
    assert sorted(events) == ["adjudication.decided", "household.enrolled", "household.enrolled"]


def _borderline_payload(registry: Registry, enrolled: dict[str, Any], identity: int,
                        rng: np.random.Generator, where: float = 0.5) -> dict[str, Any]:
    """A new person whose face scores inside the configured review band against the head of
    ``enrolled`` (``where`` of the way from the review threshold to the match threshold)."""
    t = registry.settings
    cosine = t.dedup_review_threshold + where * (
        t.dedup_match_threshold - t.dedup_review_threshold
    )
    head = base64.b64decode(enrolled["members"][0]["face"]["template"])
    anchor = decode_template(head, FACE_DIM).astype(np.float64)
    anchor /= np.linalg.norm(anchor)
    other = factories.POPULATION.identity_template(identity + 1000).astype(np.float64)
    other -= other.dot(anchor) * anchor
    other /= np.linalg.norm(other)
    probe = cosine * anchor + np.sqrt(1 - cosine**2) * other
    payload = factories.household([identity + 1000], rng)
    payload["members"][0]["face"]["template"] = base64.b64encode(
        encode_template(probe.astype(np.float32))
    ).decode()
    return payload


def test_same_person_links_and_moves_the_captures(registry: Registry) -> None:
    rng = np.random.default_rng(2)
    first_payload = factories.household([8], rng)
    first = _enrol(registry, first_payload)
    result = _enrol(registry, _borderline_payload(registry, first_payload, 8, rng))
    assert result.outcome == "adjudicate"
    case = _only_case(registry)
    assert case.kind == "biometric"
    with transaction(registry.sessions) as s:
        detail = get_case(s, case.id, actor="adj-1")
        assert detail.candidates[0].person is not None
        # Same biographic data in the factory: the differences list is empty for names.
        assert all(d[0] != "given_name" for d in detail.candidates[0].differences)
    with pytest.raises(Exception, match="link_to"):
        _decide(registry, case.id, Verdict.SAME_PERSON, "adj-1", link_to=uuid.uuid4())
    _decide(registry, case.id, Verdict.SAME_PERSON, "adj-1")  # below match: one is enough
    old_id, new_id = first.members[0].person_id, result.members[0].person_id
    assert old_id is not None
    with registry.sessions() as s:
        linked = s.get(Person, new_id)
        assert linked is not None
        assert linked.status == "linked" and linked.duplicate_of == old_id
        query = select(BiometricRecord).where(BiometricRecord.person_id == old_id)
        records = s.scalars(query).all()
    assert len(records) == 2  # the identity now holds both captures, each sealed to it
    for rec in records:
        raw = registry.sealer.open(rec.template, aad=template_aad(old_id, rec.modality))
        assert decode_template(raw, 128).shape == (128,)


def test_refused_biometrics_go_to_mandatory_adjudication_with_biographic_candidates(
    registry: Registry,
) -> None:
    rng = np.random.default_rng(3)
    first = _enrol(registry, factories.household([9], rng))
    payload = factories.household([10], rng)
    member = payload["members"][0]
    del member["face"]
    member["biometrics_refused_reason"] = "religious objection to photographs"
    member["given_name"] = "Muhammad"  # the first enrolment spelled it Mohammad
    member["family_name"] = "Al Rashid"
    result = _enrol(registry, payload)
    assert result.outcome == "adjudicate"
    outcome = result.members[0]
    assert outcome.outcome == "adjudicate"
    assert [c.source for c in outcome.candidates] == ["biographic"]
    assert outcome.candidates[0].person_id == first.members[0].person_id
    case = _only_case(registry)
    assert case.kind == "refusal"
    with registry.sessions() as s:
        exc = s.scalars(select(BiometricException)).all()
        person = s.get(Person, outcome.person_id)
    assert [(e.modality, e.reason) for e in exc] == [("all", "refused")]
    assert person is not None
    assert person.biometrics_refused_reason == "religious objection to photographs"


def test_missing_fingers_are_recorded_per_finger(registry: Registry) -> None:
    rng = np.random.default_rng(4)
    payload = factories.household([11], rng)
    payload["members"][0]["missing_biometrics"] = [
        {"modality": "finger:7", "reason": "amputated"},
        {"modality": "finger:8", "reason": "bandaged", "note": "burn, recapture in 3 weeks"},
    ]
    result = _enrol(registry, payload)
    assert result.outcome == "no_match"
    with registry.sessions() as s:
        rows = s.scalars(select(BiometricException).order_by(BiometricException.modality)).all()
    assert [(r.modality, r.reason) for r in rows] == [("finger:7", "amputated"),
                                                     ("finger:8", "bandaged")]


def test_queue_lists_open_cases_oldest_first(registry: Registry) -> None:
    rng = np.random.default_rng(5)
    first_12, first_13 = factories.household([12], rng), factories.household([13], rng)
    _enrol(registry, first_12)
    _enrol(registry, first_13)
    _enrol(registry, _borderline_payload(registry, first_12, 12, rng, where=0.3))
    _enrol(registry, _borderline_payload(registry, first_13, 13, rng, where=0.7))
    with transaction(registry.sessions) as s:
        cases = list_cases(s, actor="adj-1")
    assert len(cases) == 2
    assert cases[0].created_at <= cases[1].created_at
    assert all(c.status == "open" and c.best_score is not None for c in cases)


def test_a_judged_pair_does_not_come_back_unless_a_record_changes(registry: Registry) -> None:
    from sanad.registry.enrolment import recheck_person

    rng = np.random.default_rng(6)
    first_payload = factories.household([14], rng)
    first = _enrol(registry, first_payload)
    second = _enrol(registry, _borderline_payload(registry, first_payload, 14, rng))
    case = _only_case(registry)
    _decide(registry, case.id, Verdict.DIFFERENT_PERSON, "adj-1")
    new_id, old_id = second.members[0].person_id, first.members[0].person_id
    assert new_id and old_id

    def recheck() -> AdjudicationCase | None:
        return recheck_person(registry.sessions, registry.gallery, registry.settings,
                              person_id=new_id, ctx=OFFICER)

    assert recheck() is None
    with transaction(registry.sessions) as s:
        old = s.get(Person, old_id)
        assert old is not None
        old.version += 1
    reopened = recheck()
    assert reopened is not None and reopened.kind == "recheck"
    assert reopened.candidates[0]["person_id"] == str(old_id)


FACES = Path(__file__).resolve().parents[1] / "data" / "faces"


def _photo(name: str) -> str:
    return base64.b64encode((FACES / name).read_bytes()).decode()


def test_enrolment_from_photos_catches_the_same_face(registry: Registry) -> None:
    """Real photographs through the real face model: a second photo of the same man is not a
    new identity; the photo is kept, sealed, for the card."""
    from sanad.registry.photos import person_photo

    rng = np.random.default_rng(7)
    payload = factories.household([15], rng)
    payload["members"][0]["face"] = {"photo": _photo("obama.jpg")}
    first = _enrol(registry, payload)
    assert first.outcome == "no_match"
    pid = first.members[0].person_id
    assert pid is not None
    with registry.sessions() as s:
        assert person_photo(s, registry.sealer, pid) == (FACES / "obama.jpg").read_bytes()
    again = factories.household([16], rng)
    again["members"][0]["face"] = {"photo": _photo("obama2.jpg")}
    result = _enrol(registry, again)
    assert result.outcome in {"duplicate", "adjudicate"}
    assert result.members[0].candidates[0].person_id == pid
    other = factories.household([17], rng)
    other["members"][0]["face"] = {"photo": _photo("biden.jpg")}
    other["members"][0]["given_name"] = "Joseph"
    assert _enrol(registry, other).outcome == "no_match"


def test_a_photo_without_a_face_is_refused_with_the_field_named(registry: Registry) -> None:
    from sanad.errors import InvalidInput

    payload = factories.household([18], np.random.default_rng(8))
    payload["members"][0]["face"] = {"photo": _photo("coffee.jpg")}
    with pytest.raises(InvalidInput) as err:
        _enrol(registry, payload)
    assert err.value.field == "members.0.face.photo" and "no_face" in err.value.message
    with registry.sessions() as s:
        assert s.scalar(select(Person)) is None


def test_a_field_station_never_issues_cards(registry: Registry) -> None:
    from sanad.errors import CardNotIssuable
    from sanad.registry.cards import issue_card

    result = _enrol(registry, factories.household([19], np.random.default_rng(9)))
    person_id = result.members[0].person_id
    assert person_id is not None
    station = registry.settings.model_copy(update={"station_mode": True})
    with transaction(registry.sessions) as s, pytest.raises(CardNotIssuable, match="station"):
        issue_card(s, person_id=person_id, officer="o", key=registry.issuer_key,
                   sealer=registry.sealer, settings=station)

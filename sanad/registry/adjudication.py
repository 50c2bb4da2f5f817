"""Adjudication: a human decides whether a flagged enrolment is someone already registered.

Rules built in (lessons from other registries' trackers):
- "same person" links the new record to the existing identity (status `linked`,
  `duplicate_of`), and moves its biometric captures onto that identity (re-sealed to it);
  no second identity ever becomes active.
- "different person" activates the new record and remembers every candidate pair as judged
  at both records' current versions: the pair is not raised again unless either changes.
- Overriding a candidate scoring at or above the match threshold as "different" needs a
  second, different adjudicator (two-person rule); until then the case waits in
  `awaiting_second` and the person stays pending.
- Every step is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.errors import InvalidInput, NotFound, SanadError
from sanad.notify.outbox import emit
from sanad.registry.db import utcnow
from sanad.registry.gallery import FACE, template_aad
from sanad.registry.models import (
    AdjudicatedPair,
    AdjudicationCase,
    BiometricRecord,
    HeldCapture,
    Person,
    PersonStatus,
)
from sanad.registry.sealing import TemplateSealer

# A re-capture that did not verify, held for an adjudicator (`sanad.registry.recapture`):
# "same person" accepts it onto the person (two adjudicators), "different person" discards it.
HELD_CAPTURE_KIND = "recapture"


class CaseStatus(StrEnum):
    OPEN = "open"
    AWAITING_SECOND = "awaiting_second"
    RESOLVED = "resolved"


class Verdict(StrEnum):
    SAME_PERSON = "same_person"
    DIFFERENT_PERSON = "different_person"


class CaseClosed(SanadError):
    """The case is already resolved."""

    code = "case_closed"
    status = 409


class SecondAdjudicatorRequired(SanadError):
    """The two-person rule needs a different adjudicator for the second decision."""

    code = "second_adjudicator_required"
    status = 409


_COMPARED = ("given_name", "family_name", "father_name", "given_name_ar", "family_name_ar",
             "father_name_ar", "date_of_birth", "dob_precision", "sex", "nationality",
             "province", "district")


@dataclass(frozen=True)
class CaseSummary:
    id: uuid.UUID
    person_id: uuid.UUID
    person_name: str
    kind: str
    status: str
    best_score: float | None
    needs_second: bool
    created_at: datetime
    # Strongest fused face + fingerprint evidence (LLR) among the candidates, when any pair
    # compared fingers: the face score alone can look low for a fingerprint-driven case.
    best_fused_llr: float | None = None


@dataclass(frozen=True)
class CandidateView:
    person: Person | None
    score: float
    source: str
    member_no: int | None
    differences: list[tuple[str, str, str]] = field(default_factory=list)
    # Per-modality evidence when the pair was judged by the fused rule (docs/fusion.md).
    face_score: float | None = None
    finger_llr: float | None = None
    fingers_compared: int = 0
    fused_llr: float | None = None
    rule: str | None = None
    # Which first stage proposed the candidate: face, finger (the pre-filter) or both.
    via: str | None = None


@dataclass(frozen=True)
class CaseDetail:
    case: AdjudicationCase
    person: Person
    candidates: list[CandidateView]


def _best(candidates: list[dict[str, Any]]) -> float | None:
    scores = [float(c["score"]) for c in candidates if c.get("source", "face") != "biographic"]
    return max(scores) if scores else None


def _best_fused(candidates: list[dict[str, Any]]) -> float | None:
    llrs = [float(c["fused_llr"]) for c in candidates if c.get("fused_llr") is not None]
    return max(llrs) if llrs else None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def list_cases(
    session: Session, *, actor: str, status: str | None = CaseStatus.OPEN, limit: int = 50,
    offset: int = 0,
) -> list[CaseSummary]:
    """Cases in a queue (oldest first: first come, first served), audited as one read."""
    query = select(AdjudicationCase, Person).join(Person, Person.id == AdjudicationCase.person_id)
    if status:
        query = query.where(AdjudicationCase.status == status)
    rows = session.execute(
        query.order_by(AdjudicationCase.created_at, AdjudicationCase.id).limit(limit)
        .offset(offset)
    ).all()
    audit.record(session, actor=actor, action="adjudication.list", subject_type="adjudication_case",
                 subject_id="*", details={"ids": [str(c.id) for c, _ in rows]})
    return [
        CaseSummary(
            id=c.id, person_id=p.id, person_name=f"{p.given_name} {p.family_name}", kind=c.kind,
            status=c.status, best_score=_best(c.candidates), needs_second=c.needs_second,
            created_at=c.created_at, best_fused_llr=_best_fused(c.candidates),
        )
        for c, p in rows
    ]


def count_cases(session: Session, *, status: str = CaseStatus.OPEN) -> int:
    return int(session.scalar(
        select(func.count()).select_from(AdjudicationCase).where(AdjudicationCase.status == status)
    ) or 0)


def _differences(a: Person, b: Person) -> list[tuple[str, str, str]]:
    out = []
    for name in _COMPARED:
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            out.append((name, str(va), str(vb)))
    return out


def get_case(session: Session, case_id: uuid.UUID, *, actor: str) -> CaseDetail:
    """A case with the flagged person, each candidate, scores and biographic differences."""
    case = session.get(AdjudicationCase, case_id)
    if case is None:
        raise NotFound(f"no adjudication case {case_id}")
    person = session.get(Person, case.person_id)
    assert person is not None  # FK
    views = []
    for c in case.candidates:
        other = session.get(Person, uuid.UUID(c["person_id"])) if c.get("person_id") else None
        views.append(CandidateView(
            person=other, score=float(c["score"]), source=c.get("source", "face"),
            member_no=c.get("member_no"),
            differences=_differences(person, other) if other else [],
            face_score=_optional_float(c.get("face_score")),
            finger_llr=_optional_float(c.get("finger_llr")),
            fingers_compared=int(c.get("fingers_compared") or 0),
            fused_llr=_optional_float(c.get("fused_llr")), rule=c.get("rule"),
            via=c.get("via"),
        ))
    audit.record(session, actor=actor, action="adjudication.read",
                 subject_type="adjudication_case", subject_id=str(case.id),
                 details={"person_id": str(person.id),
                          "candidates": [str(v.person.id) for v in views if v.person]})
    return CaseDetail(case=case, person=person, candidates=views)


def _link(session: Session, case: AdjudicationCase, person: Person, target: Person,
          sealer: TemplateSealer, actor: str) -> None:
    """Same person: the new record points at the identity; its captures move onto it, and
    any card it already had (a recheck or first-capture case on an active record) is revoked
    (`duplicate`): one person, one identity, one card. Its other undecided cases are closed."""
    from sanad.registry.cards import refresh_face_outdated, revoke_person_cards

    revoke_person_cards(session, person_id=person.id, reason="duplicate", officer=actor)
    _close_others(session, case, person, target, actor)
    person.status = PersonStatus.LINKED
    person.duplicate_of = target.id
    person.version += 1
    person.updated_at = utcnow()
    records = select(BiometricRecord).where(BiometricRecord.person_id == person.id)
    moved_face = False
    for rec in session.scalars(records):
        raw = sealer.open(rec.template, aad=template_aad(person.id, rec.modality))
        rec.template = sealer.seal(raw, aad=template_aad(target.id, rec.modality))
        rec.person_id = target.id
        moved_face = moved_face or rec.modality == FACE
    if moved_face:  # the identity's newest face may now be the linked record's capture
        refresh_face_outdated(session, target.id)
    target.version += 1
    target.updated_at = utcnow()


def undecided_cases(session: Session, person_id: uuid.UUID, *,
                    besides: uuid.UUID | None = None) -> list[AdjudicationCase]:
    """The person's cases not yet resolved (open or awaiting a second decision), oldest
    first; ``besides`` leaves one case out (the one being decided)."""
    query = (select(AdjudicationCase)
             .where(AdjudicationCase.person_id == person_id,
                    AdjudicationCase.status != CaseStatus.RESOLVED)
             .order_by(AdjudicationCase.created_at))
    if besides is not None:
        query = query.where(AdjudicationCase.id != besides)
    return list(session.scalars(query))


def _close_others(session: Session, case: AdjudicationCase, person: Person, target: Person,
                  actor: str) -> None:
    """The record's other undecided cases have nothing left to decide once it is linked:
    closed (decision ``closed``, audited); a capture one of them held is discarded."""
    for other in undecided_cases(session, person.id, besides=case.id):
        other.status = CaseStatus.RESOLVED
        other.decision = "closed"
        other.reason = (f"the record was linked to {target.registration_number} "
                        f"by case {case.id}")
        other.decided_by, other.decided_at = actor, utcnow()
        held = session.scalars(delete(HeldCapture).where(HeldCapture.case_id == other.id)
                               .returning(HeldCapture.id)).all()
        audit.record(session, actor=actor, action="adjudication.closed",
                     subject_type="adjudication_case", subject_id=str(other.id),
                     details={"person_id": str(person.id), "linked_to": str(target.id),
                              "by_case": str(case.id),
                              "held_capture_discarded": bool(held)})


def _activate(session: Session, case: AdjudicationCase, person: Person) -> None:
    # Only a record waiting for this decision becomes active, and only when no other case on
    # it is still undecided (an imported record may have a biographic case and, after its
    # first capture, a biometric one). An imported record judged "different" that still has
    # no biometrics stays pending_biometrics (no card) until its first capture; a record
    # linked or closed meanwhile by another case keeps that status.
    if (person.status == PersonStatus.PENDING_ADJUDICATION
            and not undecided_cases(session, person.id, besides=case.id)):
        person.status = PersonStatus.ACTIVE
    person.updated_at = utcnow()
    for c in case.candidates:
        if not c.get("person_id"):
            continue
        other = session.get(Person, uuid.UUID(c["person_id"]))
        if other is None or other.id == person.id:
            continue
        a, b = sorted((person, other), key=lambda p: str(p.id))
        pair = session.get(AdjudicatedPair, (a.id, b.id))
        if pair is None:
            session.add(AdjudicatedPair(person_a=a.id, person_b=b.id, version_a=a.version,
                                        version_b=b.version, case_id=case.id))
        else:
            pair.version_a, pair.version_b, pair.case_id = a.version, b.version, case.id


def decide_case(
    session: Session,
    *,
    case_id: uuid.UUID,
    verdict: Verdict,
    reason: str,
    actor: str,
    sealer: TemplateSealer,
    match_threshold: float,
    link_to: uuid.UUID | None = None,
) -> AdjudicationCase:
    """Record an adjudicator's verdict (see the module docstring for the rules). Caller commits."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a decision needs a reason", field="reason")
    case = session.get(AdjudicationCase, case_id, with_for_update=True)
    if case is None:
        raise NotFound(f"no adjudication case {case_id}")
    if case.status == CaseStatus.RESOLVED:
        raise CaseClosed(f"case {case_id} was resolved already ({case.decision})")
    person = session.get(Person, case.person_id)
    assert person is not None
    if case.status == CaseStatus.AWAITING_SECOND and case.first_decided_by == actor:
        raise SecondAdjudicatorRequired(
            "the second decision on this case (an overridden match, or a held capture to "
            "accept) must come from another adjudicator"
        )
    if case.kind == HELD_CAPTURE_KIND:
        from sanad.registry.recapture import decide_held

        decide_held(session, case=case, person=person, verdict=verdict, reason=reason,
                    actor=actor, sealer=sealer)
        return case
    high = [c for c in case.candidates
            if c.get("source", "face") != "biographic"
            and (float(c["score"]) >= match_threshold or c.get("at_match_threshold"))]
    if (verdict == Verdict.DIFFERENT_PERSON and high
            and case.status == CaseStatus.OPEN):
        first_decision(session, case, person, verdict=verdict, reason=reason, actor=actor,
                       best_score=round(max(float(c["score"]) for c in high), 4))
        return case
    target: Person | None = None
    if verdict == Verdict.SAME_PERSON:
        known = [uuid.UUID(c["person_id"]) for c in case.candidates if c.get("person_id")]
        target_id = link_to or (known[0] if known else None)
        if target_id is None or target_id not in known or target_id == person.id:
            raise InvalidInput("link_to must name one of the case's candidates", field="link_to")
        target = session.get(Person, target_id)
        if target is None:
            raise NotFound(f"no person {target_id}")
        if target.status == PersonStatus.LINKED and target.duplicate_of:
            target = session.get(Person, target.duplicate_of) or target
        _link(session, case, person, target, sealer, actor)
    else:
        _activate(session, case, person)
    resolve(session, case, person, verdict=verdict, reason=reason, actor=actor, target=target)
    audit.record(session, actor=actor, action=f"person.{'link' if target else 'activate'}",
                 subject_type="person", subject_id=str(person.id),
                 details={"case_id": str(case.id)})
    return case


def first_decision(session: Session, case: AdjudicationCase, person: Person, *,
                   verdict: Verdict, reason: str, actor: str, best_score: float | None) -> None:
    """Record the first of two decisions (two-person rule): the case waits for another
    adjudicator in `awaiting_second`."""
    case.status = CaseStatus.AWAITING_SECOND
    case.needs_second = True
    case.first_decision, case.first_reason = verdict.value, reason
    case.first_decided_by, case.first_decided_at = actor, utcnow()
    audit.record(session, actor=actor, action="adjudication.first_decision",
                 subject_type="adjudication_case", subject_id=str(case.id),
                 details={"verdict": verdict.value, "person_id": str(person.id),
                          "best_score": best_score})


def resolve(session: Session, case: AdjudicationCase, person: Person, *, verdict: Verdict,
            reason: str, actor: str, target: Person | None = None) -> None:
    """Close the case with its final verdict: recorded, audited, announced."""
    case.status = CaseStatus.RESOLVED
    case.decision, case.reason = verdict.value, reason
    case.decided_by, case.decided_at = actor, utcnow()
    audit.record(session, actor=actor, action="adjudication.decide",
                 subject_type="adjudication_case", subject_id=str(case.id),
                 details={"verdict": verdict.value, "person_id": str(person.id),
                          "linked_to": str(target.id) if target else None,
                          "second_of": case.first_decided_by})
    emit(session, event_type="adjudication.decided", subject_id=case.id, payload={
        "case_id": str(case.id), "person_id": str(person.id), "verdict": verdict.value,
        "linked_to": str(target.id) if target else None,
    })


def judged_different(session: Session, a: uuid.UUID, b: uuid.UUID) -> bool:
    """True while an adjudicator's "not the same" verdict on (a, b) still holds: neither
    record has changed since (their versions are those the verdict saw)."""
    first, second = sorted((a, b), key=str)
    pair = session.get(AdjudicatedPair, (first, second))
    if pair is None:
        return False
    pa, pb = session.get(Person, first), session.get(Person, second)
    return bool(pa and pb and pa.version == pair.version_a and pb.version == pair.version_b)

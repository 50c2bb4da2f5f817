"""Re-capture: a fresh face and/or fingers for a person already enrolled (docs/recapture.md).

Cards are renewed every two years, children's faces change, a finger recorded as bandaged at
enrolment heals. A re-capture is stored only when it **verifies** against what is enrolled: the
new face against the person's enrolled face templates, the new fingers against their enrolled
fingers at the same positions, judged by the very rule that calls two enrolments the same person
(`judge_pair`: face cosine ≥ the match threshold, or with fingers the fused evidence ≥ the fused
match threshold). Anything less is refused (409, audited, nothing stored): a re-capture must
never be a way to put someone else's biometrics on a record. A person with nothing comparable
enrolled (biometrics refused at enrolment, a face now offered where only fingers were taken and
no finger is given) cannot be re-captured this way.

A verified capture is sealed and added beside the earlier ones (history is kept; the newest
face template goes on the next card, the newest photo is printed, the newest finger per position
is matched), the recorded exceptions it replaces are cleared, the person's record version moves
on (so pairs an adjudicator judged "not the same" are looked at again), and the person is
searched against the gallery again (`recheck_person`): a resemblance to someone else opens a
`recheck` case. One transaction stores the capture; the gallery catches up from the database,
so an index never runs ahead of it.

**First capture.** A person with no biometric record at all — imported from a legacy register
(`pending_biometrics`), or enrolled after refusing biometrics — has nothing to verify against.
Their first capture is searched against the whole gallery exactly as an enrolling member is
(`search_capture`), and stored either way. No candidate: an imported person becomes `active`
(card-eligible). Candidates, or fingers without a face: a `first_capture` (or `face_exception`)
adjudication case; an imported person waits in `pending_adjudication` until it is decided
("same person" links the record to the existing identity and moves the captures onto it).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from sanad import audit
from sanad.abis.decision import Outcome, judge_pair
from sanad.abis.finger_stage import PreparedFingers, second_stage
from sanad.abis.fusion import FusedScore, fuse
from sanad.abis.templates import encode_template
from sanad.biometrics.finger import FingerComparison, FingerPosition, FingerView, prepare
from sanad.config import Settings
from sanad.errors import Conflict, InvalidInput, NotFound
from sanad.notify.outbox import emit
from sanad.registry.adjudication import (
    HELD_CAPTURE_KIND,
    CaseStatus,
    Verdict,
    first_decision,
    resolve,
    undecided_cases,
)
from sanad.registry.captures import REFUSED
from sanad.registry.cards import outdated_cards, refresh_face_outdated
from sanad.registry.db import transaction, utcnow
from sanad.registry.enrolment import (
    EnrolmentContext,
    _face_vectors,
    _thresholds,
    audit_fingers_compared,
    enrolment_lock,
    face_probe,
    open_case,
    parse_fingers,
    recheck_person,
    seal_captures,
    search_capture,
)
from sanad.registry.fingers import finger_modality, load_candidate_fingers
from sanad.registry.gallery import FACE, PHOTO, Gallery, template_aad
from sanad.registry.models import (
    AdjudicationCase,
    BiometricException,
    BiometricRecord,
    HeldCapture,
    Person,
    PersonStatus,
)
from sanad.registry.schemas import BiometricsUpdate, FaceCapture, RecaptureResult
from sanad.registry.sealing import TemplateSealer


@dataclass(frozen=True)
class _Verification:
    face: float | None
    fused: FusedScore
    outcome: Outcome
    rule: str


def _verify(
    session: Session, gallery: Gallery, settings: Settings, person: Person,
    probe: np.ndarray | None, fingers: PreparedFingers,
) -> _Verification:
    """The new capture against the person's enrolled face templates and fingers."""
    face: float | None = None
    if probe is not None:
        enrolled = _face_vectors(session, gallery, [person.id]).get(person.id, [])
        face = max((float(v @ probe) for _, v in enrolled), default=None)
    comparison = FingerComparison({})
    if fingers:
        theirs = load_candidate_fingers(session, gallery.sealer, [person.id],
                                        cache_size=settings.finger_cache_size).get(person.id)
        if theirs:
            (result,) = second_stage([0], fingers, lambda _: theirs)
            comparison = result.comparison
    fused = fuse(face, comparison)
    outcome, rule = judge_pair(face, fused, _thresholds(settings))
    return _Verification(face, fused, outcome, rule)


def recapture_person(
    sessions: sessionmaker[Session],
    gallery: Gallery,
    settings: Settings,
    *,
    person_id: uuid.UUID,
    data: BiometricsUpdate,
    ctx: EnrolmentContext,
) -> RecaptureResult:
    """Verify a fresh capture against the person's enrolled biometrics; store it when it
    verifies, then search the person again. ``Conflict`` (nothing stored) when it does not.
    A person with no biometrics yet gets a supervised first capture instead (module doc)."""
    if settings.station_mode:
        # Sync carries new households and name/phone corrections only: a capture stored on a
        # field kit would never reach the centre's record or gallery.
        raise Conflict("field stations do not capture enrolled people again (sync would not "
                       "carry it to the centre): capture at the centre")
    probe, quality = face_probe(data.face, "face")
    stored_fingers, views = parse_fingers(data.fingers)
    with gallery.lock:
        with transaction(sessions) as session:
            enrolment_lock(session)
            gallery.catch_up(session)
            person = session.get(Person, person_id, with_for_update=True)
            if person is None:
                raise NotFound(f"no person {person_id}")
            first = session.scalar(select(BiometricRecord.id).where(
                BiometricRecord.person_id == person_id).limit(1)) is None
            if person.status not in (_FIRST_CAPTURE_STATUSES if first else _ACTIVE):
                raise Conflict(f"person is {person.status}: only an active person's "
                               "biometrics can be captured again")
            result: RecaptureResult | str
            if first:
                result = _first_capture(session, gallery, settings, person, data, ctx,
                                        probe, quality, stored_fingers, views)
            else:
                result = _verified(session, gallery, settings, person, data, ctx,
                                   probe, quality, stored_fingers, views)
        if isinstance(result, str):  # refused: audited (committed above), nothing stored
            raise Conflict(result)
        if result.held:  # nothing stored: nothing to search again
            return result
        if first:  # searched already: the index only follows the commit
            with transaction(sessions) as session:
                gallery.catch_up(session)
            return result
        case = recheck_person(sessions, gallery, settings, person_id=person_id, ctx=ctx)
    return result.model_copy(update={"case_id": None if case is None else case.id})


def _verified(
    session: Session, gallery: Gallery, settings: Settings, person: Person,
    data: BiometricsUpdate, ctx: EnrolmentContext, probe: np.ndarray | None, quality: float,
    stored_fingers: dict[FingerPosition, tuple[bytes, int]],
    views: dict[FingerPosition, FingerView],
) -> RecaptureResult | str:
    """Verify the capture 1:1 and store it; else audit the refusal and return why."""
    check = _verify(session, gallery, settings, person, probe,
                    {pos: prepare(v) for pos, v in views.items()})
    details = _details(data, probe, views) | {
        "face_score": None if check.face is None else round(check.face, 4),
        "finger_llr": (None if check.fused.finger_llr is None
                       else round(check.fused.finger_llr, 3)),
        "fingers_compared": check.fused.fingers_compared,
    }
    if check.outcome != Outcome.DUPLICATE:
        refusal = ("nothing enrolled to verify the new capture against"
                   if check.face is None and check.fused.fingers_compared == 0 else
                   "the new capture does not match the person's enrolled biometrics")
        if data.request_adjudication:
            photo = data.face is not None and data.face.photo is not None
            return _hold(session, gallery, settings, person, data, ctx, probe, quality, views,
                         check, details | {"why": refusal, "photo": photo})
        audit.record(session, actor=ctx.officer, action="biometrics.recapture_refused",
                     subject_type="person", subject_id=str(person.id),
                     details={**details, "why": refusal})
        return refusal
    stored, cleared = _store(session, gallery.sealer, person, data, probe, quality,
                             stored_fingers)
    _changed(session, person, ["biometrics"])
    audit.record(session, actor=ctx.officer, action="biometrics.recaptured",
                 subject_type="person", subject_id=str(person.id),
                 details={**details, "rule": check.rule, "stored": stored,
                          "exceptions_cleared": cleared, "version": person.version})
    return RecaptureResult(
        person_id=person.id, verified_by="fused" if check.rule == "fused" else "face",
        face_score=check.face, finger_llr=check.fused.finger_llr,
        fingers_compared=check.fused.fingers_compared, stored=stored,
        exceptions_cleared=cleared, case_id=None, version=person.version,
        status=person.status, card_to_reissue=_card_to_reissue(session, person, stored),
    )


_ACTIVE = (PersonStatus.ACTIVE,)
# A first capture is also the biometric enrolment of a record imported from a legacy register.
_FIRST_CAPTURE_STATUSES = (PersonStatus.ACTIVE, PersonStatus.PENDING_BIOMETRICS)


def _details(data: BiometricsUpdate, probe: np.ndarray | None,
             views: dict[FingerPosition, FingerView]) -> dict[str, object]:
    """What the audit trail says about any capture: why, and what was offered."""
    return {"reason": data.reason, "note": data.note,
            "offered": (["face"] if probe is not None else [])
            + [finger_modality(p) for p in sorted(views)]}


def _changed(session: Session, person: Person, fields: list[str]) -> None:
    """The record changed: its version moves on and subscribers learn which fields changed
    (names only, never biometrics)."""
    person.version += 1
    person.updated_at = utcnow()
    emit(session, event_type="person.updated", subject_id=person.id,
         payload={"person_id": str(person.id), "version": person.version, "fields": fields})


def _first_capture(
    session: Session, gallery: Gallery, settings: Settings, person: Person,
    data: BiometricsUpdate, ctx: EnrolmentContext, probe: np.ndarray | None, quality: float,
    stored_fingers: dict[FingerPosition, tuple[bytes, int]],
    views: dict[FingerPosition, FingerView],
) -> RecaptureResult:
    """Search the capture 1:N, store it, and open a case or activate (module doc)."""
    found = search_capture(session, gallery, settings, probe=probe, views=views)
    audit_fingers_compared(session, ctx, person.id, "first_capture", found.fingers_read)
    stored, cleared = _store(session, gallery.sealer, person, data, probe, quality,
                             stored_fingers, first=True)
    case: AdjudicationCase | None = None
    if found.outcome != Outcome.NO_MATCH:
        kind = "first_capture" if found.kind == "biometric" else found.kind
        case = open_case(session, person, kind, found.candidates, ctx)
    before = person.status
    if person.status == PersonStatus.PENDING_BIOMETRICS:
        person.status = (PersonStatus.PENDING_ADJUDICATION
                         if undecided_cases(session, person.id) else PersonStatus.ACTIVE)
    _changed(session, person, ["biometrics"] + (["status"] if person.status != before else []))
    audit.record(session, actor=ctx.officer, action="biometrics.first_capture",
                 subject_type="person", subject_id=str(person.id),
                 details=_details(data, probe, views) | {
                     "outcome": found.outcome.value, "stored": stored,
                     "exceptions_cleared": cleared,
                     "candidates": [str(c.person_id) for c in found.candidates if c.person_id],
                     "case_id": None if case is None else str(case.id),
                     "status": {"from": before, "to": person.status},
                     "version": person.version})
    return RecaptureResult(
        person_id=person.id, verified_by=None, first_capture=True, face_score=None,
        finger_llr=None, fingers_compared=0, stored=stored, exceptions_cleared=cleared,
        case_id=None if case is None else case.id, version=person.version,
        status=person.status, card_to_reissue=_card_to_reissue(session, person, stored),
    )


def _held_aad(person_id: uuid.UUID) -> bytes:
    return template_aad(person_id, "held")


def _hold(
    session: Session, gallery: Gallery, settings: Settings, person: Person,
    data: BiometricsUpdate, ctx: EnrolmentContext, probe: np.ndarray | None, quality: float,
    views: dict[FingerPosition, FingerView], check: _Verification, details: dict[str, object],
) -> RecaptureResult:
    """Hold a capture that did not verify for an adjudicator: sealed, outside the gallery,
    with a `recapture` case listing anyone else the capture resembles (searched 1:N)."""
    found = search_capture(session, gallery, settings, probe=probe, views=views)
    others = [c for c in found.candidates if c.person_id != person.id]
    audit_fingers_compared(session, ctx, person.id, "held_capture",
                           found.fingers_read - {person.id})
    case = open_case(session, person, HELD_CAPTURE_KIND, others, ctx)
    # The face is kept as its template (no second run of the face model at the decision).
    face = None if probe is None or data.face is None else FaceCapture(
        template=base64.b64encode(encode_template(probe)).decode(), quality=quality,
        photo=data.face.photo)
    held = data.model_copy(update={"face": face, "request_adjudication": False})
    session.add(HeldCapture(
        person_id=person.id, case_id=case.id, officer=ctx.officer, verification=details,
        payload=gallery.sealer.seal(held.model_dump_json().encode(), aad=_held_aad(person.id)),
    ))
    audit.record(session, actor=ctx.officer, action="biometrics.recapture_held",
                 subject_type="person", subject_id=str(person.id),
                 details=details | {"case_id": str(case.id),
                                    "candidates": [str(c.person_id) for c in others
                                                   if c.person_id]})
    return RecaptureResult(
        person_id=person.id, held=True, verified_by=None, face_score=check.face,
        finger_llr=check.fused.finger_llr, fingers_compared=check.fused.fingers_compared,
        stored=[], exceptions_cleared=[], case_id=case.id, version=person.version,
        status=person.status,
    )


def held_photo(session: Session, sealer: TemplateSealer, case_id: uuid.UUID, *, actor: str
               ) -> bytes:
    """The photo of the capture a `recapture` case holds (audited read); ``NotFound`` when
    there is none (no photo was sent, or the case is decided)."""
    found = held_capture(session, sealer, case_id, actor=actor)
    photo = None if found is None or found[1].face is None else found[1].face.photo_bytes()
    if photo is None:
        raise NotFound(f"case {case_id} holds no photo")
    return photo


def held_capture(session: Session, sealer: TemplateSealer, case_id: uuid.UUID, *, actor: str
                 ) -> tuple[HeldCapture, BiometricsUpdate] | None:
    """The capture a `recapture` case holds, opened for the adjudicator (audited read); None
    once the case is decided (or the person erased)."""
    held = session.scalar(select(HeldCapture).where(HeldCapture.case_id == case_id))
    if held is None:
        return None
    audit.record(session, actor=actor, action="biometrics.held_read", subject_type="person",
                 subject_id=str(held.person_id), details={"case_id": str(case_id)})
    return held, _open_held(session, sealer, held)


def _open_held(session: Session, sealer: TemplateSealer, held: HeldCapture) -> BiometricsUpdate:
    """The held capture, unsealed (the caller audits why it was opened)."""
    return BiometricsUpdate.model_validate_json(
        sealer.open(held.payload, aad=_held_aad(held.person_id), session=session))


def decide_held(
    session: Session, *, case: AdjudicationCase, person: Person, verdict: Verdict, reason: str,
    actor: str, sealer: TemplateSealer,
) -> None:
    """An adjudicator's verdict on a held capture (called by `decide_case`, which checked the
    case is undecided and a second decision comes from someone else). "Same person" accepts
    the capture onto the person — an override of a failed verification, so it takes two
    adjudicators; "different person" discards it at once."""
    held = session.scalar(select(HeldCapture).where(HeldCapture.case_id == case.id))
    if verdict == Verdict.SAME_PERSON:
        if held is None:
            raise InvalidInput("the held capture no longer exists (the person's biometrics "
                               "were erased): it can only be rejected", field="verdict")
        if person.status != PersonStatus.ACTIVE:
            raise Conflict(f"person is {person.status}: a held capture is accepted only onto "
                           "an active person")
        if case.status == CaseStatus.OPEN:
            first_decision(session, case, person, verdict=verdict, reason=reason, actor=actor,
                           best_score=held.verification.get("face_score"))
            return
        # New biometric records: serialised with enrolment, so gallery ids commit in order
        # (the index's watermark never skips one), and the record version moves on safely.
        enrolment_lock(session)
        session.refresh(person, with_for_update=True)
        data = _open_held(session, sealer, held)
        probe, quality = face_probe(data.face, "face")
        stored_fingers, _ = parse_fingers(data.fingers)
        stored, cleared = _store(session, sealer, person, data, probe, quality, stored_fingers)
        _changed(session, person, ["biometrics"])
        audit.record(session, actor=actor, action="biometrics.recaptured",
                     subject_type="person", subject_id=str(person.id),
                     details={"reason": data.reason, "note": data.note, "rule": "adjudicated",
                              "case_id": str(case.id), "officer": held.officer,
                              "accepted_by": [case.first_decided_by, actor], "stored": stored,
                              "exceptions_cleared": cleared, "version": person.version})
    else:
        audit.record(session, actor=actor, action="biometrics.recapture_rejected",
                     subject_type="person", subject_id=str(person.id),
                     details={"case_id": str(case.id), "reason": reason})
    if held is not None:
        session.delete(held)
    resolve(session, case, person, verdict=verdict, reason=reason, actor=actor)


def _card_to_reissue(session: Session, person: Person, stored: list[str]) -> str | None:
    """The active card that a newly stored face has made out of date, if any."""
    if FACE not in stored:
        return None
    card = outdated_cards(session, [person.id]).get(person.id)
    return None if card is None else card.card_number


def _store(
    session: Session, sealer: TemplateSealer, person: Person, data: BiometricsUpdate,
    probe: np.ndarray | None, quality: float,
    fingers: dict[FingerPosition, tuple[bytes, int]], *, first: bool = False,
) -> tuple[list[str], list[str]]:
    """Seal the capture beside the earlier ones; clear the exceptions it replaces (and, at a
    first capture, a recorded refusal of every biometric: the person has now given them)."""
    seal_captures(session, sealer, person.id, face=data.face, probe=probe,
                  quality=quality, fingers=fingers)
    with_photo = probe is not None and data.face is not None and data.face.photo is not None
    stored = ([FACE] if probe is not None else []) + ([PHOTO] if with_photo else []) + [
        finger_modality(p) for p in sorted(fingers)]
    if probe is not None:  # a newer face than any card of theirs carries: flag the card
        refresh_face_outdated(session, person.id)
    replaced = {m for m in stored if m != PHOTO} | ({REFUSED} if first else set())
    cleared = sorted(session.scalars(
        select(BiometricException.modality).where(BiometricException.person_id == person.id,
                                                  BiometricException.modality.in_(replaced))
    ).all())
    if cleared:
        session.execute(delete(BiometricException).where(
            BiometricException.person_id == person.id,
            BiometricException.modality.in_(cleared)))
    return stored, cleared

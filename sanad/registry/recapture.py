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
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from sanad import audit
from sanad.abis.decision import Outcome, judge_pair
from sanad.abis.finger_stage import PreparedFingers, second_stage
from sanad.abis.fusion import FusedScore, fuse
from sanad.biometrics.finger import FingerComparison, FingerPosition, prepare
from sanad.config import Settings
from sanad.errors import Conflict, NotFound
from sanad.notify.outbox import emit
from sanad.registry.db import transaction, utcnow
from sanad.registry.enrolment import (
    EnrolmentContext,
    _face_vectors,
    _thresholds,
    enrolment_lock,
    face_probe,
    parse_fingers,
    recheck_person,
    seal_captures,
)
from sanad.registry.fingers import finger_modality, load_candidate_fingers
from sanad.registry.gallery import FACE, PHOTO, Gallery
from sanad.registry.models import BiometricException, Person, PersonStatus
from sanad.registry.schemas import BiometricsUpdate, RecaptureResult
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
    verifies, then search the person again. ``Conflict`` (nothing stored) when it does not."""
    probe, quality = face_probe(data.face, "face")
    stored_fingers, views = parse_fingers(data.fingers)
    refusal: str | None = None
    with gallery.lock:
        with transaction(sessions) as session:
            enrolment_lock(session)
            gallery.catch_up(session)
            person = session.get(Person, person_id, with_for_update=True)
            if person is None:
                raise NotFound(f"no person {person_id}")
            if person.status != PersonStatus.ACTIVE:
                raise Conflict(f"person is {person.status}: only an active person's "
                               "biometrics can be captured again")
            check = _verify(session, gallery, settings, person, probe,
                            {pos: prepare(v) for pos, v in views.items()})
            details: dict[str, object] = {
                "reason": data.reason, "note": data.note,
                "face_score": None if check.face is None else round(check.face, 4),
                "finger_llr": (None if check.fused.finger_llr is None
                               else round(check.fused.finger_llr, 3)),
                "fingers_compared": check.fused.fingers_compared,
                "offered": (["face"] if probe is not None else [])
                + [finger_modality(p) for p in sorted(views)],
            }
            if check.outcome != Outcome.DUPLICATE:
                refusal = ("nothing enrolled to verify the new capture against"
                           if check.face is None and check.fused.fingers_compared == 0 else
                           "the new capture does not match the person's enrolled biometrics")
                audit.record(session, actor=ctx.officer, action="biometrics.recapture_refused",
                             subject_type="person", subject_id=str(person_id),
                             details={**details, "why": refusal})
            else:
                stored, cleared = _store(session, gallery.sealer, person, data, probe,
                                         quality, stored_fingers)
                person.version += 1
                person.updated_at = utcnow()
                # Subscribers learn that the record changed (no biometrics in the payload).
                emit(session, event_type="person.updated", subject_id=person.id,
                     payload={"person_id": str(person_id), "version": person.version,
                              "fields": ["biometrics"]})
                audit.record(session, actor=ctx.officer, action="biometrics.recaptured",
                             subject_type="person", subject_id=str(person_id),
                             details={**details, "rule": check.rule, "stored": stored,
                                      "exceptions_cleared": cleared,
                                      "version": person.version})
                version = person.version
        # The refusal is audited (committed above) before it is raised.
        if refusal is not None:
            raise Conflict(refusal)
        case = recheck_person(sessions, gallery, settings, person_id=person_id, ctx=ctx)
    return RecaptureResult(
        person_id=person_id, verified_by="fused" if check.rule == "fused" else "face",
        face_score=check.face, finger_llr=check.fused.finger_llr,
        fingers_compared=check.fused.fingers_compared, stored=stored,
        exceptions_cleared=cleared, case_id=None if case is None else case.id, version=version,
    )


def _store(
    session: Session, sealer: TemplateSealer, person: Person, data: BiometricsUpdate,
    probe: np.ndarray | None, quality: float,
    fingers: dict[FingerPosition, tuple[bytes, int]],
) -> tuple[list[str], list[str]]:
    """Seal the capture beside the earlier ones; clear the exceptions it replaces."""
    seal_captures(session, sealer, person.id, face=data.face, probe=probe,
                  quality=quality, fingers=fingers)
    with_photo = probe is not None and data.face is not None and data.face.photo is not None
    stored = ([FACE] if probe is not None else []) + ([PHOTO] if with_photo else []) + [
        finger_modality(p) for p in sorted(fingers)]
    replaced = {m for m in stored if m != PHOTO}
    cleared = sorted(session.scalars(
        select(BiometricException.modality).where(BiometricException.person_id == person.id,
                                                  BiometricException.modality.in_(replaced))
    ).all())
    if cleared:
        session.execute(delete(BiometricException).where(
            BiometricException.person_id == person.id,
            BiometricException.modality.in_(cleared)))
    return stored, cleared

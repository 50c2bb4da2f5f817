"""What was captured for a person, and what could not be: the face, each finger (position,
quality, when) and the recorded exceptions (a finger amputated or unreadable, a face that could
not be photographed, a refusal of biometrics) — metadata only, never a template or an image.

Officers see it on the person page, adjudicators on the case page (a `face_exception` or
`no_biometrics` case is *about* it), auditors and integrators through
``GET /persons/{id}/biometrics``. Reading it is a read of the person's record and is audited by
`capture_summary`; `summaries_for` leaves auditing to a caller that already audits the page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.biometrics.finger import FingerPosition
from sanad.errors import NotFound
from sanad.registry.fingers import FINGER_PREFIX
from sanad.registry.gallery import FACE, PHOTO
from sanad.registry.models import BiometricException, BiometricRecord, Person, Role

REFUSED = "all"  # `BiometricException.modality` of a refusal of every biometric
# Who may see capture metadata (API and pages alike): not card officers (least privilege).
READERS = frozenset({Role.REGISTRATION_OFFICER, Role.ADJUDICATOR, Role.AUDITOR})


@dataclass(frozen=True)
class CapturedFinger:
    position: int
    name: str  # e.g. ``right_index``
    quality: float  # 0..1
    captured_at: datetime


@dataclass(frozen=True)
class CaptureException:
    modality: str  # ``face``, ``finger:<code>`` or ``all`` (refused)
    reason: str
    note: str
    recorded_at: datetime

    @property
    def position(self) -> int | None:
        """The finger's ISO code for a finger exception, else None."""
        if self.modality.startswith(FINGER_PREFIX):
            return int(self.modality[len(FINGER_PREFIX):])
        return None


@dataclass(frozen=True)
class CaptureSummary:
    person_id: uuid.UUID
    face: bool
    face_quality: float | None
    face_captured_at: datetime | None
    photo: bool
    fingers: list[CapturedFinger]
    exceptions: list[CaptureException]
    refused_reason: str | None

    @property
    def face_exception(self) -> CaptureException | None:
        return next((e for e in self.exceptions if e.modality == FACE), None)

    @property
    def finger_exceptions(self) -> list[CaptureException]:
        return [e for e in self.exceptions if e.modality.startswith(FINGER_PREFIX)]

    def finger(self, position: int) -> CapturedFinger | None:
        return next((f for f in self.fingers if f.position == position), None)

    def finger_exception(self, position: int) -> CaptureException | None:
        """The newest exception recorded for this finger."""
        return next((e for e in reversed(self.exceptions) if e.position == position), None)


def finger_name(position: int) -> str:
    """``right_thumb`` … ``left_little`` for ISO codes 1..10; ``finger_<n>`` otherwise."""
    try:
        return FingerPosition(position).name.lower()
    except ValueError:
        return f"finger_{position}"


def summaries_for(
    session: Session, persons: Iterable[Person]
) -> dict[uuid.UUID, CaptureSummary]:
    """Capture summaries of several persons (not audited: the caller's page read is)."""
    people = {p.id: p for p in persons}
    ids = list(people)
    records: dict[uuid.UUID, dict[str, tuple[float, datetime]]] = {pid: {} for pid in ids}
    exceptions: dict[uuid.UUID, list[CaptureException]] = {pid: [] for pid in ids}
    for lo in range(0, len(ids), 500):
        chunk = ids[lo:lo + 500]
        # Metadata columns only: the sealed templates never leave the database here.
        for pid, modality, quality, created in session.execute(
            select(BiometricRecord.person_id, BiometricRecord.modality,
                   BiometricRecord.quality, BiometricRecord.created_at)
            .where(BiometricRecord.person_id.in_(chunk)).order_by(BiometricRecord.id)
        ):
            # Ordered by id: a re-capture (or captures linked by adjudication) replaces.
            records[pid][modality] = (float(quality), created)
        for exc in session.scalars(
            select(BiometricException).where(BiometricException.person_id.in_(chunk))
            .order_by(BiometricException.created_at)
        ):
            exceptions[exc.person_id].append(CaptureException(
                modality=exc.modality, reason=exc.reason, note=exc.note or "",
                recorded_at=exc.created_at))
    out = {}
    for pid in ids:
        by_modality = records[pid]
        face = by_modality.get(FACE)
        fingers = sorted(
            (CapturedFinger(position=int(m[len(FINGER_PREFIX):]),
                            name=finger_name(int(m[len(FINGER_PREFIX):])),
                            quality=quality, captured_at=at)
             for m, (quality, at) in by_modality.items() if m.startswith(FINGER_PREFIX)),
            key=lambda f: f.position,
        )
        out[pid] = CaptureSummary(
            person_id=pid, face=face is not None,
            face_quality=face[0] if face is not None else None,
            face_captured_at=face[1] if face is not None else None,
            photo=PHOTO in by_modality, fingers=fingers, exceptions=exceptions[pid],
            refused_reason=people[pid].biometrics_refused_reason,
        )
    return out


def capture_summary(session: Session, person_id: uuid.UUID, *, actor: str) -> CaptureSummary:
    """One person's capture summary; audited as a read of their record."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    audit.record(session, actor=actor, action="person.read", subject_type="person",
                 subject_id=str(person_id), details={"view": "biometrics"})
    return summaries_for(session, [person])[person_id]

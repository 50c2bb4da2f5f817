"""Lawful erasure of a person's biometric data by crypto-shredding, audited.

`erase_person` runs in the caller's transaction:

1. deletes the person's data keys (`data_keys` rows) — from this moment every sealed copy of
   their templates, including copies inside older backups' blobs, is unreadable;
2. turns each of their `BiometricRecord` rows — face, photo and every ``finger:<code>``
   record alike — into a tombstone (modality ``erased``, empty template), and drops their
   prepared fingers from this process's matcher cache. The row is kept, not deleted, so the
   integer gallery id is never reused (SQLite reuses the highest rowid) and the index
   watermark never moves backwards (which would force every process to rebuild its index);
3. records an `Erasure` and one `ErasedRecord` per gallery id (what every gallery index must
   drop when it catches up: see `erased_record_ids`);
4. deletes any legacy portrait row (`person_photos`; the enrolment photo itself is a sealed
   `photo` record, shredded with the rest in steps 1–2) and any re-capture held for an
   adjudicator (`held_captures`, sealed under the same key), revokes their
   active cards and clears their stored QR text (a signed QR carries a compact face template);
5. appends a ``person.erase`` audit event naming the reason, the counts and the erasure id —
   never any biometric or biographic value.

After the commit, `drop_from_gallery` removes the ids from this process's in-memory index and
snapshot. Biographic data (names, date of birth) stay: erasing them is a separate policy
decision (registration numbers and household links are evidence for other people's cases).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.abis.index import remove_present
from sanad.errors import InvalidInput, NotFound
from sanad.registry.access_models import PersonPhoto
from sanad.registry.crypto_models import DataKey, ErasedRecord, Erasure
from sanad.registry.fingers import forget_sealed, is_finger_modality
from sanad.registry.gallery import Gallery
from sanad.registry.models import BiometricRecord, Card, HeldCapture, Person
from sanad.registry.sealing import TemplateSealer, destroy_subject_keys

ERASED_MODALITY = "erased"


@dataclass(frozen=True)
class ErasureReport:
    erasure_id: uuid.UUID
    person_id: uuid.UUID
    keys_destroyed: int
    records_erased: list[int]
    cards_revoked: list[uuid.UUID]
    dek_ids: list[bytes]
    photos_deleted: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "erasure_id": str(self.erasure_id), "person_id": str(self.person_id),
            "keys_destroyed": self.keys_destroyed, "records_erased": self.records_erased,
            "cards_revoked": [str(c) for c in self.cards_revoked],
            "photos_deleted": self.photos_deleted,
        }


def erase_person(
    session: Session, *, person_id: uuid.UUID, reason: str, actor: str
) -> ErasureReport:
    """Crypto-shred the person's biometric data (see module docstring). Caller commits."""
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidInput("an erasure needs a reason (the legal basis)", field="reason")
    person = session.get(Person, person_id, with_for_update=True)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    records = list(session.scalars(
        select(BiometricRecord).where(BiometricRecord.person_id == person_id,
                                      BiometricRecord.modality != ERASED_MODALITY)
        .order_by(BiometricRecord.id)
    ))
    dek_ids = destroy_subject_keys(session, str(person_id))
    # Blobs re-sealed under another subject (an adjudication link) name their key directly.
    referenced = [d for r in records if (d := TemplateSealer.dek_id(r.template)) is not None]
    extra = [d for d in referenced if d not in set(dek_ids)]
    if extra:
        session.execute(delete(DataKey).where(DataKey.id.in_(extra)))
        dek_ids += extra
    erasure = Erasure(person_id=person_id, reason=reason, actor=actor,
                      keys_destroyed=len(dek_ids), records_deleted=len(records))
    session.add(erasure)
    session.flush()
    forget_sealed(r.template for r in records if is_finger_modality(r.modality))
    for rec in records:
        rec.modality = ERASED_MODALITY
        rec.template = b""
        session.add(ErasedRecord(record_id=rec.id, erasure_id=erasure.id))
    # Re-captures held for an adjudicator are sealed under the same (now destroyed) key:
    # drop the unreadable rows too; their cases can then only reject.
    held = len(session.scalars(delete(HeldCapture).where(HeldCapture.person_id == person_id)
                               .returning(HeldCapture.id)).all())
    photo = session.get(PersonPhoto, person_id)
    photos = 0 if photo is None else 1
    if photo is not None:
        session.delete(photo)
    revoked: list[uuid.UUID] = []
    for card in session.scalars(
        select(Card).where(Card.person_id == person_id, Card.status == "active")
    ):
        card.status = "revoked"
        revoked.append(card.id)
        audit.record(
            session, actor=actor, action="card.revoke", subject_type="card",
            subject_id=str(card.id), details={"reason": "erasure", "person_id": str(person_id)},
        )
    for card in session.scalars(select(Card).where(Card.person_id == person_id)):
        card.qr = ""
    session.flush()
    audit.record(
        session, actor=actor, action="person.erase", subject_type="person",
        subject_id=str(person_id),
        details={"reason": reason, "erasure_id": str(erasure.id), "keys_destroyed": len(dek_ids),
                 "records_erased": [r.id for r in records], "photos_deleted": photos,
                 "held_captures_deleted": held,
                 "cards_revoked": [str(c) for c in revoked]},
    )
    return ErasureReport(erasure.id, person_id, len(dek_ids), [r.id for r in records],
                         revoked, dek_ids, photos)


def erased_record_ids(session: Session, *, up_to: int | None = None) -> list[int]:
    """Gallery ids removed by erasures (≤ `up_to` if given): an index must not hold them."""
    query = select(ErasedRecord.record_id).order_by(ErasedRecord.record_id)
    if up_to is not None:
        query = query.where(ErasedRecord.record_id <= up_to)
    return [int(i) for i in session.scalars(query)]


def _remove_present(gallery: Gallery, ids: list[int]) -> int:
    """Remove those of `ids` the index holds (the protocol's `remove` rejects absent ids)."""
    with gallery.lock:
        return remove_present(gallery.index, ids)


def drop_from_gallery(gallery: Gallery, record_ids: list[int], dek_ids: list[bytes]) -> None:
    """After the erasure committed: forget the keys and drop the vectors here and on disk."""
    gallery.sealer.forget(dek_ids)
    if record_ids:
        _remove_present(gallery, record_ids)
        if gallery.fingers is not None:  # the fingerprint pre-filter index (finger records)
            gallery.fingers.remove_present(record_ids)
        gallery.save()


def erasure_count(session: Session) -> int:
    """How many gallery ids erasures have removed so far (cheap: compare before syncing)."""
    return session.scalar(select(func.count()).select_from(ErasedRecord)) or 0


def sync_gallery_erasures(gallery: Gallery, session: Session) -> int:
    """Drop every erased id this index still holds (a process that missed an erasure)."""
    ids = erased_record_ids(session, up_to=gallery.index.watermark)
    return _remove_present(gallery, ids) if ids else 0

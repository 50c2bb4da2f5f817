"""Face photos kept at enrolment (sealed at rest like templates): the one store of a person's
portrait, for the card, the person page and the adjudicator's side-by-side view."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad.registry.gallery import PHOTO, template_aad
from sanad.registry.models import BiometricRecord
from sanad.registry.sealing import TemplateSealer

_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def media_type(data: bytes) -> str:
    """The image type from the bytes themselves (enrolment accepted only face photos)."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def person_photo(session: Session, sealer: TemplateSealer, person_id: uuid.UUID) -> bytes | None:
    """The latest face photo of a person (JPEG/PNG bytes), or None if none was captured.

    The caller audits the read together with whatever it reads the photo for.
    """
    return photos_of(session, sealer, [person_id]).get(person_id)


def photos_of(
    session: Session, sealer: TemplateSealer, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, bytes]:
    """The latest face photo of each of these people who has one. The caller audits."""
    newest: dict[uuid.UUID, BiometricRecord] = {}
    for lo in range(0, len(person_ids), 500):
        for rec in session.scalars(
            select(BiometricRecord)
            .where(BiometricRecord.person_id.in_(person_ids[lo:lo + 500]),
                   BiometricRecord.modality == PHOTO)
            .order_by(BiometricRecord.id)
        ):
            newest[rec.person_id] = rec  # ordered by id: the newest wins
    # An erased person's photo is an emptied blob under a destroyed key: no photo.
    newest = {pid: r for pid, r in newest.items() if r.template}
    opened = sealer.open_many(
        [(r.template, template_aad(pid, PHOTO)) for pid, r in newest.items()], session=session,
        skip_destroyed=True)
    return {pid: raw for pid, raw in zip(newest, opened, strict=True) if raw is not None}

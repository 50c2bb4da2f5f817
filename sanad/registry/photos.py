"""Face photos kept at enrolment (sealed at rest like templates)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad.registry.gallery import PHOTO, template_aad
from sanad.registry.models import BiometricRecord
from sanad.registry.sealing import TemplateSealer


def person_photo(session: Session, sealer: TemplateSealer, person_id: uuid.UUID) -> bytes | None:
    """The latest face photo of a person (JPEG/PNG bytes), or None if none was captured.

    The caller audits the read together with whatever it reads the photo for.
    """
    rec = session.scalar(
        select(BiometricRecord)
        .where(BiometricRecord.person_id == person_id, BiometricRecord.modality == PHOTO)
        .order_by(BiometricRecord.id.desc())
    )
    if rec is None:
        return None
    return sealer.open(rec.template, aad=template_aad(person_id, PHOTO))

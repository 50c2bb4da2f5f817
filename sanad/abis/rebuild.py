"""Rebuild the face gallery index from the database (the source of truth).

What ``sanad abis rebuild`` runs: a fresh index of the configured backend is filled with every
committed face template, in gallery-id order and in batches (keyset pagination, so memory stays
bounded and PostgreSQL never holds a long cursor), its watermark set to the database's highest
biometric record id, and saved atomically over the old snapshot. A running process picks the
new file up at its next start; the old file stays valid until the rename.

`rebuild_finger_index` does the same for the fingerprint pre-filter index
(`sanad.registry.finger_gallery`): it refits the descriptor space on the gallery's fingers, adds
every fingered person's descriptor and replaces the snapshot under its directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sanad import audit
from sanad.abis.index import GalleryIndex, make_index
from sanad.abis.templates import decode_template
from sanad.biometrics.synthetic import FACE_DIM
from sanad.registry.db import transaction
from sanad.registry.gallery import FACE, template_aad
from sanad.registry.models import BiometricRecord
from sanad.registry.sealing import TemplateSealer


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild did."""

    kind: str
    entries: int
    watermark: int
    seconds: float
    path: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "entries": self.entries, "watermark": self.watermark,
            "seconds": round(self.seconds, 3), "path": self.path,
        }


def count_face_records(session: Session) -> int:
    """Face templates in the database (the size the rebuilt index will have)."""
    return int(
        session.scalar(
            select(func.count()).select_from(BiometricRecord)
            .where(BiometricRecord.modality == FACE)
        ) or 0
    )


def rebuild_index(
    sessions: sessionmaker[Session],
    *,
    sealer: TemplateSealer,
    kind: str,
    path: Path | None,
    actor: str,
    batch: int = 20_000,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> tuple[GalleryIndex, RebuildReport]:
    """Build a ``kind`` index from every face record and save it to ``path`` (if given).

    ``progress(n)`` is called after each batch with the number of entries just added. The
    rebuild is audited (one event: it reads every template, though it discloses none).
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    start = time.perf_counter()
    index = make_index(kind, FACE_DIM, **options)
    with sessions() as session:
        db_max = int(session.scalar(select(func.max(BiometricRecord.id))) or 0)
        last = 0
        while True:
            rows = session.execute(
                select(BiometricRecord.id, BiometricRecord.person_id, BiometricRecord.template)
                .where(BiometricRecord.modality == FACE)
                .where(BiometricRecord.id > last)
                .where(BiometricRecord.id <= db_max)
                .order_by(BiometricRecord.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            vectors = np.stack([
                decode_template(sealer.open(r.template, aad=template_aad(r.person_id, FACE)),
                                FACE_DIM)
                for r in rows
            ])
            index.add(np.asarray([r.id for r in rows], dtype=np.int64), vectors)
            last = int(rows[-1].id)
            if progress is not None:
                progress(len(rows))
    # Records of other modalities advance the watermark too (as `Gallery.catch_up` does).
    index.add(np.empty(0, dtype=np.int64), np.empty((0, FACE_DIM), np.float32), watermark=db_max)
    if path is not None:
        index.save(path)
    report = RebuildReport(kind, len(index), db_max, time.perf_counter() - start,
                           str(path) if path is not None else None)
    with transaction(sessions) as session:
        audit.record(
            session, actor=actor, action="abis.index_rebuilt", subject_type="gallery",
            subject_id=kind, details={"entries": report.entries, "watermark": db_max},
        )
    return index, report


def rebuild_finger_index(
    sessions: sessionmaker[Session],
    *,
    sealer: TemplateSealer,
    kind: str,
    path: Path | None,
    actor: str,
    batch: int = 2_000,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> tuple[GalleryIndex, RebuildReport]:
    """Build the fingerprint pre-filter index from every fingered person (refitting the
    descriptor space) and save it under the directory ``path`` (if given). ``progress(n)``
    after each page of ``n`` people. Audited like `rebuild_index`."""
    from sanad.registry.finger_gallery import build_finger_index, save_snapshot

    if batch < 1:
        raise ValueError("batch must be at least 1")
    start = time.perf_counter()
    with sessions() as session:
        db_max = int(session.scalar(select(func.max(BiometricRecord.id))) or 0)
        index, space = build_finger_index(session, sealer, kind=kind, up_to=db_max,
                                          batch=batch, progress=progress, **options)
    if path is not None:
        save_snapshot(path, index, space)
    report = RebuildReport(kind, len(index), db_max, time.perf_counter() - start,
                           str(path) if path is not None else None)
    with transaction(sessions) as session:
        audit.record(
            session, actor=actor, action="abis.index_rebuilt", subject_type="gallery",
            subject_id=f"fingers:{kind}",
            details={"entries": report.entries, "watermark": db_max,
                     "space": None if space is None else space.origin,
                     "fitted_on": None if space is None else space.fitted_on},
        )
    return index, report

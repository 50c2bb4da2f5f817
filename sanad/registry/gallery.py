"""Keeps the in-memory gallery index in step with the database (the source of truth).

The index is a cache: it holds only vectors keyed by the opaque integer id of their
`BiometricRecord`, and a watermark (the highest record id it reflects). At start it is loaded
from its snapshot and caught up from the database; if the snapshot is ahead of the database
(e.g. the database was restored from an older backup) it is rebuilt from scratch. Every
enrolment catches up under the enrolment lock before searching, so several API processes on one
PostgreSQL database each see the others' commits.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sanad.abis.index import GalleryIndex, IndexFileError, load_index, make_index
from sanad.abis.templates import decode_template
from sanad.biometrics.synthetic import FACE_DIM
from sanad.registry.models import BiometricRecord, Person
from sanad.registry.sealing import TemplateSealer

if TYPE_CHECKING:
    from sanad.registry.finger_gallery import FingerGallery

FACE = "face"
PHOTO = "photo"


def template_aad(person_id: uuid.UUID, modality: str) -> bytes:
    """Associated data binding a sealed template to its person and modality."""
    return f"{person_id}:{modality}".encode()


def face_pages(
    session: Session, sealer: TemplateSealer, *, after: int, batch: int,
    statuses: Collection[str] | None = None,
) -> Iterator[tuple[int, list[tuple[int, uuid.UUID, bytes]]]]:
    """Face records with ids above ``after``, in id order, a page of ``batch`` at a time:
    ``(the page's last record id, [(record id, person id, template bytes), …])``, opened
    with one data-key query per page. A record whose data key was erased is left out (an
    erasure may commit while this reads); ``statuses`` keeps only people in those."""
    while True:
        query = (
            select(BiometricRecord.id, BiometricRecord.person_id, BiometricRecord.template)
            .where(BiometricRecord.modality == FACE, BiometricRecord.id > after)
            .order_by(BiometricRecord.id)
            .limit(batch)
        )
        if statuses is not None:
            query = query.join(Person).where(Person.status.in_(statuses))
        rows = session.execute(query).all()
        if not rows:
            return
        opened = sealer.open_many(
            [(r.template, template_aad(r.person_id, FACE)) for r in rows],
            session=session, skip_destroyed=True,
        )
        after = int(rows[-1].id)
        yield after, [(int(r.id), r.person_id, t)
                      for r, t in zip(rows, opened, strict=True) if t is not None]



class Gallery:
    """The face gallery of one process: index + lock + catch-up from the database."""

    def __init__(
        self, index: GalleryIndex, sealer: TemplateSealer, path: Path | None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.options = options or {}
        self.sealer = sealer
        self.path = path
        # Serialises search→commit→add inside this process; PostgreSQL additionally takes an
        # advisory lock so that separate processes serialise too.
        self.lock = threading.RLock()
        self._erasures_seen = -1
        # The fingerprint pre-filter index (docs/fusion.md), when enabled: caught up, saved
        # and cleared of erasures together with the face index.
        self.fingers: FingerGallery | None = None

    @classmethod
    def open(
        cls, *, kind: str, sealer: TemplateSealer, path: Path | None, **options: Any
    ) -> Gallery:
        """Load the snapshot at `path` (if any) into backend `kind`; `options` go to the
        backend (`shortlist` for twostage, `uri` for milvus)."""
        index: GalleryIndex = make_index(kind, FACE_DIM, **options)
        if path is not None and path.exists():
            try:
                index = load_index(kind, path, **options)
            except IndexFileError:
                # A damaged snapshot is only a cache: start empty and rebuild from the database.
                index = make_index(kind, FACE_DIM, **options)
        return cls(index, sealer, path, options)

    def catch_up(self, session: Session, *, batch: int = 20_000) -> int:
        """Add every committed face record newer than the watermark; returns how many."""
        with self.lock:
            db_max = session.scalar(select(func.max(BiometricRecord.id))) or 0
            if self.index.watermark > db_max:
                self.index = make_index(self.index.identifier, FACE_DIM, **self.options)
            added = 0
            for last, live in face_pages(session, self.sealer, after=self.index.watermark,
                                         batch=batch):
                if live:
                    self._add([i for i, _, _ in live], [t for _, _, t in live])
                    added += len(live)
                self._advance(last)
            self._sync_erasures(session)
            # Records of other modalities (photos, tombstones) advance the watermark too.
            self._advance(db_max)
            if self.fingers is not None:
                self.fingers.catch_up(session)
            return added

    def _advance(self, watermark: int) -> None:
        """Move the watermark forward without adding vectors (it only ever moves forward)."""
        self.index.add(
            np.empty(0, dtype=np.int64), np.empty((0, FACE_DIM), np.float32),
            watermark=watermark,
        )

    def _sync_erasures(self, session: Session) -> None:
        """Drop ids that an erasure in another process removed (cheap when nothing changed)."""
        from sanad.registry.erasure import erasure_count, sync_gallery_erasures  # cycle

        count = erasure_count(session)
        if count != self._erasures_seen:
            sync_gallery_erasures(self, session)
            self._erasures_seen = count

    def _add(self, ids: list[int], templates: list[bytes]) -> None:
        vectors = np.stack([decode_template(t, FACE_DIM) for t in templates])
        self.index.add(np.asarray(ids, dtype=np.int64), vectors, watermark=max(ids))

    def add_committed(self, records: list[tuple[int, np.ndarray]]) -> None:
        """After commit: add the new records so the next search sees them."""
        if not records:
            return
        with self.lock:
            ids = np.asarray([r[0] for r in records], dtype=np.int64)
            vectors = np.stack([r[1] for r in records]).astype(np.float32)
            self.index.add(ids, vectors, watermark=int(ids.max()))

    def save(self) -> None:
        """Snapshot the index next to the database (atomic replace)."""
        if self.path is not None:
            with self.lock:
                self.index.save(self.path)
        if self.fingers is not None:
            self.fingers.save()

"""The fingerprint pre-filter index: one descriptor per person, in step with the database.

The second gallery of docs/fusion.md §"Fingerprint pre-filter at enrolment". Like the face
`Gallery` it is a cache of the database: entries are keyed by an opaque `BiometricRecord` id
(here the person's newest finger record at a pre-filter position), its watermark is the highest
record id it reflects, it catches up at start and before every enrolment under the enrolment
lock, drops erased records, and is rebuilt from the database when its snapshot is missing,
unreadable or ahead of the database.

What an entry holds is not a template: it is the person's `FingerDescriptorSpace` descriptor
(thumbs and index fingers: a histogram of minutia-pair geometry per finger, centred, projected
on 192 whitened principal axes), from which the minutiae cannot be read back. The descriptor space
(centre and projection) is part of the index: it is fitted on the gallery's own fingers when
the index is built from the database (a sample of up to `FIT_SAMPLE` people, in person-id
order: deterministic), or, while fewer than `MIN_FIT` people have fingers, is the synthetic
bootstrap space (`bootstrap_space`). It is saved with the snapshot and changes only when the
index is rebuilt (``sanad abis rebuild``, or a discarded snapshot).

Snapshot: a directory (``$SANAD_HOME/gallery-fingers``) holding ``space.npz`` (the space and
the name of its index file) and ``index-<space digest>.npz`` (the `GalleryIndex` file, written
atomically like the face snapshot, mode 0600). The index file name carries the space's digest,
so an index is never read in a space it was not built in. Like the face snapshot it is not
kept beside an encrypted (field-kit) database.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sanad.abis.finger_stage import (
    PREFILTER_DIM,
    PREFILTER_POSITIONS,
    FingerDescriptorSpace,
    bootstrap_space,
)
from sanad.abis.index import (
    GalleryIndex,
    IndexFileError,
    load_index,
    make_index,
    remove_present,
)
from sanad.biometrics.finger import FingerPosition, decode_record
from sanad.biometrics.finger.template import FingerTemplateError, MinutiaeArray
from sanad.registry.fingers import finger_modality
from sanad.registry.gallery import template_aad
from sanad.registry.models import BiometricRecord
from sanad.registry.sealing import TemplateSealer

F32 = npt.NDArray[np.float32]
PREFILTER_MODALITIES = tuple(finger_modality(p) for p in PREFILTER_POSITIONS)
# People whose fingers fit the descriptor space (centre + principal axes), and the fewest for
# which the gallery's own fit replaces the synthetic bootstrap space.
FIT_SAMPLE = 4096
MIN_FIT = 512
_SPACE_FILE = "space.npz"


def finger_index_kind(face_kind: str) -> str:
    """Backend of the finger index: the face index's, except that a Milvus deployment keeps the
    (much smaller) finger index in-process in the ``twostage`` backend."""
    return "twostage" if face_kind == "milvus" else face_kind


# PQ sub-vectors of a ``twostage`` finger index: 2 dimensions each (96 for 192-d, 48 B per
# person), as the face index. With 4-dimension codes (48, 24 B) the 256-entry shortlist lost
# 2–4 % of the mates exact search keeps in its top 10 at 100,000–300,000 people; with 96,
# 0.15–0.2 % (`sanad bench prefilter`, docs/fusion.md "Hit rate against gallery size").
PREFILTER_SUBVECTORS = PREFILTER_DIM // 2


def finger_index_options(kind: str, shortlist: int) -> dict[str, Any]:
    """Constructor options of the finger index for backend ``kind``."""
    if kind != "twostage":
        return {}
    return {"shortlist": shortlist, "subvectors": PREFILTER_SUBVECTORS}


def _descriptors(space: FingerDescriptorSpace,
                 people: Iterable[tuple[int, Mapping[FingerPosition, MinutiaeArray]]],
                 ) -> tuple[list[int], list[F32]]:
    ids, vectors = [], []
    for entry, fingers in people:
        d = space.person_descriptor(fingers)
        if d is not None:
            ids.append(entry)
            vectors.append(d)
    return ids, vectors


def people_fingers(
    session: Session, sealer: TemplateSealer, person_ids: Iterable[uuid.UUID], *, up_to: int,
) -> dict[uuid.UUID, tuple[int, dict[FingerPosition, MinutiaeArray]]]:
    """Each person's pre-filter fingers (newest record per position, ids ``<= up_to``) and the
    entry id (their newest such record). Erased or undecodable records are left out."""
    ids = list(dict.fromkeys(person_ids))
    chosen: dict[uuid.UUID, dict[str, Any]] = {}
    for lo in range(0, len(ids), 500):
        rows = session.execute(
            select(BiometricRecord.id, BiometricRecord.person_id, BiometricRecord.modality,
                   BiometricRecord.template)
            .where(BiometricRecord.person_id.in_(ids[lo:lo + 500]))
            .where(BiometricRecord.modality.in_(PREFILTER_MODALITIES))
            .where(BiometricRecord.id <= up_to)
            .order_by(BiometricRecord.id)
        ).all()
        for r in rows:
            chosen.setdefault(r.person_id, {})[r.modality] = r  # ordered by id: newest wins
    flat = [(pid, r) for pid, recs in chosen.items() for r in recs.values()]
    opened = sealer.open_many(
        [(r.template, template_aad(pid, r.modality)) for pid, r in flat],
        session=session, skip_destroyed=True,
    )
    out: dict[uuid.UUID, tuple[int, dict[FingerPosition, MinutiaeArray]]] = {}
    for (pid, r), raw in zip(flat, opened, strict=True):
        if raw is None:
            continue
        pos = FingerPosition(int(r.modality.split(":", 1)[1]))
        try:
            view = decode_record(raw).view(pos)
        except FingerTemplateError:
            continue
        if view is None or len(view.minutiae) < 2:
            continue
        entry, fingers = out.get(pid, (0, {}))
        fingers[pos] = view.as_array()
        out[pid] = (max(entry, int(r.id)), fingers)
    return out


def _people_pages(session: Session, *, up_to: int, batch: int) -> Iterable[list[uuid.UUID]]:
    """Ids of people with a pre-filter finger record ``<= up_to``, in id order, in pages."""
    last: uuid.UUID | None = None
    while True:
        query = (
            select(BiometricRecord.person_id)
            .where(BiometricRecord.modality.in_(PREFILTER_MODALITIES))
            .where(BiometricRecord.id <= up_to)
            .group_by(BiometricRecord.person_id)
            .order_by(BiometricRecord.person_id)
            .limit(batch)
        )
        if last is not None:
            query = query.where(BiometricRecord.person_id > last)
        page = list(session.scalars(query))
        if not page:
            return
        yield page
        last = page[-1]


def count_finger_people(session: Session) -> int:
    """People with a finger record at a pre-filter position (the finger index's size bound)."""
    return int(session.scalar(
        select(func.count(func.distinct(BiometricRecord.person_id)))
        .where(BiometricRecord.modality.in_(PREFILTER_MODALITIES))
    ) or 0)


def fit_space(session: Session, sealer: TemplateSealer, *, up_to: int) -> FingerDescriptorSpace:
    """The descriptor space for an index built now: fitted on the first `FIT_SAMPLE` fingered
    people (person-id order), or the bootstrap space when fewer than `MIN_FIT` have fingers."""
    sample: list[dict[FingerPosition, MinutiaeArray]] = []
    for page in _people_pages(session, up_to=up_to, batch=500):
        sample += [f for _, f in people_fingers(session, sealer, page, up_to=up_to).values()]
        if len(sample) >= FIT_SAMPLE:
            break
    if len(sample) < MIN_FIT:
        return bootstrap_space()
    return FingerDescriptorSpace.fit(sample[:FIT_SAMPLE], PREFILTER_POSITIONS,
                                     dim=PREFILTER_DIM)


def build_finger_index(
    session: Session, sealer: TemplateSealer, *, kind: str, up_to: int, batch: int = 2_000,
    progress: Callable[[int], None] | None = None, **options: Any,
) -> tuple[GalleryIndex, FingerDescriptorSpace | None]:
    """A fresh index of every fingered person's descriptor, watermark ``up_to``.

    The space is ``None`` (fitted on first use) when nobody has pre-filter fingers yet.
    """
    space: FingerDescriptorSpace | None = None
    index = make_index(kind, PREFILTER_DIM, **options)
    for page in _people_pages(session, up_to=up_to, batch=batch):
        if space is None:
            space = fit_space(session, sealer, up_to=up_to)
        people = people_fingers(session, sealer, page, up_to=up_to)
        ids, vectors = _descriptors(space, people.values())
        if ids:
            index.add(np.asarray(ids, np.int64), np.stack(vectors))
        if progress is not None:
            progress(len(page))
    index.add(np.empty(0, np.int64), np.empty((0, PREFILTER_DIM), np.float32), watermark=up_to)
    return index, space


def _space_digest(space: FingerDescriptorSpace) -> str:
    h = hashlib.sha256()
    for name, arr in sorted(space.to_arrays().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def save_snapshot(path: Path, index: GalleryIndex, space: FingerDescriptorSpace | None) -> None:
    """Write ``index`` and its space under the directory ``path`` (see module docstring)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = "index-none.npz" if space is None else f"index-{_space_digest(space)}.npz"
    index.save(path / name)
    arrays: dict[str, Any] = {"index_file": np.str_(name)}
    if space is not None:
        arrays.update(space.to_arrays())
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".space.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path / _SPACE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in path.glob("index-*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_snapshot(
    path: Path, kind: str, **options: Any
) -> tuple[GalleryIndex, FingerDescriptorSpace | None] | None:
    """The saved index and space, or ``None`` when there is none or it is unreadable."""
    try:
        with np.load(path / _SPACE_FILE, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        space = (FingerDescriptorSpace.from_arrays(arrays) if "centre" in arrays else None)
        name = str(arrays["index_file"])
        expected = "index-none.npz" if space is None else f"index-{_space_digest(space)}.npz"
        if name != expected:
            return None
        index = load_index(kind, path / name, **options)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, IndexFileError):
        return None
    if index.dim != (PREFILTER_DIM if space is None else space.dim):
        return None
    return index, space


class FingerGallery:
    """The finger pre-filter index of one process (kept by the face `Gallery`, which catches
    it up, saves it and drops erasures from it along with its own)."""

    def __init__(self, *, kind: str, sealer: TemplateSealer, path: Path | None,
                 options: dict[str, Any] | None = None,
                 loaded: tuple[GalleryIndex, FingerDescriptorSpace | None] | None = None) -> None:
        self.kind = kind
        self.sealer = sealer
        self.path = path
        self.options = options or {}
        self.lock = threading.RLock()
        self.index: GalleryIndex | None = None if loaded is None else loaded[0]
        self.space: FingerDescriptorSpace | None = None if loaded is None else loaded[1]
        self._erasures_seen = -1

    @classmethod
    def open(cls, *, kind: str, sealer: TemplateSealer, path: Path | None,
             **options: Any) -> FingerGallery:
        """Load the snapshot under ``path`` if any; `catch_up` builds the index otherwise."""
        loaded = None if path is None else load_snapshot(path, kind, **options)
        return cls(kind=kind, sealer=sealer, path=path, options=options, loaded=loaded)

    def __len__(self) -> int:
        return 0 if self.index is None else len(self.index)

    @property
    def watermark(self) -> int:
        return 0 if self.index is None else self.index.watermark

    def _space_for(self, session: Session) -> FingerDescriptorSpace:
        """The index's space; fitted now if the index was built before anyone had fingers."""
        if self.space is None:
            self.space = fit_space(session, self.sealer, up_to=self.watermark)
        return self.space

    def catch_up(self, session: Session, *, batch: int = 2_000) -> int:
        """Add every fingered person with a pre-filter finger record newer than the watermark;
        rebuild from the database when there is no index yet or it is ahead. Returns how many
        entries were added."""
        with self.lock:
            db_max = int(session.scalar(select(func.max(BiometricRecord.id))) or 0)
            if self.index is None or self.index.watermark > db_max:
                self.index, self.space = build_finger_index(
                    session, self.sealer, kind=self.kind, up_to=db_max, **self.options)
                self._erasures_seen = -1
                self._sync_erasures(session)
                return len(self.index)
            index = self.index
            added = 0
            done: set[uuid.UUID] = set()  # people whose records span pages: once only
            while True:
                rows = session.execute(
                    select(BiometricRecord.id, BiometricRecord.person_id)
                    .where(BiometricRecord.modality.in_(PREFILTER_MODALITIES))
                    .where(BiometricRecord.id > index.watermark)
                    .where(BiometricRecord.id <= db_max)
                    .order_by(BiometricRecord.id)
                    .limit(batch)
                ).all()
                if not rows:
                    break
                pids = [p for p in dict.fromkeys(r.person_id for r in rows) if p not in done]
                if pids:
                    # All of each person's records up to db_max (some may lie beyond the page).
                    people = people_fingers(session, self.sealer, pids, up_to=db_max)
                    self._forget_older(session, pids, index.watermark)
                    ids, vectors = _descriptors(self._space_for(session), people.values())
                    if ids:
                        index.add(np.asarray(ids, np.int64), np.stack(vectors))
                        added += len(ids)
                    done.update(pids)
                self._advance(int(rows[-1].id))
            self._sync_erasures(session)
            self._advance(db_max)
            return added

    def _forget_older(self, session: Session, pids: list[uuid.UUID], watermark: int) -> None:
        """Drop the entries of people who had pre-filter fingers before (a re-capture)."""
        old = [int(i) for i in session.scalars(
            select(BiometricRecord.id).where(BiometricRecord.person_id.in_(pids))
            .where(BiometricRecord.modality.in_(PREFILTER_MODALITIES))
            .where(BiometricRecord.id <= watermark)
        )]
        if old:
            self.remove_present(old)

    def _advance(self, watermark: int) -> None:
        assert self.index is not None
        self.index.add(np.empty(0, np.int64), np.empty((0, self.index.dim), np.float32),
                       watermark=watermark)

    def _sync_erasures(self, session: Session) -> None:
        from sanad.registry.erasure import erased_record_ids, erasure_count  # cycle

        count = erasure_count(session)
        if count != self._erasures_seen:
            ids = erased_record_ids(session, up_to=self.watermark)
            if ids:
                self.remove_present(ids)
            self._erasures_seen = count

    def remove_present(self, ids: list[int]) -> int:
        """Remove those of ``ids`` the index holds (others are ignored); returns how many."""
        if self.index is None or not ids:
            return 0
        with self.lock:
            return remove_present(self.index, ids)

    def descriptors(
        self, session: Session, people: list[Mapping[FingerPosition, MinutiaeArray]]
    ) -> list[F32 | None]:
        """Probe descriptors (``None`` for someone without usable pre-filter fingers)."""
        if not any(people):
            return [None] * len(people)
        space = self._space_for(session)
        return [space.person_descriptor(p) if p else None for p in people]

    def search(self, probes: list[F32 | None], k: int) -> list[list[tuple[int, float]]]:
        """Top ``k`` entries ``(record id, descriptor cosine)`` of each probe (``[]`` for
        ``None`` probes or an empty index)."""
        out: list[list[tuple[int, float]]] = [[] for _ in probes]
        rows = [i for i, p in enumerate(probes) if p is not None]
        if k < 1 or not rows or self.index is None or len(self.index) == 0:
            return out
        batch = np.stack([probes[i] for i in rows]).astype(np.float32)  # type: ignore[misc]
        scores, ids = self.index.search(batch, k)
        for r, row_scores, row_ids in zip(rows, scores, ids, strict=True):
            out[r] = [(int(g), float(s)) for g, s in
                      zip(row_ids.tolist(), row_scores.tolist(), strict=True) if g >= 0]
        return out

    def add_committed(self, entries: list[tuple[int, F32]]) -> None:
        """After commit: add the new people's descriptors (id = their newest pre-filter
        finger record) so the next search sees them."""
        if not entries or self.index is None:
            return
        with self.lock:
            ids = np.asarray([e[0] for e in entries], dtype=np.int64)
            self.index.add(ids, np.stack([e[1] for e in entries]).astype(np.float32),
                           watermark=int(ids.max()))

    def save(self) -> None:
        """Snapshot index and space under ``path`` (atomic file replaces)."""
        if self.path is not None and self.index is not None:
            with self.lock:
                save_snapshot(self.path, self.index, self.space)

"""Fingerprint records of enrolled people: sealed storage and matcher-ready loading.

Each captured finger is one `BiometricRecord` with modality ``finger:<ISO code>`` holding a
single-view ISO/IEC 19794-2:2005 record sealed like the face template (its own data key, AAD
``<person id>:finger:<code>``), so erasure's crypto-shredding covers it with the rest. Finger
records are not in the face gallery index: the enrolment's second stage loads the fingers of
the face candidates it is about to compare (`load_candidate_fingers`).

Decoding a record and computing its local descriptors (`prepare`) costs a few milliseconds per
finger, so prepared fingers are cached per process, keyed by a digest of the *sealed* blob:
only a caller that read the sealed row can hit an entry, a re-sealed record (an adjudication
link) is a new key, and an erased record (its blob emptied) can never be hit again
(`forget_sealed` drops it at once). A prepared finger takes ~30–55 kB (descriptors of up to 64
minutiae), hence the bounded size (`SANAD_FINGER_CACHE_SIZE`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad.biometrics.finger import FingerPosition, PreparedFinger, decode_record, prepare
from sanad.registry.gallery import template_aad
from sanad.registry.models import BiometricException, BiometricRecord
from sanad.registry.sealing import TemplateSealer

FINGER_PREFIX = "finger:"
PreparedFingers = dict[FingerPosition, PreparedFinger]


def finger_modality(position: FingerPosition | int) -> str:
    """The `BiometricRecord.modality` of a finger, e.g. ``finger:7``."""
    return f"{FINGER_PREFIX}{int(position)}"


def is_finger_modality(modality: str) -> bool:
    return modality.startswith(FINGER_PREFIX)


def _position(modality: str) -> FingerPosition:
    return FingerPosition(int(modality[len(FINGER_PREFIX):]))


class _PreparedCache:
    """LRU of prepared fingers keyed by a digest of the sealed record."""

    def __init__(self) -> None:
        self._items: OrderedDict[bytes, PreparedFinger] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(sealed: bytes) -> bytes:
        return hashlib.blake2b(sealed, digest_size=16).digest()

    def get(self, key: bytes) -> PreparedFinger | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: bytes, finger: PreparedFinger, size: int) -> None:
        if size <= 0:
            return
        with self._lock:
            self._items[key] = finger
            self._items.move_to_end(key)
            while len(self._items) > size:
                self._items.popitem(last=False)

    def forget(self, keys: Iterable[bytes]) -> None:
        with self._lock:
            for k in keys:
                self._items.pop(k, None)

    def __len__(self) -> int:
        return len(self._items)


_CACHE = _PreparedCache()


def forget_sealed(blobs: Iterable[bytes]) -> None:
    """Drop the cached prepared fingers of these sealed records (erasure calls it)."""
    _CACHE.forget(_PreparedCache.key(b) for b in blobs if b)


def cached_count() -> int:
    """How many prepared fingers this process holds (for tests and diagnostics)."""
    return len(_CACHE)


def finger_records(
    session: Session, person_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[BiometricRecord]]:
    """The finger records of these people (sealed), by person."""
    ids = list(dict.fromkeys(person_ids))
    out: dict[uuid.UUID, list[BiometricRecord]] = {}
    for lo in range(0, len(ids), 500):
        rows = session.scalars(
            select(BiometricRecord)
            .where(BiometricRecord.person_id.in_(ids[lo:lo + 500]))
            .where(BiometricRecord.modality.like(f"{FINGER_PREFIX}%"))
            .order_by(BiometricRecord.id)
        )
        for rec in rows:
            out.setdefault(rec.person_id, []).append(rec)
    return out


def prepare_records(
    session: Session, sealer: TemplateSealer, records: Iterable[BiometricRecord], *,
    cache_size: int,
) -> PreparedFingers:
    """One person's stored fingers, opened and prepared for the matcher (cached).

    When a position was stored twice the newest record wins. The caller audits the read.
    """
    chosen: dict[FingerPosition, BiometricRecord] = {}
    for rec in records:
        chosen[_position(rec.modality)] = rec  # ordered by id: the newest wins
    out: PreparedFingers = {}
    missing: list[tuple[FingerPosition, BiometricRecord, bytes]] = []
    for pos, rec in chosen.items():
        key = _PreparedCache.key(rec.template)
        hit = _CACHE.get(key)
        if hit is None:
            missing.append((pos, rec, key))
        else:
            out[pos] = hit
    if missing:
        opened = sealer.open_many(
            [(rec.template, template_aad(rec.person_id, rec.modality)) for _, rec, _ in missing],
            session=session, skip_destroyed=True,
        )
        for (pos, _, key), raw in zip(missing, opened, strict=True):
            if raw is None:
                continue  # erased meanwhile
            view = decode_record(raw).view(pos)
            if view is None or not view.minutiae:
                continue
            finger = prepare(view)
            _CACHE.put(key, finger, cache_size)
            out[pos] = finger
    return out


def load_candidate_fingers(
    session: Session, sealer: TemplateSealer, person_ids: Iterable[uuid.UUID], *,
    cache_size: int, wanted: Mapping[uuid.UUID, bool] | None = None,
) -> dict[uuid.UUID, PreparedFingers]:
    """Prepared fingers of several people; with ``wanted``, only those mapped to True."""
    by_person = finger_records(session, person_ids)
    return {
        pid: prepare_records(session, sealer, recs, cache_size=cache_size)
        for pid, recs in by_person.items()
        if wanted is None or wanted.get(pid, False)
    }


_EXCEPTION_MODALITY = re.compile(r"^(face|finger:(10|[1-9]))$")
_REASONS = {"amputated", "unreadable", "bandaged", "refused", "other"}  # `MissingBiometric`


def captures_json(
    session: Session, sealer: TemplateSealer, person_id: uuid.UUID
) -> dict[str, list[dict[str, object]]]:
    """A person's fingers and per-biometric exceptions as `PersonCreate` JSON
    (``fingers``, ``missing_biometrics``): what a field kit's packet carries to the centre so
    that central deduplication and the central record get them too. The caller audits."""
    records = finger_records(session, [person_id]).get(person_id, [])
    latest = {rec.modality: rec for rec in records}  # ordered by id: the newest wins
    opened = sealer.open_many(
        [(r.template, template_aad(person_id, r.modality)) for r in latest.values()],
        session=session,
    )
    fingers: list[dict[str, object]] = [
        {"position": int(modality[len(FINGER_PREFIX):]),
         "record": base64.b64encode(raw).decode()}
        for modality, raw in zip(latest, opened, strict=True) if raw is not None
    ]
    missing: list[dict[str, object]] = [
        {"modality": e.modality, "reason": e.reason, "note": e.note or ""}
        for e in session.scalars(
            select(BiometricException).where(BiometricException.person_id == person_id)
            .order_by(BiometricException.created_at)
        )
        if _EXCEPTION_MODALITY.match(e.modality) and e.reason in _REASONS
    ]
    return {"fingers": fingers, "missing_biometrics": missing}

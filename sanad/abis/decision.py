"""The deduplication decision: from 1:N search results to no match / duplicate / adjudicate.

Thresholds are always arguments (from `sanad.config.Settings`), never constants here: they
belong to the accuracy benchmark of the face model in use, not to this code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from sanad.abis.fusion import FusedScore
from sanad.abis.index import GalleryIndex

# Bounds the (batch x batch) score block of the in-batch search to 64 MiB of float32.
_SCORE_BLOCK_ELEMENTS = 1 << 24


class Outcome(StrEnum):
    """What enrolment does with a probe."""

    NO_MATCH = "no_match"  # create the identity
    DUPLICATE = "duplicate"  # refuse (or link), never create silently
    ADJUDICATE = "adjudicate"  # open a case for a supervisor


@dataclass(frozen=True)
class Candidate:
    """A gallery entry (or an earlier member of the same batch) resembling the probe.

    ``gallery_id >= 0`` is a gallery id. A negative ``gallery_id`` comes only from
    `dedup_batch` and means "batch member ``-gallery_id - 1``" (``-1`` is member 0, ``-2``
    member 1, ...), i.e. a probe earlier in the same submission; see `batch_member`.
    """

    gallery_id: int
    score: float

    @property
    def batch_member(self) -> int | None:
        """Index of the matching earlier batch member, or ``None`` for a gallery candidate."""
        return -self.gallery_id - 1 if self.gallery_id < 0 else None


@dataclass(frozen=True)
class Decision:
    """Outcome for one probe.

    ``candidates`` are those scoring at or above the review threshold, best first.
    ``best_score`` is the top score seen whatever the thresholds (useful to log how close a
    ``NO_MATCH`` was); ``None`` when there was nothing to compare with.
    """

    outcome: Outcome
    candidates: tuple[Candidate, ...]
    best_score: float | None


def _check_thresholds(match_threshold: float, review_threshold: float) -> None:
    # Written so that NaN fails too.
    if not match_threshold >= review_threshold:
        raise ValueError(
            f"match_threshold ({match_threshold}) must be >= review_threshold ({review_threshold})"
        )


def _decision(
    pairs: Iterable[tuple[int, float]],
    *,
    match_threshold: float,
    review_threshold: float,
    limit: int | None = None,
) -> Decision:
    # Compare at float32 resolution, the precision of index scores: otherwise a score that
    # prints as 0.45 (float32 0.4499999881) would miss a 0.45 threshold.
    match_at = float(np.float32(match_threshold))
    review_at = float(np.float32(review_threshold))
    ranked = sorted(((i, float(np.float32(s))) for i, s in pairs), key=lambda p: -p[1])
    if not ranked:
        return Decision(Outcome.NO_MATCH, (), None)
    best = ranked[0][1]
    kept = [Candidate(i, s) for i, s in ranked if s >= review_at]
    if limit is not None:
        kept = kept[:limit]
    if best >= match_at:
        outcome = Outcome.DUPLICATE
    elif best >= review_at:
        outcome = Outcome.ADJUDICATE
    else:
        outcome = Outcome.NO_MATCH
    return Decision(outcome, tuple(kept), best)


def decide(
    scores: npt.NDArray[np.floating],
    ids: npt.NDArray[np.integer],
    *,
    match_threshold: float,
    review_threshold: float,
) -> Decision:
    """Decide one probe from its row of search results (entries with id ``-1`` are padding).

    Best score ``>= match_threshold`` → DUPLICATE; ``>= review_threshold`` → ADJUDICATE;
    otherwise NO_MATCH, compared at float32 resolution (that of index scores).
    ``ValueError`` if ``match_threshold < review_threshold``.
    """
    _check_thresholds(match_threshold, review_threshold)
    s = np.asarray(scores, dtype=np.float64)
    i = np.asarray(ids, dtype=np.int64)
    if s.ndim != 1 or s.shape != i.shape:
        raise ValueError(f"scores and ids must be 1-d of one length, got {s.shape}, {i.shape}")
    valid = i != -1
    pairs = zip(i[valid].tolist(), s[valid].tolist(), strict=True)
    return _decision(pairs, match_threshold=match_threshold, review_threshold=review_threshold)


def _earlier_members(probes: npt.NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
    """For each probe i, its top-``k`` resemblances among probes 0..i-1, as (-(j+1), score)."""
    m = probes.shape[0]
    out: list[list[tuple[int, float]]] = [[] for _ in range(m)]
    step = max(1, _SCORE_BLOCK_ELEMENTS // max(m, 1))
    for lo in range(0, m, step):
        hi = min(lo + step, m)
        block = probes[lo:hi] @ probes[:hi].T
        rows = np.arange(lo, hi)[:, None]
        # Only earlier members count: the first enrolled of two captures is the original.
        block[np.arange(hi)[None, :] >= rows] = -np.inf
        kk = min(k, hi)
        cols = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        top = np.take_along_axis(block, cols, axis=1)
        for r in range(hi - lo):
            out[lo + r] = [
                (-(int(j) + 1), float(s))
                for j, s in zip(cols[r], top[r], strict=True)
                if np.isfinite(s)
            ]
    return out


def search_batch(
    probes: npt.NDArray[np.float32], index: GalleryIndex, *, k: int
) -> list[list[tuple[int, float]]]:
    """Every probe's face resemblances: its top ``k`` in the gallery, then its top ``k``
    among the earlier probes of the same batch (negative ids, see `Candidate.batch_member`).

    The raw material of `dedup_batch` and of the fused (face + finger) decision.
    """
    batch = np.ascontiguousarray(probes, dtype=np.float32)
    scores, ids = index.search(batch, k)  # validates shape, unit norm and k
    in_batch = _earlier_members(batch, k)
    out = []
    for row in range(batch.shape[0]):
        valid = ids[row] != -1
        gallery = zip(ids[row][valid].tolist(), scores[row][valid].tolist(), strict=True)
        out.append([*gallery, *in_batch[row]])
    return out


def dedup_batch(
    probes: npt.NDArray[np.float32],
    index: GalleryIndex,
    *,
    k: int,
    match_threshold: float,
    review_threshold: float,
) -> list[Decision]:
    """Decide every probe of one submission against the gallery and against the batch itself.

    Probe ``i`` is also compared with probes ``0 .. i-1`` of the same batch, so a household
    enrolled twice in one submission, or one person captured twice, is caught although neither
    copy is in the gallery yet. Such candidates carry negative ids: ``-(j + 1)`` means batch
    member ``j`` (see `Candidate.batch_member`). Each decision keeps at most ``k`` candidates,
    gallery and batch merged, best first.
    """
    _check_thresholds(match_threshold, review_threshold)
    return [
        _decision(pairs, match_threshold=match_threshold, review_threshold=review_threshold,
                  limit=k)
        for pairs in search_batch(probes, index, k=k)
    ]


# --- fused decision (face + fingerprints) ------------------------------------------------------

_SEVERITY = {Outcome.NO_MATCH: 0, Outcome.ADJUDICATE: 1, Outcome.DUPLICATE: 2}


@dataclass(frozen=True)
class Thresholds:
    """The two rules' thresholds: face cosine, and fused evidence (LLR, docs/fusion.md)."""

    face_match: float
    face_review: float
    fused_match: float
    fused_review: float

    def __post_init__(self) -> None:
        _check_thresholds(self.face_match, self.face_review)
        _check_thresholds(self.fused_match, self.fused_review)


@dataclass(frozen=True)
class FusedCandidate:
    """One compared pair: face cosine (``None`` without faces), fused evidence, its outcome.

    ``rule`` says which thresholds judged the pair: ``"fused"`` when at least one finger was
    compared, ``"face"`` otherwise (no fingerprint evidence: today's face thresholds).
    """

    gallery_id: int
    face: float | None
    fused: FusedScore
    outcome: Outcome
    rule: str

    @property
    def batch_member(self) -> int | None:
        """Index of the matching earlier batch member, or ``None`` for a gallery candidate."""
        return -self.gallery_id - 1 if self.gallery_id < 0 else None


@dataclass(frozen=True)
class FusedDecision:
    """Outcome of one probe under the fused rule; ``candidates`` are the pairs that are not
    ``NO_MATCH``, most severe first, then by fused evidence. ``best_face`` as in `Decision`."""

    outcome: Outcome
    candidates: tuple[FusedCandidate, ...]
    best_face: float | None


def judge_pair(face: float | None, fused: FusedScore, t: Thresholds) -> tuple[Outcome, str]:
    """One pair's outcome: fused thresholds when a finger was compared, else face thresholds.

    A pair with no biometric evidence at all is never a duplicate (nor a candidate).
    """
    if fused.fingers_compared > 0:
        if fused.llr >= t.fused_match:
            return Outcome.DUPLICATE, "fused"
        return (Outcome.ADJUDICATE if fused.llr >= t.fused_review else Outcome.NO_MATCH), "fused"
    if face is None:
        return Outcome.NO_MATCH, "face"
    # float32 resolution, as `_decision` (index scores are float32).
    s = float(np.float32(face))
    if s >= float(np.float32(t.face_match)):
        return Outcome.DUPLICATE, "face"
    if s >= float(np.float32(t.face_review)):
        return Outcome.ADJUDICATE, "face"
    return Outcome.NO_MATCH, "face"


def decide_fused(
    pairs: Iterable[tuple[int, float | None, FusedScore]], t: Thresholds, *, limit: int | None
) -> FusedDecision:
    """Decide one probe from its compared pairs ``(id, face cosine, fused score)``.

    The probe's outcome is its most severe pair's. For pairs without fingerprint evidence this
    is exactly `decide`'s face rule, so a face-only enrolment decides as before.
    """
    judged = []
    best_face: float | None = None
    for gid, face, fused in pairs:
        if face is not None:
            best_face = face if best_face is None else max(best_face, face)
        outcome, rule = judge_pair(face, fused, t)
        judged.append(FusedCandidate(gid, face, fused, outcome, rule))
    kept = sorted(
        (c for c in judged if c.outcome != Outcome.NO_MATCH),
        key=lambda c: (-_SEVERITY[c.outcome], -c.fused.llr,
                       -(c.face if c.face is not None else -np.inf)),
    )
    if limit is not None:
        kept = kept[:limit]
    outcome = kept[0].outcome if kept else Outcome.NO_MATCH
    return FusedDecision(outcome, tuple(kept), best_face)

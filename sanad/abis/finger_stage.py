"""Fingerprints in the 1:N search: a coarse pre-filter and a second stage over candidates.

At 1.45 M people a full minutiae comparison against everyone (about 0.5 ms per finger pair
here, i.e. ~12 min per probe for one finger) is out of the question. Fingerprints therefore
enter the search in two ways (docs/fingerprints.md has the reasoning and the measurements):

1. **Pre-filter.** Each person gets one compact fixed-length *finger descriptor*
   (`person_descriptor`): per finger, a histogram of minutia-pair geometry that is invariant
   to rotation and translation — the distance between two minutiae and each one's direction
   relative to the segment joining them — square-rooted, centred on the population mean and
   normalised; the fingers' vectors are concatenated in finger-code order (absent fingers are
   zeros) and normalised again, so a cosine between two people averages their shared fingers.
   These unit vectors go into any `GalleryIndex` (the same FAISS/two-stage machinery as faces),
   giving ``k`` fingerprint candidates per probe in milliseconds. It is a *coarse* filter: it
   only needs to put the mate in the top ``k``, never to decide.
2. **Second stage** (`second_stage`). The union of the face candidates and the pre-filter
   candidates is compared with the full minutiae matcher, finger by finger, over the finger
   positions present in both people. A person without any usable finger on either side gets a
   result with ``compared == 0`` (reported, never an error); fusion then uses the face alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sanad.biometrics.finger.matcher import (
    DEFAULT_PARAMS,
    FingerComparison,
    MatcherParams,
    PreparedFinger,
    match_many,
)
from sanad.biometrics.finger.template import TEN_FINGERS, FingerPosition, MinutiaeArray

F32 = npt.NDArray[np.float32]

# Pair-geometry histogram: distance bins x direction-of-first x direction-of-second, each
# soft-assigned (linear interpolation between neighbouring bins) so that a few pixels or
# degrees of capture noise move weight between bins instead of flipping it. Sizes chosen on
# synthetic captures (docs/fingerprints.md): finer angle bins beat finer distance bins.
_D_MIN, _D_MAX, _D_BINS = 12.0, 160.0, 8
_A_BINS = 12
DESCRIPTOR_DIM_PER_FINGER = _D_BINS * _A_BINS * _A_BINS


def _soft(values: npt.NDArray[np.float64], bins: int, wrap: bool) -> list[
    tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
]:
    """Two (bin index, weight) pairs per value; bin centres at ``i + 0.5``."""
    low = np.floor(values - 0.5)
    frac = values - 0.5 - low
    out = []
    for index, weight in ((low, 1.0 - frac), (low + 1, frac)):
        idx = index.astype(np.int64)
        if wrap:
            idx %= bins
        else:
            weight = np.where((idx >= 0) & (idx < bins), weight, 0.0)
            idx = np.clip(idx, 0, bins - 1)
        out.append((idx, weight))
    return out


def finger_descriptor(minutiae: npt.ArrayLike) -> F32:
    """Un-centred descriptor of one finger: sqrt of the pair-geometry histogram, unit length.

    ``minutiae`` is ``(n, >=3)``: x, y (pixels, y down), theta (radians). Fewer than two
    minutiae give a zero vector (no geometry to describe).
    """
    arr = np.asarray(minutiae, dtype=np.float64)
    out = np.zeros(DESCRIPTOR_DIM_PER_FINGER, np.float32)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 3:
        return out
    x, y, theta = arr[:, 0], -arr[:, 1], arr[:, 2]  # y up so angles are math angles
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    dist = np.hypot(dx, dy)
    seg = np.arctan2(dy, dx)
    use = (dist >= _D_MIN) & (dist < _D_MAX)
    scale = _A_BINS / (2 * math.pi)
    a1 = np.mod(theta[:, None] - seg, 2 * math.pi)[use] * scale
    a2 = np.mod(theta[None, :] - seg, 2 * math.pi)[use] * scale
    d = (dist[use] - _D_MIN) / (_D_MAX - _D_MIN) * _D_BINS
    hist = np.zeros(DESCRIPTOR_DIM_PER_FINGER, np.float64)
    for di, dw in _soft(d, _D_BINS, wrap=False):
        for i1, w1 in _soft(a1, _A_BINS, wrap=True):
            for i2, w2 in _soft(a2, _A_BINS, wrap=True):
                flat = (di * _A_BINS + i1) * _A_BINS + i2
                hist += np.bincount(flat, weights=dw * w1 * w2, minlength=hist.size)
    root = np.sqrt(hist)
    norm = float(np.linalg.norm(root))
    if norm > 0:
        out[:] = root / norm
    return out


@dataclass(frozen=True)
class FingerDescriptorSpace:
    """How person descriptors are built: which finger positions, and the population centre.

    ``centre`` (per finger position, ``DESCRIPTOR_DIM_PER_FINGER`` each) is subtracted before
    normalising: raw histograms of any two fingers look alike (they share ridge-flow
    statistics), and centring keeps only what differs between people. Fit it once on a sample
    of the gallery with `fit`; it is part of the index's identity (rebuild when it changes).
    """

    positions: tuple[FingerPosition, ...]
    centre: F32

    @property
    def dim(self) -> int:
        """Length of a person descriptor."""
        return len(self.positions) * DESCRIPTOR_DIM_PER_FINGER

    @classmethod
    def fit(
        cls,
        people: Iterable[Mapping[FingerPosition, MinutiaeArray]],
        positions: Sequence[FingerPosition] = TEN_FINGERS,
    ) -> FingerDescriptorSpace:
        """Centre = mean descriptor per finger position over ``people`` (a sample suffices)."""
        sums = np.zeros((len(positions), DESCRIPTOR_DIM_PER_FINGER), np.float64)
        counts = np.zeros(len(positions))
        for person in people:
            for row, pos in enumerate(positions):
                if pos in person and len(person[pos]) >= 2:
                    sums[row] += finger_descriptor(person[pos])
                    counts[row] += 1
        centre = sums / np.maximum(counts, 1)[:, None]
        return cls(tuple(positions), centre.astype(np.float32).reshape(-1))

    def person_descriptor(self, fingers: Mapping[FingerPosition, MinutiaeArray]) -> F32 | None:
        """Unit person descriptor, or ``None`` when no listed finger has >= 2 minutiae."""
        parts = np.zeros((len(self.positions), DESCRIPTOR_DIM_PER_FINGER), np.float32)
        centre = self.centre.reshape(len(self.positions), -1)
        present = False
        for row, pos in enumerate(self.positions):
            m = fingers.get(pos)
            if m is None or len(m) < 2:
                continue
            v = finger_descriptor(m) - centre[row]
            norm = float(np.linalg.norm(v))
            if norm > 0:
                parts[row] = v / norm
                present = True
        if not present:
            return None
        flat = parts.reshape(-1)
        result: F32 = (flat / np.linalg.norm(flat)).astype(np.float32)
        return result


PreparedFingers = Mapping[FingerPosition, PreparedFinger]


@dataclass(frozen=True)
class StageResult:
    """Second-stage outcome for one gallery candidate.

    ``comparison.scores`` holds per-finger matcher scores over the positions present in both
    people; ``comparison.compared == 0`` means no fingerprint evidence (missing fingers on
    either side, or no finger record at all). ``sources`` says which first stage proposed the
    candidate: ``"face"``, ``"finger"`` or both.
    """

    gallery_id: int
    comparison: FingerComparison
    sources: frozenset[str]


def merge_candidates(
    face_ids: Iterable[int], finger_ids: Iterable[int]
) -> list[tuple[int, frozenset[str]]]:
    """Union of the two first stages' candidates (ids ``< 0`` are padding), face order first."""
    seen: dict[int, set[str]] = {}
    for source, ids in (("face", face_ids), ("finger", finger_ids)):
        for gid in ids:
            gid = int(gid)
            if gid >= 0:
                seen.setdefault(gid, set()).add(source)
    return [(gid, frozenset(src)) for gid, src in seen.items()]


def second_stage(
    candidates: Sequence[tuple[int, frozenset[str]]] | Sequence[int],
    probe: PreparedFingers,
    lookup: Callable[[int], PreparedFingers | None],
    params: MatcherParams = DEFAULT_PARAMS,
) -> list[StageResult]:
    """Match the probe's fingers against each candidate's, batching per finger position.

    ``candidates`` are gallery ids (or `merge_candidates` output); ``lookup(id)`` returns that
    person's prepared fingers (``None``/empty when they have none). One vectorised
    `match_many` call per finger position covers all candidates holding that finger.
    Results come back in candidate order.
    """
    items = [c if isinstance(c, tuple) else (int(c), frozenset({"face"})) for c in candidates]
    fingers = [lookup(gid) or {} for gid, _ in items]
    scores: list[dict[FingerPosition, float]] = [{} for _ in items]
    for pos, probe_finger in sorted(probe.items()):
        if pos == FingerPosition.UNKNOWN or len(probe_finger) == 0:
            continue
        rows = [r for r, f in enumerate(fingers) if pos in f and len(f[pos]) > 0]
        if not rows:
            continue
        got = match_many(probe_finger, [fingers[r][pos] for r in rows], params)
        for r, s in zip(rows, got.tolist(), strict=True):
            scores[r][pos] = float(s)
    return [
        StageResult(gid, FingerComparison(scores[r]), src) for r, (gid, src) in enumerate(items)
    ]

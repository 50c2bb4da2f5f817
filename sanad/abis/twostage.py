"""The ``twostage`` gallery backend: an exhaustive Hamming scan, then an int8 re-rank.

Why not a generic ANN index: face templates of angular-margin models spread almost uniformly
over the sphere, where graph (HNSW) and cluster (IVF) indexes lose the mate far too often for
deduplication (docs/abis.md has the measurements). This backend stays *exhaustive* — every
gallery entry is looked at for every probe — but makes looking cheap:

1. **Stage 1, sign codes.** Each template, minus the gallery mean (SFace templates are not
   centred: without this the sign bits are biased and carry less information), is reduced to
   one bit per dimension: 16 bytes for 128-d, 23 MB for 1.45 M people, scanned by FAISS's
   Hamming kernels (``knn_hamming``). The Hamming distance of sign codes estimates the angle
   between two vectors (SimHash), so the mate — at cosine ≈ 0.6–0.9 — lands among the nearest
   codes while strangers spread around dim/2. The ``shortlist`` nearest codes survive.
2. **Stage 2, int8 re-rank.** The survivors are scored against int8 copies of the templates
   (each row scaled so its largest component is 127, one byte per dimension, plus the row's
   inverse norm), which moves a 128-d cosine by about 0.0007 (sd); the top ``k`` are
   returned.

Memory per entry: dim/8 + dim + 4 + 8 bytes (code, int8 template, inverse norm, id) = 156 B
for 128-d, ≈ 226 MB at 1.45 M, against 742 MB for float32 templates.

The centre is re-estimated (and every code recomputed) whenever the gallery has doubled since
the last estimate, so incremental adds cost amortised O(1) and codes always use a mean of at
least half the current gallery. ``save`` writes the shared backend-neutral file with the
*dequantised* int8 templates: lossy at that 0.001 level, documented, and a rebuild from the
database restores full precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

import faiss
import numpy as np
import numpy.typing as npt

from sanad.abis.index import (
    FloatMatrix,
    IdArray,
    _check_ids,
    _check_k,
    _check_vectors,
    _load_npz,
    _next_watermark,
    _padded,
    _save_npz,
)

DEFAULT_SHORTLIST = 512
_INT8_SCALE = 127.0
# Re-rank / exhaustive blocks stay within ~64 MiB of float32 scores.
_BLOCK_ELEMENTS = 1 << 24
# Below this many entries the Hamming stage is skipped: scoring everything is cheaper.
_MIN_RECENTRE = 64
# Batches of at most this many probes scan with one thread (see `_hamming`).
_SINGLE_THREAD_BELOW = 4


def sign_codes(vectors: FloatMatrix, centre: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """One bit per dimension, set where the centred component is positive, packed in bytes."""
    return np.packbits(vectors > centre, axis=1)


class TwoStageIndex:
    """Exhaustive two-stage search: Hamming scan of sign codes, int8 re-rank (see module)."""

    identifier: str = "twostage"

    def __init__(self, dim: int, *, shortlist: int = DEFAULT_SHORTLIST) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        if shortlist < 1:
            raise ValueError("shortlist must be at least 1")
        self._dim = dim
        self.shortlist = shortlist
        self._watermark = 0
        self._n = 0
        self._code_bytes = (dim + 7) // 8
        self._codes = np.empty((0, self._code_bytes), dtype=np.uint8)
        self._q = np.empty((0, dim), dtype=np.int8)
        self._inv_norm = np.empty(0, dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        self._sum = np.zeros(dim, dtype=np.float64)
        self._centre = np.zeros(dim, dtype=np.float32)
        self._centred_at = 0

    @property
    def dim(self) -> int:
        """Template dimension."""
        return self._dim

    @property
    def watermark(self) -> int:
        """Highest database change-sequence number reflected in the index."""
        return self._watermark

    def __len__(self) -> int:
        return self._n

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays (allocated capacity, not only the used rows)."""
        return int(self._codes.nbytes + self._q.nbytes + self._inv_norm.nbytes + self._ids.nbytes)

    # --- storage ------------------------------------------------------------------------------

    def _reserve(self, capacity: int) -> None:
        old = self._ids.shape[0]
        if capacity <= old:
            return
        # Grow by 1.25x, not 2x: at 1.45 M entries a doubling would overshoot the memory goal.
        capacity = max(capacity, old + old // 4, 1024)

        def grow(a: npt.NDArray[np.generic], shape: tuple[int, ...]) -> npt.NDArray[np.generic]:
            b = np.empty(shape, dtype=a.dtype)
            b[: self._n] = a[: self._n]
            return b

        self._codes = grow(self._codes, (capacity, self._code_bytes))  # type: ignore[assignment]
        self._q = grow(self._q, (capacity, self._dim))  # type: ignore[assignment]
        self._inv_norm = grow(self._inv_norm, (capacity,))  # type: ignore[assignment]
        self._ids = grow(self._ids, (capacity,))  # type: ignore[assignment]

    def _present(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        # np.isin picks a lookup table for dense id ranges: no per-entry Python dict, whose
        # ~100 bytes per entry would cost 150 MB at 1.45 M.
        if self._n == 0 or ids.size == 0:
            return np.zeros(ids.size, dtype=bool)
        return np.isin(ids, self._ids[: self._n])

    def _recentre(self) -> None:
        n = self._n
        self._centre = (self._sum / n).astype(np.float32)
        self._centred_at = n
        step = max(1, _BLOCK_ELEMENTS // self._dim)
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            block = self._q[lo:hi].astype(np.float32) * (self._inv_norm[lo:hi, None])
            self._codes[lo:hi] = sign_codes(block, self._centre)

    def add(self, ids: IdArray, vectors: FloatMatrix, *, watermark: int | None = None) -> None:
        """Add new entries; ``ValueError`` if an id is already present (nothing changes)."""
        id_arr = _check_ids(ids)
        vec = _check_vectors(vectors, self._dim, id_arr.size)
        new_watermark = _next_watermark(self._watermark, watermark)
        present = self._present(id_arr)
        if present.any():
            raise ValueError(f"ids already in the index: {id_arr[present][:5].tolist()}")
        start, end = self._n, self._n + id_arr.size
        if id_arr.size:
            self._reserve(end)
            # Per-row scale: the largest component maps to 127. Unit 128-d templates have
            # components of at most ~0.3, so this is ~3x finer than a fixed 127 scale; the
            # stored inverse norm undoes whatever scale was used.
            peak = np.abs(vec).max(axis=1, keepdims=True)
            q = np.rint(vec * (_INT8_SCALE / peak))
            norms = np.linalg.norm(q, axis=1)
            if np.any(norms == 0):
                raise ValueError("vector quantises to zero")  # impossible for unit vectors
            self._q[start:end] = q.astype(np.int8)
            self._inv_norm[start:end] = (1.0 / norms).astype(np.float32)
            self._ids[start:end] = id_arr
            self._sum += vec.sum(axis=0, dtype=np.float64)
            self._n = end
            if end >= 2 * self._centred_at or self._centred_at < _MIN_RECENTRE <= end:
                self._recentre()
            else:
                self._codes[start:end] = sign_codes(vec, self._centre)
        self._watermark = new_watermark

    def remove(self, ids: IdArray, *, watermark: int | None = None) -> None:
        """Remove entries; ``ValueError`` if an id is absent (nothing changes)."""
        id_arr = _check_ids(ids)
        new_watermark = _next_watermark(self._watermark, watermark)
        present = self._present(id_arr)
        if not present.all():
            raise ValueError(f"ids not in the index: {id_arr[~present][:5].tolist()}")
        if id_arr.size:
            keep = ~np.isin(self._ids[: self._n], id_arr)
            rows = np.flatnonzero(~keep)
            gone = self._q[rows].astype(np.float64) * self._inv_norm[rows, None]
            self._sum -= gone.sum(axis=0)
            # Stable compaction (order kept), one vectorised pass per array.
            m = int(keep.sum())
            for arr in (self._codes, self._q, self._inv_norm, self._ids):
                arr[:m] = arr[: self._n][keep]
            self._n = m
        self._watermark = new_watermark

    # --- search -------------------------------------------------------------------------------

    def _rerank(
        self, probes: FloatMatrix, rows: npt.NDArray[np.int64], k: int
    ) -> tuple[FloatMatrix, IdArray]:
        """Exact int8 scores of each probe against its candidate ``rows`` (shape (m, L))."""
        cand = self._q[rows].astype(np.float32)  # (m, L, dim)
        s = np.einsum("mld,md->ml", cand, probes) * self._inv_norm[rows]
        kk = min(k, rows.shape[1])
        if kk < rows.shape[1]:
            top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        else:
            top = np.broadcast_to(np.arange(rows.shape[1]), s.shape)
        top_s = np.take_along_axis(s, top, axis=1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        best = np.take_along_axis(top, order, axis=1)
        return (
            np.take_along_axis(top_s, order, axis=1).astype(np.float32),
            self._ids[np.take_along_axis(rows, best, axis=1)],
        )

    def _hamming(self, codes: npt.NDArray[np.uint8], shortlist: int) -> npt.NDArray[np.int64]:
        """Rows of the ``shortlist`` nearest codes for each probe code."""
        if codes.shape[0] > _SINGLE_THREAD_BELOW:
            _, rows = faiss.knn_hamming(codes, self._codes[: self._n], shortlist)
            return np.asarray(rows, dtype=np.int64)
        # A few probes: one thread. FAISS splits even one query over its OpenMP threads, and
        # on a busy machine the barrier waits dominate: measured at 1.45 M under load, p50
        # 4.4 ms with one thread against 122 ms with two. The setting is process-wide, so it
        # is restored at once; other FAISS calls overlapping this one only lose parallelism.
        previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            _, rows = faiss.knn_hamming(codes, self._codes[: self._n], shortlist)
        finally:
            faiss.omp_set_num_threads(previous)
        return np.asarray(rows, dtype=np.int64)

    def _scan_all(self, probes: FloatMatrix, k: int) -> tuple[FloatMatrix, IdArray]:
        n = self._n
        rows = np.broadcast_to(np.arange(n, dtype=np.int64), (probes.shape[0], n))
        return self._rerank(probes, rows, k)

    def search(self, batch: FloatMatrix, k: int) -> tuple[FloatMatrix, IdArray]:
        """Top-``k`` by (int8) inner product among the Hamming shortlist, best first."""
        _check_k(k)
        probes = _check_vectors(batch, self._dim)
        m, n = probes.shape[0], self._n
        scores, ids = _padded(m, k)
        if n == 0 or m == 0:
            return scores, ids
        kk = min(k, n)
        shortlist = max(self.shortlist, kk)
        # Blocks bound the (m, L, dim) float32 candidate tensor of the re-rank.
        step = max(1, _BLOCK_ELEMENTS // (min(shortlist, n) * self._dim))
        for lo in range(0, m, step):
            block = probes[lo : lo + step]
            if n <= shortlist:
                s, i = self._scan_all(block, kk)
            else:
                codes = sign_codes(block, self._centre)
                rows = self._hamming(codes, shortlist)
                s, i = self._rerank(block, rows, kk)
            scores[lo : lo + step, :kk] = s
            ids[lo : lo + step, :kk] = i
        return scores, ids

    # --- persistence --------------------------------------------------------------------------

    def _dequantised(self) -> FloatMatrix:
        n = self._n
        out: FloatMatrix = (self._q[:n].astype(np.float32) * self._inv_norm[:n, None]).astype(
            np.float32
        )
        return out

    def save(self, path: Path) -> None:
        """Write the shared gallery file atomically (templates dequantised from int8)."""
        _save_npz(
            path, self.identifier, self._dim, self._watermark,
            self._ids[: self._n].copy(), self._dequantised(),
        )

    @classmethod
    def load(cls, path: Path, *, shortlist: int = DEFAULT_SHORTLIST) -> Self:
        """Read a gallery file written by any backend's ``save``."""
        dim, watermark, ids, vectors = _load_npz(path)
        index = cls(dim, shortlist=shortlist)
        # Renormalise: another backend's file holds float32 unit vectors, ours dequantised
        # ones whose norms differ from 1 only by float rounding.
        if vectors.size:
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        index.add(ids, vectors, watermark=watermark)
        return index

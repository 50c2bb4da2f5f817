"""The 1:N gallery index: the protocol, the exact backends and the backend registry.

Backends: ``exact`` (numpy) and ``faiss-flat`` here; ``twostage`` (fast exhaustive search for
large galleries, `sanad.abis.twostage`) and ``milvus`` (pymilvus; milvus-lite in-process or a
Milvus server, `sanad.abis.milvus`) in their own modules, imported on demand.

The database is the source of truth; an index is a cache of ``(gallery id, unit template)``
pairs that can be rebuilt from it. ``watermark`` records how far into the database's change
sequence the index is, so a process starting with a saved index replays only newer changes.

Every backend writes the same backend-neutral file (ids, float32 vectors, watermark in an
``.npz`` archive), so changing ``SANAD_INDEX_BACKEND`` never forces a rebuild.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Protocol, Self

import faiss
import numpy as np
import numpy.typing as npt

from sanad.errors import SanadError

FloatMatrix = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

INDEX_KINDS: tuple[str, ...] = ("exact", "faiss-flat", "twostage", "milvus")

# Scores are cosines only if vectors are unit length; anything further off than float32
# rounding is a caller bug (an unnormalised model output), not noise worth accepting.
_UNIT_NORM_TOLERANCE = 1e-3
# Bounds the (probes x gallery) score block of the exact search to 64 MiB of float32.
_SCORE_BLOCK_ELEMENTS = 1 << 24
_FILE_FORMAT_VERSION = 1


class IndexFileError(SanadError):
    """A saved gallery index cannot be read; rebuild it from the database."""

    code = "invalid_gallery_index"
    status = 500


class GalleryIndex(Protocol):
    """Contract of a 1:N face gallery backend.

    * Gallery ids are non-negative int64 (opaque keys the registry maps to templates; negative
      values are reserved: ``-1`` pads search results, see also `sanad.abis.decision`).
    * Vectors are float32 unit vectors of length ``dim``; scores are cosine similarities.
    * ``add`` rejects ids already present and ``remove`` rejects unknown ids (``ValueError``),
      and both validate everything before changing anything: an index never half-applies a
      call. To replace a template, remove then add.
    * ``search(batch, k)`` returns ``(scores, ids)`` of shape ``(m, k)``, best first; when the
      gallery holds fewer than ``k`` entries the tail is padded with score ``-inf`` and id
      ``-1``.
    * ``watermark`` is the highest database change-sequence number the index reflects
      (0 for a fresh index). ``add`` and ``remove`` take it as an optional keyword; it only
      moves forward (``max``), because changes committed concurrently may be applied out of
      order.
    * ``save(path)`` replaces ``path`` atomically; ``load(path)`` restores ids, vectors and
      watermark, raising `IndexFileError` for an unreadable file (``FileNotFoundError`` when
      there is none).
    """

    identifier: str

    @property
    def dim(self) -> int:
        """Template dimension."""
        ...

    @property
    def watermark(self) -> int:
        """Highest database change-sequence number reflected in the index."""
        ...

    def add(self, ids: IdArray, vectors: FloatMatrix, *, watermark: int | None = None) -> None:
        """Add ``len(ids)`` new entries; ``vectors`` has shape ``(len(ids), dim)``."""
        ...

    def remove(self, ids: IdArray, *, watermark: int | None = None) -> None:
        """Remove entries by gallery id."""
        ...

    def search(self, batch: FloatMatrix, k: int) -> tuple[FloatMatrix, IdArray]:
        """Top-``k`` cosine neighbours of each row of ``batch`` (shape ``(m, dim)``)."""
        ...

    def __len__(self) -> int:
        """Number of entries."""
        ...

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically."""
        ...

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read an index written by any backend's ``save``."""
        ...


# --- validation shared by the backends --------------------------------------------------------


def _check_ids(ids: npt.ArrayLike) -> IdArray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be 1-d, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("gallery ids must be non-negative (negative ids are reserved)")
    if np.unique(arr).size != arr.size:
        raise ValueError("ids repeat within one call")
    return arr


def _check_vectors(vectors: npt.ArrayLike, dim: int, n: int | None = None) -> FloatMatrix:
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"got {n} ids but {arr.shape[0]} vectors")
    if arr.size:
        norms = np.linalg.norm(arr, axis=1)
        if not np.all(np.abs(norms - 1.0) <= _UNIT_NORM_TOLERANCE):
            raise ValueError("vectors must be unit length (normalise templates first)")
    return arr


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _next_watermark(current: int, proposed: int | None) -> int:
    if proposed is None:
        return current
    if proposed < 0:
        raise ValueError("watermark must be non-negative")
    return max(current, proposed)


def _padded(m: int, k: int) -> tuple[FloatMatrix, IdArray]:
    return np.full((m, k), -np.inf, dtype=np.float32), np.full((m, k), -1, dtype=np.int64)


def _save_npz(
    path: Path, kind: str, dim: int, watermark: int, ids: IdArray, vectors: FloatMatrix
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # A file object, not a name: np.savez would append ".npz" to a name.
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                format_version=np.int64(_FILE_FORMAT_VERSION),
                kind=np.str_(kind),
                dim=np.int64(dim),
                watermark=np.int64(watermark),
                ids=ids,
                vectors=vectors,
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if os.name == "posix":
        # Make the rename itself durable, not only the file's bytes.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _load_npz(path: Path) -> tuple[int, int, IdArray, FloatMatrix]:
    """Read ``(dim, watermark, ids, vectors)`` from a file written by `_save_npz`."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != _FILE_FORMAT_VERSION:
                raise IndexFileError(f"{path}: unsupported gallery file version {version}")
            dim = int(data["dim"])
            watermark = int(data["watermark"])
            ids = np.asarray(data["ids"], dtype=np.int64)
            vectors = np.ascontiguousarray(data["vectors"], dtype=np.float32)
    except FileNotFoundError:
        raise
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexFileError(f"{path}: unreadable gallery index ({exc})") from exc
    if ids.ndim != 1 or vectors.shape != (ids.size, dim):
        raise IndexFileError(f"{path}: ids and vectors disagree in shape")
    return dim, watermark, ids, vectors


# --- backends ---------------------------------------------------------------------------------


class ExactIndex:
    """Brute-force numpy backend: the accuracy baseline, and fine for small galleries.

    Vectors live in one contiguous, geometrically grown array with an id→row map; removal
    moves the last row into the hole so the array never fragments.
    """

    identifier: str = "exact"

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._watermark = 0
        self._n = 0
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        self._rows: dict[int, int] = {}

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

    def _reserve(self, capacity: int) -> None:
        if capacity <= self._vectors.shape[0]:
            return
        capacity = max(capacity, 2 * self._vectors.shape[0], 1024)
        vectors = np.empty((capacity, self._dim), dtype=np.float32)
        vectors[: self._n] = self._vectors[: self._n]
        ids = np.empty(capacity, dtype=np.int64)
        ids[: self._n] = self._ids[: self._n]
        self._vectors, self._ids = vectors, ids

    def add(self, ids: IdArray, vectors: FloatMatrix, *, watermark: int | None = None) -> None:
        """Add new entries; ``ValueError`` if an id is already present."""
        id_arr = _check_ids(ids)
        vec = _check_vectors(vectors, self._dim, id_arr.size)
        new_watermark = _next_watermark(self._watermark, watermark)
        present = [int(i) for i in id_arr if int(i) in self._rows]
        if present:
            raise ValueError(f"ids already in the index: {present[:5]}")
        start, end = self._n, self._n + id_arr.size
        self._reserve(end)
        self._vectors[start:end] = vec
        self._ids[start:end] = id_arr
        self._rows.update((int(i), row) for row, i in enumerate(id_arr, start))
        self._n = end
        self._watermark = new_watermark

    def remove(self, ids: IdArray, *, watermark: int | None = None) -> None:
        """Remove entries; ``ValueError`` if an id is absent."""
        id_arr = _check_ids(ids)
        new_watermark = _next_watermark(self._watermark, watermark)
        missing = [int(i) for i in id_arr if int(i) not in self._rows]
        if missing:
            raise ValueError(f"ids not in the index: {missing[:5]}")
        for gallery_id in id_arr:
            row = self._rows.pop(int(gallery_id))
            last = self._n - 1
            if row != last:
                self._vectors[row] = self._vectors[last]
                moved = int(self._ids[last])
                self._ids[row] = moved
                self._rows[moved] = row
            self._n = last
        self._watermark = new_watermark

    def search(self, batch: FloatMatrix, k: int) -> tuple[FloatMatrix, IdArray]:
        """Top-``k`` by exact inner product, best first, padded past the gallery size."""
        _check_k(k)
        probes = _check_vectors(batch, self._dim)
        scores, ids = _padded(probes.shape[0], k)
        n = self._n
        if n == 0 or probes.shape[0] == 0:
            return scores, ids
        kk = min(k, n)
        gallery = self._vectors[:n]
        step = max(1, _SCORE_BLOCK_ELEMENTS // n)
        for lo in range(0, probes.shape[0], step):
            block = probes[lo : lo + step] @ gallery.T
            if kk < n:
                # argpartition is O(n) per row; only the k survivors get sorted.
                cols = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
            else:
                cols = np.broadcast_to(np.arange(n), block.shape)
            top = np.take_along_axis(block, cols, axis=1)
            order = np.argsort(-top, axis=1, kind="stable")
            scores[lo : lo + step, :kk] = np.take_along_axis(top, order, axis=1)
            ids[lo : lo + step, :kk] = self._ids[np.take_along_axis(cols, order, axis=1)]
        return scores, ids

    def _snapshot(self) -> tuple[IdArray, FloatMatrix]:
        return self._ids[: self._n].copy(), self._vectors[: self._n].copy()

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically (temporary file, fsync, rename)."""
        ids, vectors = self._snapshot()
        _save_npz(path, self.identifier, self._dim, self._watermark, ids, vectors)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read an index written by any backend's ``save``."""
        dim, watermark, ids, vectors = _load_npz(path)
        index = cls(dim)
        index.add(ids, vectors, watermark=watermark)
        return index


class FaissFlatIndex:
    """FAISS exact inner-product backend (``IndexIDMap2`` over ``IndexFlatIP``).

    Same results as `ExactIndex` (up to ties and float rounding), with FAISS's SIMD kernels
    and threads. ``IndexIDMap2`` rather than ``IndexIDMap`` because it can reconstruct vectors
    by id, which `save` needs.
    """

    identifier: str = "faiss-flat"

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._watermark = 0
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        # FAISS accepts duplicate ids silently; the set enforces the protocol's uniqueness.
        self._members: set[int] = set()

    @property
    def dim(self) -> int:
        """Template dimension."""
        return self._dim

    @property
    def watermark(self) -> int:
        """Highest database change-sequence number reflected in the index."""
        return self._watermark

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: IdArray, vectors: FloatMatrix, *, watermark: int | None = None) -> None:
        """Add new entries; ``ValueError`` if an id is already present."""
        id_arr = _check_ids(ids)
        vec = _check_vectors(vectors, self._dim, id_arr.size)
        new_watermark = _next_watermark(self._watermark, watermark)
        present = [int(i) for i in id_arr if int(i) in self._members]
        if present:
            raise ValueError(f"ids already in the index: {present[:5]}")
        if id_arr.size:
            self._index.add_with_ids(vec, id_arr)
            self._members.update(int(i) for i in id_arr)
        self._watermark = new_watermark

    def remove(self, ids: IdArray, *, watermark: int | None = None) -> None:
        """Remove entries; ``ValueError`` if an id is absent."""
        id_arr = _check_ids(ids)
        new_watermark = _next_watermark(self._watermark, watermark)
        missing = [int(i) for i in id_arr if int(i) not in self._members]
        if missing:
            raise ValueError(f"ids not in the index: {missing[:5]}")
        if id_arr.size:
            self._index.remove_ids(id_arr)
            self._members.difference_update(int(i) for i in id_arr)
        self._watermark = new_watermark

    def search(self, batch: FloatMatrix, k: int) -> tuple[FloatMatrix, IdArray]:
        """Top-``k`` by inner product, best first, padded past the gallery size."""
        _check_k(k)
        probes = _check_vectors(batch, self._dim)
        scores, ids = _padded(probes.shape[0], k)
        n = len(self)
        if n == 0 or probes.shape[0] == 0:
            return scores, ids
        kk = min(k, n)
        found_scores, found_ids = self._index.search(probes, kk)
        scores[:, :kk] = found_scores
        ids[:, :kk] = found_ids
        return scores, ids

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically (temporary file, fsync, rename)."""
        n = len(self)
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = (
            self._index.index.reconstruct_n(0, n)
            if n
            else np.empty((0, self._dim), dtype=np.float32)
        )
        _save_npz(path, self.identifier, self._dim, self._watermark, ids, vectors)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read an index written by any backend's ``save``."""
        dim, watermark, ids, vectors = _load_npz(path)
        index = cls(dim)
        index.add(ids, vectors, watermark=watermark)
        return index


def _backend(kind: str) -> Any:
    """The backend class of ``kind``; optional backends are imported only when asked for."""
    if kind == ExactIndex.identifier:
        return ExactIndex
    if kind == FaissFlatIndex.identifier:
        return FaissFlatIndex
    if kind == "twostage":
        from sanad.abis.twostage import TwoStageIndex

        return TwoStageIndex
    if kind == "milvus":
        from sanad.abis.milvus import MilvusIndex

        return MilvusIndex
    raise ValueError(f"unknown index kind {kind!r}; known: {', '.join(INDEX_KINDS)}")


def remove_present(index: GalleryIndex, ids: list[int]) -> int:
    """Remove those of ``ids`` the index holds, ignoring the others; returns how many.

    The protocol's ``remove`` rejects absent ids as a whole (nothing changes), so a batch
    with an absent id falls back to one id at a time. Callers hold their gallery's lock.
    """
    try:
        index.remove(np.asarray(ids, dtype=np.int64))
        return len(ids)
    except ValueError:
        removed = 0
        for gid in ids:
            try:
                index.remove(np.asarray([gid], dtype=np.int64))
                removed += 1
            except ValueError:
                continue  # not in this index (never added, or dropped already)
        return removed


def make_index(kind: str, dim: int, **options: Any) -> GalleryIndex:
    """An empty index of backend ``kind`` (one of `INDEX_KINDS`).

    ``options`` go to the backend's constructor: ``shortlist`` for ``twostage``, ``uri`` for
    ``milvus``; the exact backends take none.
    """
    index: GalleryIndex = _backend(kind)(dim, **options)
    return index


def load_index(kind: str, path: Path, **options: Any) -> GalleryIndex:
    """Load a saved index (written by any backend) into backend ``kind``."""
    index: GalleryIndex = _backend(kind).load(path, **options)
    return index

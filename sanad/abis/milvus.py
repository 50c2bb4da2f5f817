"""The ``milvus`` gallery backend: the same `GalleryIndex` contract over a Milvus collection.

The path for galleries beyond one machine: a Milvus cluster shards the collection, and this
code does not change. Tests (and a single machine) run it against milvus-lite, the embedded
Milvus that pymilvus starts in-process from a local file.

Collection: primary key ``id`` (INT64, the gallery id), ``v`` (FLOAT_VECTOR, dim), a ``FLAT``
index with metric ``IP`` — exact inner product, so results equal the ``exact`` backend's.
Milvus does not enforce unique primary keys, so ``add`` checks presence first (a query on the
ids), which keeps the protocol's "reject ids already present" promise without a local copy of
the ids. Strong consistency: a search sees every add/remove that returned before it.

``uri`` defaults to a milvus-lite file in a per-process temporary directory, so an index made
without configuration behaves like the in-memory backends (a cache, rebuilt from the
database); ``save``/``load`` use the shared backend-neutral file.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import uuid
import weakref
from pathlib import Path
from typing import Any, Self

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

# Milvus caps `limit` (topk) and the length of an `in [...]` filter; stay well below.
_MAX_TOPK = 16_384
_ID_CHUNK = 4_096
_INSERT_CHUNK = 10_000

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
_default_dir: Path | None = None


def _default_uri() -> str:
    """One milvus-lite file per process, removed at exit; each index has its own collection."""
    global _default_dir
    with _clients_lock:
        if _default_dir is None:
            _default_dir = Path(tempfile.mkdtemp(prefix="sanad-milvus-"))
            atexit.register(shutil.rmtree, _default_dir, True)
        return str(_default_dir / "gallery.db")


def _client(uri: str) -> Any:
    """A shared client per URI: milvus-lite runs one embedded server per file."""
    from pymilvus import MilvusClient

    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            client = MilvusClient(uri)
            _clients[uri] = client
        return client


# Collections of garbage-collected indexes, dropped at the next index creation. Never from the
# finalizer itself: garbage collection can run inside another gRPC call of the same client,
# and a nested call there stalls the channel (measured: 200 s, then a lost connection).
_orphans: list[tuple[Any, str]] = []


def _orphan(client: Any, name: str) -> None:
    with _clients_lock:
        _orphans.append((client, name))


def _drop_orphans() -> None:
    with _clients_lock:
        pending = _orphans[:]
        _orphans.clear()
    for client, name in pending:
        client.drop_collection(name)


class MilvusIndex:
    """Gallery backend on a Milvus collection (milvus-lite in-process by default)."""

    identifier: str = "milvus"

    def __init__(self, dim: int, *, uri: str | None = None, collection: str | None = None) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        from pymilvus import DataType

        self._dim = dim
        self._watermark = 0
        self._n = 0
        self.uri = uri or _default_uri()
        self.collection = collection or f"sanad_gallery_{uuid.uuid4().hex}"
        self._client = _client(self.uri)
        _drop_orphans()
        if self._client.has_collection(self.collection):
            raise ValueError(f"Milvus collection {self.collection!r} already exists")
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
        params = self._client.prepare_index_params()
        params.add_index(field_name="v", index_type="FLAT", metric_type="IP")
        self._client.create_collection(
            self.collection, schema=schema, index_params=params, consistency_level="Strong"
        )
        # Owned collections go when the index does (it is a cache of the database).
        self._finalizer = weakref.finalize(self, _orphan, self._client, self.collection)

    def close(self) -> None:
        """Drop the collection now (otherwise it is dropped after garbage collection)."""
        if self._finalizer.detach() is not None:
            self._client.drop_collection(self.collection)

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

    def _present(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        found: set[int] = set()
        for lo in range(0, ids.size, _ID_CHUNK):
            chunk = [int(i) for i in ids[lo : lo + _ID_CHUNK]]
            rows = self._client.query(
                self.collection, filter=f"id in {chunk}", output_fields=["id"]
            )
            found.update(int(r["id"]) for r in rows)
        return np.array([int(i) in found for i in ids], dtype=bool)

    def add(self, ids: IdArray, vectors: FloatMatrix, *, watermark: int | None = None) -> None:
        """Add new entries; ``ValueError`` if an id is already present (nothing changes)."""
        id_arr = _check_ids(ids)
        vec = _check_vectors(vectors, self._dim, id_arr.size)
        new_watermark = _next_watermark(self._watermark, watermark)
        if id_arr.size:
            present = self._present(id_arr)
            if present.any():
                raise ValueError(f"ids already in the index: {id_arr[present][:5].tolist()}")
            for lo in range(0, id_arr.size, _INSERT_CHUNK):
                rows = [
                    {"id": int(i), "v": v.tolist()}
                    for i, v in zip(
                        id_arr[lo : lo + _INSERT_CHUNK], vec[lo : lo + _INSERT_CHUNK], strict=True
                    )
                ]
                self._client.insert(self.collection, rows)
            self._n += int(id_arr.size)
        self._watermark = new_watermark

    def remove(self, ids: IdArray, *, watermark: int | None = None) -> None:
        """Remove entries; ``ValueError`` if an id is absent (nothing changes)."""
        id_arr = _check_ids(ids)
        new_watermark = _next_watermark(self._watermark, watermark)
        if id_arr.size:
            present = self._present(id_arr)
            if not present.all():
                raise ValueError(f"ids not in the index: {id_arr[~present][:5].tolist()}")
            for lo in range(0, id_arr.size, _ID_CHUNK):
                self._client.delete(
                    self.collection, ids=[int(i) for i in id_arr[lo : lo + _ID_CHUNK]]
                )
            self._n -= int(id_arr.size)
        self._watermark = new_watermark

    def search(self, batch: FloatMatrix, k: int) -> tuple[FloatMatrix, IdArray]:
        """Top-``k`` by exact inner product (FLAT/IP), best first, padded past the gallery."""
        _check_k(k)
        probes = _check_vectors(batch, self._dim)
        m = probes.shape[0]
        scores, ids = _padded(m, k)
        if self._n == 0 or m == 0:
            return scores, ids
        kk = min(k, self._n, _MAX_TOPK)
        hits = self._client.search(
            self.collection,
            data=[p.tolist() for p in probes],
            limit=kk,
            anns_field="v",
            output_fields=[],
            search_params={"metric_type": "IP"},
        )
        for row, found in enumerate(hits):
            # Milvus orders ties arbitrarily; sort by score, then id, for stable results.
            pairs = sorted(((float(h["distance"]), int(h["id"])) for h in found),
                           key=lambda p: (-p[0], p[1]))
            for col, (score, gallery_id) in enumerate(pairs[:kk]):
                scores[row, col] = score
                ids[row, col] = gallery_id
        return scores, ids

    def _all(self) -> tuple[IdArray, FloatMatrix]:
        ids: list[int] = []
        vectors: list[list[float]] = []
        iterator = self._client.query_iterator(
            self.collection, batch_size=_ID_CHUNK, filter="id >= 0", output_fields=["id", "v"]
        )
        try:
            while True:
                page = iterator.next()
                if not page:
                    break
                ids.extend(int(r["id"]) for r in page)
                vectors.extend(list(r["v"]) for r in page)
        finally:
            iterator.close()
        id_arr = np.asarray(ids, dtype=np.int64)
        vec = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self._dim)
        order = np.argsort(id_arr, kind="stable")
        return id_arr[order], np.ascontiguousarray(vec[order])

    def save(self, path: Path) -> None:
        """Write the shared gallery file atomically (every entry read back from Milvus)."""
        ids, vectors = self._all()
        _save_npz(path, self.identifier, self._dim, self._watermark, ids, vectors)

    @classmethod
    def load(cls, path: Path, *, uri: str | None = None) -> Self:
        """Read a gallery file written by any backend's ``save`` into a new collection."""
        dim, watermark, ids, vectors = _load_npz(path)
        index = cls(dim, uri=uri)
        index.add(ids, vectors, watermark=watermark)
        return index

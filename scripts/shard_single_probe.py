"""Would sharding the stage-1 codes over two Python threads cut single-probe latency?
(docs/benchmarks-abis.md, sixth round).

    .venv/bin/python scripts/shard_single_probe.py

1.45 M isotropic unit vectors (128-d), PQ 64×4 fast-scan (the face index's default code,
FAISS implem 15), one shared quantiser. Each of 300 single probes is searched (top 256) in the
whole index on one thread, and in two half-indexes on two Python threads (FAISS releases the
GIL; one OpenMP thread each) whose results are merged by estimate. Prints p50 / p99 of both and
the overlap of the merged top 256 with the whole index's, twice.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np

D, N, PROBES, K = 128, 1_450_000, 300, 256


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng, N)
    faiss.omp_set_num_threads(1)
    whole = faiss.IndexPQFastScan(D, 64, 4, faiss.METRIC_INNER_PRODUCT)
    whole.train(x[:65536])
    whole.add(x)
    bounds = ((0, N // 2), (N // 2, N))
    halves = []
    for lo, hi in bounds:
        half = faiss.IndexPQFastScan(D, 64, 4, faiss.METRIC_INNER_PRODUCT)
        half.pq = whole.pq  # the same trained quantiser: estimates are comparable
        half.is_trained = True
        half.add(x[lo:hi])
        halves.append(half)
    for index in (whole, *halves):
        index.implem = 15
    probes = _unit(rng, PROBES)
    pool = ThreadPoolExecutor(2, initializer=lambda: faiss.omp_set_num_threads(1))
    for _ in range(2):
        alone, sharded, overlap = [], [], 0
        for i in range(PROBES):
            probe = probes[i : i + 1]
            t = time.perf_counter()
            _, rows = whole.search(probe, K)
            alone.append(time.perf_counter() - t)
            t = time.perf_counter()
            parts = [f.result() for f in [pool.submit(h.search, probe, K) for h in halves]]
            est = np.concatenate([p[0][0] for p in parts])
            ids = np.concatenate([p[1][0] + lo for p, (lo, _) in zip(parts, bounds, strict=True)])
            merged = ids[np.argsort(-est, kind="stable")[:K]]
            sharded.append(time.perf_counter() - t)
            overlap += len(set(merged.tolist()) & set(rows[0].tolist()))
        a, s = np.array(alone) * 1e3, np.array(sharded) * 1e3
        print(f"one thread: p50 {np.percentile(a, 50):.2f} p99 {np.percentile(a, 99):.2f} ms | "
              f"two shards, two threads: p50 {np.percentile(s, 50):.2f} "
              f"p99 {np.percentile(s, 99):.2f} ms | top-{K} overlap {overlap / PROBES / K:.4f}")


if __name__ == "__main__":
    main()

"""CPU cost of FAISS's 4-bit PQ fast-scan per code comparison, per SIMD level (docs/abis.md §7).

    .venv/bin/python scripts/fastscan_simd.py

1.45 M isotropic unit vectors (128-d), 2,048 queries, top 256, one thread; PQ 32×4 (16 B) and
64×4 (32 B, the face index's default), each searched at the AVX2, AVX512 and AVX512_SPR levels
that FAISS ≥ 1.12's dynamic dispatch offers (`faiss.SIMDConfig`). Prints CPU ns per code.
"""

from __future__ import annotations

import resource
import time

import faiss
import numpy as np

D, N, NQ, K = 128, 1_450_000, 2048, 256


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((N, D), dtype=np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq = rng.standard_normal((NQ, D), dtype=np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    faiss.omp_set_num_threads(1)
    print(f"# auto-detected SIMD level: {faiss.SIMDConfig.get_level_name()}")
    for m in (32, 64):
        index = faiss.IndexPQFastScan(D, m, 4, faiss.METRIC_INNER_PRODUCT)
        index.train(xb[:65536])
        index.add(xb)
        for level in ("AVX2", "AVX512", "AVX512_SPR"):
            try:
                faiss.SIMDConfig.set_level(getattr(faiss, "SIMDLevel_" + level))
            except RuntimeError as exc:
                print(f"PQ {m}x4 {level}: not available ({exc})")
                continue
            index.search(xq[:64], K)  # warm-up
            cpu, wall = _cpu(), time.perf_counter()
            index.search(xq, K)
            cpu, wall = _cpu() - cpu, time.perf_counter() - wall
            print(f"PQ {m}x4 {level:10s} wall {wall:.2f} s, cpu {cpu:.2f} s, "
                  f"{cpu / (N * NQ) * 1e9:.3f} ns per code")


if __name__ == "__main__":
    main()

"""Stage 1 for large probe batches on the CPU's matrix engine: exact bf16 block products.

The PQ fast-scan of `sanad.abis.twostage` estimates every score from 4-bit codes; its CPU
cost per comparison is fixed by the SIMD units (≈ 1.1 ns for 32-byte codes here). CPUs with
a matrix engine (Intel AMX) multiply bf16 matrices several times faster than that: a block of
2,048 probes × 4,096 gallery rows × 128 dimensions costs ≈ 0.28 ns per pair through PyTorch's
oneDNN kernels (measured 2026-11-27, docs/abis.md §8). For batches — the in-order
deduplication of a whole enrolment stream, `sanad abis sweep` — this scores *every* pair in
bf16 (error ≈ 0.002) instead of estimating it, and keeps only the best few per probe:

1. the gallery's int8 templates are turned into scaled bf16 one block at a time (no second
   copy of the gallery is kept: the memory goal stays met; the conversion is repeated for
   every batch, which is why small batches stay on the PQ scan);
2. ``probes @ block.T`` on the matrix engine, into a reused bf16 buffer;
3. selection without touching every score twice: the maximum of each run of `_SUB` scores
   (bf16 compared as int16 — same order for positive values, a vectorised integer max), and
   only the runs whose maximum beats the probe's current ``k``-th best are looked at.

`TwoStageIndex` uses it only where it is measured faster than its PQ scan on the same
index (`TwoStageIndex._faster_batch_stage`), so a CPU without a matrix engine (or without
PyTorch installed) keeps the PQ scan. The rows returned go through the same int8 re-rank.

Why PyTorch and not a hand-written kernel: it is the maintained Python route to oneDNN's AMX
matrix multiply (numpy's BLAS has no bf16 product; OpenVINO and ONNX Runtime were measured
slower here, 1.3-3.2 ns per pair).
"""

from __future__ import annotations

import importlib.util
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

# Gallery rows per block product: 2,048 x 4,096 bf16 scores (16 MiB) measured fastest per pair.
_BLOCK = 4096
# Scores per run whose maximum decides whether the run is looked at.
_SUB = 256
# bf16 bit patterns compared as int16: `_NEG` is below every pattern of a positive value.
_NEG = -32768


def available() -> bool:
    """PyTorch is installed (the optional ``accel`` extra)."""
    return importlib.util.find_spec("torch") is not None


def _torch() -> Any:
    # Optional and heavy: imported only when a batch needs it.
    import torch

    return torch


def best_rows(
    probes: npt.NDArray[np.float32], q: npt.NDArray[np.int8], inv_norm: npt.NDArray[np.float32],
    k: int, *, threads: int = 1,
) -> npt.NDArray[np.int64]:
    """Rows of the ``k`` best bf16 scores of each probe against the gallery ``q * inv_norm``
    (shape ``(m, min(k, n))``, best first).

    ``threads`` > 1 splits the *gallery* into that many slices, each scanned by its own Python
    thread with one PyTorch thread (PyTorch releases the GIL in its kernels), and merges the
    slices' best ``k``: measured at 1.45 M, two PyTorch threads inside one scan gave only
    1.2x (the selection between products is serial), while the int8 → bf16 conversion
    would be repeated by a split of the probes."""
    torch = _torch()
    n = q.shape[0]
    k = min(k, n)
    probes_bf16 = torch.from_numpy(np.ascontiguousarray(probes, dtype=np.float32)).to(
        torch.bfloat16
    )
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bounds = np.linspace(0, n, max(1, min(threads, n // _BLOCK or 1)) + 1).astype(int)
        slices = [(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)]
        if len(slices) == 1:
            _, best_i = _scan_slice(torch, probes_bf16, q, inv_norm, k, 0, n)
        else:
            with ThreadPoolExecutor(len(slices)) as pool:
                parts = list(pool.map(
                    lambda b: _scan_slice(torch, probes_bf16, q, inv_norm, k, *b), slices
                ))
            all_v = torch.cat([v for v, _ in parts], 1)
            all_i = torch.cat([i for _, i in parts], 1)
            _, top = all_v.topk(k, dim=1)
            best_i = all_i.gather(1, top)
    finally:
        torch.set_num_threads(previous)
    return np.asarray(best_i.numpy(), dtype=np.int64)


def _scan_slice(
    torch: Any, p: Any, q: npt.NDArray[np.int8], inv_norm: npt.NDArray[np.float32], k: int,
    start: int, stop: int,
) -> tuple[Any, Any]:
    """Best ``k`` (bf16 scores as float32, rows) of each probe among gallery rows
    ``start:stop``; ``-inf`` / ``-1`` pad a slice smaller than ``k``."""
    m, dim = p.shape[0], q.shape[1]
    n = stop - start
    with torch.inference_mode():
        gq = torch.from_numpy(q[start:stop])
        scale = torch.from_numpy(inv_norm[start:stop])
        block = min(_BLOCK, -(-n // _SUB) * _SUB)
        gbuf = torch.zeros((block, dim), dtype=torch.bfloat16)
        scaled = torch.empty((block, dim), dtype=torch.float32)
        out = torch.empty((m, block), dtype=torch.bfloat16)
        bits = out.view(torch.int16)
        best_v = torch.full((m, k), -np.inf)
        best_i = torch.full((m, k), -1, dtype=torch.int64)
        for lo in range(0, n, block):
            w = min(block, n - lo)
            # int8 -> float32, scaled, -> bf16: 4.5x faster than one mixed-type multiply into
            # bf16, and the scale is applied before the single rounding.
            scaled[:w].copy_(gq[lo : lo + w]).mul_(scale[lo : lo + w, None])
            gbuf[:w].copy_(scaled[:w])
            if w < block:
                gbuf[w:] = 0  # padding rows: their columns are dropped in `_merge_block`
            torch.matmul(p, gbuf.T, out=out)
            if lo == 0:  # the first block: its own best k, directly
                kk = min(k, w)
                best_v[:, :kk], cols = out[:, :w].float().topk(kk, dim=1)
                best_i[:, :kk] = cols + start
                continue
            best_v, best_i = _merge_block(torch, out, bits, best_v, best_i, start + lo, w, k)
        return best_v, best_i


def _merge_block(
    torch: Any, out: Any, bits: Any, best_v: Any, best_i: Any, lo: int, w: int, k: int,
) -> tuple[Any, Any]:
    """Fold one block's scores into each probe's running best ``k``."""
    m, block = out.shape
    kth = best_v[:, -1]
    kth_bits = torch.where(
        kth > 0, kth.to(torch.bfloat16).view(torch.int16), torch.tensor(_NEG, dtype=torch.int16)
    )
    runs = bits.view(m, block // _SUB, _SUB).amax(dim=2)  # (m, runs)
    hit_rows, hit_runs = (runs > kth_bits[:, None]).nonzero(as_tuple=True)
    if hit_rows.numel() == 0:
        return best_v, best_i
    # The scores of the hit runs, and those in them above the probe's k-th best.
    chunks = out.view(m, block // _SUB, _SUB)[hit_rows, hit_runs].float()  # (h, SUB)
    hit, offset = (chunks > kth[hit_rows, None]).nonzero(as_tuple=True)
    cols = hit_runs[hit] * _SUB + offset
    keep = cols < w  # padding rows of a last, partial block
    if not bool(keep.all()):
        hit, offset, cols = hit[keep], offset[keep], cols[keep]
    if hit.numel() == 0:
        return best_v, best_i
    cand_rows, cand_v = hit_rows[hit], chunks[hit, offset]
    # Per affected probe (candidates come in probe order): its best k and its candidates side
    # by side in one padded row, then the best k of that row.
    rows, first, per_row = torch.unique_consecutive(
        cand_rows, return_inverse=True, return_counts=True
    )
    ordinal = torch.arange(cand_rows.numel()) - (torch.cumsum(per_row, 0) - per_row)[first]
    width = k + int(per_row.max())
    merged_v = torch.full((rows.numel(), width), -np.inf)
    merged_i = torch.full((rows.numel(), width), -1, dtype=torch.int64)
    merged_v[:, :k] = best_v[rows]
    merged_i[:, :k] = best_i[rows]
    merged_v[first, k + ordinal] = cand_v
    merged_i[first, k + ordinal] = cols + lo
    top_v, top_c = merged_v.topk(k, dim=1)
    best_v[rows] = top_v
    best_i[rows] = merged_i.gather(1, top_c)
    return best_v, best_i

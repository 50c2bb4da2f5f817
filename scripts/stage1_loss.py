"""Exploration: which stage-1 codes keep exact search's near-threshold pairs at 1.45 M?

Builds the calibrated 1.45 M gallery and the probes of ``sanad bench accuracy -p ann_gallery``
(same construction: siblings as hard impostors), finds each probe's exact top 10 with FAISS
``knn``, then for each stage-1 quantiser and shortlist counts the exact top-10 pairs at or
above the gallery's own review threshold (FPIR 1 % of the non-mated searches) that the
shortlist + a float re-rank no longer returns. Results cached in ``--cache`` (npz) so further
quantisers cost only their own build. Recorded in docs/abis.md §6.

    .venv/bin/python scripts/stage1_loss.py --mated 2000 --non-mated 30000 pq64 pq32
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np

from sanad.bench.accuracy import _face_population, _split, threshold_at

FACTORIES = {"pq32": "PQ32x4fs", "pq64": "PQ64x4fs", "opq32": "OPQ32,PQ32x4fs",
             "rq32": "RQ32x4fs",
             # non-exhaustive: scan the quarter of 4,096 k-means cells nearest the probe
             "ivf4096q_pq64": "IVF4096,PQ64x4fs", "ivf4096q_pq32": "IVF4096,PQ32x4fs"}
# Cells scanned per probe for the IVF factories (a quarter of them).
NPROBE = {"ivf4096q_pq64": 1024, "ivf4096q_pq32": 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("quantisers", nargs="+", choices=sorted(FACTORIES))
    ap.add_argument("--size", type=int, default=1_450_000)
    ap.add_argument("--mated", type=int, default=2000)
    ap.add_argument("--non-mated", type=int, default=30000)
    ap.add_argument("--shortlists", default="256,1024")
    ap.add_argument("--match", type=float, default=0.60, help="the duplicate threshold")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/stage1_loss.npz"))
    args = ap.parse_args()
    if args.cache.exists():
        z = np.load(args.cache)
        faces, probes, exact_s, exact_i = z["faces"], z["probes"], z["exact_s"], z["exact_i"]
        mate_rows = z["mate_rows"]
    else:
        pop, _ = _face_population(0, "auto", 0.0)
        gallery_ids, non_mated_ids, _ = _split(pop, args.size, args.non_mated, 0.5)
        rng = np.random.default_rng((0, 13))
        faces = pop.captures(gallery_ids, rng).astype(np.float32)
        mates = mate_rows = rng.choice(args.size, size=args.mated, replace=False)
        probes = np.concatenate([pop.captures(gallery_ids[mates], rng),
                                 pop.captures(non_mated_ids, rng)]).astype(np.float32)
        exact_s, exact_i = faiss.knn(probes, faces, 10, metric=faiss.METRIC_INNER_PRODUCT)
        np.savez(args.cache, faces=faces, probes=probes, exact_s=exact_s, exact_i=exact_i,
                 mate_rows=mates)
    threshold = threshold_at(exact_s[args.mated:, 0].astype(np.float64), 0.01)
    counted = exact_s >= threshold
    centre = faces.mean(axis=0)
    centred_probes = np.ascontiguousarray(probes - centre)
    sample = np.ascontiguousarray(
        faces[np.linspace(0, len(faces) - 1, 262_144).astype(int)] - centre)
    print(f"review threshold {threshold:.3f}; {counted.sum()} exact top-10 pairs at or above it")
    for name in args.quantisers:
        start = time.perf_counter()
        index = faiss.index_factory(faces.shape[1], FACTORIES[name], faiss.METRIC_INNER_PRODUCT)
        index.train(sample)
        index.add(faces - centre)
        if name in NPROBE:
            faiss.extract_index_ivf(index).nprobe = NPROBE[name]
        built = time.perf_counter() - start
        for shortlist in (int(s) for s in args.shortlists.split(",")):
            _, rows = index.search(centred_probes, shortlist)
            found = np.zeros_like(counted)
            for i, r in enumerate(rows):
                top = r[np.argsort(-(faces[r] @ probes[i]))[:10]]
                found[i] = np.isin(exact_i[i], top)
            lost = int((counted & ~found).sum())
            at_match = exact_s >= args.match
            lost_match = int((at_match & ~found).sum())
            first = exact_i[: args.mated, 0] == mate_rows
            mates_lost = int((~found[: args.mated, 0] & first).sum())
            print(f"{name} shortlist {shortlist}: lost {lost} of {counted.sum()} "
                  f"({lost / counted.sum():.4%}); at >= {args.match}: {lost_match} of "
                  f"{at_match.sum()}; mates (ranked first by exact) lost {mates_lost}; "
                  f"built in {built:.0f} s", flush=True)


if __name__ == "__main__":
    main()

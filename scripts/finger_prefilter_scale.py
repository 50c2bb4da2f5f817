"""Mate hit rate of the fingerprint pre-filter against gallery size (issue #3, docs/fusion.md).

    nice -n 10 .venv/bin/python scripts/finger_prefilter_scale.py --people 1450000

Builds the registry's finger index (`twostage`, 192-d, `finger_index_options`) over ``--people``
synthetic people (`SyntheticFingers`, one enrolment capture of each of the four
`PREFILTER_POSITIONS`), in the space the registry fits (`FingerDescriptorSpace.fit` on the first
`FIT_SAMPLE` people, `PREFILTER_DIM` whitened axes), each person stored as
`FingerDescriptorSpace.person_descriptor`. Probes are fresh captures (another random stream) of
people in the gallery, so each has exactly one mate; they are searched (top 30) whenever the
gallery reaches one of ``--sizes``, and at sizes up to ``--exact-up-to`` also in an exact
(`faiss-flat`) index of the same vectors, which shows what the two-stage index loses.

Two probe sets: ``--probes`` people *outside* the fitting sample (people `FIT_SAMPLE` onwards:
like almost every person of a large registry, whose space was fitted on 4,096 of them) — the
headline — and as many people *inside* it (the first ones; the 3,000-people table of
docs/fusion.md fitted its space on its whole gallery).

Captures and descriptors (~4 ms of CPU per person) run in a pool of ``--workers`` processes
over chunks of ``--chunk`` people, each chunk on its own random stream (deterministic for a
seed whatever the number of workers); only the 192-d vectors come back. The result goes to
``bench/results/prefilter-scale-<UTC timestamp>.json``, rewritten after every gallery size so an
interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import resource
import statistics
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from sanad.abis.finger_stage import PREFILTER_DIM, PREFILTER_POSITIONS, FingerDescriptorSpace
from sanad.abis.index import GalleryIndex, make_index
from sanad.abis.twostage import TwoStageIndex
from sanad.bench.runner import machine_info
from sanad.biometrics.finger.synthetic import SyntheticFingers
from sanad.biometrics.finger.template import FingerPosition, MinutiaeArray
from sanad.registry.finger_gallery import FIT_SAMPLE, finger_index_options

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
TOPS = (1, 10, 30)
SHORTLIST = 256  # the registry's default `SANAD_INDEX_SHORTLIST`
KIND = "twostage"
# Random streams: gallery chunk c uses [seed, GALLERY, c]; the probe task starting at person i
# uses [seed, PROBES, i].
GALLERY, PROBES = 0, 1
PROBE_TASK = 1000  # probes per pool task
SINGLE_PROBES = 50  # one-at-a-time searches timed per size (enrolment searches one probe)

# Per worker process: the generator and the space (set by `_init_worker`).
_gen: SyntheticFingers | None = None
_space: FingerDescriptorSpace | None = None
_seed = 0


def _init_worker(seed: int, space: FingerDescriptorSpace) -> None:
    global _gen, _space, _seed
    _gen, _space, _seed = SyntheticFingers(seed), space, seed


def _people(gen: SyntheticFingers, rng: np.random.Generator, first: int, count: int,
            ) -> Iterator[dict[FingerPosition, MinutiaeArray]]:
    """One capture of each pre-filter finger of people ``first .. first + count - 1``."""
    for i in range(first, first + count):
        yield {p: gen.capture(i, int(p), rng) for p in PREFILTER_POSITIONS}


def _project(task: tuple[int, int, int, int]) -> tuple[I64, F32, float]:
    """Worker: ``(stream, key, first, count)`` -> the person numbers with a descriptor, their
    192-d vectors (what the registry stores) and the CPU seconds spent."""
    assert _gen is not None and _space is not None
    stream, key, first, count = task
    cpu = time.process_time()
    rng = np.random.default_rng([_seed, stream, key])
    ids: list[int] = []
    rows: list[F32] = []
    for i, fingers in enumerate(_people(_gen, rng, first, count), start=first):
        v = _space.person_descriptor(fingers)
        if v is not None:  # the registry leaves such a person out of the index
            ids.append(i)
            rows.append(v)
    vectors = np.stack(rows) if rows else np.empty((0, PREFILTER_DIM), np.float32)
    return np.asarray(ids, np.int64), vectors.astype(np.float32), time.process_time() - cpu


def _fit(seed: int, chunk: int) -> FingerDescriptorSpace:
    """The registry's `fit_space` on this gallery: its first `FIT_SAMPLE` people, exactly the
    captures the workers produce for them (the first chunk's stream, ``chunk >= FIT_SAMPLE``)."""
    assert chunk >= FIT_SAMPLE
    rng = np.random.default_rng([seed, GALLERY, 0])
    sample = list(_people(SyntheticFingers(seed), rng, 0, FIT_SAMPLE))
    return FingerDescriptorSpace.fit(sample, PREFILTER_POSITIONS, dim=PREFILTER_DIM)


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    current = 0.0
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ranks(ids: I64, truth: I64) -> I64:
    """0-based rank of each probe's mate in its result row, -1 when absent."""
    found = ids == truth[:, None]
    ranks: I64 = np.where(found.any(axis=1), found.argmax(axis=1), -1).astype(np.int64)
    return ranks


def _hits(ranks: I64) -> dict[str, float]:
    return {f"top{k}": float(np.mean((ranks >= 0) & (ranks < k))) for k in TOPS}


def _measure(index: GalleryIndex, exact: GalleryIndex | None, probes: dict[str, tuple[I64, F32]],
             ) -> dict[str, Any]:
    """Hit rates of every probe set, batch and single-probe search times."""
    out: dict[str, Any] = {}
    k = max(TOPS)
    for name, (truth, vectors) in probes.items():
        t = time.perf_counter()
        _, ids = index.search(vectors, k)
        batch_s = time.perf_counter() - t
        ranks = _ranks(ids, truth)
        row: dict[str, Any] = {"probes": len(truth), **_hits(ranks),
                               "batch_ms_per_probe": 1e3 * batch_s / len(truth)}
        if exact is not None:
            _, exact_ids = exact.search(vectors, k)
            exact_ranks = _ranks(exact_ids, truth)
            row["exact"] = _hits(exact_ranks)
            in_exact = (exact_ranks >= 0) & (exact_ranks < 10)
            in_index = (ranks >= 0) & (ranks < 10)
            row["top10_lost_by_index"] = int(np.sum(in_exact & ~in_index))
            row["top10_gained_by_index"] = int(np.sum(~in_exact & in_index))
        out[name] = row
    truth, vectors = probes["outside_fit"]
    single = []
    for j in range(min(SINGLE_PROBES, len(truth))):
        t = time.perf_counter()
        index.search(vectors[j:j + 1], k)
        single.append(1e3 * (time.perf_counter() - t))
    out["single_probe_ms_p50"] = statistics.median(single)
    out["single_probe_ms_max"] = max(single)
    return out


def _table(checkpoints: list[dict[str, Any]]) -> str:
    lines = [
        "| gallery | top 1 | top 10 | top 30 | exact top 1 / 10 / 30 | lost by index (top 10) "
        "| in fit sample: top 10 | batch ms/probe | single probe ms (p50) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checkpoints:
        o, s = c["outside_fit"], c["inside_fit"]
        exact = ("–" if "exact" not in o else
                 " / ".join(f"{o['exact'][f'top{k}']:.3f}" for k in TOPS))
        lost = "–" if "exact" not in o else f"{o['top10_lost_by_index']} of {o['probes']}"
        lines.append(
            f"| {c['size']:,} | {o['top1']:.3f} | {o['top10']:.3f} | {o['top30']:.3f} | {exact} "
            f"| {lost} | {s['top10']:.3f} | {o['batch_ms_per_probe']:.2f} "
            f"| {c['single_probe_ms_p50']:.1f} |"
        )
    return "\n".join(lines)


def _write(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _pool(workers: int, seed: int, space: FingerDescriptorSpace) -> Pool:
    """A spawn pool whose workers run numpy/BLAS on one thread each (the pool is the
    parallelism); the parent's own thread settings are left as they are."""
    faiss.omp_get_max_threads()  # the parent's OpenMP runtime is initialised before the change
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:  # spawn starts the workers now, with this environment
        return mp.get_context("spawn").Pool(workers, _init_worker, (seed, space))
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_450_000)
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--sizes", default="10000,100000,1450000",
                        help="comma-separated gallery sizes to search at (those <= --people)")
    parser.add_argument("--exact-up-to", type=int, default=100_000,
                        help="also search an exact index at sizes up to this")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--results-dir", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    sizes = [s for s in sizes if s <= args.people]
    if not sizes:
        parser.error("no --sizes at or below --people")
    if args.chunk < FIT_SAMPLE:
        parser.error(f"--chunk must be at least {FIT_SAMPLE}")
    if FIT_SAMPLE + args.probes > sizes[0]:
        parser.error(f"the smallest size must hold the probes: >= {FIT_SAMPLE + args.probes}")
    exact_limit = max((s for s in sizes if s <= args.exact_up_to), default=0)

    start = time.perf_counter()
    stamp = dt.datetime.now(dt.UTC)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"prefilter-scale-{stamp.strftime('%Y%m%dT%H%M%SZ')}.json"
    record: dict[str, Any] = {
        "name": "prefilter-scale",
        "params": {"people": args.people, "probes": args.probes, "sizes": sizes,
                   "exact_up_to": args.exact_up_to, "seed": args.seed,
                   "workers": args.workers, "chunk": args.chunk, "kind": KIND,
                   "shortlist": SHORTLIST, "dim": PREFILTER_DIM, "fit_sample": FIT_SAMPLE,
                   "positions": [int(p) for p in PREFILTER_POSITIONS]},
        "notes": {
            "probes": "outside_fit: people FIT_SAMPLE.. (headline); inside_fit: people "
                      "0.. (in the space's fitting sample); fresh captures, one mate each",
            "index": f"make_index('twostage', 192, **finger_index_options('twostage', "
                     f"{SHORTLIST})): 48 PQ sub-vectors, int8 re-rank; exact = faiss-flat",
            "times": "batch_ms_per_probe: all probes of a set in one search call; "
                     "single_probe_ms: one probe per call (as at enrolment), wall time",
        },
        "machine": machine_info(),
        "timestamp": stamp.isoformat(timespec="seconds"),
        "complete": False,
        "checkpoints": [],
    }
    _write(path, record)
    print(f"# {args.people:,} people, {args.probes:,} probes per set, sizes {sizes}, "
          f"seed {args.seed}, {args.workers} workers; results {path}", flush=True)

    space = _fit(args.seed, args.chunk)
    fit_s = time.perf_counter() - start
    print(f"# space fitted on {space.fitted_on:,} people in {fit_s:.0f} s", flush=True)

    index = make_index(KIND, PREFILTER_DIM, **finger_index_options(KIND, SHORTLIST))
    exact = make_index("faiss-flat", PREFILTER_DIM) if exact_limit else None
    worker_cpu = 0.0
    add_s = 0.0
    with _pool(args.workers, args.seed, space) as pool:
        t = time.perf_counter()
        probes: dict[str, tuple[I64, F32]] = {}
        for name, first in (("outside_fit", FIT_SAMPLE), ("inside_fit", 0)):
            tasks = [(PROBES, first + lo, first + lo, min(PROBE_TASK, args.probes - lo))
                     for lo in range(0, args.probes, PROBE_TASK)]
            done = pool.map(_project, tasks)
            probes[name] = (np.concatenate([d[0] for d in done]),
                            np.concatenate([d[1] for d in done]))
            worker_cpu += sum(d[2] for d in done)
        print(f"# probes in {time.perf_counter() - t:.0f} s", flush=True)

        build = time.perf_counter()
        chunks = [(GALLERY, c, lo, min(args.chunk, args.people - lo))
                  for c, lo in enumerate(range(0, args.people, args.chunk))]
        people, pending = 0, list(sizes)
        results = pool.imap(_project, chunks)
        for (_, _, first, count), (ids, vectors, cpu) in zip(chunks, results, strict=True):
            worker_cpu += cpu
            end, lo = first + count, 0
            # Add up to each gallery size reached inside this chunk and measure there.
            while True:
                size = pending[0] if pending and pending[0] <= end else None
                hi = len(ids) if size is None else int(np.searchsorted(ids, size))
                t = time.perf_counter()
                index.add(ids[lo:hi], vectors[lo:hi])
                add_s += time.perf_counter() - t
                if exact is not None:
                    keep = lo + int(np.searchsorted(ids[lo:hi], exact_limit))
                    exact.add(ids[lo:keep], vectors[lo:keep])
                lo = hi
                if size is None:
                    break
                pending.pop(0)
                m = _measure(index, exact if size <= exact_limit else None, probes)
                rss, peak = _rss_mb()
                m.update(size=size, entries=len(index),
                         elapsed_s=time.perf_counter() - start, rss_mb=rss, peak_rss_mb=peak,
                         index_mb=(index.memory_bytes() / 2**20
                                   if isinstance(index, TwoStageIndex) else None))
                record["checkpoints"].append(m)
                _write(path, record)
                o = m["outside_fit"]
                print(f"## {size:,}: top1 {o['top1']:.3f} top10 {o['top10']:.3f} "
                      f"top30 {o['top30']:.3f}"
                      + (f" (exact {o['exact']['top10']:.3f})" if "exact" in o else "")
                      + f"; in-fit top10 {m['inside_fit']['top10']:.3f}; "
                      f"{o['batch_ms_per_probe']:.2f} ms/probe batch, "
                      f"{m['single_probe_ms_p50']:.1f} ms single; rss {rss:.0f} MB",
                      flush=True)
            people = end
            wall = time.perf_counter() - build
            rss, _ = _rss_mb()
            left = (args.people - people) / max(people / wall, 1e-9)
            print(f"{people:,} people, {time.perf_counter() - start:.0f} s, "
                  f"{people / wall:.0f} people/s, {1e3 * worker_cpu / people:.2f} ms CPU/person, "
                  f"add {add_s:.0f} s, rss {rss:.0f} MB, eta {left / 60:.0f} min", flush=True)
    build_s = time.perf_counter() - build
    generated = people + 2 * args.probes
    record["figures"] = {
        "people_per_s": people / build_s,
        "worker_cpu_ms_per_person": 1e3 * worker_cpu / generated,
        "fit_s": fit_s,
        "build_s": build_s,
        "index_add_s": add_s,
        "total_s": time.perf_counter() - start,
        "peak_rss_mb": _rss_mb()[1],
    }
    record["complete"] = True
    _write(path, record)
    print()
    print(_table(record["checkpoints"]))
    print(f"\n# {people:,} people in {build_s / 60:.1f} min ({people / build_s:.0f}/s, "
          f"{record['figures']['worker_cpu_ms_per_person']:.2f} ms CPU/person in the workers); "
          f"index add {add_s:.0f} s; total {record['figures']['total_s'] / 60:.1f} min; "
          f"peak RSS {record['figures']['peak_rss_mb']:.0f} MB; results {path}")


if __name__ == "__main__":
    main()

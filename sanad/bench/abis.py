"""``sanad bench abis``: the ``twostage`` gallery index at registry scale, on two generators.

For each generator — ``isotropic`` (`SyntheticPopulation`: uniform on the sphere, the worst
case for any index) and ``calibrated`` (`CalibratedPopulation`: SFace-like scores, siblings) —
one gallery of ``n`` captures and ``mated`` fresh captures of enrolled people as probes:

* speed: single-probe latency (p50, p99 over ``singles`` probes), batched probes per second,
  and the ratio against exact numpy search and FAISS flat (same probes, same run);
* accuracy: ``mate_recall`` — of the mated probes whose mate exact search ranks first, the
  share the index also returns in its top 10 — and ``recall_at_10`` against exact top 10;
* memory: the index's arrays (``index_mb``) and the process RSS growth while building it;
* deduplication: the first ``dedup_n`` records of an enrolment stream with ~2 % re-enrolments,
  in batches of `_DEDUP_BATCH`: each batch searched against every record before it through the
  index, and against itself exactly, then added. ``dedup_min`` is the stream's wall time;
  ``dedup_full_min_est`` extrapolates to all ``n`` from the measured stage-1 throughput (code
  comparisons per second; work grows with the square of the population) — with
  ``dedup_n = n`` it is the measured time itself.

Figures carry the generator as a suffix (``probe_p99_ms_isotropic``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import faiss
import numpy as np
import numpy.typing as npt

from sanad.abis import matrix_scan
from sanad.abis.index import ExactIndex, FaissFlatIndex, FloatMatrix, GalleryIndex
from sanad.abis.twostage import (
    _FASTSCAN_IMPLEM,
    _FASTSCAN_IMPLEMS,
    _MATRIX_MIN_BATCH,
    AUTO_IMPLEM,
    BATCH_STAGES,
    DEFAULT_SHORTLIST,
    TwoStageIndex,
)
from sanad.bench import BenchmarkParamError, BenchResult
from sanad.biometrics.synthetic import (
    FACE_DIM,
    CalibratedPopulation,
    enrolment_stream,
    isotropic_captures,
)

GENERATORS = ("isotropic", "calibrated")
_K = 10
_DEDUP_BATCH = 2048


def _rss_mb() -> float:
    """Resident set size of this process, from /proc (Linux); 0 where unavailable."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _captures(
    generator: str, seed: int, ids: npt.NDArray[np.int64], rng: np.random.Generator
) -> FloatMatrix:
    if generator == "isotropic":
        return isotropic_captures(seed, ids, rng)
    return CalibratedPopulation(seed).captures(ids, rng)


def _best_batch(index: GalleryIndex, probes: FloatMatrix, repeats: int) -> float:
    """Best wall time of one batched search over ``repeats`` tries."""
    return min(_timed(lambda: index.search(probes, _K)) for _ in range(repeats))


def _latencies(
    index: GalleryIndex, probes: FloatMatrix
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Wall time and process CPU time of each probe searched alone.

    Single probes run on one thread (`TwoStageIndex._scan`), so the CPU time is what the probe
    costs on an idle core; on a shared machine the wall time adds the waits for a core.
    """
    wall = np.empty(probes.shape[0])
    cpu = np.empty(probes.shape[0])
    for i in range(probes.shape[0]):
        one = probes[i : i + 1]
        c0 = time.process_time()
        wall[i] = _timed(lambda: index.search(one, _K))  # noqa: B023 - called right here
        cpu[i] = time.process_time() - c0
    return wall, cpu


def _search_quality(
    exact_ids: npt.NDArray[np.int64], found: npt.NDArray[np.int64], mates: npt.NDArray[np.int64]
) -> tuple[float, float, int]:
    ranked_first = exact_ids[:, 0] == mates
    in_top = (found == mates[:, None]).any(axis=1)
    mate_recall = float(in_top[ranked_first].mean()) if ranked_first.any() else 1.0
    overlap = [
        len(set(a) & set(b)) / exact_ids.shape[1] for a, b in zip(exact_ids, found, strict=True)
    ]
    return mate_recall, float(np.mean(overlap)), int(ranked_first.sum())


def _dedup(
    generator: str, seed: int, n_records: int, shortlist: int, subvectors: int, implem: int,
    stage: str,
) -> tuple[dict[str, float], float]:
    """Enrol a stream in order; each batch searched against all before it. Returns figures
    and the code comparisons per second (for extrapolation)."""
    identities = enrolment_stream(n_records, seed)
    templates = _captures(generator, seed + 1000, identities, np.random.default_rng((seed, 9)))
    index = TwoStageIndex(FACE_DIM, shortlist=shortlist, subvectors=subvectors,
                          fastscan_implem=implem, batch_stage=stage)
    first_record: dict[int, int] = {}
    repeats = found = 0
    pairs = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for lo in range(0, n_records, _DEDUP_BATCH):
        hi = min(lo + _DEDUP_BATCH, n_records)
        block = templates[lo:hi]
        pairs += (hi - lo) * len(index)
        _, ids = index.search(block, _K)
        # Earlier members of the same batch, as `sanad.abis.decision.dedup_batch` does.
        inner = block @ block.T
        inner[np.triu_indices(hi - lo)] = -np.inf
        for j in range(hi - lo):
            ident = int(identities[lo + j])
            earlier = first_record.get(ident)
            if earlier is not None:
                repeats += 1
                if earlier >= lo:
                    found += int(np.argmax(inner[j]) == earlier - lo)
                else:
                    found += int(earlier in ids[j])
            else:
                first_record[ident] = lo + j
        index.add(np.arange(lo, hi, dtype=np.int64), block)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    figures = {
        "dedup_per_s": n_records / elapsed,
        "dedup_min": elapsed / 60,
        # CPU time of all threads: on a shared machine, wall time on an idle one is at least
        # this divided by the number of cores.
        "dedup_cpu_min": cpu / 60,
        "dedup_mate_recall": found / repeats if repeats else 1.0,
        "dedup_records": float(n_records),
        # The fast-scan kernel of the last training (-1: the gallery never reached one).
        "dedup_fastscan_implem": _implem_figure(index),
        # Share of the stream's probes whose stage 1 ran on the matrix engine.
        "dedup_matrix_share": _matrix_share(index),
        "dedup_repeats": float(repeats),
    }
    return figures, pairs / elapsed


def _search_figures(
    generator: str, *, n: int, mated: int, singles: int, seed: int, shortlist: int,
    subvectors: int, repeats: int, implem: int, stage: str,
) -> dict[str, float]:
    rng = np.random.default_rng((seed, 1))
    gallery = _captures(generator, seed, np.arange(n, dtype=np.int64), rng)
    mates = rng.choice(n, size=mated, replace=False).astype(np.int64)
    probes = _captures(generator, seed, mates, rng)
    ids = np.arange(n, dtype=np.int64)

    rss_before = _rss_mb()
    index = TwoStageIndex(FACE_DIM, shortlist=shortlist, subvectors=subvectors,
                          fastscan_implem=implem, batch_stage=stage)
    build_s = _timed(lambda: index.add(ids, gallery))
    rss_growth = _rss_mb() - rss_before

    exact = ExactIndex(FACE_DIM)
    exact.add(ids, gallery)
    exact_s = _best_batch(exact, probes, repeats)
    _, exact_ids = exact.search(probes, _K)
    del exact
    flat = FaissFlatIndex(FACE_DIM)
    flat.add(ids, gallery)
    flat_s = _best_batch(flat, probes, repeats)
    del flat

    index.search(probes[:8], _K)  # warm up (page in the arrays, start FAISS threads)
    batch_s = _best_batch(index, probes, repeats)
    _, found = index.search(probes, _K)
    latencies, cpu_latencies = _latencies(index, probes[:singles])
    mate_recall, recall10, counted = _search_quality(exact_ids, found, mates)
    return {
        "probe_p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "probe_p99_ms": float(np.percentile(latencies, 99) * 1e3),
        "probe_cpu_p50_ms": float(np.percentile(cpu_latencies, 50) * 1e3),
        "probe_cpu_p99_ms": float(np.percentile(cpu_latencies, 99) * 1e3),
        "batch_probe_per_s": mated / batch_s,
        "mate_recall": mate_recall,
        "mated_probes_counted": float(counted),
        "recall_at_10": recall10,
        "speedup_vs_exact": exact_s / batch_s,
        "speedup_vs_faiss_flat": flat_s / batch_s,
        "exact_probe_per_s": mated / exact_s,
        "faiss_flat_probe_per_s": mated / flat_s,
        "index_mb": index.memory_bytes() / 2**20,
        "index_rss_mb": rss_growth,
        "build_s": build_s,
        "fastscan_implem": _implem_figure(index),
    }


def _matrix_share(index: TwoStageIndex) -> float:
    scanned = index.probes_scanned
    return scanned["matrix"] / max(1, sum(scanned.values()))


def _implem_figure(index: TwoStageIndex) -> float:
    return float(-1 if index.implem_in_use is None else index.implem_in_use)


def _one_generator(
    generator: str, *, n: int, mated: int, singles: int, seed: int, shortlist: int,
    subvectors: int, repeats: int, dedup_n: int, parts: frozenset[str], implem: int,
    stage: str,
) -> dict[str, float]:
    figures: dict[str, float] = {}
    if "search" in parts:
        figures.update(
            _search_figures(
                generator, n=n, mated=mated, singles=singles, seed=seed, shortlist=shortlist,
                subvectors=subvectors, repeats=repeats, implem=implem, stage=stage,
            )
        )
    if "dedup" in parts:
        dedup, pair_rate = _dedup(generator, seed, min(dedup_n, n), shortlist, subvectors,
                                  implem, stage)
        full_pairs = n * (n - 1) / 2
        full_min = dedup["dedup_min"] if dedup_n >= n else full_pairs / pair_rate / 60
        figures.update(dedup)
        figures["dedup_full_min_est"] = full_min
    return figures


def run_abis(
    *,
    n: int = 20_000,
    mated: int = 1000,
    singles: int = 200,
    seed: int = 0,
    shortlist: int = DEFAULT_SHORTLIST,
    subvectors: int = 0,
    repeats: int = 2,
    dedup_n: int = 20_000,
    threads: int = 0,
    generators: str = "isotropic,calibrated",
    parts: str = "search,dedup",
    implem: int = _FASTSCAN_IMPLEM,
    stage: str = "auto",
) -> BenchResult:
    """Gallery of ``n``; ``mated`` probes; ``dedup_n`` records for the dedup stream.

    ``parts`` picks what runs: ``search`` (speed, recall, memory on the gallery of ``n``) and/or
    ``dedup`` (the enrolment stream) — e.g. the full 1.45 M stream on its own. ``implem``: the
    FAISS fast-scan kernel family of the index (-1, the backend's default: the faster of 0
    and 15, measured after each training; 0 = FAISS's automatic choice; the figures
    ``fastscan_implem`` / ``dedup_fastscan_implem`` say which one scanned). ``stage``: stage 1
    of batches of 1,024 probes or more — ``auto`` (the index's default: the faster of ``pq``
    and ``matrix``, measured), ``pq`` or ``matrix``; ``dedup_matrix_share`` is
    the share of the stream's probes whose stage 1 ran on the matrix engine (the search part's
    batches of ``mated`` probes use it only from 1,024 probes on)."""
    chosen = [g.strip() for g in generators.split(",") if g.strip()]
    if not chosen or any(g not in GENERATORS for g in chosen):
        raise BenchmarkParamError(f"generators must be a comma list of {', '.join(GENERATORS)}")
    chosen_parts = frozenset(p.strip() for p in parts.split(",") if p.strip())
    if not chosen_parts or not chosen_parts <= {"search", "dedup"}:
        raise BenchmarkParamError("parts must be a comma list of search, dedup")
    if n < 2 or not 1 <= mated <= n or not 1 <= singles <= mated:
        raise BenchmarkParamError("need n >= 2, 1 <= mated <= n and 1 <= singles <= mated")
    if shortlist < _K or repeats < 1 or dedup_n < 1 or threads < 0:
        raise BenchmarkParamError("need shortlist >= 10, repeats >= 1, dedup_n >= 1, threads >= 0")
    if subvectors < 0:
        raise BenchmarkParamError("subvectors must be 0 (dimension / 2) or positive")
    if implem not in _FASTSCAN_IMPLEMS:
        raise BenchmarkParamError(f"implem must be one of {sorted(_FASTSCAN_IMPLEMS)}")
    if stage not in BATCH_STAGES:
        raise BenchmarkParamError(f"stage must be one of {', '.join(BATCH_STAGES)}")
    if stage == "matrix" and not matrix_scan.available():
        raise BenchmarkParamError("stage matrix needs PyTorch (pip install 'sanad[accel]')")
    code_subvectors = TwoStageIndex(FACE_DIM, subvectors=subvectors).subvectors

    default_threads = faiss.omp_get_max_threads()
    if threads:
        faiss.omp_set_num_threads(threads)
    figures: dict[str, float] = {}
    load_start = os.getloadavg()
    try:
        for g in chosen:
            per = _one_generator(
                g, n=n, mated=mated, singles=singles, seed=seed, shortlist=shortlist,
                subvectors=subvectors, repeats=repeats, dedup_n=dedup_n, parts=chosen_parts,
                implem=implem, stage=stage,
            )
            figures.update({f"{key}_{g}": value for key, value in per.items()})
    finally:
        faiss.omp_set_num_threads(default_threads)
    notes = {
        "index": f"twostage: 4-bit PQ codes ({code_subvectors} sub-vectors, "
        f"{code_subvectors // 2} B) of centred templates "
        f"scanned by FAISS IndexPQFastScan for the best {shortlist}, re-ranked on int8 "
        f"templates, top {_K}; FAISS fast-scan implem "
        + ("measured per training (the faster of 0 and 15; figure fastscan_implem)"
           if implem == AUTO_IMPLEM else str(implem))
        + f"; stage 1 of batches of {_MATRIX_MIN_BATCH:,}+ probes: {stage} (figure "
        "dedup_matrix_share: exact bf16 products on the matrix engine, then the same "
        "re-rank)",
        "speed": "speedup_vs_exact / speedup_vs_faiss_flat: batched search of the same mated "
        "probes in the same run (best of repeats); probe_*_ms: one probe per call, wall time; "
        "probe_cpu_*_ms: the same calls' process CPU time (one thread)",
        "accuracy": "mate_recall: mated probes whose mate exact search ranks first, share "
        "with the mate in the index's top 10; recall_at_10: overlap with exact top 10",
        "memory": "index_mb: the index's arrays; index_rss_mb: RSS growth while building",
        "dedup": "not run" if "dedup" not in chosen_parts else
        f"first {min(dedup_n, n)} records of an enrolment stream (~2 % re-enrolments) "
        f"in batches of {_DEDUP_BATCH}, each searched against all records before it; "
        + ("dedup_full_min_est is the measured time of the whole stream" if dedup_n >= n else
           "dedup_full_min_est extrapolates to n records from the measured code comparisons/s"),
        "threads": f"FAISS threads: {threads or default_threads}; numpy BLAS its default",
        "load": "load average (1, 5, 15 min) at start {:.1f} {:.1f} {:.1f}, at end "
        "{:.1f} {:.1f} {:.1f}".format(*load_start, *os.getloadavg()),
    }
    return BenchResult(
        name="abis",
        params={
            "n": n, "mated": mated, "singles": singles, "seed": seed, "shortlist": shortlist,
            "subvectors": subvectors, "repeats": repeats, "dedup_n": dedup_n,
            "threads": threads, "generators": generators, "parts": parts, "implem": implem,
            "stage": stage,
        },
        figures=figures,
        notes=notes,
    )

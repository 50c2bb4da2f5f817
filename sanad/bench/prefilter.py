"""``sanad bench prefilter``: how often the fingerprint pre-filter keeps the mate as the
gallery grows (issue #3, docs/fusion.md §"Fingerprint pre-filter at enrolment").

Builds the registry's finger index (``twostage``, `PREFILTER_DIM` = 192, `finger_index_options`
with the shipped `SANAD_INDEX_SHORTLIST`, or the ``subvectors`` / ``shortlist`` given) over
``people`` synthetic people (`SyntheticFingers`, one enrolment capture of each of the four
`PREFILTER_POSITIONS`), in the space the registry fits (`fit_space`: `FingerDescriptorSpace.fit`
on the first `FIT_SAMPLE` people, or ``fit_sample``), each person stored as
`FingerDescriptorSpace.person_descriptor`.
Probes are fresh captures (another random stream) of people in the gallery, so each has exactly
one mate; they are searched (top 30) whenever the gallery reaches one of ``sizes``, and at
sizes up to ``exact_up_to`` also in an exact ``faiss-flat`` index of the same vectors: the
baseline of the hit rates (what the two-stage index loses) and of the search times.

Two probe sets: ``probes`` people *outside* the fitting sample (people ``fit_sample`` onwards:
like almost every person of a large registry) — the headline figures — and as many people
*inside* it (the first ones).

Captures and descriptors (~3–4 ms of CPU per person) run in a spawn pool of ``workers``
processes over chunks of ``chunk`` people; every person has their own random stream, so the
result for a seed does not depend on ``workers`` or ``chunk``. Only the 192-d vectors come back.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import statistics
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from sanad.abis.finger_stage import PREFILTER_DIM, PREFILTER_POSITIONS, FingerDescriptorSpace
from sanad.abis.index import GalleryIndex, make_index
from sanad.abis.twostage import TwoStageIndex
from sanad.bench import BenchmarkParamError, BenchResult
from sanad.biometrics.finger.synthetic import SyntheticFingers
from sanad.biometrics.finger.template import FingerPosition, MinutiaeArray
from sanad.config import Settings
from sanad.registry.finger_gallery import (
    FIT_SAMPLE,
    MIN_FIT,
    PREFILTER_SUBVECTORS,
    finger_index_options,
)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Fingers = dict[FingerPosition, MinutiaeArray]
KIND = "twostage"
TOPS = (1, 10, 30)
# The shipped `SANAD_INDEX_SHORTLIST`: the benchmark measures what a default install searches.
SHORTLIST: int = Settings.model_fields["index_shortlist"].default
_SHORTLIST_RANGE = (16, 16384)  # the setting's bounds
# Random streams: person i's gallery capture uses [seed, GALLERY, i], their probe
# [seed, PROBES, i].
GALLERY, PROBES = 0, 1
PROBE_TASK = 500  # probes per pool task
FIT_TASK = 512  # fitting-sample people per pool task
ROUNDS = 3  # batched searches timed per index and size (best round counts)
SINGLE_PROBES = 50  # one-probe searches timed per index and size (enrolment searches one)

# Per worker process (set by `_init_worker`).
_gen: SyntheticFingers | None = None
_seed = 0


def _init_worker(seed: int) -> None:
    global _gen, _seed
    _gen, _seed = SyntheticFingers(seed), seed


def _fingers(stream: int, first: int, count: int) -> Iterator[Fingers]:
    """One capture of each pre-filter finger of people ``first .. first + count - 1``."""
    assert _gen is not None
    for i in range(first, first + count):
        rng = np.random.default_rng([_seed, stream, i])
        yield {p: _gen.capture(i, int(p), rng) for p in PREFILTER_POSITIONS}


def _sample(task: tuple[int, int]) -> list[Fingers]:
    """Worker: the gallery captures of people ``first .. first + count - 1`` (to fit on)."""
    first, count = task
    return list(_fingers(GALLERY, first, count))


def _project(task: tuple[FingerDescriptorSpace, int, int, int]) -> tuple[I64, F32, float]:
    """Worker: ``(space, stream, first, count)`` -> the person numbers with a descriptor, their
    descriptors (what the registry stores) and the CPU seconds spent."""
    space, stream, first, count = task
    cpu = time.process_time()
    ids: list[int] = []
    rows: list[F32] = []
    for i, fingers in enumerate(_fingers(stream, first, count), start=first):
        v = space.person_descriptor(fingers)
        if v is not None:  # the registry leaves such a person out of the index
            ids.append(i)
            rows.append(v)
    vectors = np.stack(rows) if rows else np.empty((0, PREFILTER_DIM), np.float32)
    return np.asarray(ids, np.int64), vectors.astype(np.float32), time.process_time() - cpu


def _pool(workers: int, seed: int) -> Pool:
    """A spawn pool whose workers run numpy/BLAS on one thread each (the pool is the
    parallelism); this process's own thread settings are left as they are."""
    faiss.omp_get_max_threads()  # this process's OpenMP runtime starts before the change
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:  # spawn starts the workers now, with this environment
        return mp.get_context("spawn").Pool(workers, _init_worker, (seed,))
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _ranks(ids: I64, truth: I64) -> I64:
    """0-based rank of each probe's mate in its result row, -1 when absent."""
    found = ids == truth[:, None]
    ranks: I64 = np.where(found.any(axis=1), found.argmax(axis=1), -1).astype(np.int64)
    return ranks


def _in_top(ranks: I64, k: int) -> npt.NDArray[np.bool_]:
    result: npt.NDArray[np.bool_] = (ranks >= 0) & (ranks < k)
    return result


def _timed_search(index: GalleryIndex, vectors: F32) -> tuple[I64, float]:
    """Result ids of one batched search (top 30) and its wall seconds."""
    t = time.perf_counter()
    _, ids = index.search(vectors, max(TOPS))
    return ids, time.perf_counter() - t


def _single_ms(index: GalleryIndex, vectors: F32) -> float:
    """Median wall ms of one-probe searches (the first `SINGLE_PROBES` probes)."""
    times = []
    for j in range(min(SINGLE_PROBES, len(vectors))):
        t = time.perf_counter()
        index.search(vectors[j:j + 1], max(TOPS))
        times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def _measure(size: int, index: TwoStageIndex, exact: GalleryIndex | None,
             probes: dict[str, tuple[I64, F32]]) -> dict[str, float]:
    """Figures at gallery size ``size``: hit rates of both probe sets, search times, and with
    ``exact`` the same for exact search of the same probes (timed in interleaved rounds)."""
    at = f"_at_{size}"
    truth, vectors = probes["outside_fit"]
    ids, best = _timed_search(index, vectors)
    exact_ids, exact_best = (None, 0.0) if exact is None else _timed_search(exact, vectors)
    for _ in range(ROUNDS - 1):
        best = min(best, _timed_search(index, vectors)[1])
        if exact is not None:
            exact_best = min(exact_best, _timed_search(exact, vectors)[1])
    ranks = _ranks(ids, truth)
    out = {f"top{k}{at}": float(np.mean(_in_top(ranks, k))) for k in TOPS}
    inside_truth, inside_vectors = probes["inside_fit"]
    inside = _ranks(index.search(inside_vectors, max(TOPS))[1], inside_truth)
    out[f"inside_fit_top10{at}"] = float(np.mean(_in_top(inside, 10)))
    single = _single_ms(index, vectors)
    out[f"batch_ms_per_probe{at}"] = 1e3 * best / len(truth)
    out[f"single_probe_ms{at}"] = single
    out[f"index_mb{at}"] = index.memory_bytes() / 2**20
    if exact is not None and exact_ids is not None:
        exact_ranks = _ranks(exact_ids, truth)
        out.update({f"exact_top{k}{at}": float(np.mean(_in_top(exact_ranks, k))) for k in TOPS})
        lost = _in_top(exact_ranks, 10) & ~_in_top(ranks, 10)
        out[f"top10_lost_vs_exact{at}"] = float(np.mean(lost))
        out[f"twostage_speedup_vs_exact{at}"] = exact_best / best
        out[f"single_probe_speedup_vs_exact{at}"] = _single_ms(exact, vectors) / single
    return out


def _sizes(sizes: str, people: int, probes: int, fit_sample: int) -> list[int]:
    """The gallery sizes to measure at, checked against ``people`` and ``probes``."""
    try:
        parsed = sorted({int(s) for s in sizes.split(",") if s.strip()})
    except ValueError:
        raise BenchmarkParamError(
            f"sizes must be comma-separated whole numbers, got {sizes!r}") from None
    if not parsed:
        raise BenchmarkParamError("sizes must name at least one gallery size")
    if parsed[-1] > people:
        raise BenchmarkParamError(f"sizes must be at most people ({people}), got {parsed[-1]}")
    if parsed[0] < fit_sample + probes:
        raise BenchmarkParamError(
            f"the smallest size must hold the {fit_sample}-people fitting sample and the "
            f"probes: at least {fit_sample + probes}, got {parsed[0]}")
    return parsed


def _check(*, probes: int, exact_up_to: int, seed: int, workers: int, chunk: int,
           subvectors: int, shortlist: int, fit_sample: int) -> None:
    if fit_sample < MIN_FIT:
        raise BenchmarkParamError(f"fit_sample must be at least {MIN_FIT} (the fewest people the "
                                  f"registry fits a space on), got {fit_sample}")
    if not 1 <= probes <= fit_sample:
        raise BenchmarkParamError(f"probes must be between 1 and fit_sample ({fit_sample}; the "
                                  f"inside-fit probes are people of the fitting sample), got "
                                  f"{probes}")
    if exact_up_to < 0 or seed < 0:
        raise BenchmarkParamError("exact_up_to and seed must be >= 0")
    if workers < 1 or chunk < 1:
        raise BenchmarkParamError("workers and chunk must be at least 1")
    if subvectors < 0 or subvectors > PREFILTER_DIM or (subvectors and PREFILTER_DIM % subvectors):
        raise BenchmarkParamError(f"subvectors must be 0 (the registry's {PREFILTER_SUBVECTORS}) "
                                  f"or a divisor of {PREFILTER_DIM}, got {subvectors}")
    lo, hi = _SHORTLIST_RANGE
    if shortlist and not lo <= shortlist <= hi:
        raise BenchmarkParamError(f"shortlist must be 0 (the shipped {SHORTLIST}) or between "
                                  f"{lo} and {hi}, got {shortlist}")


def _index_options(subvectors: int, shortlist: int) -> dict[str, Any]:
    """The registry's finger index options (`finger_index_options` with the shipped
    shortlist), with ``subvectors`` / ``shortlist`` in their place where not 0."""
    options = finger_index_options(KIND, shortlist or SHORTLIST)
    return {**options, "subvectors": subvectors or options["subvectors"]}


def _rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_prefilter(*, people: int = 1_450_000, probes: int = 2000,
                  sizes: str = "10000,100000,1450000", exact_up_to: int = 100_000, seed: int = 7,
                  workers: int = 2, chunk: int = 20_000, subvectors: int = 0,
                  shortlist: int = 0, fit_sample: int = FIT_SAMPLE) -> BenchResult:
    """Mate hit rates (top 1 / 10 / 30) of the finger pre-filter at each gallery size in
    ``sizes`` (comma-separated, at most ``people``), against exact search at sizes up to
    ``exact_up_to``; ``subvectors`` / ``shortlist`` 0 are the registry's own settings;
    ``fit_sample``: people the descriptor space is fitted on (the registry's `FIT_SAMPLE`)."""
    _check(probes=probes, exact_up_to=exact_up_to, seed=seed, workers=workers, chunk=chunk,
           subvectors=subvectors, shortlist=shortlist, fit_sample=fit_sample)
    measured_at = _sizes(sizes, people, probes, fit_sample)
    index = make_index(KIND, PREFILTER_DIM, **_index_options(subvectors, shortlist))
    assert isinstance(index, TwoStageIndex)
    exact_limit = max((s for s in measured_at if s <= exact_up_to), default=0)
    exact = make_index("faiss-flat", PREFILTER_DIM) if exact_limit else None

    figures: dict[str, float] = {}
    worker_cpu, generated = 0.0, 0
    with _pool(workers, seed) as pool:
        t = time.perf_counter()
        pieces = [(lo, min(FIT_TASK, fit_sample - lo)) for lo in range(0, fit_sample, FIT_TASK)]
        sample = (person for part in pool.imap(_sample, pieces) for person in part)
        space = FingerDescriptorSpace.fit(sample, PREFILTER_POSITIONS, dim=PREFILTER_DIM)
        figures["fit_s"] = time.perf_counter() - t

        probe_sets: dict[str, tuple[I64, F32]] = {}
        for name, first in (("outside_fit", fit_sample), ("inside_fit", 0)):
            tasks = [(space, PROBES, first + lo, min(PROBE_TASK, probes - lo))
                     for lo in range(0, probes, PROBE_TASK)]
            done = pool.map(_project, tasks)
            probe_sets[name] = (np.concatenate([d[0] for d in done]),
                                np.concatenate([d[1] for d in done]))
            worker_cpu += sum(d[2] for d in done)
            generated += probes

        build = time.perf_counter()
        chunks = [(space, GALLERY, lo, min(chunk, people - lo)) for lo in range(0, people, chunk)]
        pending = list(measured_at)
        for (_, _, first, count), (ids, vectors, cpu) in zip(
                chunks, pool.imap(_project, chunks), strict=True):
            worker_cpu += cpu
            generated += count
            lo = 0
            # Add up to each gallery size reached inside this chunk and measure there.
            while True:
                size = pending[0] if pending and pending[0] <= first + count else None
                hi = len(ids) if size is None else int(np.searchsorted(ids, size))
                index.add(ids[lo:hi], vectors[lo:hi])
                if exact is not None:
                    keep = lo + int(np.searchsorted(ids[lo:hi], exact_limit))
                    exact.add(ids[lo:keep], vectors[lo:keep])
                lo = hi
                if size is None:
                    break
                pending.pop(0)
                figures.update(_measure(size, index, exact if size <= exact_limit else None,
                                        probe_sets))
                figures[f"entries_at_{size}"] = float(len(index))
        build_s = time.perf_counter() - build

    figures["probes_counted"] = float(len(probe_sets["outside_fit"][0]))
    figures["people_per_s"] = people / build_s
    figures["cpu_ms_per_person"] = 1e3 * worker_cpu / generated
    figures["peak_rss_mb"] = _rss_mb()
    return BenchResult(
        name="prefilter",
        params={"people": people, "probes": probes, "sizes": measured_at,
                "exact_up_to": exact_up_to, "seed": seed, "workers": workers, "chunk": chunk,
                "subvectors": index.subvectors, "shortlist": index.shortlist, "kind": KIND,
                "dim": PREFILTER_DIM, "fit_sample": fit_sample,
                "positions": [int(p) for p in PREFILTER_POSITIONS]},
        figures=figures,
        notes=_notes(index, exact_limit, fit_sample),
    )


def _notes(index: TwoStageIndex, exact_limit: int, fit_sample: int) -> dict[str, str]:
    exact = (f"exact_*, *_vs_exact: faiss-flat over the same vectors at sizes up to "
             f"{exact_limit:,}" if exact_limit else "no exact index (no size <= exact_up_to)")
    return {
        "method": f"the registry's finger index: make_index('twostage', {PREFILTER_DIM}, "
        f"shortlist={index.shortlist}, subvectors={index.subvectors}) ({index.subvectors // 2} "
        f"B PQ codes, int8 re-rank), built incrementally and searched (top 30) at each size; "
        f"descriptor space fitted on the first {fit_sample:,} people as the registry's "
        f"fit_space does; {exact}",
        "probes": "top<k>_at_<size>: share of probes whose mate is among the k best; probes are "
        f"fresh captures of people {fit_sample:,} onwards (outside the fitting sample, like "
        "almost everyone in a large registry), one mate each; inside_fit_top10: the same for "
        "people 0 onwards (inside it); top10_lost_vs_exact: mate in exact's top 10, not the "
        "index's",
        "data": "synthetic fingers (SyntheticFingers: four captured fingers per person, "
        "thumbs and index fingers), not real prints: real hit rates will differ",
        "times": f"batch_ms_per_probe: all probes in one search call, best of {ROUNDS} rounds "
        f"interleaved with exact; single_probe_ms: median of {SINGLE_PROBES} one-probe calls "
        "(as at enrolment); speedups = exact time / twostage time, same probes, same run; "
        "people_per_s: gallery build wall rate (the workers keep generating while a size is "
        "measured); cpu_ms_per_person: "
        "captures + descriptor in the worker processes (one BLAS thread each); absolute "
        "times are for information only",
        "rss": "peak_rss_mb: the whole benchmark process (index, exact index, probes)",
    }

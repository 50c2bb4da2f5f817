"""What only the twostage backend has: the PQ stage really filters and keeps the mate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from sanad.abis import twostage
from sanad.abis.index import ExactIndex, load_index, make_index
from sanad.abis.twostage import TwoStageIndex
from sanad.biometrics.synthetic import FACE_DIM, CalibratedPopulation, isotropic_captures

N = 6000


def populations() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    mates = np.arange(0, N, 20)
    cal = CalibratedPopulation(3)
    return {
        "isotropic": (
            isotropic_captures(3, np.arange(N), rng), isotropic_captures(3, mates, rng)
        ),
        "calibrated": (cal.captures(np.arange(N), rng), cal.captures(mates, rng)),
    }


@pytest.fixture(scope="module", params=["isotropic", "calibrated"])
def data(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gallery, probes = populations()[str(request.param)]
    return gallery, probes, np.arange(0, N, 20)


def test_a_short_shortlist_still_ranks_the_mate_first(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    gallery, probes, mates = data
    index = TwoStageIndex(FACE_DIM, shortlist=50)  # 50 of 6000: the scan filters 99 %
    index.add(np.arange(N), gallery)
    scores, ids = index.search(probes, 10)
    exact = ExactIndex(FACE_DIM)
    exact.add(np.arange(N), gallery)
    exact_scores, exact_ids = exact.search(probes, 10)
    assert np.array_equal(exact_ids[:, 0], mates)
    assert np.mean(ids[:, 0] == mates) >= 0.99
    hit = ids[:, 0] == mates
    assert np.allclose(scores[hit, 0], exact_scores[hit, 0], atol=0.005)


def test_the_centre_is_the_gallery_mean_and_codes_follow_growth() -> None:
    gallery, _ = populations()["calibrated"]
    index = TwoStageIndex(FACE_DIM)
    index.add(np.arange(500), gallery[:500])
    assert index._pq is None  # too few entries to train a quantiser: int8 scan of all
    for lo in range(500, N, 500):
        index.add(np.arange(lo, lo + 500), gallery[lo : lo + 500])
        if len(index) >= twostage._MIN_TRAIN:
            # Re-trained whenever the gallery doubled: fitted on at least half of it.
            assert index._trained_at * 2 > len(index)
            pq: Any = index._pq  # Any, as declared: no longer the `None` asserted above
            assert pq.ntotal == len(index)
    assert np.allclose(index._centre, gallery[: index._trained_at].mean(axis=0), atol=1e-3)


def _weak_mates(
    gallery: np.ndarray, rows: np.ndarray, cosine: float, seed: int
) -> np.ndarray:
    """Probes at exactly ``cosine`` to their gallery rows, the rest a random direction."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((rows.size, gallery.shape[1]))
    base = gallery[rows].astype(np.float64)
    noise -= (noise * base).sum(axis=1, keepdims=True) * base
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    probes: np.ndarray = cosine * base + np.sqrt(1 - cosine**2) * noise
    return probes.astype(np.float32)


def test_a_weak_mate_the_old_sign_code_stage_missed_is_found() -> None:
    """Cosine-0.5 mates (the calibrated generator's low-quality tail) in a 20,000 gallery:
    the former stage 1 — 128 sign bits of centred templates, 512 nearest by Hamming — drops
    some from its shortlist; the PQ stage keeps every one with half the shortlist."""
    n = 20_000
    gallery = CalibratedPopulation(5).captures(np.arange(n), np.random.default_rng(1))
    rows = np.arange(0, n, 50)
    probes = _weak_mates(gallery, rows, 0.5, seed=2)
    exact = ExactIndex(FACE_DIM)
    exact.add(np.arange(n), gallery)
    assert np.array_equal(exact.search(probes, 1)[1][:, 0], rows)  # the mate is the best

    centre = gallery.mean(axis=0)
    codes = np.packbits(gallery > centre, axis=1)
    _, old = faiss.knn_hamming(np.packbits(probes > centre, axis=1), codes, 512, variant="mc")
    old_kept = (old == rows[:, None]).any(axis=1)
    assert old_kept.mean() < 0.99  # measured: 2.5 % of these mates lost (10 of 400)

    index = TwoStageIndex(FACE_DIM, shortlist=256)
    index.add(np.arange(n), gallery)
    _, ids = index.search(probes, 10)
    assert np.array_equal(ids[:, 0], rows)


def test_incremental_adds_equal_a_bulk_build(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    gallery, probes, _ = data
    bulk = TwoStageIndex(FACE_DIM, shortlist=64)
    bulk.add(np.arange(N), gallery)
    one_by_one = TwoStageIndex(FACE_DIM, shortlist=64)
    for lo in range(0, N, 700):  # uneven batches: the centre is re-estimated as it grows
        one_by_one.add(np.arange(lo, min(lo + 700, N)), gallery[lo : lo + 700])
    assert len(one_by_one) == N
    a, b = bulk.search(probes, 5), one_by_one.search(probes, 5)
    assert np.mean(a[1][:, 0] == b[1][:, 0]) >= 0.99


def test_removed_entries_are_never_returned_by_the_pq_stage(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    gallery, probes, mates = data
    index = TwoStageIndex(FACE_DIM, shortlist=64)
    index.add(np.arange(N), gallery)
    gone = mates[::2]
    index.remove(gone, watermark=7)
    _, ids = index.search(probes, 10)
    assert not np.isin(ids, gone).any()
    kept = ~np.isin(mates, gone)
    assert np.mean(ids[kept, 0] == mates[kept]) >= 0.99
    assert index.watermark == 7 and len(index) == N - gone.size


def test_memory_per_entry() -> None:
    gallery, _ = populations()["isotropic"]
    index = TwoStageIndex(FACE_DIM)
    index.add(np.arange(N), gallery)
    # 16 B PQ code + 128 B int8 + 4 B inverse norm + 8 B id, with <= 25 % growth slack.
    assert 156 * N <= index.memory_bytes() <= 156 * N * 1.25 + 156 * 1024


def test_save_is_within_quantisation_of_the_original(tmp_path: Path) -> None:
    gallery, probes = populations()["isotropic"]
    index = make_index("twostage", FACE_DIM, shortlist=64)
    index.add(np.arange(N), gallery, watermark=3)
    index.save(tmp_path / "g")
    restored = load_index("exact", tmp_path / "g")
    assert restored.watermark == 3
    saved = restored.search(gallery[:100], 1)[0][:, 0]
    assert np.all(saved > 0.999)  # each saved vector is within int8 rounding of the original
    back = load_index("twostage", tmp_path / "g", shortlist=64)
    before, after = index.search(probes, 3)[1], back.search(probes, 3)[1]
    assert np.array_equal(after[:, 0], before[:, 0])
    # The quantiser is re-trained on the (int8-rounded) saved vectors, so a far stranger can
    # enter or leave a 64-entry shortlist; the mates and nearly all top 3 stay put.
    assert np.mean((after == before).all(axis=1)) >= 0.97


def test_invalid_options() -> None:
    with pytest.raises(ValueError):
        TwoStageIndex(FACE_DIM, shortlist=0)
    with pytest.raises(ValueError):
        TwoStageIndex(0)
    with pytest.raises(TypeError):
        make_index("exact", FACE_DIM, shortlist=5)


def test_single_probes_take_the_one_thread_path_with_the_same_results(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    import faiss

    gallery, probes, _ = data
    index = TwoStageIndex(FACE_DIM, shortlist=64)
    index.add(np.arange(N), gallery)
    threads = faiss.omp_get_max_threads()
    batch = index.search(probes[:20], 5)
    for i in range(20):
        scores, ids = index.search(probes[i : i + 1], 5)
        assert np.array_equal(ids[0], batch[1][i])
        assert np.allclose(scores[0], batch[0][i])
    assert faiss.omp_get_max_threads() == threads  # restored


def test_every_fast_scan_kernel_gives_the_same_shortlists(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """The kernel measured fastest after training (the default), FAISS's own choice (0) and
    15 must not change a shortlist: the same rows for every batched scan."""
    gallery, probes, _ = data
    index = TwoStageIndex(FACE_DIM)
    index.add(np.arange(N), gallery)
    assert index.fastscan_implem == twostage.AUTO_IMPLEM
    assert index.implem_in_use in twostage._AUTO_IMPLEMS
    assert index._pq.implem == index.implem_in_use
    assert probes.shape[0] > twostage._SINGLE_THREAD_BELOW  # a batch
    chosen = index._scan(probes, 256)
    for implem in (0, 15):
        index._pq.implem = implem
        other = index._scan(probes, 256)
        assert all(set(a) == set(b) for a, b in zip(chosen, other, strict=True))


def test_a_set_kernel_is_used_as_it_is_after_every_training() -> None:
    gallery, _ = populations()["isotropic"]
    index = TwoStageIndex(FACE_DIM, fastscan_implem=15)
    index.add(np.arange(1500), gallery[:1500])
    assert index._pq.implem == index.implem_in_use == 15
    index.add(np.arange(1500, 3000), gallery[1500:3000])  # doubles: a fresh quantiser
    assert index._trained_at == 3000
    assert index._pq.implem == index.implem_in_use == 15


class _ChargedClock:
    """A CPU clock that advances, per scan, by what the index's current kernel is charged."""

    def __init__(self, index: object, cost: dict[int, list[float]]) -> None:
        self.index, self.cost, self.now, self.calls = index, cost, 0.0, 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:  # the reading after a scan
            self.now += self.cost[self.index.implem].pop(0)  # type: ignore[attr-defined]
        return self.now


@pytest.mark.parametrize(
    ("cost", "winner"),
    [
        ({0: [1.1, 1.0], 15: [3.5, 3.4]}, 0),  # the eighth session's machine
        ({0: [1.2, 1.3], 15: [1.0, 1.1]}, 15),  # the sixth's
        ({0: [5.0, 1.0], 15: [1.2, 1.1]}, 0),  # each kernel's best run counts
        ({0: [1.0, 1.0], 15: [1.0, 1.0]}, 0),  # a tie keeps FAISS's own choice
    ],
)
def test_the_fastest_kernel_by_cpu_time_is_kept(
    cost: dict[int, list[float]], winner: int,
) -> None:
    gallery, probes = populations()["isotropic"]
    pq = faiss.IndexPQFastScan(FACE_DIM, 64, 4, faiss.METRIC_INNER_PRODUCT)
    pq.train(np.ascontiguousarray(gallery[:2048]))
    pq.add(np.ascontiguousarray(gallery[:2048]))
    clock = _ChargedClock(pq, cost)
    assert twostage.fastest_implem(pq, probes, 256, clock=clock) == winner
    assert pq.implem == winner
    assert clock.calls == 8  # two timed scans per kernel
    assert not any(cost.values())  # every charged scan happened


def test_finer_stage_one_codes_estimate_cosines_more_closely() -> None:
    """The default 64 sub-vectors (32 B per entry) against 32 (16 B): the scan's own
    estimates (before any re-rank) stray less from the true cosines, and the codes are
    twice the size — the trade `SANAD_INDEX_PQ_SUBVECTORS` offers."""
    gallery, probes = populations()["isotropic"]
    errors, code_bytes = {}, {}
    for subvectors in (0, 32):
        index = TwoStageIndex(FACE_DIM, subvectors=subvectors)
        index.add(np.arange(N), gallery)
        code_bytes[index.subvectors] = int(index._pq.codes.nbytes())
        centred = np.ascontiguousarray(probes - index._centre)
        estimates, rows = index._pq.search(centred, 50)
        truth = np.einsum("mld,md->ml", gallery[rows] - index._centre, centred)
        errors[index.subvectors] = float(np.std(estimates - truth))
    assert set(errors) == {32, 64}
    assert errors[64] < 0.8 * errors[32]
    assert code_bytes[64] == 2 * code_bytes[32]


def test_sub_vector_counts_that_do_not_divide_the_dimension_round_down() -> None:
    assert TwoStageIndex(FACE_DIM, subvectors=48).subvectors == 32  # largest divisor <= 48
    assert TwoStageIndex(FACE_DIM).subvectors == 64  # 2 dimensions per sub-vector
    assert TwoStageIndex(192).subvectors == 96
    with pytest.raises(ValueError, match="subvectors"):
        TwoStageIndex(FACE_DIM, subvectors=-1)
    with pytest.raises(ValueError, match="fastscan_implem"):
        TwoStageIndex(FACE_DIM, fastscan_implem=3)


def test_a_thread_count_gives_the_same_answers_and_leaves_openmp_as_it_was() -> None:
    gallery, probes = populations()["isotropic"]
    before = faiss.omp_get_max_threads()
    answers = []
    for threads in (0, 1):
        index = TwoStageIndex(FACE_DIM, threads=threads)
        index.add(np.arange(N), gallery)
        answers.append(index.search(probes, 10)[1])  # a batch: the `threads` path
        assert faiss.omp_get_max_threads() == before
    assert np.array_equal(answers[0], answers[1])
    with pytest.raises(ValueError, match="threads"):
        TwoStageIndex(FACE_DIM, threads=-1)


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_while_waiting_unless_the_operator_says_otherwise(
    given: str | None, expected: str,
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, sanad.abis.twostage; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == expected

"""The matrix-engine stage 1 (`sanad.abis.matrix_scan`) and how `TwoStageIndex` uses it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from sanad.abis import matrix_scan, twostage
from sanad.abis.twostage import TwoStageIndex
from sanad.biometrics.synthetic import FACE_DIM


def _gallery(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit templates and their int8 form as `TwoStageIndex` stores it (q, 1 / |q|)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, FACE_DIM)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = np.rint(g * (127 / np.abs(g).max(axis=1, keepdims=True))).astype(np.int8)
    inv = (1 / np.linalg.norm(q.astype(np.float32), axis=1)).astype(np.float32)
    return g, q, inv


def _noisy(v: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Fresh unit captures of ``v``: cosine to it ≈ 1 / sqrt(1 + noise²)."""
    x = v + noise * rng.standard_normal(v.shape) / np.sqrt(v.shape[1])
    unit: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _true_top(probes: np.ndarray, q: np.ndarray, inv: np.ndarray, k: int) -> npt.NDArray[np.int64]:
    scores = probes.astype(np.float64) @ (q.astype(np.float64) * inv[:, None]).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("n", [9000, 4096, 300])  # partial last block; one block; smaller
def test_the_true_best_ten_are_among_the_rows_returned(n: int) -> None:
    g, q, inv = _gallery(n)
    rng = np.random.default_rng(1)
    mates = rng.choice(n, 150, replace=False)
    probes = np.concatenate([
        _noisy(g[mates], rng, 0.6),  # mated: the mate first
        _noisy(rng.standard_normal((150, FACE_DIM)), rng, 0.0),  # strangers
    ])
    rows = matrix_scan.best_rows(probes, q, inv, 18)
    assert rows.shape == (300, 18)
    truth = _true_top(probes, q, inv, 10)
    assert all(set(t) <= set(r) for t, r in zip(truth, rows, strict=True))
    assert np.array_equal(rows[:150, 0], mates)
    assert (rows >= 0).all() and (rows < n).all()
    assert all(len(set(r)) == 18 for r in rows)  # no row twice


def test_slices_scanned_on_two_threads_give_the_same_rows() -> None:
    g, q, inv = _gallery(20_000)
    probes = _noisy(g[:64], np.random.default_rng(2), 0.3)
    one = matrix_scan.best_rows(probes, q, inv, 18, threads=1)
    two = matrix_scan.best_rows(probes, q, inv, 18, threads=2)
    # The 18th place may go either way among scores equal in bf16; the true best ten may not.
    truth = _true_top(probes, q, inv, 10)
    for rows in (one, two):
        assert all(set(t) <= set(r) for t, r in zip(truth, rows, strict=True))
    assert np.array_equal(one[:, 0], two[:, 0])
    assert np.array_equal(one[:, 0], np.arange(64))


def test_all_negative_scores_still_give_the_least_negative() -> None:
    """Selection compares bf16 bit patterns as integers, which orders positive values only;
    a probe whose best score is negative must still get the true best rows."""
    _, q, inv = _gallery(9000)
    q = np.abs(q)  # every template in the positive orthant...
    inv = (1 / np.linalg.norm(q.astype(np.float32), axis=1)).astype(np.float32)
    probes = -np.ones((3, FACE_DIM), dtype=np.float32) / np.sqrt(FACE_DIM)  # ...scores < 0
    rows = matrix_scan.best_rows(probes, q, inv, 18)
    truth = _true_top(probes, q, inv, 10)
    assert all(set(t) <= set(r) for t, r in zip(truth, rows, strict=True))


def test_a_gallery_smaller_than_k_returns_every_row() -> None:
    g, q, inv = _gallery(5)
    rows = matrix_scan.best_rows(g, q, inv, 18)
    assert rows.shape == (5, 5)
    assert np.array_equal(rows[:, 0], np.arange(5))
    assert all(set(r) == set(range(5)) for r in rows)


def test_a_large_batch_on_the_matrix_stage_gives_the_exhaustive_int8_answer() -> None:
    g, _, _ = _gallery(20_000, seed=3)
    rng = np.random.default_rng(4)
    probes = _noisy(g[rng.choice(20_000, twostage._MATRIX_MIN_BATCH)], rng, 0.6)
    index = TwoStageIndex(FACE_DIM, batch_stage="matrix")
    index.add(np.arange(20_000), g)
    assert index.batch_stage_in_use == "matrix"
    scores, ids = index.search(probes, 10)
    # Every int8 score of the first 128 probes (the same arithmetic as the re-rank).
    exact_scores, exact_ids = index._scan_all(probes[:128], 10)
    assert np.array_equal(ids[:128], exact_ids)
    assert np.allclose(scores[:128], exact_scores)
    assert index.probes_scanned == {"exhaustive": 0, "pq": 0,
                                    "matrix": twostage._MATRIX_MIN_BATCH}


def test_small_batches_keep_the_pq_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    g, _, _ = _gallery(20_000, seed=5)
    index = TwoStageIndex(FACE_DIM, batch_stage="matrix")
    index.add(np.arange(20_000), g)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the matrix stage scanned a small batch")

    monkeypatch.setattr(matrix_scan, "best_rows", refuse)
    _, ids = index.search(g[: twostage._MATRIX_MIN_BATCH - 1], 10)
    assert np.array_equal(ids[:, 0], np.arange(twostage._MATRIX_MIN_BATCH - 1))
    assert index.probes_scanned["pq"] == twostage._MATRIX_MIN_BATCH - 1
    assert index.probes_scanned["matrix"] == 0


def test_auto_measures_the_stages_at_the_first_large_batch_of_a_large_gallery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`auto` times nothing at training (a server searching a household at a time never
    imports PyTorch) nor below `_MATRIX_MIN_GALLERY`; the first batch of 1,024+ probes after a
    training of a large gallery has both stages measured, and what `fastest` says decides —
    once per training. Without PyTorch: PQ, untimed."""
    timed: list[set[str]] = []

    def pick_matrix(runs: dict[str, object], **_: object) -> str:
        timed.append(set(runs))
        return "matrix"

    monkeypatch.setattr(twostage, "fastest", pick_matrix)
    monkeypatch.setattr(twostage, "fastest_implem", lambda pq, *a, **k: 0)
    monkeypatch.setattr(twostage, "_MATRIX_MIN_GALLERY", 8192)
    g, _, _ = _gallery(16_384, seed=6)
    big = _noisy(g[: twostage._MATRIX_MIN_BATCH], np.random.default_rng(7), 0.3)
    index = TwoStageIndex(FACE_DIM)
    index.add(np.arange(4096), g[:4096])  # trained at 1024, 2048, 4096: a small gallery
    index.search(big, 10)
    assert index.batch_stage_in_use == "pq" and timed == []
    index.add(np.arange(4096, 8192), g[4096:8192])  # doubles to 8192: large, not yet timed
    index.search(big[:10], 10)  # a household
    assert index.batch_stage_in_use == "pq" and timed == []
    _, ids = index.search(big, 10)  # the first large batch: measured, and scanned by it
    assert timed == [{"pq", "matrix"}] and index.batch_stage_in_use == "matrix"
    assert index.probes_scanned["matrix"] == twostage._MATRIX_MIN_BATCH
    assert np.array_equal(ids[:, 0], np.arange(twostage._MATRIX_MIN_BATCH))
    index.search(big, 10)
    assert len(timed) == 1  # once per training
    monkeypatch.setattr(matrix_scan, "available", lambda: False)
    index.add(np.arange(8192, 16_384), g[8192:])  # doubles again: trained afresh
    index.search(big, 10)
    assert index.batch_stage_in_use == "pq" and len(timed) == 1  # no PyTorch: PQ, untimed


def test_invalid_stage_options(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="batch_stage"):
        TwoStageIndex(FACE_DIM, batch_stage="gpu")
    assert TwoStageIndex(FACE_DIM, batch_stage="pq").batch_stage_in_use == "pq"
    monkeypatch.setattr(matrix_scan, "available", lambda: False)
    with pytest.raises(ValueError, match="PyTorch"):
        TwoStageIndex(FACE_DIM, batch_stage="matrix")

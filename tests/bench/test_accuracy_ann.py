"""``ann_loss_rate`` on a larger, face-only gallery (``sanad bench accuracy -p ann_gallery=N``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sanad.abis.index import make_index
from sanad.bench import BenchmarkParamError, accuracy
from sanad.bench.accuracy import _ann_loss_large
from sanad.bench.runner import run_benchmark
from sanad.biometrics.synthetic import CalibratedPopulation


def _large(
    pop: CalibratedPopulation, *, index_kind: str, index_options: dict[str, Any]
) -> dict[str, float]:
    """`_ann_loss_large` on the tests' sample: a 4000 gallery, 100 mates, 200 non-mates."""
    return _ann_loss_large(pop, size=4000, mated=100, non_mated=200, sibling_rate=0.5, seed=0,
                           index_kind=index_kind, k=10, main_threshold=0.35,
                           index_options=index_options)


def test_an_exact_index_loses_nothing_and_the_twostage_one_is_counted() -> None:
    pop = CalibratedPopulation(0)
    exact = _large(pop, index_kind="exact", index_options={})
    for suffix in ("", "_at_main_threshold"):
        assert exact[f"ann_loss_rate_large{suffix}"] == 0.0
        assert exact[f"ann_exact_matches_large{suffix}"] >= 100  # the mates at least
    assert exact["ann_mate_recall_large"] == 1.0
    # The gallery's own FPIR-1 % threshold is above the deliberately low 0.35 given.
    assert exact["ann_review_threshold_large"] > 0.35
    assert exact["ann_exact_matches_large_at_main_threshold"] > exact["ann_exact_matches_large"]

    # The coarser 16-byte codes, so that there are losses to count.
    two = _large(pop, index_kind="twostage", index_options={"subvectors": 32})
    assert two["ann_exact_matches_large"] == exact["ann_exact_matches_large"]
    assert two["ann_mate_recall_large"] == 1.0
    assert two["ann_loss_rate_large"] <= 0.001
    # At 0.35, far below what this gallery needs, the top 10 fill with strangers that the
    # 4-bit PQ scan (errors of ~0.05) does not all keep: the figure sees those losses.
    assert two["ann_loss_rate_large_at_main_threshold"] > 0.0


def test_finer_stage_one_codes_lose_fewer_pairs() -> None:
    """The default 64 sub-vectors against ``index_subvectors=32`` (SANAD_INDEX_PQ_SUBVECTORS):
    at the deliberately low threshold, where the 4-bit scan's errors show, 32-byte codes keep
    more of exact search's pairs than 16-byte ones."""
    pop = CalibratedPopulation(0)
    coarse = _large(pop, index_kind="twostage", index_options={"subvectors": 32})
    fine = _large(pop, index_kind="twostage", index_options={})
    assert fine["ann_exact_matches_large"] == coarse["ann_exact_matches_large"]
    assert (fine["ann_loss_rate_large_at_main_threshold"]
            < coarse["ann_loss_rate_large_at_main_threshold"])


def test_the_large_sample_has_its_own_size_and_index_options(tmp_path: Path) -> None:
    params = {"n": 40, "mated": 10, "non_mated": 20, "plot_dir": str(tmp_path),
              "face_candidates": 3, "finger_candidates": 3, "ann_gallery": 2000,
              "ann_mated": 60, "ann_non_mated": 100, "index_subvectors": 64}
    result = run_benchmark("accuracy", params=params, json_output=True, results_dir=tmp_path)
    assert result.figures["ann_exact_matches_large"] >= 60  # the 60 mates at least
    assert result.params["ann_mated"] == 60 and result.params["index_subvectors"] == 64


def test_the_benchmark_reports_the_large_figures(tmp_path: Path) -> None:
    params = {"n": 40, "mated": 10, "non_mated": 20, "plot_dir": str(tmp_path),
              "face_candidates": 3, "finger_candidates": 3, "ann_gallery": 2000}
    result = run_benchmark("accuracy", params=params, json_output=True, results_dir=tmp_path)
    f = result.figures
    assert f["ann_gallery"] == 2000
    assert 0.0 <= f["ann_loss_rate_large"] <= 1.0
    assert f["ann_exact_matches_large"] >= 1
    assert "gallery 2000" in result.notes["ann_index"]
    assert "twostage with its PQ stage 1 for every batch" in result.notes["ann_index"]


def test_the_ann_figures_measure_the_pq_stage_even_for_large_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Enrolment searches a household at a time, on the PQ stage; the benchmark's large probe
    batches must not be moved to the exact matrix stage, or the loss it reports would be
    the matrix stage's (none), not the product's."""
    made: list[dict[str, object]] = []
    real = make_index

    def spy(kind: str, dim: int, **options: object) -> object:
        made.append({"kind": kind, **options})
        return real(kind, dim, **options)

    monkeypatch.setattr(accuracy, "make_index", spy)
    params = {"n": 40, "mated": 10, "non_mated": 20, "plot_dir": str(tmp_path),
              "face_candidates": 3, "finger_candidates": 3, "ann_gallery": 2000}
    run_benchmark("accuracy", params=params, json_output=True, results_dir=tmp_path)
    assert len(made) >= 2  # the main population's index and the large gallery's
    assert all(m == {"kind": "twostage", "batch_stage": "pq"} for m in made)


@pytest.mark.parametrize("bad", [{"ann_gallery": -1}, {"ann_gallery": 5},
                                 {"ann_gallery": 100, "ann_mated": 200},
                                 {"ann_gallery": 100, "ann_non_mated": 5},
                                 {"index_subvectors": -1}])
def test_bad_ann_gallery(tmp_path: Path, bad: dict[str, int]) -> None:
    params = {"n": 40, "mated": 10, "non_mated": 20, "plot_dir": str(tmp_path), **bad}
    with pytest.raises(BenchmarkParamError):
        run_benchmark("accuracy", params=params, json_output=True, results_dir=tmp_path)

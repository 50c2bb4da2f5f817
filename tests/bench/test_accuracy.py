"""``sanad bench accuracy`` on a tiny population (behaviour only, never timings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sanad.bench import BenchmarkParamError, BenchResult
from sanad.bench.accuracy import det_points, fnir_at, threshold_at
from sanad.bench.runner import BENCHMARKS, run_benchmark


# The shared tiny run takes a few seconds (population, matching, a PNG); the helpers and
# parameter checks below stay fast.
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchResult, Path, Path]:
    plots = tmp_path_factory.mktemp("plots")
    results = tmp_path_factory.mktemp("results")
    params = {
        "n": 40, "mated": 10, "non_mated": 20, "plot_dir": str(plots), "fingers": "2,7",
        "face_candidates": 3, "finger_candidates": 3,
    }
    result = run_benchmark("accuracy", params=params, json_output=True, results_dir=results)
    return result, plots, results


def test_registered() -> None:
    assert "accuracy" in BENCHMARKS


@pytest.mark.slow
def test_reports_every_named_figure(tiny: tuple[BenchResult, Path, Path]) -> None:
    result, _, results = tiny
    for modality in ("face", "finger", "fused"):
        for point in ("0_001", "0_01"):
            value = result.figures[f"fnir_at_fpir_{point}_{modality}"]
            assert 0.0 <= value <= 1.0
    assert 0.0 <= result.figures["ann_loss_rate"] <= 1.0
    assert 0.0 <= result.figures["prefilter_mate_hit_rate"] <= 1.0
    assert result.figures["second_stage_speedup_vs_pairwise"] > 0
    record = json.loads(next(results.glob("accuracy-*.json")).read_text())
    assert record["figures"]["fnir_at_fpir_0_01_fused"] == result.figures["fnir_at_fpir_0_01_fused"]


@pytest.mark.slow
def test_fused_is_no_worse_than_either_modality(tiny: tuple[BenchResult, Path, Path]) -> None:
    f = tiny[0].figures
    assert f["fnir_at_fpir_0_01_fused"] <= min(f["fnir_at_fpir_0_01_face"], 0.2)
    assert f["fnir_at_fpir_0_01_fused"] <= f["fnir_at_fpir_0_01_finger"]


@pytest.mark.slow
def test_det_curve_png_and_notes(tiny: tuple[BenchResult, Path, Path]) -> None:
    result, plots, _ = tiny
    pngs = list(plots.glob("accuracy-det-*.png"))
    assert len(pngs) == 1
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.notes["det_curve"] == str(pngs[0])
    assert "isotropic" in result.notes["face_generator"] or "calibrated" in result.notes[
        "face_generator"
    ]
    assert "recommended_thresholds" in result.notes


@pytest.mark.parametrize(
    "params",
    [
        {"n": 5},
        {"n": 50, "mated": 60},
        {"fingers": "11"},
        {"fingers": "2,2"},
        {"fingers": "0"},
        {"index_kind": "nope"},
        {"face_generator": "nope"},
        {"missing_finger_rate": 1.0},
    ],
)
def test_bad_parameters(params: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(BenchmarkParamError):
        run_benchmark("accuracy", params=params, json_output=True, results_dir=tmp_path)


def test_threshold_and_fnir_helpers() -> None:
    nonmated = np.array([0.1, 0.9, 0.5, -np.inf, 0.3, 0.2, 0.4, 0.6, 0.7, 0.8])
    # FPIR <= 0.1 allows one of ten non-mated searches above the threshold: just above 0.8.
    t = threshold_at(nonmated, 0.1)
    assert 0.8 < t < 0.8 + 1e-9
    mates = np.array([0.95, 0.85, 0.81, 0.5, -np.inf])
    fnir, t2 = fnir_at(mates, nonmated, 0.1)
    assert t2 == t
    assert fnir == pytest.approx(2 / 5)  # 0.5 and the never-returned mate
    fpir, fnir_curve = det_points(mates, nonmated)
    assert fpir[-1] == 0.0 and fnir_curve[-1] == 1.0
    assert np.all(np.diff(fpir) <= 0) and np.all(np.diff(fnir_curve) >= 0)


def test_split_holds_back_siblings_of_gallery_members() -> None:
    from sanad.bench.accuracy import _face_population, _split

    iso, _ = _face_population(0, "isotropic", 0.0)
    gallery, non_mated, siblings = _split(iso, 30, 10, 0.5)
    assert siblings == 0 and gallery.tolist() == list(range(30))
    assert non_mated.tolist() == list(range(30, 40))

    pop, note = _face_population(0, "auto", 0.0)
    if not hasattr(pop, "households"):
        pytest.skip(f"face generator without households: {note}")
    gallery, non_mated, siblings = _split(pop, 50, 20, 0.5)
    assert siblings == 10
    assert not set(gallery.tolist()) & set(non_mated.tolist())
    enrolled = set(pop.households(gallery).tolist())
    assert all(h in enrolled for h in pop.households(non_mated[:siblings]).tolist())

"""The large-gallery enrolment path of ``sanad bench accuracy`` (``-p large_gallery=N``).

Run here at a few thousand people; the figures' meaning, not their values, is what is tested
(behaviour only, never timings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from sanad.abis.finger_stage import second_stage
from sanad.bench import BenchmarkParamError, BenchResult
from sanad.bench.accuracy import (
    _enrolment_large,
    _face_population,
    _LazyFingers,
    ceil_2dp,
    shipped_thresholds,
)
from sanad.bench.runner import run_benchmark
from sanad.biometrics.finger.synthetic import SyntheticFingers
from sanad.biometrics.finger.template import FingerPosition
from sanad.config import Settings

INDEXES = (FingerPosition(2), FingerPosition(7))
SMALL = {"n": 40, "mated": 10, "non_mated": 20, "face_candidates": 10, "finger_candidates": 3}


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread() -> Iterator[None]:
    # Two FAISS threads on a busy 2-core machine spin against each other (k-means on a small
    # training set then takes ~100x longer); the figures do not depend on the thread count.
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(previous)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchResult, Path]:
    out = tmp_path_factory.mktemp("large")
    params = {**SMALL, "plot_dir": str(out), "large_gallery": 3000, "large_mated": 60,
              "large_non_mated": 200}
    return run_benchmark("accuracy", params=params, json_output=True, results_dir=out), out


@pytest.mark.slow
def test_large_mode_reports_every_figure(large: tuple[BenchResult, Path]) -> None:
    result, out = large
    f = result.figures
    assert f["large_gallery"] == 3000
    rates = [f"fnir_at_fpir_{p}_{m}_large" for p in ("0_001", "0_01") for m in ("face", "fused")]
    rates += [f"{kind}_{rule}_{label}_large" for kind in ("fnir", "fpir")
              for rule in ("shipped", "face_shipped") for label in ("duplicate", "review")]
    rates += ["mate_in_candidates_large"]
    for key in rates:
        assert 0.0 <= f[key] <= 1.0, key
    for key in ("face_threshold_at_fpir_0_001_large", "face_threshold_at_fpir_0_01_large"):
        assert -1.0 <= f[key] <= 1.0
    assert np.isfinite(f["fused_threshold_at_fpir_0_001_large"])
    # A looser FPIR never needs a higher threshold, nor misses more mates.
    assert f["face_threshold_at_fpir_0_01_large"] <= f["face_threshold_at_fpir_0_001_large"]
    assert f["fnir_at_fpir_0_01_fused_large"] <= f["fnir_at_fpir_0_001_fused_large"]
    # The product's decision: "duplicate" is stricter than "adjudicate or duplicate".
    assert f["fnir_shipped_duplicate_large"] >= f["fnir_shipped_review_large"]
    assert f["fpir_shipped_duplicate_large"] <= f["fpir_shipped_review_large"]
    assert f["fpir_face_shipped_duplicate_large"] <= f["fpir_face_shipped_review_large"]
    assert 0.0 <= f["fpir_shipped_review_by_face_rule_large"] <= f["fpir_shipped_review_large"]
    assert f["large_finger_comparisons"] > 0
    assert result.params["large_mated"] == 60 and result.params["large_non_mated"] == 200
    record = json.loads(next(out.glob("accuracy-*.json")).read_text())
    assert record["figures"]["fnir_at_fpir_0_001_fused_large"] == f[
        "fnir_at_fpir_0_001_fused_large"
    ]
    assert (out / "accuracy-det-large3000-seed0.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_recommended_face_thresholds_follow_the_rule(large: tuple[BenchResult, Path]) -> None:
    f = large[0].figures
    for label, point, fpir in (("duplicate", "0_001", 0.001), ("review", "0_01", 0.01)):
        measured = f[f"face_threshold_at_fpir_{point}_large"]
        rec = f[f"recommended_face_{label}_threshold_large"]
        assert rec == ceil_2dp(measured) and measured <= rec < measured + 0.01
        assert f[f"fpir_face_at_recommended_{label}_large"] <= fpir
    assert f["recommended_face_review_threshold_large"] <= f[
        "recommended_face_duplicate_threshold_large"
    ]


@pytest.mark.slow
def test_notes_say_what_the_path_is(large: tuple[BenchResult, Path]) -> None:
    notes = large[0].notes
    assert "NOT on this path" in notes["large_no_prefilter"]
    assert "lower bound" in notes["large_no_prefilter"]
    t = shipped_thresholds()
    assert f"face {t.face_match:g} / {t.face_review:g}" in notes["large_shipped_thresholds"]
    assert "load average" in notes["large_cost"] and "CPU" in notes["large_cost"]
    assert "rounded up to 0.01" in notes["large_recommended_face_thresholds"]


def test_shipped_thresholds_are_the_config_defaults() -> None:
    t = shipped_thresholds()
    fields = Settings.model_fields
    assert t.face_match == fields["dedup_match_threshold"].default
    assert t.face_review == fields["dedup_review_threshold"].default
    assert t.fused_match == fields["dedup_fused_match_threshold"].default
    assert t.fused_review == fields["dedup_fused_review_threshold"].default


def test_ceil_2dp_never_rounds_down() -> None:
    assert ceil_2dp(0.6312) == 0.64
    assert ceil_2dp(0.64) == 0.64
    assert ceil_2dp(0.5500001) == 0.56
    assert ceil_2dp(-0.123) == -0.12


def test_lazy_fingers_do_not_depend_on_who_asks_first() -> None:
    gen = SyntheticFingers(0)
    a = _LazyFingers(gen, INDEXES, 0, 23, 0.0, 0.0)
    b = _LazyFingers(gen, INDEXES, 0, 23, 0.0, 0.0, keep=1)  # evicts, then regenerates
    first = a.prepared(5)
    a.prepared(3)
    b.prepared(5)
    b.prepared(3)
    again = b.prepared(5)
    assert again is not first and set(first) == set(again) == set(INDEXES)
    for pos in INDEXES:
        np.testing.assert_array_equal(first[pos].xy, again[pos].xy)
        np.testing.assert_array_equal(first[pos].descriptors, again[pos].descriptors)
    assert len(a) == len(b) == 2
    # The probe stream is a fresh capture of the same finger: it matches the enrolment one
    # far better than another person's finger does.
    probe = _LazyFingers(gen, INDEXES, 0, 29, 0.0, 0.0).prepared(5)
    lookups = {5: first, 3: a.prepared(3)}
    got = {r.gallery_id: r.comparison.scores for r in second_stage([5, 3], probe, lookups.get)}
    assert min(got[5].values()) > max(got[3].values())
    # Recorded exceptions: with no_finger_rate close to 1 nearly nobody has a finger.
    none = _LazyFingers(gen, INDEXES, 0, 23, 0.0, 0.999)
    assert sum(bool(none.positions(i)) for i in range(200)) <= 5


def test_fingers_rescue_mates_a_weak_face_misses() -> None:
    # Very noisy isotropic faces (genuine cosine ~0.45 against strangers 0 +- 0.09): the face
    # alone must set its threshold above many mates; two independent index fingers separate
    # mates from strangers, and most weak-face mates still pass enrolment's matcher gate
    # (face LLR + 8 per shared finger must reach the fused review threshold).
    pop, _ = _face_population(0, "isotropic", 1.1)
    run = _enrolment_large(
        pop, SyntheticFingers(0), size=3000, mated=200, non_mated=300, sibling_rate=0.0,
        seed=0, index_kind="exact", k=10, positions=INDEXES, missing_finger_rate=0.02,
        no_finger_rate=0.005,
    )
    f = run.figures
    assert f["mate_in_candidates_large"] >= 0.9
    assert f["fnir_at_fpir_0_01_face_large"] >= 0.05
    for point in ("0_001", "0_01"):
        assert f[f"fnir_at_fpir_{point}_fused_large"] <= f[f"fnir_at_fpir_{point}_face_large"]
    assert f["fnir_at_fpir_0_01_fused_large"] <= f["fnir_at_fpir_0_01_face_large"] / 2
    # Mates gated out of the matcher are judged on the face alone: few, but counted.
    assert 0 <= f["mate_pairs_face_rule_large"] <= 0.1 * 200
    assert f["large_finger_comparisons"] > 0


@pytest.mark.parametrize(
    "params",
    [
        {"large_gallery": -1},
        {"large_gallery": 500},
        {"large_gallery": 2000, "large_mated": 2500},
        {"large_gallery": 2000, "large_mated": 0},
        {"large_gallery": 2000, "large_non_mated": 5},
    ],
)
def test_bad_large_parameters(params: dict[str, object], tmp_path: Path) -> None:
    full = {**SMALL, "plot_dir": str(tmp_path), **params}
    with pytest.raises(BenchmarkParamError):
        run_benchmark("accuracy", params=full, json_output=True, results_dir=tmp_path)
    assert not list(tmp_path.glob("accuracy-*.json"))


def test_bad_large_parameter_is_a_one_line_cli_error(tmp_path: Path) -> None:
    env = {**os.environ, "SANAD_HOME": str(tmp_path / "home")}
    res = subprocess.run(
        [sys.executable, "-m", "sanad", "bench", "accuracy", "-p", "large_gallery=500",
         "--results-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "large_gallery" in res.stderr
    assert not list(tmp_path.glob("accuracy-*.json"))

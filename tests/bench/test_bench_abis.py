"""`sanad bench abis` at a tiny size: the named figures exist and are sane (never timings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sanad.bench.runner import BENCHMARKS, BenchmarkParamError, run_benchmark

TINY = {"n": 3000, "mated": 100, "singles": 20, "dedup_n": 3000, "repeats": 1,
        "shortlist": 128}
NAMES = ("probe_p50_ms", "probe_p99_ms", "batch_probe_per_s", "mate_recall", "recall_at_10",
         "speedup_vs_exact", "speedup_vs_faiss_flat", "index_mb", "index_rss_mb",
         "dedup_per_s", "dedup_mate_recall", "dedup_full_min_est", "probe_cpu_p50_ms",
         "probe_cpu_p99_ms", "dedup_min", "dedup_cpu_min")


def test_abis_reports_every_figure_per_generator(tmp_path: Path) -> None:
    result = run_benchmark("abis", params=TINY, json_output=True, results_dir=tmp_path)
    f = result.figures
    for generator in ("isotropic", "calibrated"):
        for name in NAMES:
            assert f"{name}_{generator}" in f
        assert f[f"mate_recall_{generator}"] >= 0.99
        assert f[f"dedup_mate_recall_{generator}"] >= 0.99
        assert f[f"mated_probes_counted_{generator}"] >= 95
        assert 0 < f[f"recall_at_10_{generator}"] <= 1
        assert f[f"probe_p99_ms_{generator}"] >= f[f"probe_p50_ms_{generator}"]
        assert f[f"probe_cpu_p99_ms_{generator}"] >= f[f"probe_cpu_p50_ms_{generator}"] > 0
        # 3000 x 156 B of arrays, plus growth slack.
        assert 0.4 < f[f"index_mb_{generator}"] < 2
        assert f[f"dedup_repeats_{generator}"] > 20
    assert list(tmp_path.glob("abis-*.json"))
    assert "abis" in BENCHMARKS


def test_one_generator_only(tmp_path: Path) -> None:
    result = run_benchmark("abis", params={**TINY, "generators": "calibrated"},
                           json_output=True, results_dir=tmp_path)
    assert all(k.endswith("_calibrated") for k in result.figures)


def test_the_dedup_stream_alone(tmp_path: Path) -> None:
    result = run_benchmark("abis", params={**TINY, "generators": "calibrated", "parts": "dedup"},
                           json_output=True, results_dir=tmp_path)
    f = result.figures
    assert "mate_recall_calibrated" not in f and "probe_p50_ms_calibrated" not in f
    assert f["dedup_records_calibrated"] == 3000
    assert f["dedup_mate_recall_calibrated"] >= 0.99
    # dedup_n = n: the "estimate" is the measured time of the whole stream.
    assert f["dedup_full_min_est_calibrated"] == f["dedup_min_calibrated"]
    assert f["dedup_cpu_min_calibrated"] > 0


def test_the_code_size_is_chosen_by_a_parameter_and_named_in_the_notes(tmp_path: Path) -> None:
    result = run_benchmark("abis", params={**TINY, "generators": "isotropic", "parts": "search",
                                           "subvectors": 32},
                           json_output=True, results_dir=tmp_path)
    assert result.params["subvectors"] == 32
    assert "32 sub-vectors, 16 B" in result.notes["index"]
    assert result.figures["mate_recall_isotropic"] >= 0.99
    # 3000 x (16 + 140) B of arrays (~0.45 MB); the default 32 B codes would make it ~0.49.
    assert 0.42 < result.figures["index_mb_isotropic"] < 0.48


def test_the_fast_scan_kernel_is_a_parameter_with_the_same_mates(tmp_path: Path) -> None:
    """`implem=0` (FAISS's own choice) is the baseline of the backend's kernel setting: the
    same stream finds the same re-enrolments either way."""
    runs = {}
    for implem in (0, 15):
        result = run_benchmark("abis", params={**TINY, "generators": "isotropic",
                                               "parts": "dedup", "implem": implem},
                               json_output=True, results_dir=tmp_path)
        assert result.params["implem"] == implem
        assert f"implem {implem}" in result.notes["index"]
        runs[implem] = result.figures
    assert runs[0]["dedup_mate_recall_isotropic"] == runs[15]["dedup_mate_recall_isotropic"]
    assert runs[0]["dedup_repeats_isotropic"] == runs[15]["dedup_repeats_isotropic"] > 20
    assert runs[0]["dedup_fastscan_implem_isotropic"] == 0
    assert runs[15]["dedup_fastscan_implem_isotropic"] == 15


def test_by_default_the_kernel_is_measured_and_the_figures_say_which_one_scanned(
    tmp_path: Path,
) -> None:
    result = run_benchmark("abis", params={**TINY, "generators": "isotropic"},
                           json_output=True, results_dir=tmp_path)
    assert result.params["implem"] == -1
    assert "measured per training" in result.notes["index"]
    assert result.figures["fastscan_implem_isotropic"] in (0.0, 15.0)
    assert result.figures["dedup_fastscan_implem_isotropic"] in (0.0, 15.0)
    # A 3,000-record gallery is below the size where the matrix stage is measured.
    assert result.params["stage"] == "auto"
    assert result.figures["dedup_matrix_share_isotropic"] == 0.0


def test_the_matrix_stage_finds_the_same_re_enrolments(tmp_path: Path) -> None:
    """`stage=matrix` (exact bf16 products for the stream's batches of 2,048) against the PQ
    scan: every re-enrolment the PQ stream finds, the matrix stream finds too."""
    runs = {}
    for stage in ("pq", "matrix"):
        # Batches of 2,048: the first meets an empty gallery (nothing to scan), the next two
        # (2,048 and 1,952 probes) are large enough for the matrix stage.
        result = run_benchmark("abis", params={**TINY, "n": 6000, "dedup_n": 6000,
                                               "generators": "isotropic", "parts": "dedup",
                                               "stage": stage},
                               json_output=True, results_dir=tmp_path)
        assert f"probes: {stage}" in result.notes["index"]
        runs[stage] = result.figures
    assert runs["matrix"]["dedup_matrix_share_isotropic"] == 1.0
    assert runs["pq"]["dedup_matrix_share_isotropic"] == 0.0
    assert runs["matrix"]["dedup_repeats_isotropic"] == runs["pq"]["dedup_repeats_isotropic"]
    assert (runs["matrix"]["dedup_mate_recall_isotropic"]
            >= runs["pq"]["dedup_mate_recall_isotropic"] > 0.95)


@pytest.mark.parametrize("params", [{"generators": "gaussian"}, {"n": 1}, {"shortlist": 5},
                                    {"subvectors": -1}, {"implem": 7}, {"stage": "gpu"},
                                    {"mated": 10, "singles": 11}, {"parts": "search,nope"},
                                    {"parts": ""}])
def test_bad_params(tmp_path: Path, params: dict[str, object]) -> None:
    with pytest.raises(BenchmarkParamError):
        run_benchmark("abis", params={**TINY, **params}, json_output=True, results_dir=tmp_path)

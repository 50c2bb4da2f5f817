"""The benchmark harness and the dedup benchmark (behaviour only, never timings)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sanad.bench import BenchResult
from sanad.bench.runner import (
    BENCHMARKS,
    BenchmarkParamError,
    UnknownBenchmark,
    _write_record,
    run_benchmark,
)
from sanad.config import Settings

TINY = {"n": 2000, "probes": 50, "repeats": 1}
FIGURES = {
    "exact_probe_per_s",
    "faiss_flat_probe_per_s",
    "speedup_vs_exact",
    "mate_rank1_rate",
    "false_match_rate",
    "true_match_rate",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchResult, Path]:
    results = tmp_path_factory.mktemp("results")
    result = run_benchmark("dedup", params=TINY, json_output=False, results_dir=results)
    return result, results


def test_dedup_reports_the_named_figures(tiny_run: tuple[BenchResult, Path]) -> None:
    result, _ = tiny_run
    assert result.name == "dedup"
    assert set(result.figures) >= FIGURES
    f = result.figures
    assert f["mate_rank1_rate"] >= 0.99
    assert f["true_match_rate"] >= 0.99
    # 50 strangers x 2000 gallery entries: P(impostor >= 0.60) ~ 1e-12 per pair (the match
    # threshold is at least that).
    assert f["false_match_rate"] == 0.0
    assert f["backend_rank1_agreement"] == 1.0
    assert f["exact_probe_per_s"] > 0 and f["faiss_flat_probe_per_s"] > 0
    assert f["speedup_vs_exact"] == pytest.approx(
        f["faiss_flat_probe_per_s"] / f["exact_probe_per_s"]
    )
    assert result.params["n"] == 2000 and result.params["seed"] == 0
    # The benchmark measures what a default install decides: the config's defaults.
    fields = Settings.model_fields
    assert result.params["match_threshold"] == fields["dedup_match_threshold"].default
    assert result.params["review_threshold"] == fields["dedup_review_threshold"].default


def test_dedup_writes_a_result_file(tiny_run: tuple[BenchResult, Path]) -> None:
    result, results = tiny_run
    files = list(results.glob("dedup-*.json"))
    assert len(files) == 1
    assert files[0].name.endswith("Z.json")
    record = json.loads(files[0].read_text())
    assert {"name", "params", "figures", "notes", "machine", "timestamp"} <= set(record)
    assert record["figures"] == pytest.approx(result.figures)
    assert {"python", "numpy", "faiss", "cpu_count"} <= set(record["machine"])
    assert dt.datetime.fromisoformat(record["timestamp"]).tzinfo is not None


def test_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_benchmark("dedup", params={**TINY, "n": 300}, json_output=False, results_dir=tmp_path)
    out = capsys.readouterr().out
    assert "speedup_vs_exact" in out and "mate_rank1_rate" in out


def test_json_output_is_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_benchmark("dedup", params={**TINY, "n": 300}, json_output=True, results_dir=tmp_path)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    obj = json.loads(out)
    assert set(obj["figures"]) >= FIGURES
    assert Path(obj["results_file"]).parent == tmp_path


def test_unknown_benchmark(tmp_path: Path) -> None:
    with pytest.raises(UnknownBenchmark) as info:
        run_benchmark("nope", params={}, json_output=True, results_dir=tmp_path)
    assert info.value.code == "unknown_benchmark"
    assert "dedup" in info.value.message
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "params",
    [{"size": 10}, {"n": "many"}, {"n": 1.5}, {"n": 10, "probes": 11}, {"k": 0}, {"n": True}],
)
def test_bad_params(tmp_path: Path, params: dict[str, object]) -> None:
    with pytest.raises(BenchmarkParamError) as info:
        run_benchmark("dedup", params=params, json_output=True, results_dir=tmp_path)
    assert info.value.code == "invalid_benchmark_param"


def test_string_params_from_the_command_line_are_coerced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_benchmark(
        "dedup",
        params={"n": "300", "probes": "20", "repeats": "1", "match_threshold": "0.7"},
        json_output=True,
        results_dir=tmp_path,
    )
    capsys.readouterr()
    assert result.params["n"] == 300
    assert result.params["match_threshold"] == 0.7


def test_same_second_runs_do_not_overwrite(tmp_path: Path) -> None:
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    a = _write_record(tmp_path, "dedup", stamp, {"a": 1})
    b = _write_record(tmp_path, "dedup", stamp, {"b": 2})
    assert a.name == "dedup-20260102T030405Z.json"
    assert b.name == "dedup-20260102T030405Z-2.json"
    assert json.loads(a.read_text()) == {"a": 1}


def test_registry_lists_dedup() -> None:
    assert "dedup" in BENCHMARKS

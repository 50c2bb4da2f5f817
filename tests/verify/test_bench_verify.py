"""`sanad bench verify` measures what it says: the success path of a typical card."""

from __future__ import annotations

import pytest

from sanad.bench import BenchmarkParamError
from sanad.bench.runner import BENCHMARKS
from sanad.bench.verify import run_verify


def test_verify_benchmark_reports_its_figures() -> None:
    assert BENCHMARKS["verify"] is run_verify
    result = run_verify(n=20, repeats=1, trusted_keys=3)
    figures = result.figures
    assert set(figures) >= {"verify_per_s", "raw_verify_per_s", "ratio_vs_raw"}
    assert figures["verify_per_s"] > 0 and figures["raw_verify_per_s"] > 0
    assert figures["ratio_vs_raw"] == pytest.approx(
        figures["verify_per_s"] / figures["raw_verify_per_s"], rel=0.01)
    assert figures["ratio_vs_raw"] > 0  # speed goals are judged by the benchmark, not tests
    assert figures["qr_version"] <= 25


def test_verify_benchmark_rejects_bad_params() -> None:
    with pytest.raises(BenchmarkParamError):
        run_verify(n=0)

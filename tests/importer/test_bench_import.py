"""`sanad bench import` at a tiny size: figures present, consistent with what was planted."""

from __future__ import annotations

import pytest

from sanad.bench import BenchmarkParamError
from sanad.bench.runner import BENCHMARKS


@pytest.mark.postgres
def test_bench_import_small() -> None:
    result = BENCHMARKS["import"](n=600, batch_rows=200, dup_rate=0.05, bad_rate=0.02, seed=3)
    f = result.figures
    assert f["rows"] == 600
    assert f["imported"] + f["rejected"] + f["duplicates"] == 600
    assert f["rejected"] == f["planted_invalid"]
    # Planted repeats are caught, except spelling variants that change a name's first letter
    # (Omar/Umar), which an exact skeleton key cannot see (documented limit).
    assert f["duplicates"] >= 0.5 * f["planted_duplicates"] > 0
    assert f["ratio_vs_copy"] > 0 and f["rows_per_s"] > 0
    assert 0.99 <= f["share_validate"] + f["share_dedup"] + f["share_database"] + \
        f["share_other"] <= 1.01


def test_bench_import_rejects_bad_params() -> None:
    with pytest.raises(BenchmarkParamError):
        BENCHMARKS["import"](n=0)

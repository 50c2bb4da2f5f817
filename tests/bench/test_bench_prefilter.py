"""`sanad bench prefilter` at a tiny size, through the CLI: the named figures exist and are sane
(never timings beyond "positive"), parameters are checked before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sanad.abis.finger_stage import PREFILTER_POSITIONS, FingerDescriptorSpace
from sanad.bench import prefilter
from sanad.bench.runner import BENCHMARKS, BenchmarkParamError, run_benchmark
from sanad.registry.finger_gallery import PREFILTER_SUBVECTORS

# A small run: a 2,048-people fitting sample (the registry fits on 4,096) + 200 outside-fit
# probes, measured at two sizes, exact search only at the first.
TINY = {"people": 2400, "probes": 200, "sizes": "2300,2400", "exact_up_to": 2300,
        "workers": 2, "chunk": 1000, "subvectors": 96, "shortlist": 512, "fit_sample": 2048}
SIZES = (2300, 2400)
RATES = ("top1", "top10", "top30", "inside_fit_top10")
EXACT = ("exact_top1", "exact_top10", "exact_top30", "top10_lost_vs_exact",
         "twostage_speedup_vs_exact", "single_probe_speedup_vs_exact")


def _cli(tmp_path: Path, params: dict[str, object]) -> subprocess.CompletedProcess[str]:
    args = [a for key, value in params.items() for a in ("-p", f"{key}={value}")]
    return subprocess.run(
        [sys.executable, "-m", "sanad", "bench", "prefilter", "--json", *args,
         "--results-dir", str(tmp_path)],
        env={**os.environ, "SANAD_HOME": str(tmp_path / "home")},
        capture_output=True, text=True, timeout=600,
    )


def test_a_tiny_run_through_the_cli(tmp_path: Path) -> None:
    """One run (the expensive part: fitting the space on 2,048 people), checked from several
    sides; one test so that parallel test workers do not each repeat it."""
    res = _cli(tmp_path, TINY)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("\n") == 1  # one JSON object
    record = json.loads(res.stdout)
    assert record["name"] == "prefilter" and "prefilter" in BENCHMARKS
    files = list(tmp_path.glob("prefilter-*.json"))
    assert [str(f) for f in files] == [record["results_file"]]
    assert json.loads(files[0].read_text())["figures"] == record["figures"]
    _check_hit_rates(record["figures"])
    _check_exact_only_where_asked(record["figures"])
    # The index settings are the parameters, and the notes say so.
    assert record["params"]["subvectors"] == 96 and record["params"]["shortlist"] == 512
    assert record["params"]["sizes"] == list(SIZES)
    assert record["params"]["fit_sample"] == 2048
    assert "fitted on the first 2,048 people" in record["notes"]["method"]
    assert "people 2,048 onwards" in record["notes"]["probes"]
    assert "shortlist=512, subvectors=96" in record["notes"]["method"]


def _check_hit_rates(f: dict[str, float]) -> None:
    assert all(isinstance(v, float) and np.isfinite(v) for v in f.values())
    for size in SIZES:
        for rate in RATES:
            assert 0 <= f[f"{rate}_at_{size}"] <= 1
        assert f[f"top1_at_{size}"] <= f[f"top10_at_{size}"] <= f[f"top30_at_{size}"]
        # Synthetic fingers, 2,400 people: the pre-filter keeps most mates.
        assert f[f"top10_at_{size}"] >= 0.85
        assert size - 100 <= f[f"entries_at_{size}"] <= size
        assert f[f"batch_ms_per_probe_at_{size}"] > 0 and f[f"single_probe_ms_at_{size}"] > 0
    # 2,400 x (48 B codes + 192 B int8 + 12 B) ~ 0.58 MB, plus growth slack.
    assert 0.5 < f["index_mb_at_2400"] < 2
    assert f["probes_counted"] >= 195
    assert f["people_per_s"] > 0 and f["cpu_ms_per_person"] > 0 and f["peak_rss_mb"] > 0


def _check_exact_only_where_asked(f: dict[str, float]) -> None:
    for name in EXACT:
        assert f"{name}_at_2300" in f
        assert f"{name}_at_2400" not in f
    assert f["exact_top1_at_2300"] <= f["exact_top10_at_2300"] <= f["exact_top30_at_2300"] <= 1
    # Index top 10 = exact top 10 - lost + gained.
    assert f["top10_at_2300"] >= f["exact_top10_at_2300"] - f["top10_lost_vs_exact_at_2300"]
    assert f["twostage_speedup_vs_exact_at_2300"] > 0


def test_zero_means_the_registry_settings() -> None:
    assert prefilter._index_options(0, 0) == {"shortlist": 256,
                                              "subvectors": PREFILTER_SUBVECTORS}
    assert prefilter._index_options(96, 1024) == {"shortlist": 1024, "subvectors": 96}


def test_streams_do_not_depend_on_chunks() -> None:
    """Each person has their own random stream: one chunk of 8 people or two of 4 give the same
    descriptors (so ``workers`` and ``chunk`` do not change a result)."""
    prefilter._init_worker(3)
    space = FingerDescriptorSpace.fit(prefilter._sample((0, 30)), PREFILTER_POSITIONS)
    ids, whole, _ = prefilter._project((space, prefilter.GALLERY, 10, 8))
    parts = [prefilter._project((space, prefilter.GALLERY, lo, 4)) for lo in (10, 14)]
    assert ids.tolist() == list(range(10, 18))
    np.testing.assert_array_equal(whole, np.concatenate([p[1] for p in parts]))
    probe_ids, probes, _ = prefilter._project((space, prefilter.PROBES, 10, 8))
    assert probe_ids.tolist() == ids.tolist()
    assert not np.array_equal(probes, whole)  # another capture of the same people


@pytest.mark.parametrize("params", [
    {"sizes": "2400,5000"},  # above people
    {"sizes": "2200"},  # cannot hold the fitting sample and the probes
    {"probes": 2049},  # more than the fitting sample (inside-fit probes)
    {"probes": 0},
    {"fit_sample": 511},  # fewer than the registry ever fits on
    {"fit_sample": 2300},  # the smallest size (2,300) cannot hold it and the probes
    {"sizes": "4400,many"},
    {"sizes": ","},
    {"subvectors": 50},  # not a divisor of 192
    {"shortlist": 8},
    {"workers": 0},
    {"chunk": 0},
    {"seed": -1},
    {"gallery": 10},
])
def test_bad_params(tmp_path: Path, params: dict[str, object]) -> None:
    with pytest.raises(BenchmarkParamError) as info:
        run_benchmark("prefilter", params={**TINY, **params}, json_output=True,
                      results_dir=tmp_path)
    assert info.value.code == "invalid_benchmark_param"
    assert "\n" not in info.value.message
    assert not list(tmp_path.iterdir())


def test_a_bad_param_is_a_one_line_cli_error(tmp_path: Path) -> None:
    res = _cli(tmp_path, {**TINY, "sizes": "2400,5000"})
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "sizes" in res.stderr
    assert not list(tmp_path.glob("prefilter-*.json"))

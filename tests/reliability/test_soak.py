"""A miniature soak (the recorded run is 10 minutes: `sanad bench soak`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sanad.bench.soak import rss_bytes, run_soak


def test_rss_of_this_process_is_readable() -> None:
    assert rss_bytes(os.getpid()) > 10 * 2**20


@pytest.mark.slow
def test_a_short_soak_serves_without_errors(tmp_path: Path) -> None:
    result = run_soak(minutes=0.1, probe_seconds=2.0, concurrency=1, people=8,
                      server_log=str(tmp_path / "server.log"))
    f = result.figures
    assert f["errors"] == 0, result.notes["first_errors"]
    assert f["max_rps"] > 0 and f["requests"] > 0
    assert 0 < f["achieved_vs_max_ratio"] <= 1.0
    assert f["rss_min_mb"] <= f["rss_reference_mb"] <= f["rss_max_mb"]

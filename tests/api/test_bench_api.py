"""`sanad bench api`: the wrk report parser (fast) and a short end-to-end run (slow)."""

from __future__ import annotations

import shutil

import pytest

from sanad.bench.api import parse_wrk, run_api, server_cpu_seconds

WRK_REPORT = """Running 1s test @ http://127.0.0.1:8765/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    14.11ms   16.33ms 100.21ms   84.67%
    Req/Sec   200.36    109.86   365.00     63.64%
  Latency Distribution
     50%  636.00us
     75%   21.17ms
     90%   36.17ms
     99%    1.08s
  222 requests in 1.12s, 1.21MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:    198.88
Transfer/sec:      1.08MB
"""


def test_wrk_report_is_parsed_with_units_and_errors() -> None:
    figures = parse_wrk(WRK_REPORT)
    assert figures == {"rps": 198.88, "p50_ms": 0.636, "p99_ms": 1080.0, "errors": 7.0,
                       "requests": 222.0}


def test_server_cpu_time_is_read_from_proc() -> None:
    import os

    before = server_cpu_seconds(os.getpid())
    sum(i * i for i in range(3_000_000))  # some CPU work in this process
    assert server_cpu_seconds(os.getpid()) > before > 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed")
def test_short_api_benchmark_run() -> None:
    result = run_api(seconds=1, connections=4, enrolments=10, enrol_concurrency=2, workers=1)
    assert result.figures["verify_errors"] == 0 and result.figures["enrol_errors"] == 0
    assert result.figures["verify_rps"] > 0 and result.figures["verify_vs_healthz"] > 0
    assert result.figures["verify_cpu_ms"] > 0 and result.figures["load_avg_before"] >= 0

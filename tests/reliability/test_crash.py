"""A few SIGKILL trials per database (the benchmark runs ≥ 50: `sanad bench crash`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sanad.bench.crash import check_registry, run_trials


@pytest.mark.slow
def test_sigkill_during_bulk_enrolment_loses_nothing(settings, tmp_path: Path) -> None:
    stats = run_trials(settings, trials=3, seed=11, min_delay=0.5, max_delay=2.0,
                       work=tmp_path, backend="test")
    assert stats.trials == 3
    assert stats.problems == []
    assert stats.acked > 0  # the driver did acknowledge work before being killed
    assert stats.households >= stats.acked


def test_the_checker_notices_a_lost_acknowledgement(registry, tmp_path: Path) -> None:
    # The harness is only evidence if it can fail: an ack for a household that is not there.
    registry.close()
    problems, _ = check_registry(
        registry.settings,
        [{"household_id": "00000000-0000-4000-8000-000000000000", "members": 1,
          "person_ids": []}],
    )
    assert any("lost" in p for p in problems)

"""Synthetic fingers: reproducible masters, plausible distorted captures."""

from __future__ import annotations

import numpy as np
import pytest

from sanad.biometrics.finger.synthetic import (
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    CaptureSettings,
    SyntheticFingers,
)


def test_master_is_fixed_by_seed_identity_and_finger() -> None:
    gen = SyntheticFingers(3)
    a, _ = gen.master(10, 2)
    SyntheticFingers(3).master(11, 2)  # generation order does not matter
    b, _ = SyntheticFingers(3).master(10, 2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, gen.master(10, 3)[0])
    assert not np.array_equal(a, SyntheticFingers(4).master(10, 2)[0])
    assert 30 <= len(a) <= 80


def test_capture_is_a_plausible_impression() -> None:
    gen = SyntheticFingers(0)
    rng = np.random.default_rng(0)
    master, _ = gen.master(1, 1)
    counts = []
    for _ in range(20):
        cap = gen.capture(1, 1, rng)
        counts.append(len(cap))
        assert cap.shape[1] == 5
        assert np.all((cap[:, 0] >= 0) & (cap[:, 0] < IMAGE_WIDTH))
        assert np.all((cap[:, 1] >= 0) & (cap[:, 1] < IMAGE_HEIGHT))
        assert np.all((cap[:, 2] >= 0) & (cap[:, 2] < 2 * np.pi))
        assert set(np.unique(cap[:, 3])) <= {1.0, 2.0}
        assert np.all((cap[:, 4] >= 1) & (cap[:, 4] <= 100))
    # Captures lose minutiae and gain spurious ones: counts vary, and stay below the master's.
    assert len(set(counts)) > 5
    assert np.mean(counts) < len(master)


def test_partial_prints_hold_fewer_minutiae() -> None:
    full = SyntheticFingers(0, CaptureSettings(partial_rate=0.0))
    partial = SyntheticFingers(0, CaptureSettings(partial_rate=1.0))
    rng = np.random.default_rng(1)
    n_full = np.mean([len(full.capture(i, 2, rng)) for i in range(15)])
    n_part = np.mean([len(partial.capture(i, 2, rng)) for i in range(15)])
    assert n_part < 0.75 * n_full


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        SyntheticFingers(-1)
    with pytest.raises(ValueError):
        SyntheticFingers(0).master(0, 11)

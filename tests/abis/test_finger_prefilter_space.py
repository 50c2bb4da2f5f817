"""The registry's finger descriptor space: positions, whitened projection, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from sanad.abis.finger_stage import (
    DESCRIPTOR_DIM_PER_FINGER,
    PREFILTER_DIM,
    PREFILTER_POSITIONS,
    FingerDescriptorSpace,
    bootstrap_space,
)
from sanad.abis.index import make_index
from sanad.biometrics.finger.synthetic import SyntheticFingers

GEN = SyntheticFingers(11)


def _people(ids: range, rng: np.random.Generator) -> list[dict]:  # type: ignore[type-arg]
    return [{p: GEN.capture(i, int(p), rng) for p in PREFILTER_POSITIONS} for i in ids]


def test_projected_space_is_deterministic_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    people = _people(range(80), rng)
    a = FingerDescriptorSpace.fit(people, PREFILTER_POSITIONS, dim=32)
    b = FingerDescriptorSpace.fit(people, PREFILTER_POSITIONS, dim=32)
    assert a.dim == 32 and a.raw_dim == 4 * DESCRIPTOR_DIM_PER_FINGER and a.fitted_on == 80
    assert a.projection is not None and b.projection is not None
    assert np.array_equal(a.projection, b.projection) and np.array_equal(a.centre, b.centre)
    probe = {p: GEN.capture(3, int(p), rng) for p in PREFILTER_POSITIONS}
    d = a.person_descriptor(probe)
    assert d is not None and d.shape == (32,)
    assert float(np.linalg.norm(d)) == pytest.approx(1.0, abs=1e-5)
    again = FingerDescriptorSpace.from_arrays(a.to_arrays())
    assert np.array_equal(again.person_descriptor(probe), d)  # type: ignore[arg-type]
    assert (again.origin, again.fitted_on, again.positions) == ("gallery", 80, a.positions)
    broken = {**a.to_arrays(), "centre": a.centre[:-1]}
    with pytest.raises(ValueError, match="shape"):
        FingerDescriptorSpace.from_arrays(broken)


def test_projected_prefilter_ranks_the_mate_near_the_top() -> None:
    rng = np.random.default_rng(1)
    people = _people(range(150), rng)
    space = FingerDescriptorSpace.fit(people, PREFILTER_POSITIONS, dim=64)
    index = make_index("exact", 64)
    index.add(np.arange(150, dtype=np.int64),
              np.stack([space.person_descriptor(p) for p in people]))  # type: ignore[misc]
    probes = np.stack([space.person_descriptor(p)  # type: ignore[misc]
                       for p in _people(range(40), rng)])
    _, ids = index.search(probes, 10)
    hits = int(sum(i in row for i, row in enumerate(ids.tolist())))
    assert hits >= 34  # of 40 (measured 0.97 at 3,000 people with 192 dims)


def test_a_tiny_gallery_still_gets_a_full_space_and_missing_fingers_are_fine() -> None:
    rng = np.random.default_rng(2)
    people = _people(range(5), rng)
    space = FingerDescriptorSpace.fit(people, PREFILTER_POSITIONS, dim=16)
    assert space.projection is not None and np.isfinite(space.projection).all()
    one = space.person_descriptor({PREFILTER_POSITIONS[1]: GEN.capture(1, 2, rng)})
    assert one is not None and one.shape == (16,)
    assert space.person_descriptor({}) is None


def test_bootstrap_space_needs_no_data_and_is_the_same_every_time() -> None:
    space = bootstrap_space()
    assert space.dim == PREFILTER_DIM and space.positions == PREFILTER_POSITIONS
    assert space.origin == "synthetic" and space.fitted_on == 512
    bootstrap_space.cache_clear()
    again = bootstrap_space()
    assert again is not space
    assert np.array_equal(again.projection, space.projection)  # type: ignore[arg-type]

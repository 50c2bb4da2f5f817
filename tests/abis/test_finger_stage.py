"""Fingerprint pre-filter descriptors and the second stage over candidates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sanad.abis.finger_stage import (
    DESCRIPTOR_DIM_PER_FINGER,
    FingerDescriptorSpace,
    finger_descriptor,
    merge_candidates,
    second_stage,
)
from sanad.biometrics.finger import FingerPosition, prepare
from sanad.biometrics.finger.synthetic import CaptureSettings, SyntheticFingers

RI, LI = FingerPosition.RIGHT_INDEX, FingerPosition.LEFT_INDEX
GEN = SyntheticFingers(9)


def test_descriptor_is_invariant_to_rotation_and_translation() -> None:
    master, _ = GEN.master(1, 2)
    r = math.radians(33)
    c, s = math.cos(r), math.sin(r)
    moved = master.astype(np.float64).copy()
    moved[:, 0] = c * master[:, 0] + s * master[:, 1] + 40
    moved[:, 1] = -s * master[:, 0] + c * master[:, 1] - 25
    moved[:, 2] = np.mod(master[:, 2] + r, 2 * math.pi)
    a, b = finger_descriptor(master), finger_descriptor(moved)
    assert a.shape == (DESCRIPTOR_DIM_PER_FINGER,)
    assert float(np.linalg.norm(a)) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ b) > 0.999
    other = finger_descriptor(GEN.master(2, 2)[0])
    assert float(a @ other) < float(a @ b)


def test_too_few_minutiae_give_no_descriptor() -> None:
    assert not finger_descriptor(np.zeros((1, 3))).any()
    space = FingerDescriptorSpace(
        (RI, LI), np.zeros(2 * DESCRIPTOR_DIM_PER_FINGER, np.float32)
    )
    assert space.person_descriptor({}) is None
    assert space.person_descriptor({RI: np.zeros((1, 5), np.float32)}) is None


def test_prefilter_ranks_the_mate_near_the_top() -> None:
    rng = np.random.default_rng(0)
    people = [{p: GEN.capture(i, int(p), rng) for p in (RI, LI)} for i in range(60)]
    space = FingerDescriptorSpace.fit(people, (RI, LI))
    assert space.dim == 2 * DESCRIPTOR_DIM_PER_FINGER
    gallery = np.stack([space.person_descriptor(p) for p in people])  # type: ignore[misc]
    hits = 0
    for i in range(20):
        probe = space.person_descriptor({p: GEN.capture(i, int(p), rng) for p in (RI, LI)})
        assert probe is not None
        scores = gallery @ probe
        hits += int(i in np.argsort(-scores)[:5])
    assert hits >= 15  # a coarse filter: the mate is in the top 5 of 60 most of the time


def test_a_person_with_one_finger_still_has_a_descriptor() -> None:
    rng = np.random.default_rng(1)
    people = [{RI: GEN.capture(i, 2, rng), LI: GEN.capture(i, 7, rng)} for i in range(10)]
    space = FingerDescriptorSpace.fit(people, (RI, LI))
    one = space.person_descriptor({LI: GEN.capture(3, 7, rng)})
    assert one is not None
    assert float(np.linalg.norm(one)) == pytest.approx(1.0, abs=1e-5)
    assert not one[:DESCRIPTOR_DIM_PER_FINGER].any()  # right index absent: zeros


def test_merge_candidates_unions_and_drops_padding() -> None:
    merged = merge_candidates([5, 3, -1], [3, 9])
    assert merged == [
        (5, frozenset({"face"})),
        (3, frozenset({"face", "finger"})),
        (9, frozenset({"finger"})),
    ]


def test_second_stage_scores_candidates_and_reports_missing_fingers() -> None:
    rng = np.random.default_rng(2)

    good = SyntheticFingers(9, CaptureSettings(partial_rate=0.0))  # no partial prints here

    def person(i: int, positions: tuple[FingerPosition, ...]) -> dict[FingerPosition, object]:
        return {p: prepare(good.capture(i, int(p), rng, quality=0.95)) for p in positions}

    gallery = {
        10: person(10, (RI, LI)),
        11: person(11, (RI, LI)),
        12: person(12, (LI,)),  # right index amputated
        13: {},  # all fingers missing
    }
    probe = person(10, (RI, LI))
    results = second_stage(
        merge_candidates([11, 10, 12, 13], [14]),
        probe,  # type: ignore[arg-type]
        lambda gid: gallery.get(gid),  # type: ignore[arg-type,return-value]
    )
    by_id = {r.gallery_id: r for r in results}
    assert [r.gallery_id for r in results] == [11, 10, 12, 13, 14]
    assert set(by_id[10].comparison.scores) == {RI, LI}
    mate, other = by_id[10].comparison.scores, by_id[11].comparison.scores
    assert min(mate.values()) > max(other.values())
    assert set(by_id[12].comparison.scores) == {LI}
    assert by_id[13].comparison.compared == 0
    assert by_id[14].comparison.compared == 0  # lookup returned None
    assert by_id[14].sources == frozenset({"finger"})


def test_probe_without_fingers_compares_nothing() -> None:
    rng = np.random.default_rng(3)
    gallery = {1: {RI: prepare(GEN.capture(1, 2, rng))}}
    results = second_stage([1], {}, gallery.get)
    assert results[0].comparison.compared == 0

"""Score fusion: bounded per-modality evidence, summed over the modalities present."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sanad.abis.fusion import (
    DEFAULT_CALIBRATION,
    FusionCalibration,
    ScoreCalibration,
    fuse,
    fuse_candidates,
)
from sanad.biometrics.finger import FingerComparison, FingerPosition

CAL = FusionCalibration(
    face=ScoreCalibration(slope=50.0, centre=0.4, bound=10.0),
    finger=ScoreCalibration(slope=20.0, centre=0.2, bound=6.0),
)


def test_llr_is_linear_then_bounded() -> None:
    c = CAL.face
    assert c.llr(0.4) == 0.0
    assert c.llr(0.5) == pytest.approx(5.0)
    assert c.llr(0.9) == 10.0
    assert c.llr(-0.5) == -10.0
    assert c.llr_array([0.3, 0.6]).tolist() == pytest.approx([-5.0, 10.0])


def test_fit_places_the_centre_between_the_classes() -> None:
    rng = np.random.default_rng(0)
    genuine = rng.normal(0.8, 0.05, 500)
    impostor = rng.normal(0.0, 0.05, 500)
    fitted = ScoreCalibration.fit(genuine, impostor, bound=12.0)
    assert fitted.centre == pytest.approx(0.4, abs=0.01)
    assert fitted.slope == pytest.approx(0.8 / 0.0025, rel=0.1)
    with pytest.raises(ValueError):
        ScoreCalibration.fit(impostor, genuine, bound=12.0)
    with pytest.raises(ValueError):
        ScoreCalibration.fit([0.5], [0.1, 0.2], bound=1.0)
    with pytest.raises(ValueError):
        ScoreCalibration(slope=-1.0, centre=0.0, bound=1.0)


def test_fused_evidence_adds_face_and_each_finger() -> None:
    fused = fuse(0.5, {FingerPosition.RIGHT_INDEX: 0.3, FingerPosition.LEFT_INDEX: 0.1}, CAL)
    assert fused.face_llr == pytest.approx(5.0)
    assert fused.finger_llr == pytest.approx(2.0 - 2.0)
    assert fused.llr == pytest.approx(5.0)
    assert fused.fingers_compared == 2
    assert fused.modalities == ("face", "finger")
    assert fused.score == pytest.approx(1 / (1 + math.exp(-5.0)))


def test_missing_modalities_contribute_nothing() -> None:
    face_only = fuse(0.5, None, CAL)
    assert face_only.modalities == ("face",)
    assert face_only.llr == pytest.approx(5.0)
    assert fuse(0.5, FingerComparison(), CAL).finger_llr is None  # no shared finger
    finger_only = fuse(None, [0.5], CAL)
    assert finger_only.modalities == ("finger",)
    assert finger_only.llr == pytest.approx(6.0)
    nothing = fuse(None, [], CAL)
    assert nothing.modalities == ()
    assert nothing.llr == 0.0
    assert nothing.score == 0.5


def test_fingers_can_veto_a_lookalike_face() -> None:
    # A sibling's face at the face centre + a bit, but two clearly different fingers.
    fused = fuse(0.45, [0.02, 0.03], CAL)
    assert fused.face_llr is not None and fused.face_llr > 0
    assert fused.llr < 0


def test_bounds_stop_one_freak_score_deciding_alone() -> None:
    one_freak_finger = fuse(0.0, [1.0], CAL)
    assert one_freak_finger.llr == pytest.approx(-10.0 + 6.0)


def test_non_finite_scores_are_rejected() -> None:
    with pytest.raises(ValueError):
        fuse(float("nan"), None, CAL)
    with pytest.raises(ValueError):
        fuse(0.3, [float("inf")], CAL)


def test_score_is_monotone_and_stable_at_extremes() -> None:
    assert fuse(1.0, [1.0] * 10, DEFAULT_CALIBRATION).score == pytest.approx(1.0)
    assert fuse(-1.0, [0.0] * 10, DEFAULT_CALIBRATION).score == pytest.approx(0.0, abs=1e-9)
    values = [fuse(s, [s], DEFAULT_CALIBRATION).llr for s in np.linspace(0, 1, 21)]
    assert values == sorted(values)


def test_fuse_candidates_ranks_the_union_best_first() -> None:
    from sanad.abis.finger_stage import StageResult

    ri = FingerPosition.RIGHT_INDEX
    stage = [
        StageResult(1, FingerComparison({ri: 0.05}), frozenset({"face"})),
        StageResult(2, FingerComparison({ri: 0.6}), frozenset({"face", "finger"})),
        StageResult(3, FingerComparison({ri: 0.5}), frozenset({"finger"})),
        StageResult(4, FingerComparison(), frozenset({"face"})),  # no shared finger
    ]
    ranked = fuse_candidates({1: 0.45, 2: 0.44, 4: 0.1}, stage, CAL)
    assert [gid for gid, _ in ranked] == [2, 3, 1, 4]
    by_id = dict(ranked)
    assert by_id[3].modalities == ("finger",)
    assert by_id[4].modalities == ("face",)
    assert by_id[2].llr == pytest.approx(2.0 + 6.0)

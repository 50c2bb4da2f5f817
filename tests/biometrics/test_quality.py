"""Quality rules without a detector: pose from landmarks, rule order, the summary score."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sanad.biometrics.quality import (
    FaceMeasures,
    QualityPolicy,
    Reason,
    assess,
    pose,
    quality_score,
)

FRONTAL = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], dtype=np.float32)
GOOD = FaceMeasures(
    faces=1, detection_score=0.95, face_px=150, sharpness=500, brightness=130,
    yaw=0.0, pitch=0.5, roll_deg=0.0,
)


def test_frontal_landmarks() -> None:
    yaw, pitch, roll = pose(FRONTAL)
    assert yaw == pytest.approx(0.0) and roll == pytest.approx(0.0)
    assert pitch == pytest.approx(0.5)


def test_turned_head_moves_the_nose_sideways() -> None:
    turned = FRONTAL.copy()
    turned[2, 0] += 20  # nose half an eye-distance to the side
    assert pose(turned)[0] == pytest.approx(0.5)


def test_roll_does_not_leak_into_yaw() -> None:
    angle = np.radians(25)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (FRONTAL - 60) @ rot.T + 60
    yaw, pitch, roll = pose(rolled)
    assert roll == pytest.approx(25, abs=1e-3)
    assert yaw == pytest.approx(0.0, abs=1e-6) and pitch == pytest.approx(0.5, abs=1e-6)


def test_degenerate_landmarks_are_a_strong_pose() -> None:
    same = np.tile([[50.0, 50.0]], (5, 1))
    m = dataclasses.replace(GOOD, yaw=pose(same)[0])
    assert assess(m, QualityPolicy()) == (Reason.STRONG_POSE,)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"faces": 2}, Reason.MULTIPLE_FACES),
        ({"face_px": 30.0}, Reason.FACE_TOO_SMALL),
        ({"sharpness": 5.0}, Reason.BLURRED),
        ({"brightness": 20.0}, Reason.TOO_DARK),
        ({"brightness": 240.0}, Reason.TOO_BRIGHT),
        ({"yaw": -0.6}, Reason.STRONG_POSE),
        ({"pitch": 0.1}, Reason.STRONG_POSE),
        ({"roll_deg": 70.0}, Reason.STRONG_POSE),
    ],
)
def test_each_rule(change: dict[str, float], reason: Reason) -> None:
    m = dataclasses.replace(GOOD, **change)  # type: ignore[arg-type]
    assert assess(m, QualityPolicy()) == (reason,)
    assert quality_score(m, QualityPolicy()) == 0.0


def test_no_face_is_the_only_reason_when_nothing_was_found() -> None:
    assert assess(dataclasses.replace(GOOD, faces=0), QualityPolicy()) == (Reason.NO_FACE,)


def test_several_reasons_are_all_reported_in_order() -> None:
    m = dataclasses.replace(GOOD, faces=3, sharpness=1.0, brightness=10.0)
    assert assess(m, QualityPolicy()) == (
        Reason.MULTIPLE_FACES, Reason.BLURRED, Reason.TOO_DARK,
    )


def test_quality_score_falls_towards_the_limits() -> None:
    policy = QualityPolicy()
    assert quality_score(GOOD, policy) > 0.5
    near = dataclasses.replace(GOOD, face_px=policy.min_face_px * 1.05)
    assert 0 < quality_score(near, policy) < 0.1

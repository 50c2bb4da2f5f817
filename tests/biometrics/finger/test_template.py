"""The minutiae model: validation and array conversion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sanad.biometrics.finger import (
    TEN_FINGERS,
    FingerMinutiaeRecord,
    FingerPosition,
    FingerTemplateError,
    FingerView,
    Minutia,
)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"x": -1, "y": 0, "angle": 0},
        {"x": 1 << 14, "y": 0, "angle": 0},
        {"x": 0, "y": 0, "angle": 256},
        {"x": 0, "y": 0, "angle": 0, "quality": 101},
        {"x": 0, "y": 0, "angle": 0, "type": 3},
        {"x": 1.5, "y": 0, "angle": 0},
    ],
)
def test_minutia_rejects_out_of_range(kwargs: dict[str, object]) -> None:
    with pytest.raises(FingerTemplateError):
        Minutia(**kwargs)  # type: ignore[arg-type]


def test_angle_units() -> None:
    assert Minutia(0, 0, 64).radians == pytest.approx(math.pi / 2)
    assert Minutia.angle_units(2 * math.pi - 1e-9) == 0
    assert Minutia.angle_units(math.pi) == 128


def test_finger_codes() -> None:
    assert [int(p) for p in TEN_FINGERS] == list(range(1, 11))
    assert int(FingerPosition.LEFT_INDEX) == 7
    with pytest.raises(FingerTemplateError):
        FingerView(position=11, minutiae=())  # type: ignore[arg-type]


def test_view_array_round_trip() -> None:
    arr = np.array([[10.2, 20.7, 1.0, 2, 55], [300, 5, 6.2, 1, 90]], dtype=np.float32)
    view = FingerView.from_array(FingerPosition.RIGHT_INDEX, arr, quality=60)
    back = view.as_array()
    assert back.shape == (2, 5)
    assert np.allclose(back[:, :2], np.rint(arr[:, :2]))
    assert np.allclose(back[:, 2], arr[:, 2], atol=2 * math.pi / 256)
    assert back[:, 3].tolist() == [2.0, 1.0]
    assert view.quality == 60


def test_view_limits() -> None:
    with pytest.raises(FingerTemplateError):
        FingerView(FingerPosition.RIGHT_INDEX, tuple(Minutia(1, 1, 1) for _ in range(256)))
    with pytest.raises(FingerTemplateError):
        FingerView.from_array(FingerPosition.RIGHT_INDEX, np.zeros((3, 2)))
    with pytest.raises(FingerTemplateError):
        FingerView.from_array(FingerPosition.RIGHT_INDEX, [[np.nan, 1, 1]])


def test_record_lookup_and_validation() -> None:
    view = FingerView(FingerPosition.LEFT_RING, (Minutia(5, 5, 0),))
    record = FingerMinutiaeRecord(views=(view,), image_width=10, image_height=10)
    assert record.view(FingerPosition.LEFT_RING) == view
    assert record.view(FingerPosition.RIGHT_RING) is None
    with pytest.raises(FingerTemplateError):
        FingerMinutiaeRecord(views=(), image_width=10, image_height=10)
    with pytest.raises(FingerTemplateError):
        FingerMinutiaeRecord(views=(view,), image_width=5, image_height=10)

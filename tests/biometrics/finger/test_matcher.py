"""The minutiae matcher: invariances, genuine vs impostor separation, missing fingers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sanad.biometrics.finger import (
    FingerPosition,
    FingerTemplateError,
    compare_fingers,
    encode_record,
    match,
    match_many,
    prepare,
    prepare_fingers,
)
from sanad.biometrics.finger.synthetic import SyntheticFingers

GEN = SyntheticFingers(5)


def _rigid(arr: np.ndarray, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    out = arr.copy()
    r = math.radians(degrees)
    c, s = math.cos(r), math.sin(r)
    x, y = arr[:, 0] - 160, arr[:, 1] - 200
    out[:, 0] = 160 + c * x + s * y + shift[0]
    out[:, 1] = 200 - s * x + c * y + shift[1]
    out[:, 2] = np.mod(arr[:, 2] + r, 2 * math.pi)
    return out


def test_identical_and_rigidly_moved_prints_score_one() -> None:
    master, _ = GEN.master(1, 2)
    assert match(master, master) == pytest.approx(1.0)
    moved = _rigid(master, 25.0, (30.0, -20.0))
    assert match(master, moved) == pytest.approx(1.0, abs=1e-6)
    # Minutiae listed in another order: same print.
    assert match(master, moved[::-1]) == pytest.approx(1.0, abs=1e-6)


def test_genuine_captures_outscore_impostors() -> None:
    rng = np.random.default_rng(0)
    gallery = [prepare(GEN.capture(i, 2, rng)) for i in range(30)]
    genuine: list[float] = []
    impostor: list[float] = []
    for i in range(10):
        scores = match_many(prepare(GEN.capture(i, 2, rng)), gallery)
        assert np.all((scores >= 0) & (scores <= 1))
        genuine.append(scores[i])
        impostor.extend(np.delete(scores, i))
    assert np.median(genuine) > 0.25
    assert np.max(impostor) < 0.3
    assert np.median(genuine) > 3 * np.median(impostor)


def test_partial_print_still_matches_its_full_mate() -> None:
    master, _ = GEN.master(2, 7)
    full = _rigid(master, 10.0, (5.0, 5.0))
    centre = master[:, :2].mean(axis=0)
    part = master[np.linalg.norm(master[:, :2] - centre - [0, 60], axis=1) < 110]
    assert 10 < len(part) < len(master)
    assert match(part, full) > 0.5  # the unmatched band around the part costs a little
    rng = np.random.default_rng(1)
    other = GEN.capture(3, 7, rng)
    assert match(part, other) < 0.3


def test_match_many_agrees_with_match_and_keeps_order() -> None:
    rng = np.random.default_rng(2)
    probe = prepare(GEN.capture(4, 2, rng))
    gallery = [prepare(GEN.capture(i, 2, rng)) for i in (9, 4, 8)]
    many = match_many(probe, gallery)
    assert many.tolist() == pytest.approx([match(probe, g) for g in gallery], abs=1e-6)
    assert int(np.argmax(many)) == 1


def test_empty_prints_score_zero() -> None:
    rng = np.random.default_rng(3)
    real = prepare(GEN.capture(1, 2, rng))
    empty = prepare(np.empty((0, 5), np.float32))
    assert len(empty) == 0
    assert match(empty, real) == 0.0
    assert match_many(real, [empty, real]).tolist()[0] == 0.0


def test_bad_minutiae_arrays_are_template_errors() -> None:
    with pytest.raises(FingerTemplateError):
        prepare(np.zeros((4, 2)))
    with pytest.raises(FingerTemplateError):
        prepare([[1.0, 2.0, np.inf]])


def test_compare_fingers_uses_only_shared_positions() -> None:
    rng = np.random.default_rng(4)
    ri, li, rt = FingerPosition.RIGHT_INDEX, FingerPosition.LEFT_INDEX, FingerPosition.RIGHT_THUMB
    probe = {ri: prepare(GEN.capture(6, ri, rng)), li: prepare(GEN.capture(6, li, rng))}
    gallery = {li: prepare(GEN.capture(6, li, rng)), rt: prepare(GEN.capture(6, rt, rng))}
    result = compare_fingers(probe, gallery)
    assert set(result.scores) == {li}
    assert result.compared == 1
    assert result.scores[li] > 0.2


def test_all_fingers_missing_is_no_evidence_not_an_error() -> None:
    rng = np.random.default_rng(5)
    probe = {FingerPosition.RIGHT_INDEX: prepare(GEN.capture(6, 2, rng))}
    assert compare_fingers(probe, {}).compared == 0
    assert compare_fingers({}, probe).scores == {}


def test_prepare_fingers_from_stored_bytes() -> None:
    rng = np.random.default_rng(6)
    record = GEN.capture_record(8, (FingerPosition.RIGHT_INDEX, FingerPosition.LEFT_INDEX), rng)
    per_finger = [encode_record(type(record)(views=(v,), image_width=320, image_height=400))
                  for v in record.views]
    prepared = prepare_fingers(per_finger)
    assert set(prepared) == {FingerPosition.RIGHT_INDEX, FingerPosition.LEFT_INDEX}
    again = prepare_fingers([record])
    assert compare_fingers(prepared, again).scores[FingerPosition.LEFT_INDEX] == pytest.approx(1.0)
    with pytest.raises(FingerTemplateError):
        prepare_fingers([b"junk"])

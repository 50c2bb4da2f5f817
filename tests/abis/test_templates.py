"""Template byte formats: float32 storage and the int8 card template."""

from __future__ import annotations

import numpy as np
import pytest

from sanad.abis.templates import (
    TemplateError,
    decode_template,
    dequantise_int8,
    encode_template,
    quantise_int8,
)
from sanad.biometrics.synthetic import FACE_DIM, SyntheticPopulation
from sanad.errors import SanadError


@pytest.fixture
def templates() -> np.ndarray:
    return SyntheticPopulation(seed=0).captures(range(200), np.random.default_rng(0))


def test_float32_round_trip_is_exact(templates: np.ndarray) -> None:
    blob = encode_template(templates[0])
    assert len(blob) == 4 * FACE_DIM
    decoded = decode_template(blob, FACE_DIM)
    assert decoded.dtype == np.float32
    assert np.array_equal(decoded, templates[0])
    decoded[0] = 0.0  # the result is writable, not a view of the bytes


def test_float32_encoding_is_little_endian() -> None:
    assert encode_template(np.array([1.0], dtype=np.float32)) == b"\x00\x00\x80\x3f"
    assert encode_template(np.array([1.0], dtype=">f4")) == b"\x00\x00\x80\x3f"


@pytest.mark.parametrize("length", [0, 4 * FACE_DIM - 1, 4 * FACE_DIM + 4, 4 * 64])
def test_decode_rejects_wrong_length(length: int) -> None:
    with pytest.raises(TemplateError) as info:
        decode_template(b"\x00" * length, FACE_DIM)
    assert info.value.code == "invalid_template"
    assert isinstance(info.value, SanadError)


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 4), dtype=np.float32), np.array([], dtype=np.float32), [1.0, np.nan]]
)
def test_encode_rejects_malformed_vectors(bad: object) -> None:
    with pytest.raises(TemplateError):
        encode_template(bad)  # type: ignore[arg-type]


def test_decode_rejects_non_finite_values() -> None:
    with pytest.raises(TemplateError):
        decode_template(np.array([np.inf, 0.0], dtype="<f4").tobytes(), 2)


def test_int8_template_is_one_byte_per_dimension(templates: np.ndarray) -> None:
    assert len(quantise_int8(templates[0])) == FACE_DIM


def test_int8_round_trip_preserves_scores(templates: np.ndarray) -> None:
    restored = np.stack([dequantise_int8(quantise_int8(t), FACE_DIM) for t in templates])
    assert restored.dtype == np.float32
    assert np.allclose(np.linalg.norm(restored, axis=1), 1.0, atol=1e-6)
    assert np.min(np.sum(restored * templates, axis=1)) > 0.999
    # Cross scores (what matching uses) move by far less than the review/match gap.
    drift = np.abs(restored[:100] @ templates[100:].T - templates[:100] @ templates[100:].T)
    assert drift.max() < 0.02


def test_int8_uses_scale_127() -> None:
    basis = np.zeros(FACE_DIM, dtype=np.float32)
    basis[3] = 1.0
    q = np.frombuffer(quantise_int8(basis), dtype=np.int8)
    assert q[3] == 127 and np.count_nonzero(q) == 1
    assert np.frombuffer(quantise_int8(-basis), dtype=np.int8)[3] == -127


def test_int8_normalises_its_input(templates: np.ndarray) -> None:
    assert quantise_int8(templates[0] * 3.0) == quantise_int8(templates[0])


def test_int8_rejects_zero_and_wrong_length() -> None:
    with pytest.raises(TemplateError):
        quantise_int8(np.zeros(FACE_DIM, dtype=np.float32))
    with pytest.raises(TemplateError):
        dequantise_int8(b"\x00" * FACE_DIM)
    with pytest.raises(TemplateError):
        dequantise_int8(b"\x01" * (FACE_DIM - 1), FACE_DIM)
    with pytest.raises(TemplateError):
        dequantise_int8(b"")

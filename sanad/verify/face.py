"""The 1:1 face check at a checkpoint: the holder's live photo against the card's template.

The card carries the face template quantised to int8 (one signed byte per dimension, see
`sanad.abis.templates.quantise_int8`). A checkpoint turns the photo it takes into a template
with a `FaceEncoder` — the same model that made the enrolment template — and compares the two
by cosine similarity against a threshold from configuration.

The encoder is a small protocol so the verifier stays independent of the face model: the
real one comes from `sanad.biometrics.face` when that module is installed (`load_encoder`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from sanad.errors import SanadError

__all__ = [
    "DEFAULT_FACE_THRESHOLD",
    "FaceEncoder",
    "FaceProbe",
    "FaceUnavailable",
    "face_matches",
    "load_encoder",
    "probe_from_image",
]

DEFAULT_FACE_THRESHOLD = 0.50
"""Cosine score a 1:1 check must reach; `SANAD_VERIFY_FACE_THRESHOLD` overrides. With the
SFace model, photos of one person scored 0.72–0.80 and of different people 0.10–0.28 on the
test photos (tests/data/faces); 0.50 sits in the gap, on the side of refusing impostors."""


class FaceUnavailable(SanadError):
    """No face model is installed, or no face could be found in the photo."""

    code = "face_unavailable"
    status = 422


@runtime_checkable
class FaceEncoder(Protocol):
    """Turns a photo (encoded image bytes: JPEG/PNG) into a face template vector.

    Contract: returns a 1-d float vector of the enrolment model's dimension (any norm), or
    raises a `SanadError` when no usable face is found.
    """

    def extract(self, image: bytes) -> Any:  # pragma: no cover - protocol
        ...


@dataclass(frozen=True)
class FaceProbe:
    """A live face template (unit vector) and the cosine threshold it must reach."""

    vector: npt.NDArray[np.float64]
    threshold: float = DEFAULT_FACE_THRESHOLD

    @classmethod
    def from_vector(cls, vector: Any, *, threshold: float = DEFAULT_FACE_THRESHOLD) -> FaceProbe:
        """Normalise `vector`; `FaceUnavailable` if it is empty, non-finite or zero."""
        arr = np.asarray(vector, dtype=np.float64).ravel()
        norm = float(np.linalg.norm(arr)) if arr.size else 0.0
        if arr.size == 0 or not np.all(np.isfinite(arr)) or norm == 0.0:
            raise FaceUnavailable("the face template of the photo is empty or invalid")
        return cls(vector=arr / norm, threshold=threshold)


def face_matches(template_int8: bytes, probe: FaceProbe) -> tuple[bool, float]:
    """(matched, cosine score) of the card's int8 template against the probe.

    A template of another dimension than the probe's scores 0.0 (different model: no match).
    """
    card = np.frombuffer(template_int8, dtype=np.int8).astype(np.float64)
    norm = float(np.linalg.norm(card))
    if card.size != probe.vector.size or norm == 0.0:
        return False, 0.0
    score = float(np.dot(card / norm, probe.vector))
    return score >= probe.threshold, score


@dataclass(frozen=True)
class _FunctionEncoder:
    """Adapts a module-level `extract_template(image) -> vector` function to `FaceEncoder`."""

    fn: Callable[[bytes], Any]

    def extract(self, image: bytes) -> Any:
        return self.fn(image)


def load_encoder() -> FaceEncoder:
    """The installed face model, from `sanad.biometrics.face`; `FaceUnavailable` if absent.

    Uses its `extract_template(image)` (photo → unit template, raising a `SanadError` when no
    acceptable face is found) — the same function enrolment uses, so the two templates come
    from the same model.
    """
    try:
        module = importlib.import_module("sanad.biometrics.face")
    except ImportError as exc:
        raise FaceUnavailable("no face model is installed (sanad.biometrics.face)") from exc
    fn = getattr(module, "extract_template", None)
    if not callable(fn):
        raise FaceUnavailable("sanad.biometrics.face exposes no extract_template()")
    return _FunctionEncoder(fn)


def probe_from_image(
    image: bytes, *, encoder: FaceEncoder | None = None, threshold: float = DEFAULT_FACE_THRESHOLD
) -> FaceProbe:
    """Extract the face template of a photo and wrap it as a probe."""
    encoder = encoder or load_encoder()
    result = encoder.extract(image)
    # The model may return a bare vector or a template object carrying one.
    vector = getattr(result, "vector", result)
    return FaceProbe.from_vector(vector, threshold=threshold)

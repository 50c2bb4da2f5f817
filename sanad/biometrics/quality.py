"""Face capture quality: measurements of one detected face and the named reasons to reject it.

Kept apart from the model code (`sanad.biometrics.face`) so the rules can be read, tested and
tuned without a detector: `measure` needs only a detection (box, five landmarks, confidence)
and the aligned face crop; `assess` turns measurements into rejection reasons under a
`QualityPolicy`.

Why these measures:

* **size** — the shorter side of the detector's box in the *original* image. Below ~60 px the
  112×112 recogniser input is upsampled and identity detail is gone.
* **sharpness** — variance of the Laplacian of the aligned grey crop (a standard focus
  measure). Measured on the crop, not the photo, so a sharp background cannot hide a blurred
  face and every face is judged at the same scale.
* **brightness** — mean grey level of the aligned crop (0–255).
* **pose** — from the landmarks, in the frame of the eye line: ``yaw`` is the nose's
  horizontal offset from the eyes' midpoint divided by the eye distance (0 frontal, ~0.5 at
  45°), ``pitch`` the nose's height between the eye line and the mouth line (≈0.5 frontal),
  ``roll`` the eye line's angle. Roll is undone by alignment, so only an extreme roll rejects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt


class Reason(StrEnum):
    """Why a face image cannot give a template (stable codes: API, CLI and audit use them)."""

    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_TOO_SMALL = "face_too_small"
    BLURRED = "blurred"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    STRONG_POSE = "strong_pose"


@dataclass(frozen=True)
class QualityPolicy:
    """Acceptance limits. Defaults were set on the real photographs in ``tests/data/faces``
    and degraded copies of them (see docs/abis.md): every clean photo passes with margin, each
    degradation is caught."""

    min_face_px: float = 60.0
    # A second detection counts as a second person only if it is a real face of some size;
    # small background faces in a crowd are ignored.
    second_face_min_share: float = 0.35
    min_sharpness: float = 60.0
    min_brightness: float = 55.0
    max_brightness: float = 200.0
    max_abs_yaw: float = 0.35
    min_pitch: float = 0.25
    max_pitch: float = 0.80
    max_abs_roll_deg: float = 40.0


@dataclass(frozen=True)
class FaceMeasures:
    """What was measured on the chosen (largest) face; ``faces`` counts significant faces."""

    faces: int
    detection_score: float
    face_px: float
    sharpness: float
    brightness: float
    yaw: float
    pitch: float
    roll_deg: float

    def to_json(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def pose(landmarks: npt.ArrayLike) -> tuple[float, float, float]:
    """``(yaw, pitch, roll_deg)`` from YuNet's five landmarks (eye, eye, nose, mouth, mouth).

    YuNet orders them right eye, left eye, nose tip, right and left mouth corner (the
    subject's right is the image's left).
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_r, eye_l, nose, mouth_r, mouth_l = pts
    eye_vec = eye_l - eye_r
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return float("inf"), 0.0, 0.0
    roll = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
    # Rotate into the eye-line frame so roll does not leak into yaw and pitch.
    c, s = eye_vec / eye_dist
    rot = np.array([[c, s], [-s, c]])
    eye_mid = (eye_r + eye_l) / 2
    nose_p = rot @ (nose - eye_mid)
    mouth_p = rot @ ((mouth_r + mouth_l) / 2 - eye_mid)
    yaw = float(nose_p[0] / eye_dist)
    pitch = float(nose_p[1] / mouth_p[1]) if mouth_p[1] > 1e-6 else float("inf")
    return yaw, pitch, roll


def sharpness(grey: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian (higher is sharper)."""
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def measure(
    *,
    faces: int,
    detection_score: float,
    face_px: float,
    landmarks: npt.ArrayLike,
    aligned_bgr: npt.NDArray[np.uint8],
) -> FaceMeasures:
    """Measurements of one detected face from its detection and its aligned crop."""
    grey = np.asarray(cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    yaw, pitch, roll = pose(landmarks)
    return FaceMeasures(
        faces=faces,
        detection_score=float(detection_score),
        face_px=float(face_px),
        sharpness=sharpness(grey),
        brightness=float(grey.mean()),
        yaw=yaw,
        pitch=pitch,
        roll_deg=roll,
    )


def assess(m: FaceMeasures, policy: QualityPolicy) -> tuple[Reason, ...]:
    """Every rule ``m`` breaks, in a fixed order (empty: acceptable)."""
    reasons: list[Reason] = []
    if m.faces == 0:
        return (Reason.NO_FACE,)
    if m.faces > 1:
        reasons.append(Reason.MULTIPLE_FACES)
    if m.face_px < policy.min_face_px:
        reasons.append(Reason.FACE_TOO_SMALL)
    if m.sharpness < policy.min_sharpness:
        reasons.append(Reason.BLURRED)
    if m.brightness < policy.min_brightness:
        reasons.append(Reason.TOO_DARK)
    if m.brightness > policy.max_brightness:
        reasons.append(Reason.TOO_BRIGHT)
    if (
        not abs(m.yaw) <= policy.max_abs_yaw
        or not policy.min_pitch <= m.pitch <= policy.max_pitch
        or not abs(m.roll_deg) <= policy.max_abs_roll_deg
    ):
        reasons.append(Reason.STRONG_POSE)
    return tuple(reasons)


def quality_score(m: FaceMeasures, policy: QualityPolicy) -> float:
    """One number in [0, 1] for display and ranking captures: 0 when a rule is broken,
    otherwise the smallest remaining margin of any rule relative to its limit (capped at 1)."""
    if assess(m, policy):
        return 0.0
    margins = [
        m.face_px / policy.min_face_px - 1,
        m.sharpness / policy.min_sharpness - 1,
        (m.brightness - policy.min_brightness) / policy.min_brightness,
        (policy.max_brightness - m.brightness) / (255 - policy.max_brightness),
        1 - abs(m.yaw) / policy.max_abs_yaw,
        m.detection_score,
    ]
    return float(np.clip(min(margins), 0.0, 1.0))

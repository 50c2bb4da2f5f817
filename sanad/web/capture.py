"""Photo capture for the enrolment page: image type sniffing, quality feedback and the face
template, through the face model's public interface (`sanad.biometrics.face`).

The browser sends the photo twice: once as soon as it is chosen or taken (`/enrol/photo-check`,
for feedback before submitting) and once with the form. Both go through `check_photo`, so the
feedback and the final decision can never disagree.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from sanad.abis.templates import encode_template
from sanad.biometrics.face import InvalidImage, default_extractor

MAX_PHOTO_BYTES = 2_000_000
_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class PhotoCheck:
    """What the page tells the officer about one photo; `template` only when accepted."""

    accepted: bool
    quality: float
    reasons: list[str]
    content_type: str | None
    template: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, object]:
        return {"accepted": self.accepted, "quality": round(self.quality, 3),
                "reasons": self.reasons}

    def template_b64(self) -> str:
        assert self.template is not None
        return base64.b64encode(encode_template(self.template)).decode()


def sniff(data: bytes) -> str | None:
    """The media type from the bytes themselves (never trust the browser's label)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _TYPES.get(img.format or "")
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def check_photo(data: bytes) -> PhotoCheck:
    """Type, size, face detection and quality of one photo (the face model decides)."""
    if not data:
        return PhotoCheck(False, 0.0, ["missing"], None)
    if len(data) > MAX_PHOTO_BYTES:
        return PhotoCheck(False, 0.0, ["too_large"], None)
    content_type = sniff(data)
    if content_type is None:
        return PhotoCheck(False, 0.0, ["not_an_image"], None)
    try:
        analysis = default_extractor().analyse(data)
    except InvalidImage:
        return PhotoCheck(False, 0.0, ["not_an_image"], content_type)
    return PhotoCheck(
        accepted=analysis.accepted, quality=float(analysis.quality),
        reasons=[r.value for r in analysis.reasons], content_type=content_type,
        template=analysis.template,
    )

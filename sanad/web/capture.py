"""Capture for the enrolment page: photos (image type sniffing, quality feedback and the face
template, through the face model's public interface `sanad.biometrics.face`) and fingerprint
records (ISO/IEC 19794-2 files from the scanner's software, split into one capture per finger).

The browser sends the photo twice: once as soon as it is chosen or taken (`/enrol/photo-check`,
for feedback before submitting) and once with the form. Both go through `check_photo`, so the
feedback and the final decision can never disagree.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile

from sanad.abis.templates import encode_template
from sanad.biometrics.face import InvalidImage, default_extractor
from sanad.biometrics.finger import (
    FingerMinutiaeRecord,
    FingerTemplateError,
    decode_record,
    encode_record,
)

MAX_PHOTO_BYTES = 2_000_000
MAX_FINGER_RECORD_BYTES = 200_000  # ten views of 255 minutiae are ~16 kB
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


@dataclass(frozen=True)
class FingerFile:
    """One uploaded fingerprint record and the finger positions (ISO codes) it holds."""

    data: bytes
    record: FingerMinutiaeRecord  # decoded once, when the file is read

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple(int(v.position) for v in self.record.views)

    def b64(self) -> str:
        return base64.b64encode(self.data).decode()


async def read_capped(upload: UploadFile) -> bytes:
    """An uploaded fingerprint file, read no further than one byte past the size limit (a
    larger file is refused by `read_finger_file` without being held in memory)."""
    return await upload.read(MAX_FINGER_RECORD_BYTES + 1)


async def read_finger_uploads(uploads: list[object]) -> list[FingerFile]:
    """The fingerprint files of one file input (form values that are not files, and the empty
    part a browser sends for an untouched input, are skipped); `ValueError` from
    `read_finger_file` for the first bad one."""
    files = []
    for upload in uploads:
        if not isinstance(upload, UploadFile):
            continue
        data = await read_capped(upload)
        if data or upload.filename:
            files.append(read_finger_file(data, upload.filename or ""))
    return files


def read_finger_file(data: bytes, name: str = "") -> FingerFile:
    """Decode an ISO/IEC 19794-2:2005 record; `ValueError` with an officer-readable message
    when it is not one, or when a view does not say which finger it is."""
    label = f"{name}: " if name else ""
    if not data:
        raise ValueError(f"{label}the file is empty")
    if len(data) > MAX_FINGER_RECORD_BYTES:
        raise ValueError(f"{label}larger than {MAX_FINGER_RECORD_BYTES} bytes")
    try:
        record = decode_record(data)
    except FingerTemplateError as exc:
        raise ValueError(
            f"{label}not an ISO/IEC 19794-2 finger minutiae record ({exc.message})"
        ) from None
    if any(int(v.position) == 0 for v in record.views):
        raise ValueError(f"{label}a view does not say which finger it is (position 0): set the "
                         "finger position in the scanner software")
    return FingerFile(data=data, record=record)


def finger_payload(files: list[FingerFile]) -> list[dict[str, object]]:
    """`PersonCreate.fingers`: one single-view record per finger (a finger in two files, or
    twice in one, is reported by the schema as given twice)."""
    out: list[dict[str, object]] = []
    for f in files:
        for view in f.record.views:
            single = encode_record(dataclasses.replace(f.record, views=(view,)))
            out.append({"position": int(view.position),
                        "record": base64.b64encode(single).decode()})
    return out

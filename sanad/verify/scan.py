"""Reading QR codes from pictures (a photo of a card, a scan): zxing-cpp, no network.

Part of the checkpoint kit: a device that cannot use a live camera decoder uploads or
captures a still picture and gets the QR text back here.
"""

from __future__ import annotations

import io
import warnings

import zxingcpp
from PIL import Image, UnidentifiedImageError

from sanad.errors import SanadError

__all__ = ["MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "NoCodeFound", "read_qr_codes"]

MAX_IMAGE_BYTES = 15 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # a 40-megapixel phone photo; refuses decompression bombs


class NoCodeFound(SanadError):
    """The picture is not an image, is too large, or holds no readable QR code."""

    code = "no_code_found"
    status = 422


def read_qr_codes(image: bytes) -> list[str]:
    """The texts of every QR code found in `image` (JPEG, PNG, ...), in reading order.

    `NoCodeFound` when the bytes are not an image we accept or no QR code can be read.
    """
    if not image:
        raise NoCodeFound("the picture is empty")
    if len(image) > MAX_IMAGE_BYTES:
        raise NoCodeFound(f"the picture is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(image))
            if picture.width * picture.height > MAX_IMAGE_PIXELS:
                raise NoCodeFound("the picture has too many pixels")
            picture.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, ValueError) as exc:
        raise NoCodeFound("the file is not a picture this checkpoint can read") from exc
    results = zxingcpp.read_barcodes(
        picture.convert("L"), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    texts = [r.text for r in results if r.valid and r.text]
    if not texts:
        raise NoCodeFound("no QR code could be read in the picture: retake it flat, sharp and "
                          "filling most of the frame")
    return texts

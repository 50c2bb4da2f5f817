"""The fingerprint template model: minutiae, finger positions, finger views, records.

Units follow ISO/IEC 19794-2:2005 so that a record read from a file and written back is
byte-identical:

* ``x``, ``y``: pixels, origin at the image's upper-left corner, ``y`` growing downwards,
  14 bits each (0 .. 16383).
* ``angle``: ISO angle units of 360/256 = 1.40625 degrees, 0 .. 255, counter-clockwise from
  the horizontal axis pointing right (as seen on the image). `Minutia.radians` converts.
* ``quality``: 0 .. 100 (0 = not reported).

For matching, a view's minutiae become a float array (`MINUTIA_COLUMNS`), radians in
``[0, 2π)`` measured in the same visual counter-clockwise sense (so with ``y`` pointing down,
the direction vector of angle ``t`` is ``(cos t, -sin t)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from sanad.errors import SanadError

ANGLE_UNITS = 256  # one full turn in ISO angle units
MAX_COORDINATE = (1 << 14) - 1
MAX_MINUTIAE_PER_VIEW = 255
# 500 dpi expressed in pixels per centimetre, as the ISO record stores resolution.
DEFAULT_RESOLUTION_PPCM = 197

# Columns of the float array a view becomes for matching.
MINUTIA_COLUMNS: tuple[str, ...] = ("x", "y", "theta", "type", "quality")
MinutiaeArray = npt.NDArray[np.float32]


class FingerTemplateError(SanadError):
    """A finger minutiae record (bytes or fields) is malformed or out of range."""

    code = "invalid_finger_template"
    status = 422


class FingerPosition(IntEnum):
    """Finger position codes of ISO/IEC 19794-2 (table "finger position"); 0 is unknown."""

    UNKNOWN = 0
    RIGHT_THUMB = 1
    RIGHT_INDEX = 2
    RIGHT_MIDDLE = 3
    RIGHT_RING = 4
    RIGHT_LITTLE = 5
    LEFT_THUMB = 6
    LEFT_INDEX = 7
    LEFT_MIDDLE = 8
    LEFT_RING = 9
    LEFT_LITTLE = 10


# The ten real fingers, in code order (what a full ten-print capture holds).
TEN_FINGERS: tuple[FingerPosition, ...] = tuple(FingerPosition(c) for c in range(1, 11))


class MinutiaType(IntEnum):
    """Minutia type as the two high bits of the x field store it (3 is reserved)."""

    OTHER = 0
    RIDGE_ENDING = 1
    BIFURCATION = 2


class ImpressionType(IntEnum):
    """Impression types of ISO/IEC 19794-2:2005 (4 bits; other values are reserved)."""

    LIVE_PLAIN = 0
    LIVE_ROLLED = 1
    NONLIVE_PLAIN = 2
    NONLIVE_ROLLED = 3
    SWIPE = 8


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if type(value) is int and low <= value <= high:
        return  # the common case, kept cheap: records hold thousands of minutiae fields
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise FingerTemplateError(f"{name} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise FingerTemplateError(f"{name} must be in {low}..{high}, got {value}")


@dataclass(frozen=True)
class Minutia:
    """One minutia in ISO units (see the module docstring)."""

    x: int
    y: int
    angle: int
    type: MinutiaType = MinutiaType.RIDGE_ENDING
    quality: int = 0

    def __post_init__(self) -> None:
        _check_range("minutia x", self.x, 0, MAX_COORDINATE)
        _check_range("minutia y", self.y, 0, MAX_COORDINATE)
        _check_range("minutia angle", self.angle, 0, ANGLE_UNITS - 1)
        _check_range("minutia quality", self.quality, 0, 100)
        if type(self.type) is MinutiaType:
            return
        try:
            object.__setattr__(self, "type", MinutiaType(self.type))
        except ValueError:
            raise FingerTemplateError(f"minutia type must be 0, 1 or 2, got {self.type}") from None

    @property
    def radians(self) -> float:
        """The direction in radians, ``[0, 2π)``."""
        return self.angle * 2.0 * math.pi / ANGLE_UNITS

    @staticmethod
    def angle_units(radians: float) -> int:
        """Nearest ISO angle unit (0 .. 255) of a direction in radians."""
        return round(radians * ANGLE_UNITS / (2.0 * math.pi)) % ANGLE_UNITS


@dataclass(frozen=True)
class FingerView:
    """One finger's minutiae as captured once (an ISO "finger view")."""

    position: FingerPosition
    minutiae: tuple[Minutia, ...]
    quality: int = 0
    view_number: int = 0
    impression_type: int = ImpressionType.LIVE_PLAIN
    extended_data: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        _check_range("finger position", self.position, 0, 10)
        object.__setattr__(self, "position", FingerPosition(self.position))
        _check_range("finger quality", self.quality, 0, 100)
        _check_range("view number", self.view_number, 0, 15)
        _check_range("impression type", self.impression_type, 0, 15)
        if len(self.minutiae) > MAX_MINUTIAE_PER_VIEW:
            raise FingerTemplateError(
                f"a finger view holds at most {MAX_MINUTIAE_PER_VIEW} minutiae, "
                f"got {len(self.minutiae)}"
            )
        if len(self.extended_data) > 0xFFFF:
            raise FingerTemplateError("extended data longer than 65535 bytes")
        object.__setattr__(self, "minutiae", tuple(self.minutiae))

    def as_array(self) -> MinutiaeArray:
        """Minutiae as a float32 ``(n, 5)`` array: x, y, theta (radians), type, quality."""
        out = np.empty((len(self.minutiae), len(MINUTIA_COLUMNS)), dtype=np.float32)
        for row, m in enumerate(self.minutiae):
            out[row] = (m.x, m.y, m.radians, int(m.type), m.quality)
        return out

    @classmethod
    def from_array(
        cls,
        position: FingerPosition | int,
        minutiae: npt.ArrayLike,
        *,
        quality: int = 0,
        impression_type: int = ImpressionType.LIVE_PLAIN,
    ) -> FingerView:
        """A view from an ``(n, 3..5)`` array (x, y, theta[, type[, quality]]), rounded to ISO."""
        arr = np.asarray(minutiae, dtype=np.float64)
        if arr.ndim != 2 or not 3 <= arr.shape[1] <= 5:
            raise FingerTemplateError(f"minutiae must have shape (n, 3..5), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise FingerTemplateError("minutiae contain non-finite values")
        items = []
        for row in arr:
            mtype = int(row[3]) if arr.shape[1] > 3 else int(MinutiaType.RIDGE_ENDING)
            q = int(row[4]) if arr.shape[1] > 4 else 0
            items.append(
                Minutia(
                    x=round(float(row[0])),
                    y=round(float(row[1])),
                    angle=Minutia.angle_units(float(row[2])),
                    type=MinutiaType(mtype) if mtype in (0, 1, 2) else MinutiaType.OTHER,
                    quality=q,
                )
            )
        return cls(
            position=FingerPosition(position),
            minutiae=tuple(items),
            quality=quality,
            impression_type=impression_type,
        )


@dataclass(frozen=True)
class FingerMinutiaeRecord:
    """An ISO/IEC 19794-2:2005 finger minutiae record: capture facts and one or more views.

    ``equipment_certification`` is the 4-bit certification flags field (0: none);
    ``equipment_id`` the 12-bit capture device type id (0: unreported). Resolutions are in
    pixels per centimetre (197 = 500 dpi).
    """

    views: tuple[FingerView, ...]
    image_width: int
    image_height: int
    resolution_x: int = DEFAULT_RESOLUTION_PPCM
    resolution_y: int = DEFAULT_RESOLUTION_PPCM
    equipment_certification: int = 0
    equipment_id: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "views", tuple(self.views))
        if not 1 <= len(self.views) <= 255:
            raise FingerTemplateError(
                f"a record holds 1 to 255 finger views, got {len(self.views)}"
            )
        _check_range("image width", self.image_width, 1, 0xFFFF)
        _check_range("image height", self.image_height, 1, 0xFFFF)
        _check_range("x resolution", self.resolution_x, 1, 0xFFFF)
        _check_range("y resolution", self.resolution_y, 1, 0xFFFF)
        _check_range("equipment certification", self.equipment_certification, 0, 15)
        _check_range("equipment id", self.equipment_id, 0, 0xFFF)
        for view in self.views:
            for m in view.minutiae:
                if m.x >= self.image_width or m.y >= self.image_height:
                    raise FingerTemplateError(
                        f"minutia ({m.x}, {m.y}) of finger {int(view.position)} lies outside "
                        f"the {self.image_width}x{self.image_height} image"
                    )

    def view(self, position: FingerPosition | int) -> FingerView | None:
        """The first view of finger ``position``, or ``None`` when the record has none."""
        for v in self.views:
            if v.position == position:
                return v
        return None

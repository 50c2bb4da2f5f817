"""Reading and writing ISO/IEC 19794-2:2005 finger minutiae records (big-endian binary).

Layout (2005 edition, the one most capture devices and AFIS still exchange)::

    record header, 24 bytes
      4  format identifier      "FMR\\0"
      4  version                " 20\\0"
      4  record length          whole record, in bytes
      2  capture equipment      4 bits certification flags | 12 bits device type id
      2  image width  (pixels)  2  image height (pixels)
      2  x resolution (px/cm)   2  y resolution (px/cm)
      1  number of finger views 1  reserved (0)
    per finger view
      1  finger position        0..10 (`FingerPosition`)
      1  view number << 4 | impression type
      1  finger quality         0..100
      1  number of minutiae     0..255
      per minutia, 6 bytes
        2  type (2 high bits) | x (14 bits)
        2  reserved (2 high bits, 0) | y (14 bits)
        1  angle                units of 1.40625 degrees
        1  quality              0..100
      2  extended data block length (0: none), then that many bytes, kept verbatim

Every inconsistency raises `FingerTemplateError` (code ``invalid_finger_template``) naming the
offending field and byte offset; nothing is silently skipped or truncated.
"""

from __future__ import annotations

import struct

from sanad.biometrics.finger.template import (
    FingerMinutiaeRecord,
    FingerPosition,
    FingerTemplateError,
    FingerView,
    Minutia,
    MinutiaType,
)

FORMAT_IDENTIFIER = b"FMR\x00"
VERSION_2005 = b" 20\x00"
EDITION = "ISO/IEC 19794-2:2005"

_HEADER = struct.Struct(">4s4sIHHHHHBB")
_VIEW_HEADER = struct.Struct(">BBBB")
_MINUTIA = struct.Struct(">HHBB")
_EXT_LENGTH = struct.Struct(">H")


def encode_record(record: FingerMinutiaeRecord) -> bytes:
    """Serialise ``record`` to ISO/IEC 19794-2:2005 bytes."""
    body = bytearray()
    for view in record.views:
        body += _VIEW_HEADER.pack(
            int(view.position),
            (view.view_number << 4) | view.impression_type,
            view.quality,
            len(view.minutiae),
        )
        for m in view.minutiae:
            body += _MINUTIA.pack((int(m.type) << 14) | m.x, m.y, m.angle, m.quality)
        body += _EXT_LENGTH.pack(len(view.extended_data))
        body += view.extended_data
    length = _HEADER.size + len(body)
    if length > 0xFFFFFFFF:
        raise FingerTemplateError("record longer than 4 GiB")
    header = _HEADER.pack(
        FORMAT_IDENTIFIER,
        VERSION_2005,
        length,
        (record.equipment_certification << 12) | record.equipment_id,
        record.image_width,
        record.image_height,
        record.resolution_x,
        record.resolution_y,
        len(record.views),
        0,
    )
    return header + bytes(body)


def _need(data: bytes, offset: int, size: int, what: str) -> None:
    if offset + size > len(data):
        raise FingerTemplateError(
            f"finger template truncated: {what} needs {size} bytes at offset {offset}, "
            f"only {len(data) - offset} left"
        )


def decode_record(data: bytes) -> FingerMinutiaeRecord:
    """Parse ISO/IEC 19794-2:2005 bytes; `FingerTemplateError` for anything malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FingerTemplateError(f"a finger template is bytes, got {type(data).__name__}")
    data = bytes(data)
    _need(data, 0, _HEADER.size, "the record header")
    (magic, version, length, equipment, width, height, res_x, res_y, n_views, _reserved) = (
        _HEADER.unpack_from(data, 0)
    )
    if magic != FORMAT_IDENTIFIER:
        raise FingerTemplateError(
            f"not a finger minutiae record: format identifier {magic!r}, expected b'FMR\\x00'"
        )
    if version != VERSION_2005:
        raise FingerTemplateError(
            f"unsupported finger minutiae record version {version!r}; "
            f"this reader implements {EDITION} (b' 20\\x00')"
        )
    if length != len(data):
        raise FingerTemplateError(
            f"record length field says {length} bytes but {len(data)} were given"
        )
    if n_views == 0:
        raise FingerTemplateError("finger minutiae record declares no finger views")

    offset = _HEADER.size
    views = []
    for number in range(n_views):
        _need(data, offset, _VIEW_HEADER.size, f"finger view {number} header")
        position, view_impression, quality, n_minutiae = _VIEW_HEADER.unpack_from(data, offset)
        offset += _VIEW_HEADER.size
        if position > int(FingerPosition.LEFT_LITTLE):
            raise FingerTemplateError(
                f"finger view {number}: finger position {position} is not a finger code (0..10)"
            )
        _need(
            data, offset, n_minutiae * _MINUTIA.size, f"the {n_minutiae} minutiae of view {number}"
        )
        minutiae = []
        for index in range(n_minutiae):
            type_x, reserved_y, angle, m_quality = _MINUTIA.unpack_from(data, offset)
            offset += _MINUTIA.size
            mtype = type_x >> 14
            if mtype == 3:
                raise FingerTemplateError(
                    f"finger view {number}, minutia {index}: reserved minutia type 3"
                )
            minutiae.append(
                Minutia(
                    x=type_x & 0x3FFF,
                    y=reserved_y & 0x3FFF,
                    angle=angle,
                    type=MinutiaType(mtype),
                    quality=_checked_quality(m_quality, f"view {number}, minutia {index}"),
                )
            )
        _need(data, offset, _EXT_LENGTH.size, f"the extended data length of view {number}")
        (ext_length,) = _EXT_LENGTH.unpack_from(data, offset)
        offset += _EXT_LENGTH.size
        _need(data, offset, ext_length, f"the extended data of view {number}")
        extended = data[offset : offset + ext_length]
        offset += ext_length
        views.append(
            FingerView(
                position=FingerPosition(position),
                minutiae=tuple(minutiae),
                quality=_checked_quality(quality, f"finger view {number}"),
                view_number=view_impression >> 4,
                impression_type=view_impression & 0x0F,
                extended_data=extended,
            )
        )
    if offset != len(data):
        raise FingerTemplateError(
            f"{len(data) - offset} unexpected bytes after the last finger view (offset {offset})"
        )
    return FingerMinutiaeRecord(
        views=tuple(views),
        image_width=width,
        image_height=height,
        resolution_x=res_x,
        resolution_y=res_y,
        equipment_certification=equipment >> 12,
        equipment_id=equipment & 0x0FFF,
    )


def _checked_quality(value: int, where: str) -> int:
    if value > 100:
        raise FingerTemplateError(f"{where}: quality {value} is above 100")
    return value

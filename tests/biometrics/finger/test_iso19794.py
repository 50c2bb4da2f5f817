"""ISO/IEC 19794-2:2005 finger minutiae records: known bytes, round trips, malformed input."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sanad.biometrics.finger import (
    FingerMinutiaeRecord,
    FingerPosition,
    FingerTemplateError,
    FingerView,
    Minutia,
    MinutiaType,
    decode_record,
    encode_record,
)
from sanad.biometrics.finger.synthetic import SyntheticFingers
from sanad.errors import SanadError


def _small_record() -> FingerMinutiaeRecord:
    view = FingerView(
        position=FingerPosition.RIGHT_INDEX,
        minutiae=(
            Minutia(x=100, y=200, angle=64, type=MinutiaType.RIDGE_ENDING, quality=80),
            Minutia(x=5, y=6, angle=255, type=MinutiaType.BIFURCATION, quality=0),
        ),
        quality=70,
        view_number=1,
        impression_type=0,
        extended_data=b"\x00\x01\x00\x02ab",
    )
    return FingerMinutiaeRecord(
        views=(view,), image_width=320, image_height=400, equipment_certification=8,
        equipment_id=0x123,
    )


def test_known_bytes() -> None:
    """The layout field by field, written by hand from the standard's table."""
    expected = (
        b"FMR\x00" + b" 20\x00" + struct.pack(">I", 24 + 4 + 12 + 2 + 6)
        + struct.pack(">H", (8 << 12) | 0x123)
        + struct.pack(">HHHH", 320, 400, 197, 197) + b"\x01\x00"
        + bytes([2, (1 << 4) | 0, 70, 2])
        + struct.pack(">HHBB", (1 << 14) | 100, 200, 64, 80)
        + struct.pack(">HHBB", (2 << 14) | 5, 6, 255, 0)
        + struct.pack(">H", 6) + b"\x00\x01\x00\x02ab"
    )
    assert encode_record(_small_record()) == expected
    assert decode_record(expected) == _small_record()


def test_round_trip_of_synthetic_multi_view_record() -> None:
    rng = np.random.default_rng(3)
    record = SyntheticFingers(1).capture_record(
        7, (FingerPosition.RIGHT_THUMB, FingerPosition.LEFT_INDEX, FingerPosition.LEFT_LITTLE), rng
    )
    data = encode_record(record)
    back = decode_record(data)
    assert back == record
    assert encode_record(back) == data
    assert [int(v.position) for v in back.views] == [1, 7, 10]
    assert all(len(v.minutiae) > 5 for v in back.views)


def test_empty_view_round_trips() -> None:
    record = FingerMinutiaeRecord(
        views=(FingerView(FingerPosition.LEFT_THUMB, ()),), image_width=10, image_height=10
    )
    assert decode_record(encode_record(record)) == record


def _expect(data: bytes, fragment: str) -> None:
    with pytest.raises(FingerTemplateError) as info:
        decode_record(data)
    assert fragment in info.value.message
    assert info.value.code == "invalid_finger_template"
    assert isinstance(info.value, SanadError)


def test_every_truncation_is_rejected() -> None:
    data = encode_record(_small_record())
    for cut in range(len(data)):
        with pytest.raises(FingerTemplateError):
            decode_record(data[:cut])


def test_truncated_message_names_the_part() -> None:
    data = encode_record(_small_record())
    short = data[:30]
    short = short[:8] + struct.pack(">I", len(short)) + short[12:]
    _expect(short, "truncated")


def test_wrong_magic() -> None:
    data = encode_record(_small_record())
    _expect(b"FIR\x00" + data[4:], "format identifier")


def test_wrong_version() -> None:
    data = encode_record(_small_record())
    _expect(data[:4] + b"030\x00" + data[8:], "version")


def test_length_field_disagrees() -> None:
    data = bytearray(encode_record(_small_record()))
    data[8:12] = struct.pack(">I", len(data) + 1)
    _expect(bytes(data), "record length")


def test_trailing_bytes() -> None:
    data = encode_record(_small_record()) + b"\x00\x00"
    data = data[:8] + struct.pack(">I", len(data)) + data[12:]
    _expect(data, "unexpected bytes")


def test_minutiae_count_beyond_the_data() -> None:
    data = bytearray(encode_record(_small_record()))
    data[27] = 200  # minutiae count of the first view
    _expect(bytes(data), "truncated")


def test_reserved_minutia_type() -> None:
    data = bytearray(encode_record(_small_record()))
    data[28] |= 0xC0
    _expect(bytes(data), "reserved minutia type")


def test_quality_above_100() -> None:
    data = bytearray(encode_record(_small_record()))
    data[26] = 101
    _expect(bytes(data), "quality")


def test_finger_position_out_of_range() -> None:
    data = bytearray(encode_record(_small_record()))
    data[24] = 11
    _expect(bytes(data), "finger position")


def test_no_views() -> None:
    data = bytearray(encode_record(_small_record())[:24])
    data[22] = 0
    data[8:12] = struct.pack(">I", 24)
    _expect(bytes(data), "no finger views")


def test_minutia_outside_image() -> None:
    data = bytearray(encode_record(_small_record()))
    data[14:16] = struct.pack(">H", 50)  # image width 50 < x = 100
    _expect(bytes(data), "outside")


def test_not_bytes() -> None:
    with pytest.raises(FingerTemplateError):
        decode_record("FMR")  # type: ignore[arg-type]

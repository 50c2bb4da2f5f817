"""Hypothesis fuzzing of every parser that reads untrusted input: MRZ, QR layers, CSV/JSONL
import rows and field-kit packets. Each must either succeed or raise its documented
`SanadError` subclass (a clear, coded error) — never crash with anything else.

(`verify()` over whole QR texts is fuzzed in tests/verify/test_verifier_fuzz.py; the API is
fuzzed with schemathesis by the web/API tests.)
"""

from __future__ import annotations

import string
import tempfile
from datetime import date
from pathlib import Path

import base45
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sanad.credentials.mrz import MrzError, MrzResult, TD1Data, parse_mrz, td1_lines
from sanad.credentials.qr import CredentialFormatError, b45decode, decode_signed, parse_sign1
from sanad.errors import InvalidInput, PacketRejected, SanadError
from sanad.registry.importer import FIELDS, Mapping, read_rows, validate
from sanad.sync.envelope import open_envelope, seal
from sanad.sync.keys import CentralKey

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
MRZ_ALPHABET = string.ascii_uppercase + string.digits + "<"

# --- MRZ -------------------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.text(max_size=50), max_size=4))
def test_mrz_parser_accepts_or_explains_any_text(lines: list[str]) -> None:
    try:
        result = parse_mrz(lines)
    except MrzError as exc:
        assert exc.code == "invalid_mrz" and exc.message
        return
    assert isinstance(result, MrzResult)


@FUZZ
@given(st.sampled_from([(3, 30), (2, 36), (2, 44)]).flatmap(
    lambda shape: st.lists(st.text(MRZ_ALPHABET, min_size=shape[1], max_size=shape[1]),
                           min_size=shape[0], max_size=shape[0])))
def test_any_well_shaped_mrz_parses_to_a_verdict(lines: list[str]) -> None:
    try:
        result = parse_mrz(lines)
    except MrzError:
        return  # e.g. an impossible date: still a coded error, never a crash
    assert result.valid == (not result.failed_checks)


names = st.text(string.ascii_uppercase + " ", min_size=1, max_size=20).filter(str.strip)


@FUZZ
@given(
    number=st.text(string.digits, min_size=9, max_size=9),
    dob=st.dates(min_value=date(1920, 1, 1), max_value=date(2025, 12, 31)),
    expiry=st.dates(min_value=date(2026, 1, 1), max_value=date(2060, 12, 31)),
    sex=st.sampled_from(["M", "F", "<"]),
    surname=names, given_names=names,
    position=st.integers(0, 8), delta=st.integers(1, 9),
)
def test_td1_round_trip_and_any_digit_change_is_caught(
    number, dob, expiry, sex, surname, given_names, position, delta
) -> None:
    data = TD1Data(document_number=number, issuing_state="UTO", nationality="SYR",
                   date_of_birth=dob.strftime("%y%m%d"), sex=sex, date_of_expiry=expiry,
                   surname=surname, given_names=given_names)
    lines = td1_lines(data)
    result = parse_mrz(lines)
    assert result.valid and result.fields["document_number"] == number
    # The 7-3-1 check digit catches every single-digit substitution in the number.
    digit = str((int(number[position]) + delta) % 10)
    line1 = lines[0][: 5 + position] + digit + lines[0][6 + position:]
    assert not parse_mrz([line1, *lines[1:]]).valid


# --- QR layers -------------------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=300))
def test_base45_decoding_of_any_text(text: str) -> None:
    # The low-level decoder documents ValueError; decode_signed turns it into MalformedBase45.
    try:
        b45decode(text)
    except ValueError as exc:
        assert str(exc).startswith("not Base45")


@FUZZ
@given(st.binary(max_size=200))
def test_base45_round_trip(data: bytes) -> None:
    assert b45decode(base45.b45encode(data).decode()) == data


@FUZZ
@given(st.binary(max_size=400))
def test_cose_sign1_parser_on_any_bytes(data: bytes) -> None:
    try:
        parse_sign1(data)
    except CredentialFormatError as exc:
        assert exc.code


@FUZZ
@given(st.one_of(st.text(max_size=300),
                 st.text(string.ascii_uppercase + string.digits + " $%*+-./:", max_size=300)
                 .map(lambda t: "SND1:" + t)))
def test_signed_qr_decoder_on_any_text(text: str) -> None:
    try:
        decode_signed(text, prefixes=("SND1:",))
    except CredentialFormatError as exc:
        assert exc.code


# --- CSV / JSONL import ------------------------------------------------------------------------

MAPPING = Mapping.from_json({
    "source": "fuzz", "fields": {name: name.upper() for name in FIELDS},
    "values": {"sex": {"Male": "M", "Female": "F"}},
    "date_formats": ["%Y-%m-%d", "%d/%m/%Y", "%Y"],
})
cells = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.floats(allow_nan=True),
                  st.lists(st.integers(), max_size=3))


@FUZZ
@given(st.one_of(st.none(), st.dictionaries(
    st.one_of(st.sampled_from([f.upper() for f in FIELDS]), st.text(max_size=10)), cells,
    max_size=len(FIELDS) + 3)))
def test_import_row_validation_never_crashes(raw) -> None:
    row, errors = validate(7, raw, MAPPING)
    if row is None:
        assert errors and all(isinstance(f, str) and isinstance(m, str) and m
                              for f, m in errors)
    else:
        assert errors == [] and row.row == 7


@FUZZ
@given(st.binary(max_size=600), st.sampled_from(["csv", "jsonl"]))
def test_reading_any_file_yields_rows_or_a_decoding_error(data: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in.{fmt}"
        path.write_bytes(data)
        try:
            for _, raw in read_rows(path, fmt):
                validate(1, raw, MAPPING)
        except InvalidInput as exc:
            # Not UTF-8: a clear, coded error naming the file (the job reports it).
            assert exc.field == "file" and "UTF-8" in exc.message


# --- field-kit packets -------------------------------------------------------------------------

CENTRAL = CentralKey(ec.generate_private_key(ec.SECP256R1()))
STATION = Ed25519PrivateKey.generate()
VALID = seal({"v": 1, "packet_id": "p", "kind": "household", "body": {}},
             station_key=STATION, central=CENTRAL.public)


@FUZZ
@given(st.binary(max_size=500))
def test_packet_opening_on_any_bytes(data: bytes) -> None:
    try:
        open_envelope(data, central=CENTRAL)
    except PacketRejected as exc:
        assert exc.code == "packet_rejected"


@FUZZ
@given(st.integers(0, len(VALID) - 1), st.integers(1, 255))
def test_any_altered_byte_of_a_packet_is_rejected(position: int, xor: int) -> None:
    altered = VALID[:position] + bytes([VALID[position] ^ xor]) + VALID[position + 1:]
    try:
        opened = open_envelope(altered, central=CENTRAL)
        opened.verify(STATION.public_key())
    except PacketRejected:
        return
    raise AssertionError(f"altered byte {position} went unnoticed")


def test_the_valid_packet_opens() -> None:
    # The two properties above are only meaningful if the untouched packet is accepted.
    payload = open_envelope(VALID, central=CENTRAL).verify(STATION.public_key())
    assert payload["packet_id"] == "p"
    assert issubclass(PacketRejected, SanadError)

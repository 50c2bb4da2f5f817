import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cbor2
import pytest

from sanad.credentials.card import CLAIM_CARD, CardClaims, MalformedClaims, issue_qr, td1_data
from sanad.credentials.mrz import parse_td1, td1_lines
from sanad.credentials.qr import decode_claims, decode_signed, qr_version
from tests.credentials.cards import VECTOR, random_claims, vector_claims, vector_key

DOC = Path(__file__).parents[2] / "docs" / "credential-format.md"


def test_round_trip_through_cwt():
    claims = vector_claims()
    assert CardClaims.from_cwt(claims.to_cwt()) == claims


def test_round_trip_through_cbor_bytes():
    claims = random_claims(status_index=None, face_template=None, given_name_ar="")
    assert CardClaims.from_cwt(cbor2.loads(cbor2.dumps(claims.to_cwt()))) == claims


def test_cwt_layout():
    cwt = vector_claims().to_cwt()
    assert set(cwt) == {1, 4, 5, 6, 7, CLAIM_CARD}
    assert CLAIM_CARD == -65537
    assert all(type(cwt[k]) is int for k in (4, 5, 6))
    assert cwt[7] == bytes.fromhex(VECTOR["claims"]["card_id"])
    assert set(cwt[CLAIM_CARD]) == {
        "cn",
        "gn",
        "fn",
        "gna",
        "fna",
        "dob",
        "dp",
        "sx",
        "nat",
        "sli",
        "ft",
    }


def test_absent_optionals_and_empty_arabic_names_are_omitted():
    claims = random_claims(
        status_index=None, face_template=None, given_name_ar="", family_name_ar=""
    )
    card = claims.to_cwt()[CLAIM_CARD]
    assert set(card) == {"cn", "gn", "fn", "dob", "dp", "sx", "nat"}
    back = CardClaims.from_cwt(claims.to_cwt())
    assert back.status_index is None and back.face_template is None
    assert back.given_name_ar == "" and back.family_name_ar == ""


def test_every_card_key_is_documented():
    doc = DOC.read_text(encoding="utf-8")
    for key in vector_claims().to_cwt()[CLAIM_CARD]:
        assert f"`{key}`" in doc, key
    for key in ("1", "4", "5", "6", "7", "-65537"):
        assert f"| `{key}`" in doc, key


def test_card_never_carries_registry_internals():
    cwt_bytes = cbor2.dumps(vector_claims().to_cwt())
    for word in (b"address", b"phone", b"household", b"uuid", b"person_id"):
        assert word not in cwt_bytes


def test_times_are_normalised_to_utc_whole_seconds():
    plus3 = timezone(timedelta(hours=3))
    claims = random_claims(
        issued_at=datetime(2026, 1, 1, 12, 0, 0, 999_999, tzinfo=plus3),
        not_before=datetime(2026, 1, 1, 12, 0, 0, tzinfo=plus3),
    )
    assert claims.issued_at == datetime(2026, 1, 1, 9, 0, 0, tzinfo=UTC)
    assert claims.issued_at.tzinfo is UTC
    assert CardClaims.from_cwt(claims.to_cwt()) == claims


@pytest.mark.parametrize(
    "overrides",
    [
        {"card_id": b"short"},
        {"card_id": "0" * 16},
        {"card_number": ""},
        {"card_number": "1234567890"},
        {"card_number": "12345678a"},
        {"issuer": ""},
        {"issued_at": datetime(2026, 1, 1)},
        {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)},
        {"given_name": None},
        {"date_of_birth": "1990-02-30"},
        {"date_of_birth": "17/05/1990"},
        {"date_of_birth": "1990", "dob_precision": "exact"},
        {"date_of_birth": "1990-05-17", "dob_precision": "year"},
        {"date_of_birth": "0000", "dob_precision": "year"},
        {"date_of_birth": "١٩٩٠", "dob_precision": "year"},
        {"dob_precision": "approx"},
        {"sex": "female"},
        {"sex": "<"},
        {"nationality": "SY"},
        {"nationality": "syr"},
        {"status_index": -1},
        {"status_index": True},
        {"face_template": "AAAA"},
    ],
)
def test_invalid_values_raise_malformed_claims(overrides):
    with pytest.raises(MalformedClaims) as info:
        random_claims(**overrides)
    assert info.value.code == "malformed_claims"


def _cwt(**card_changes: Any) -> dict[int, Any]:
    cwt = vector_claims().to_cwt()
    card = dict(cwt[CLAIM_CARD])
    for key, value in card_changes.items():
        if value is ...:
            del card[key]
        else:
            card[key] = value
    cwt[CLAIM_CARD] = card
    return cwt


@pytest.mark.parametrize(
    "cwt",
    [
        "not a map",
        {},
        {**vector_claims().to_cwt(), CLAIM_CARD: ["list"]},
        {k: v for k, v in vector_claims().to_cwt().items() if k != 1},
        {k: v for k, v in vector_claims().to_cwt().items() if k != 4},
        {k: v for k, v in vector_claims().to_cwt().items() if k != 6},
        {k: v for k, v in vector_claims().to_cwt().items() if k != 7},
        {**vector_claims().to_cwt(), 1: b"bytes issuer"},
        {**vector_claims().to_cwt(), 4: "2031"},
        {**vector_claims().to_cwt(), 4: True},
        {**vector_claims().to_cwt(), 4: float("nan")},
        {**vector_claims().to_cwt(), 4: 10**30},
        {**vector_claims().to_cwt(), 4: -(10**20)},
        {**vector_claims().to_cwt(), 5: 4_000_000_000},  # nbf after exp
        {**vector_claims().to_cwt(), 7: "id"},
        _cwt(cn=...),
        _cwt(gn=...),
        _cwt(dob=...),
        _cwt(dp=...),
        _cwt(sx=...),
        _cwt(nat=...),
        _cwt(cn=482057314),
        _cwt(sli="5"),
        _cwt(sli=True),
        _cwt(ft="AAAA"),
        _cwt(gna=b"x"),
    ],
)
def test_from_cwt_rejects(cwt):
    with pytest.raises(MalformedClaims):
        CardClaims.from_cwt(cwt)


def test_from_cwt_tolerates_unknown_fields_and_missing_nbf():
    cwt = _cwt(zz="future field")
    cwt[-70000] = "another private claim"
    del cwt[5]
    claims = CardClaims.from_cwt(cwt)
    assert claims.not_before == claims.issued_at
    float_exp = vector_claims().to_cwt()
    float_exp[4] = float(float_exp[4]) + 0.5
    assert CardClaims.from_cwt(float_exp).expires_at == vector_claims().expires_at


def test_to_json_is_json_friendly():
    data = vector_claims().to_json()
    assert data == VECTOR["claims"]
    assert "status_index" not in random_claims(status_index=None).to_json()


def test_issue_qr_payload_is_the_cwt():
    claims = random_claims()
    text = issue_qr(claims, vector_key())
    assert text.startswith("SND1:")
    assert CardClaims.from_cwt(decode_claims(decode_signed(text))) == claims


def test_td1_data_for_a_card():
    claims = vector_claims()
    lines = td1_lines(td1_data(claims, issuing_state="XXA"))
    result = parse_td1(lines)
    assert result.valid
    assert result.fields["document_number"] == claims.card_number
    assert result.fields["date_of_birth"] == "900517"
    assert result.fields["date_of_expiry"] == claims.expires_at.strftime("%y%m%d")
    assert lines[2].startswith("AL<HASSAN<<AMIRA<NOUR")
    year_only = replace(claims, date_of_birth="1985", dob_precision="year", sex="X")
    line2 = td1_lines(td1_data(year_only, issuing_state="XXA"))[1]
    assert line2[:6] == "85<<<<" and line2[7] == "<"
    assert td1_data(claims, issuing_state="XXA").date_of_expiry == date(2031, 3, 1)


def test_size_budget_typical_card_is_documented():
    """A typical card (128-byte face template) fits the QR version the doc states."""
    claims = vector_claims()
    assert claims.face_template is not None and len(claims.face_template) == 128
    text = issue_qr(claims, vector_key())
    version = qr_version(text)
    doc = DOC.read_text(encoding="utf-8")
    match = re.search(r"typical card[^\n]*?QR version (\d+)-M", doc)
    assert match, "docs/credential-format.md must state the typical card's QR version"
    # zlib builds (zlib vs zlib-ng) differ by a few bytes, which can cross a version boundary.
    assert abs(version - int(match.group(1))) <= 1

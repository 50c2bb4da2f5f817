"""What a sanad card says about its holder, as CWT claims (RFC 8392) inside the signed QR.

The card holds the minimum a checkpoint needs to recognise the holder: card number, names,
date of birth, sex, nationality, validity, issuer, status-list index and a compact face
template. Never addresses, phone numbers, household details or internal record ids. The claim
layout is documented key by key in docs/credential-format.md; keep the two in step.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sanad.credentials.keys import IssuerKey
from sanad.credentials.mrz import TD1Data, dob_field
from sanad.credentials.qr import MalformedClaims, sign_claims

__all__ = [
    "CLAIM_CARD",
    "CardClaims",
    "MalformedClaims",
    "issue_qr",
    "td1_data",
]

# Registered CWT claim keys (RFC 8392 §4).
CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_NBF = 5
CLAIM_IAT = 6
CLAIM_CTI = 7
# One private-use claim (negative keys below -65536 are "Private Use" in the IANA CWT
# registry) holding a small map of the card's own fields; short text keys keep the QR small.
CLAIM_CARD = -65537

CARD_ID_LENGTH = 16
DOB_PRECISIONS = ("exact", "estimated", "year")
SEXES = ("M", "F", "X")

_CARD_NUMBER = re.compile(r"[0-9A-Z]{1,9}")
_NATIONALITY = re.compile(r"[A-Z]{3}")
# [0-9], not \d: \d also matches Arabic-Indic and other Unicode digits.
_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_YEAR = re.compile(r"[0-9]{4}")
_TIME_FIELDS = ("issued_at", "not_before", "expires_at")


@dataclass(frozen=True)
class CardClaims:
    """The facts signed into a card's QR.

    Times must be timezone-aware; they are normalised to UTC whole seconds (the CWT NumericDate
    resolution), so `CardClaims.from_cwt(c.to_cwt()) == c` always holds. Invalid values raise
    `MalformedClaims` naming the field.
    """

    card_id: bytes
    card_number: str
    issuer: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime
    given_name: str
    family_name: str
    given_name_ar: str
    family_name_ar: str
    date_of_birth: str
    dob_precision: str
    sex: str
    nationality: str
    status_index: int | None = None
    face_template: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.card_id, bytes) or len(self.card_id) != CARD_ID_LENGTH:
            raise MalformedClaims(f"card_id must be {CARD_ID_LENGTH} bytes")
        if not isinstance(self.card_number, str) or not _CARD_NUMBER.fullmatch(self.card_number):
            raise MalformedClaims("card_number must be 1-9 characters of 0-9, A-Z")
        if not isinstance(self.issuer, str) or not self.issuer:
            raise MalformedClaims("issuer must be a non-empty string")
        for name in _TIME_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise MalformedClaims(f"{name} must be a timezone-aware datetime")
            if value.tzinfo is not UTC or value.microsecond:  # decoded claims already are
                object.__setattr__(self, name, value.astimezone(UTC).replace(microsecond=0))
        if self.expires_at <= self.not_before:
            raise MalformedClaims("expires_at must be after not_before")
        for name in ("given_name", "family_name", "given_name_ar", "family_name_ar"):
            if not isinstance(getattr(self, name), str):
                raise MalformedClaims(f"{name} must be a string")
        _check_dob(self.date_of_birth, self.dob_precision)
        if self.sex not in SEXES:
            raise MalformedClaims(f"sex must be one of {', '.join(SEXES)}")
        if not isinstance(self.nationality, str) or not _NATIONALITY.fullmatch(self.nationality):
            raise MalformedClaims("nationality must be 3 letters A-Z (ICAO code, XXA, XXB...)")
        if self.status_index is not None and (
            type(self.status_index) is not int or self.status_index < 0
        ):
            raise MalformedClaims("status_index must be a non-negative integer")
        if self.face_template is not None and not isinstance(self.face_template, bytes):
            raise MalformedClaims("face_template must be bytes")

    def to_cwt(self) -> dict[int, Any]:
        """The CWT claims map; absent optionals and empty Arabic names are left out."""
        card: dict[str, Any] = {
            "cn": self.card_number,
            "gn": self.given_name,
            "fn": self.family_name,
            "dob": self.date_of_birth,
            "dp": self.dob_precision,
            "sx": self.sex,
            "nat": self.nationality,
        }
        if self.given_name_ar:
            card["gna"] = self.given_name_ar
        if self.family_name_ar:
            card["fna"] = self.family_name_ar
        if self.status_index is not None:
            card["sli"] = self.status_index
        if self.face_template is not None:
            card["ft"] = self.face_template
        return {
            CLAIM_ISS: self.issuer,
            CLAIM_EXP: int(self.expires_at.timestamp()),
            CLAIM_NBF: int(self.not_before.timestamp()),
            CLAIM_IAT: int(self.issued_at.timestamp()),
            CLAIM_CTI: self.card_id,
            CLAIM_CARD: card,
        }

    @classmethod
    def from_cwt(cls, claims: dict[int, Any]) -> CardClaims:
        """Rebuild card claims from a decoded CWT map; `MalformedClaims` if anything is off.

        Unknown claims and unknown keys in the card map are ignored, so a later format can add
        fields that older verifiers skip. A missing `nbf` means "valid from `iat`".
        """
        if not isinstance(claims, dict):
            raise MalformedClaims("claims must be a map")
        card = claims.get(CLAIM_CARD)
        if not isinstance(card, dict):
            raise MalformedClaims(f"claim {CLAIM_CARD} (card fields) missing or not a map")
        issued_at = _numeric_date(claims, CLAIM_IAT, "iat")
        nbf_present = CLAIM_NBF in claims
        return cls(
            card_id=_typed(claims, CLAIM_CTI, bytes, "cti"),
            card_number=_typed(card, "cn", str, "cn"),
            issuer=_typed(claims, CLAIM_ISS, str, "iss"),
            issued_at=issued_at,
            not_before=_numeric_date(claims, CLAIM_NBF, "nbf") if nbf_present else issued_at,
            expires_at=_numeric_date(claims, CLAIM_EXP, "exp"),
            given_name=_typed(card, "gn", str, "gn"),
            family_name=_typed(card, "fn", str, "fn"),
            given_name_ar=_typed(card, "gna", str, "gna", default=""),
            family_name_ar=_typed(card, "fna", str, "fna", default=""),
            date_of_birth=_typed(card, "dob", str, "dob"),
            dob_precision=_typed(card, "dp", str, "dp"),
            sex=_typed(card, "sx", str, "sx"),
            nationality=_typed(card, "nat", str, "nat"),
            status_index=_typed(card, "sli", int, "sli", default=None),
            face_template=_typed(card, "ft", bytes, "ft", default=None),
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields: ISO 8601 times, `card_id` in hex, face template in base64.

        Written out field by field (not via `dataclasses.fields`): a checkpoint calls this
        for every card it scans.
        """
        out: dict[str, Any] = {
            "card_id": self.card_id.hex(),
            "card_number": self.card_number,
            "issuer": self.issuer,
            "issued_at": _iso(self.issued_at),
            "not_before": _iso(self.not_before),
            "expires_at": _iso(self.expires_at),
            "given_name": self.given_name,
            "family_name": self.family_name,
            "given_name_ar": self.given_name_ar,
            "family_name_ar": self.family_name_ar,
            "date_of_birth": self.date_of_birth,
            "dob_precision": self.dob_precision,
            "sex": self.sex,
            "nationality": self.nationality,
        }
        if self.status_index is not None:
            out["status_index"] = self.status_index
        if self.face_template is not None:
            out["face_template"] = base64.b64encode(self.face_template).decode("ascii")
        return out


def _iso(value: datetime) -> str:
    # Times are normalised to UTC whole seconds in __post_init__; "Z" is the compact form.
    return value.isoformat().replace("+00:00", "Z")


_MISSING: Any = object()


def _typed(source: dict[Any, Any], key: Any, kind: type, name: str, default: Any = _MISSING) -> Any:
    if key not in source:
        if default is _MISSING:
            raise MalformedClaims(f"claim {name!r} is missing")
        return default
    value = source[key]
    # bool is an int subclass in Python; a CBOR true is never a valid number here.
    if type(value) is not kind:
        raise MalformedClaims(f"claim {name!r} must be {kind.__name__}")
    return value


def _numeric_date(claims: dict[Any, Any], key: int, name: str) -> datetime:
    if key not in claims:
        raise MalformedClaims(f"claim {name!r} is missing")
    value = claims[key]
    # RFC 8392 NumericDate may be an integer or a float; a card's are integers.
    if type(value) not in (int, float) or not math.isfinite(value):
        raise MalformedClaims(f"claim {name!r} must be a NumericDate")
    try:
        return datetime.fromtimestamp(math.floor(value), UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise MalformedClaims(f"claim {name!r} is out of range") from exc


def _check_dob(dob: object, precision: object) -> None:
    if precision not in DOB_PRECISIONS:
        raise MalformedClaims(f"dob_precision must be one of {', '.join(DOB_PRECISIONS)}")
    if not isinstance(dob, str):
        raise MalformedClaims("date_of_birth must be a string")
    if precision == "year":
        if not _YEAR.fullmatch(dob) or dob == "0000":  # year 0 does not exist in ISO dates
            raise MalformedClaims("date_of_birth must be YYYY when only the year is known")
        return
    if not _FULL_DATE.fullmatch(dob):
        raise MalformedClaims("date_of_birth must be YYYY-MM-DD")
    try:
        date.fromisoformat(dob)
    except ValueError as exc:
        raise MalformedClaims(f"date_of_birth {dob!r} is not a calendar date") from exc


def issue_qr(claims: CardClaims, key: IssuerKey) -> str:
    """The signed QR text (`SND1:…`) for a card."""
    return sign_claims(claims.to_cwt(), key)


def td1_data(claims: CardClaims, *, issuing_state: str, document_code: str = "ID") -> TD1Data:
    """The TD1 MRZ facts for a card: its number, Latin-script names, birth date and expiry.

    Sex "X" is written as the MRZ filler; a year-only birth date as YY<<<<.
    """
    if claims.dob_precision == "year":
        dob = dob_field(date(int(claims.date_of_birth), 1, 1), "year")
    else:
        dob = dob_field(date.fromisoformat(claims.date_of_birth), claims.dob_precision)
    return TD1Data(
        document_number=claims.card_number,
        issuing_state=issuing_state,
        nationality=claims.nationality,
        date_of_birth=dob,
        sex="<" if claims.sex == "X" else claims.sex,
        date_of_expiry=claims.expires_at.date(),
        surname=claims.family_name,
        given_names=claims.given_name,
        document_code=document_code,
    )

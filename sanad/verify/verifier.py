"""Offline verification of a scanned credential: decode → signature → validity → status → face.

Depends on `sanad.credentials` only (no database, no registry), so a checkpoint can run it with
nothing but a trust file. `verify` never raises on what it is given to read: every failure is a
stable reason code in the result, and the checkpoint screen decides what to show for each.

Order of checks: prefix, Base45, zlib, COSE_Sign1 structure, algorithm, key id in the trust
list, signature — stopping at the first failure, since nothing after it can be trusted. Then,
for a genuinely signed credential, the claims; then every one of validity period, status list
and face check that applies, all reported together (an expired *and* revoked card says both).
Claims are returned only when the signature is good, so nothing unauthenticated ever reaches a
screen; an expired or revoked card still shows whose it is.

Foreign credentials (same layering, another issuer) have no sanad card claim: their claims are
returned generically (`iss`, times, and every other claim by its key) and only the registered
CWT times are checked; a status list applies only to credentials that carry a status index.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sanad.credentials.card import CLAIM_CARD, CardClaims
from sanad.credentials.keys import TrustList
from sanad.credentials.qr import (
    DEFAULT_PREFIX,
    CredentialFormatError,
    MalformedClaims,
    decode_claims,
    decode_signed,
    signature_valid,
)
from sanad.credentials.status import StatusList
from sanad.verify.face import FaceProbe, face_matches

__all__ = ["REASONS", "VerificationResult", "verify"]

MALFORMED_PREFIX = "malformed_prefix"
MALFORMED_BASE45 = "malformed_base45"
MALFORMED_ZLIB = "malformed_zlib"
NOT_COSE_SIGN1 = "not_cose_sign1"
MALFORMED_CLAIMS = "malformed_claims"
UNSUPPORTED_ALG = "unsupported_alg"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
REVOKED = "revoked"
STATUS_STALE = "status_stale"
STATUS_UNKNOWN = "status_unknown"
FACE_MISMATCH = "face_mismatch"
FACE_UNAVAILABLE = "face_unavailable"

REASONS: tuple[str, ...] = (
    MALFORMED_PREFIX,
    MALFORMED_BASE45,
    MALFORMED_ZLIB,
    NOT_COSE_SIGN1,
    MALFORMED_CLAIMS,
    UNSUPPORTED_ALG,
    UNKNOWN_KEY,
    BAD_SIGNATURE,
    EXPIRED,
    NOT_YET_VALID,
    REVOKED,
    STATUS_STALE,
    STATUS_UNKNOWN,
    FACE_MISMATCH,
    FACE_UNAVAILABLE,
)
"""Every reason code `verify` can report. Stable: checkpoints and translations key on them."""

DEFAULT_STATUS_MAX_AGE = timedelta(days=7)


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of `verify`.

    `valid` is True only with no reasons. `claims` (JSON-friendly fields) is set whenever the
    signature is good, even if the card is expired, revoked or not yet valid; `kid` (hex)
    whenever the credential could be parsed far enough to name its key. `status` summarises
    the status list used (None when none applied); `face_score` is the 1:1 cosine score when a
    face check ran.
    """

    valid: bool
    reasons: tuple[str, ...] = ()
    claims: dict[str, Any] | None = None
    kid: str | None = None
    status: dict[str, Any] | None = None
    face_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-serialisable dict (optional parts only when present)."""
        out: dict[str, Any] = {
            "valid": self.valid,
            "reasons": list(self.reasons),
            "claims": self.claims,
            "kid": self.kid,
        }
        if self.status is not None:
            out["status"] = self.status
        if self.face_score is not None:
            out["face_score"] = round(self.face_score, 4)
        return out


def _fail(reason: str, kid: bytes | None = None) -> VerificationResult:
    return VerificationResult(
        valid=False, reasons=(reason,), kid=kid.hex() if kid is not None else None
    )


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)  # CBOR tags, undefined, ... shown, never interpreted


@dataclass(frozen=True)
class _Generic:
    """What is checked on any credential: the registered CWT times and issuer."""

    issuer: str | None
    not_before: datetime | None
    expires_at: datetime | None


def _numeric(claims: dict[Any, Any], key: int, name: str) -> datetime | None:
    if key not in claims:
        return None
    value = claims[key]
    if type(value) not in (int, float) or not math.isfinite(value):
        raise MalformedClaims(f"claim {name!r} must be a NumericDate")
    try:
        return datetime.fromtimestamp(math.floor(value), UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise MalformedClaims(f"claim {name!r} is out of range") from exc


def _generic(claims: dict[Any, Any]) -> tuple[_Generic, dict[str, Any]]:
    iss = claims.get(1)
    if iss is not None and not isinstance(iss, str):
        raise MalformedClaims("claim 'iss' must be text")
    iat = _numeric(claims, 6, "iat")
    nbf = _numeric(claims, 5, "nbf")
    exp = _numeric(claims, 4, "exp")
    out: dict[str, Any] = {}
    named = {1: "iss", 4: "exp", 5: "nbf", 6: "iat", 7: "cti"}
    for key, value in claims.items():
        if key in (4, 5, 6):
            continue
        out[named.get(key, str(key))] = _json_value(value)
    for name, when in (("iat", iat), ("nbf", nbf), ("exp", exp)):
        if when is not None:
            out[name] = _iso(when)
    if isinstance(claims.get(7), bytes):
        out["cti"] = claims[7].hex()
    return _Generic(issuer=iss, not_before=nbf or iat, expires_at=exp), out


def verify(
    text: str,
    *,
    trust: TrustList,
    at: datetime | None = None,
    prefixes: tuple[str, ...] = (DEFAULT_PREFIX,),
    status: StatusList | None = None,
    require_status: bool = False,
    status_max_age: timedelta = DEFAULT_STATUS_MAX_AGE,
    face: FaceProbe | None = None,
) -> VerificationResult:
    """Verify a scanned credential text against `trust` at time `at` (default: now, UTC).

    `status` is a status list already checked with `parse_status_list`; a card carrying a
    status index is then `revoked` if its bit is set, `status_stale` if the list is older than
    `status_max_age` at `at`, `status_unknown` if the list does not cover it (other issuer,
    index beyond its size) — or if no list was given and `require_status` is set. `face`, when
    given, is a 1:1 probe compared with the card's face template (`face_mismatch` below its
    threshold, `face_unavailable` when the card has no template).

    Never raises for any `text`. `at` must be timezone-aware (a naive time is a programming
    mistake and raises `ValueError`).
    """
    if at is None:
        at = datetime.now(UTC)
    elif at.utcoffset() is None:
        raise ValueError("verify(at=...) needs a timezone-aware datetime")

    try:
        message = decode_signed(text, prefixes=prefixes)
    except CredentialFormatError as exc:
        return _fail(exc.code)

    if message.kid is None:
        return _fail(UNKNOWN_KEY)
    public_key = trust.get(message.kid)
    if public_key is None:
        return _fail(UNKNOWN_KEY, message.kid)
    if not signature_valid(message, public_key):
        return _fail(BAD_SIGNATURE, message.kid)

    card: CardClaims | None = None
    try:
        cwt = decode_claims(message)
        if CLAIM_CARD in cwt:
            card = CardClaims.from_cwt(cwt)
            claims = card.to_json()
            times = _Generic(card.issuer, card.not_before, card.expires_at)
        else:
            times, claims = _generic(cwt)
    except CredentialFormatError as exc:
        return _fail(exc.code, message.kid)

    reasons: list[str] = []
    if times.not_before is not None and at < times.not_before:
        reasons.append(NOT_YET_VALID)
    # RFC 8392: exp is the time "on or after which" the token must not be accepted.
    if times.expires_at is not None and at >= times.expires_at:
        reasons.append(EXPIRED)

    status_summary: dict[str, Any] | None = None
    if card is not None and card.status_index is not None:
        if status is None:
            if require_status:
                reasons.append(STATUS_UNKNOWN)
        else:
            status_summary = status.to_json()
            bit = status.is_revoked(card.status_index) if status.issuer == card.issuer else None
            if bit is None:
                reasons.append(STATUS_UNKNOWN)
            elif bit:
                reasons.append(REVOKED)
            if at - status.issued_at > status_max_age:
                reasons.append(STATUS_STALE)

    face_score: float | None = None
    if face is not None:
        if card is None or card.face_template is None:
            reasons.append(FACE_UNAVAILABLE)
        else:
            matched, face_score = face_matches(card.face_template, face)
            if not matched:
                reasons.append(FACE_MISMATCH)

    return VerificationResult(
        valid=not reasons,
        reasons=tuple(reasons),
        claims=claims,
        kid=message.kid.hex(),
        status=status_summary,
        face_score=face_score,
    )

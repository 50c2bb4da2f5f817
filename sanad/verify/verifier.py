"""Offline verification of a scanned credential: decode → signature → validity period.

Depends on `sanad.credentials` only (no database, no registry), so a checkpoint can run it with
nothing but a trust list. `verify` never raises on what it is given to read: every failure is a
stable reason code in the result, and the checkpoint screen decides what to show for each.

Order of checks, stopping at the first failure: prefix, Base45, zlib, COSE_Sign1 structure,
algorithm, key id in the trust list, signature; then, only for a genuinely signed credential,
the claims and the validity period. Claims are returned only when the signature is good, so
nothing unauthenticated ever reaches a screen; an expired card still shows whose it is.

Revocation (status list) and the 1:1 face check are separate steps layered on this result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sanad.credentials.card import CardClaims
from sanad.credentials.keys import TrustList
from sanad.credentials.qr import (
    DEFAULT_PREFIX,
    CredentialFormatError,
    decode_claims,
    decode_signed,
    signature_valid,
)

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
)
"""Every reason code `verify` can report. Stable: checkpoints and translations key on them."""


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of `verify`.

    `valid` is True only with no reasons. `claims` (JSON-friendly card fields) is set whenever
    the signature is good, even if the card is expired or not yet valid; `kid` (hex) whenever
    the credential could be parsed far enough to name its key.
    """

    valid: bool
    reasons: tuple[str, ...] = ()
    claims: dict[str, Any] | None = None
    kid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-serialisable dict."""
        return {
            "valid": self.valid,
            "reasons": list(self.reasons),
            "claims": self.claims,
            "kid": self.kid,
        }


def _fail(
    reason: str, kid: bytes | None = None, claims: dict[str, Any] | None = None
) -> VerificationResult:
    return VerificationResult(
        valid=False, reasons=(reason,), claims=claims, kid=kid.hex() if kid is not None else None
    )


def verify(
    text: str,
    *,
    trust: TrustList,
    at: datetime | None = None,
    prefixes: tuple[str, ...] = (DEFAULT_PREFIX,),
) -> VerificationResult:
    """Verify a scanned credential text against `trust` at time `at` (default: now, UTC).

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

    try:
        card = CardClaims.from_cwt(decode_claims(message))
    except CredentialFormatError as exc:
        return _fail(exc.code, message.kid)

    claims = card.to_json()
    if at < card.not_before:
        return _fail(NOT_YET_VALID, message.kid, claims)
    # RFC 8392: exp is the time "on or after which" the token must not be accepted.
    if at >= card.expires_at:
        return _fail(EXPIRED, message.kid, claims)
    return VerificationResult(valid=True, reasons=(), claims=claims, kid=message.kid.hex())

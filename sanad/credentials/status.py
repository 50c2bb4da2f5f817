"""The signed status list: one bit per card, shipped to checkpoints for offline revocation.

A status list is a CWT (RFC 8392) in a COSE_Sign1 signed by a document-signer key, modelled
on the IETF OAuth "Token Status List" (one bit per credential, zlib-compressed bitstring,
index carried in the credential):

    COSE_Sign1( protected{alg: EdDSA, kid}, {}, {
        1: iss,  6: iat (NumericDate),
        -65538: {"v": version, "bits": 1, "n": size in bits, "lst": zlib(bitstring)}
    } )

Bit `i` is bit `i % 8` (least significant first) of byte `i // 8`; 1 means revoked. The size
is rounded up to a whole block so that cards issued after a checkpoint's last download still
fall inside the list it holds (their bit is 0 until a later list says otherwise). The version
grows by one with every revocation, so a checkpoint can tell which of two lists is newer.

Pure (no database): the issuing side (`sanad.registry.status_list`) decides which bits are set.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import cbor2

from sanad.credentials.keys import IssuerKey, TrustList
from sanad.credentials.qr import (
    CredentialFormatError,
    decode_claims,
    parse_sign1,
    sign1,
    signature_valid,
)
from sanad.errors import SanadError

__all__ = [
    "BLOCK_BITS",
    "CLAIM_STATUS_LIST",
    "StatusList",
    "StatusListError",
    "encode_status_list",
    "parse_status_list",
]

CLAIM_STATUS_LIST = -65538
BLOCK_BITS = 1 << 17  # 131072 cards per block: 16 KiB raw, a few dozen bytes compressed
MAX_BITS = 1 << 27  # 134 million cards; bounds what a hostile list can make a checkpoint inflate


class StatusListError(SanadError):
    """A status list is malformed, signed by an unknown key or has a bad signature."""

    code = "invalid_status_list"
    status = 422


def _size_for(max_index: int) -> int:
    return max(BLOCK_BITS, math.ceil((max_index + 1) / BLOCK_BITS) * BLOCK_BITS)


def encode_status_list(
    *,
    revoked: Iterable[int],
    allocated: int,
    version: int,
    issuer: str,
    issued_at: datetime,
    key: IssuerKey,
) -> bytes:
    """Sign a status list covering indices `0 … allocated-1` (rounded up to a block) with the
    bits of `revoked` set. Returns the COSE_Sign1 bytes."""
    if issued_at.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    indices = sorted(set(revoked))
    if indices and indices[0] < 0:
        raise ValueError("status indices are non-negative")
    size = _size_for(max([allocated - 1, *indices], default=0))
    bits = bytearray(size // 8)
    for i in indices:
        bits[i // 8] |= 1 << (i % 8)
    claims: dict[int, Any] = {
        1: issuer,
        6: int(issued_at.timestamp()),
        CLAIM_STATUS_LIST: {"v": version, "bits": 1, "n": size, "lst": zlib.compress(bits, 9)},
    }
    return sign1(cbor2.dumps(claims, canonical=True), key)


@dataclass(frozen=True)
class StatusList:
    """A status list whose signature has been checked against a trust list."""

    issuer: str
    issued_at: datetime
    version: int
    size: int
    kid: bytes
    bits: bytes

    def is_revoked(self, index: int) -> bool | None:
        """True/False for an index the list covers, None for one it does not."""
        if index < 0 or index >= self.size:
            return None
        return bool(self.bits[index // 8] >> (index % 8) & 1)

    def revoked_count(self) -> int:
        """How many bits are set."""
        return sum(bin(b).count("1") for b in self.bits)

    def to_json(self) -> dict[str, Any]:
        """Summary for screens and CLI output (not the bits); a fresh copy each call."""
        return dict(self._summary)

    @cached_property
    def _summary(self) -> dict[str, Any]:
        # Computed once: a checkpoint attaches it to every verification result.
        return {
            "issuer": self.issuer,
            "issued_at": self.issued_at.isoformat().replace("+00:00", "Z"),
            "version": self.version,
            "size": self.size,
            "kid": self.kid.hex(),
        }


def parse_status_list(data: bytes, *, trust: TrustList) -> StatusList:
    """Check a status list's signature against `trust` and read it; `StatusListError` if bad."""
    if not isinstance(data, bytes):
        raise StatusListError("a status list is bytes")
    try:
        message = parse_sign1(data)
    except CredentialFormatError as exc:
        raise StatusListError(f"status list is not a COSE_Sign1: {exc.message}") from exc
    key = trust.get(message.kid) if message.kid is not None else None
    if key is None:
        raise StatusListError("status list is signed by a key that is not trusted")
    if not signature_valid(message, key):
        raise StatusListError("status list signature does not verify")
    try:
        claims = decode_claims(message)
    except CredentialFormatError as exc:
        raise StatusListError(exc.message) from exc
    body = claims.get(CLAIM_STATUS_LIST)
    issuer, iat = claims.get(1), claims.get(6)
    if not (isinstance(body, dict) and isinstance(issuer, str) and type(iat) is int):
        raise StatusListError("status list claims are missing or mistyped")
    version, size, lst = body.get("v"), body.get("n"), body.get("lst")
    if not (type(version) is int and type(size) is int and isinstance(lst, bytes)):
        raise StatusListError("status list body is missing or mistyped")
    if body.get("bits", 1) != 1 or size <= 0 or size % 8 or size > MAX_BITS:
        raise StatusListError("status list size is out of range")
    inflater = zlib.decompressobj()
    try:
        bits = inflater.decompress(lst, size // 8)
    except zlib.error as exc:
        raise StatusListError("status list bits are not zlib") from exc
    if len(bits) != size // 8 or inflater.unconsumed_tail or not inflater.eof:
        raise StatusListError("status list bits do not match its size")
    try:
        issued_at = datetime.fromtimestamp(iat, UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise StatusListError("status list issue time is out of range") from exc
    assert message.kid is not None  # checked above (trust.get)
    return StatusList(
        issuer=issuer, issued_at=issued_at, version=version, size=size, kid=message.kid,
        bits=bits,
    )

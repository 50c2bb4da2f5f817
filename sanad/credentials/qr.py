"""The signed QR payload: CWT claims → COSE_Sign1 → zlib → Base45 → context prefix.

    SND1:<Base45( zlib( COSE_Sign1 [ protected{alg, kid}, {}, CWT claims, signature ] ) )>

Signing goes through pycose. Decoding is written here against RFC 9052 directly, strictly and
without trusting anything before the signature checks out: each layer that fails raises its own
`CredentialFormatError` subclass whose `code` is the reason a verifier reports. Verifying the
signature over our own parse of the protected header (rather than handing the bytes to a second
parser) means the header that is checked is exactly the header that is interpreted.

This module is the only place that knows the envelope; `card` knows the claims inside and
`sanad.verify` strings the two together.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import base45
import cbor2
import numpy as np
import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from sanad.credentials.keys import IssuerKey, PublicKey
from sanad.errors import SanadError

__all__ = [
    "ALG_EDDSA",
    "ALG_ES256",
    "ALG_PS256",
    "DEFAULT_PREFIX",
    "CredentialFormatError",
    "MalformedBase45",
    "MalformedClaims",
    "MalformedPrefix",
    "MalformedZlib",
    "NotCoseSign1",
    "SignedMessage",
    "UnsupportedAlg",
    "decode_claims",
    "decode_signed",
    "parse_sign1",
    "qr_png",
    "qr_version",
    "sign1",
    "sign_claims",
    "signature_valid",
]

DEFAULT_PREFIX = "SND1:"
ALG_EDDSA = -8  # COSE algorithm ids (IANA "COSE Algorithms")
ALG_ES256 = -7
ALG_PS256 = -37  # RSASSA-PSS with SHA-256, MGF1 SHA-256, salt length 32 (RFC 8230)
SUPPORTED_ALGS = frozenset({ALG_EDDSA, ALG_ES256, ALG_PS256})

QR_ERROR_LEVEL = "m"
# Nothing longer fits in any QR code (version 40-L holds 4296 alphanumeric characters), so a
# longer text cannot be a scanned credential; refusing it early bounds the work per input.
MAX_TEXT_LENGTH = 4296
# Bound on the inflated COSE message: a card is a few hundred bytes; the bound stops a
# "zip bomb" QR from making a checkpoint allocate megabytes.
MAX_INFLATED_BYTES = 16_384

_TAG_CWT = 61
_TAG_COSE_SIGN1 = 18
_HDR_ALG = 1
_HDR_CRIT = 2
_HDR_KID = 4
_UNDERSTOOD_HEADERS = frozenset({_HDR_ALG, _HDR_KID})


class CredentialFormatError(SanadError):
    """A credential could not be decoded; `code` says at which layer."""

    code = "malformed_credential"
    status = 422


class MalformedPrefix(CredentialFormatError):
    """The text does not start with an accepted context prefix."""

    code = "malformed_prefix"


class MalformedBase45(CredentialFormatError):
    """The text after the prefix is not Base45 (RFC 9285), or is too long to be a QR."""

    code = "malformed_base45"


class MalformedZlib(CredentialFormatError):
    """The Base45 bytes are not one complete zlib stream of bounded size."""

    code = "malformed_zlib"


class NotCoseSign1(CredentialFormatError):
    """The inflated bytes are not a well-formed COSE_Sign1 message."""

    code = "not_cose_sign1"


class UnsupportedAlg(CredentialFormatError):
    """The protected header names no algorithm, or one this verifier does not implement."""

    code = "unsupported_alg"


class MalformedClaims(CredentialFormatError):
    """The payload is not a CWT claims map of the expected shape."""

    code = "malformed_claims"


@dataclass(frozen=True)
class SignedMessage:
    """A parsed, not yet verified COSE_Sign1. Nothing in it is trustworthy on its own."""

    protected: bytes  # the protected header exactly as received: it is what was signed
    alg: int
    kid: bytes | None
    payload: bytes
    signature: bytes


def sign1(payload: bytes, key: IssuerKey) -> bytes:
    """A tagged COSE_Sign1 over `payload` by `key` (EdDSA, kid in the protected header)."""
    message = Sign1Message(phdr={Algorithm: EdDSA, KID: key.kid}, payload=payload)
    private = key.private_key
    message.key = OKPKey(
        crv="Ed25519",
        x=key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        d=private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        ),
    )
    cose: bytes = message.encode(tag=True)
    return cose


def sign_claims(claims: dict[int, Any], key: IssuerKey, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Sign a CWT claims map with `key` and return the QR text (`prefix` + Base45).

    The claims are encoded as canonical CBOR (RFC 8949 §4.2.1), and Ed25519 is deterministic,
    so the same claims and key always give the same COSE bytes.
    """
    cose = sign1(cbor2.dumps(claims, canonical=True), key)
    encoded: bytes = base45.b45encode(zlib.compress(cose, 9))
    return prefix + encoded.decode("ascii")


def _strict_cbor(data: bytes) -> Any:
    """Decode exactly one CBOR item that spans all of `data` (trailing bytes are an error)."""
    stream = io.BytesIO(data)
    item = cbor2.CBORDecoder(stream).decode()
    if stream.tell() != len(data):
        raise ValueError("trailing bytes after the CBOR item")
    return item


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise MalformedZlib(f"not a zlib stream: {exc}") from exc
    if inflater.unconsumed_tail:
        raise MalformedZlib(f"inflates beyond {MAX_INFLATED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise MalformedZlib("zlib stream truncated or followed by extra bytes")
    return out


def parse_sign1(cose: bytes) -> SignedMessage:
    try:
        item = _strict_cbor(cose)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise NotCoseSign1(f"not CBOR: {exc}") from exc
    # RFC 8392 allows a CWT tag around the COSE tag; RFC 9052 allows the COSE tag to be left
    # out where the context (here: the prefix) says what the message is.
    if isinstance(item, cbor2.CBORTag) and item.tag == _TAG_CWT:
        item = item.value
    if isinstance(item, cbor2.CBORTag) and item.tag == _TAG_COSE_SIGN1:
        item = item.value
    if not isinstance(item, list) or len(item) != 4:
        raise NotCoseSign1("not a COSE_Sign1 array of four elements")
    protected, unprotected, payload, signature = item
    if not (
        isinstance(protected, bytes)
        and isinstance(unprotected, dict)
        and isinstance(payload, bytes)  # a detached (nil) payload has nothing to verify here
        and isinstance(signature, bytes)
    ):
        raise NotCoseSign1("COSE_Sign1 elements have the wrong types")
    try:
        header = _strict_cbor(protected) if protected else {}
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise NotCoseSign1(f"protected header is not CBOR: {exc}") from exc
    if not isinstance(header, dict):
        raise NotCoseSign1("protected header is not a map")
    if _HDR_ALG in unprotected:
        # The algorithm must be integrity-protected; one in the clear is a downgrade lever.
        raise NotCoseSign1("algorithm in the unprotected header")
    crit = header.get(_HDR_CRIT)
    if crit is not None and (
        not isinstance(crit, list)
        or not crit
        or not all(type(label) is int and label in _UNDERSTOOD_HEADERS for label in crit)
    ):
        raise NotCoseSign1("critical header parameters this verifier does not understand")
    alg = header.get(_HDR_ALG)
    if type(alg) is not int or alg not in SUPPORTED_ALGS:
        raise UnsupportedAlg(f"algorithm {alg!r} is not supported")
    kid = header.get(_HDR_KID, unprotected.get(_HDR_KID))
    if kid is not None and not isinstance(kid, bytes):
        raise NotCoseSign1("kid is not a byte string")
    return SignedMessage(
        protected=protected, alg=alg, kid=kid, payload=payload, signature=signature
    )


_BASE45_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_VALUES = bytes.maketrans(_BASE45_ALPHABET, bytes(range(45)))


def b45decode(text: str) -> bytes:
    """Base45 (RFC 9285) decoding, vectorised with numpy; `ValueError` on any invalid input.

    The `base45` package decodes in pure Python, character by character, and was 40 % of a
    checkpoint's verification time; this gives identical results (a property test checks it
    against that package) at a fraction of the cost.
    """
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("not Base45: non-ASCII character") from None
    if raw.translate(None, _BASE45_ALPHABET):
        raise ValueError("not Base45: character outside the alphabet")
    if len(raw) % 3 == 1:
        raise ValueError("not Base45: dangling character")
    values = np.frombuffer(raw.translate(_BASE45_VALUES), dtype=np.uint8)
    full = len(values) - len(values) % 3
    triples = values[:full].reshape(-1, 3).astype(np.uint32)
    words = triples[:, 0] + triples[:, 1] * 45 + triples[:, 2] * 2025
    if words.size and int(words.max()) > 0xFFFF:
        raise ValueError("not Base45: chunk out of range")
    out = np.empty(words.size * 2, dtype=np.uint8)
    out[0::2] = words >> 8
    out[1::2] = words & 0xFF
    tail = b""
    if full < len(values):
        last = int(values[full]) + int(values[full + 1]) * 45
        if last > 0xFF:
            raise ValueError("not Base45: final chunk out of range")
        tail = bytes([last])
    return out.tobytes() + tail


def decode_signed(text: str, *, prefixes: tuple[str, ...] = (DEFAULT_PREFIX,)) -> SignedMessage:
    """Peel prefix, Base45, zlib and COSE_Sign1 off a scanned text. Does NOT check the signature.

    Raises the `CredentialFormatError` subclass of the first layer that fails. A trailing
    CR/LF (added by keyboard-wedge scanners) is ignored; nothing else is forgiven.
    """
    if not isinstance(text, str):
        raise MalformedPrefix("a credential is text")
    text = text.rstrip("\r\n")
    prefix = next((p for p in prefixes if p and text.startswith(p)), None)
    if prefix is None:
        raise MalformedPrefix("no accepted context prefix")
    body = text[len(prefix) :]
    if len(text) > MAX_TEXT_LENGTH:
        raise MalformedBase45("longer than any QR code can hold")
    try:
        compressed = b45decode(body)
    except ValueError as exc:
        raise MalformedBase45("not Base45") from exc
    return parse_sign1(_inflate(compressed))


def _bstr_head(length: int) -> bytes:
    # CBOR major type 2 (byte string) header, RFC 8949 §3.1.
    if length < 24:
        return bytes([0x40 | length])
    if length < 0x100:
        return bytes([0x58, length])
    if length < 0x10000:
        return b"\x59" + length.to_bytes(2, "big")
    return b"\x5a" + length.to_bytes(4, "big")


# 0x84: array of 4; 0x6a "Signature1": text of 10. External AAD is always empty (0x40).
_SIG1_HEAD = b"\x84\x6aSignature1"


def _sig_structure(message: SignedMessage) -> bytes:
    # RFC 9052 §4.4: ["Signature1", body_protected, external_aad (empty), payload], encoded
    # by hand: identical to cbor2.dumps of that list (a test checks) and several times faster.
    return b"".join((
        _SIG1_HEAD, _bstr_head(len(message.protected)), message.protected, b"\x40",
        _bstr_head(len(message.payload)), message.payload,
    ))


def signature_valid(message: SignedMessage, public_key: PublicKey) -> bool:
    """True when `message` carries a good signature by `public_key` for its declared alg.

    A key of the wrong type for the declared algorithm is simply not a match (False).
    """
    to_be_signed = _sig_structure(message)
    try:
        if message.alg == ALG_EDDSA and isinstance(public_key, Ed25519PublicKey):
            public_key.verify(message.signature, to_be_signed)
            return True
        if (
            message.alg == ALG_ES256
            and isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SECP256R1)
            and len(message.signature) == 64
        ):
            # COSE carries ECDSA signatures as fixed-width r||s, cryptography wants DER.
            r = int.from_bytes(message.signature[:32], "big")
            s = int.from_bytes(message.signature[32:], "big")
            public_key.verify(encode_dss_signature(r, s), to_be_signed, ec.ECDSA(hashes.SHA256()))
            return True
        if (
            message.alg == ALG_PS256
            and isinstance(public_key, rsa.RSAPublicKey)
            and public_key.key_size >= 2048  # RFC 8230 §2: smaller RSA keys MUST NOT be used
        ):
            public_key.verify(
                message.signature,
                to_be_signed,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
            return True
    except InvalidSignature:
        return False
    return False


def decode_claims(message: SignedMessage) -> dict[int, Any]:
    """The CWT claims map of a message (call after the signature checked out).

    Raises `MalformedClaims` when the payload is not one CBOR map.
    """
    try:
        claims = _strict_cbor(message.payload)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise MalformedClaims(f"payload is not CBOR: {exc}") from exc
    if not isinstance(claims, dict):
        raise MalformedClaims("payload is not a claims map")
    return claims


def _make_qr(text: str) -> segno.QRCode:
    # Error level M exactly (no boost), so the version the docs promise is the one printed;
    # segno picks alphanumeric mode itself because Base45 is the QR alphanumeric alphabet.
    return segno.make(text, error=QR_ERROR_LEVEL, boost_error=False, micro=False)


def qr_png(text: str, path: Path, *, scale: int = 4) -> None:
    """Render `text` as a PNG QR code (level M, 4-module quiet zone) at `path`."""
    _make_qr(text).save(str(path), kind="png", scale=scale, border=4)


def qr_version(text: str) -> int:
    """The QR version (1-40) `qr_png` uses for `text`."""
    version = _make_qr(text).version
    if not isinstance(version, int):  # only Micro QR versions are strings, and we never use them
        raise TypeError(f"unexpected QR version {version!r}")
    return version

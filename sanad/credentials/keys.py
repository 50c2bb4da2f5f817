"""Issuer signing keys on disk and the trust list a verifier checks signatures against.

An issuer key is an Ed25519 private key in a PEM (PKCS#8) file readable by its owner only. Its
key id (`kid`, carried in every credential's protected header) is the first 8 bytes of the
SHA-256 of the raw public key, so a verifier finds the right key without trying them all.
Rotation is a new key in the same directory and a moved `current` pointer; old keys stay so
the trust list keeps verifying cards they signed.

The trust list is a JWKS-shaped JSON document (RFC 7517) with the kid in hex. It holds public
keys only and is what a checkpoint downloads. It accepts Ed25519 keys (`OKP`) and P-256 keys
(`EC`, for ES256) so credentials from issuers that use ES256 verify too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from sanad.errors import SanadError

__all__ = [
    "IssuerKey",
    "KeyStoreError",
    "PublicKey",
    "TrustList",
    "TrustListError",
    "certificate_kid",
    "key_id",
    "load_or_create_issuer_key",
    "trust_list_from_keys_dir",
]

PublicKey: TypeAlias = Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
"""A key a verifier can check signatures with: Ed25519 (EdDSA), P-256 (ES256), RSA (PS256)."""

MIN_RSA_BITS = 2048

KID_LENGTH = 8
CURRENT_POINTER = "current"
_KEY_FILE = re.compile(r"issuer-([0-9a-f]{16})\.pem")


class KeyStoreError(SanadError):
    """An issuer key file or the keys directory is missing, unreadable or inconsistent."""

    code = "invalid_key_store"
    status = 500


class TrustListError(SanadError):
    """A trust list document is not a valid JWKS of supported public keys."""

    code = "invalid_trust_list"
    status = 422


def _raw_public_bytes(public_key: PublicKey) -> bytes:
    if isinstance(public_key, Ed25519PublicKey):
        return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    # For P-256 "raw" means the uncompressed SEC1 point 04||X||Y.
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def key_id(public_key: PublicKey) -> bytes:
    """The 8-byte kid of a public key: SHA-256 of its raw encoding, truncated."""
    return hashlib.sha256(_raw_public_bytes(public_key)).digest()[:KID_LENGTH]


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` atomically; the file never exists with wider permissions."""
    # A random suffix: two threads or processes writing the same file never share a temp file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _ensure_private_dir(directory: Path) -> None:
    # Only a directory we create is forced to 0700; an existing one keeps the mode its owner
    # chose (the key files themselves are 0600 either way).
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return
    os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask


class IssuerKey:
    """An Ed25519 issuer signing key with its kid. Build with `generate()` or `load()`."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("IssuerKey needs an Ed25519PrivateKey")
        self._private_key = private_key
        self._kid = key_id(private_key.public_key())

    @classmethod
    def generate(cls) -> IssuerKey:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> IssuerKey:
        """The key whose 32-byte private seed is `seed` (known-answer tests only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def kid(self) -> bytes:
        """8-byte key id carried in the credential's protected header."""
        return self._kid

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, for trust lists."""
        return self._private_key.public_key()

    @property
    def private_key(self) -> Ed25519PrivateKey:
        """The private key; only the signing code in `sanad.credentials` should need it."""
        return self._private_key

    def __repr__(self) -> str:
        # Never the key material: reprs end up in logs and tracebacks.
        return f"IssuerKey(kid={self._kid.hex()})"

    def save(self, path: Path) -> None:
        """Write the key as unencrypted PEM PKCS#8, mode 0600, atomically.

        The parent directory is created with mode 0700 when it does not exist. Encryption at
        rest is left to the deployment (disk encryption, or an HSM in production).
        """
        path = Path(path)
        _ensure_private_dir(path.parent)
        pem = self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(path, pem)

    @classmethod
    def load(cls, path: Path) -> IssuerKey:
        """Read a key written by `save`; `KeyStoreError` if it is missing or not Ed25519."""
        path = Path(path)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyStoreError(f"cannot read issuer key {path}: {exc.strerror}") from exc
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"{path} is not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
        return cls(key)


def _key_path(keys_dir: Path, kid: bytes) -> Path:
    return keys_dir / f"issuer-{kid.hex()}.pem"


def _load_current(keys_dir: Path) -> IssuerKey:
    pointer = keys_dir / CURRENT_POINTER
    try:
        kid_hex = pointer.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyStoreError(f"cannot read {pointer}: {exc}") from exc
    if not re.fullmatch(r"[0-9a-f]{16}", kid_hex):
        raise KeyStoreError(f"{pointer} does not hold a 16-hex-digit key id")
    key = IssuerKey.load(keys_dir / f"issuer-{kid_hex}.pem")
    if key.kid.hex() != kid_hex:
        raise KeyStoreError(f"issuer-{kid_hex}.pem holds a key whose kid is {key.kid.hex()}")
    return key


def load_or_create_issuer_key(keys_dir: Path) -> tuple[IssuerKey, bool]:
    """The current issuer key of `keys_dir`, creating one on first use.

    Returns `(key, created)`. Layout: `issuer-<kidhex>.pem` per key and a `current` file holding
    the current kid in hex. Idempotent, and safe when two processes start at once: the pointer
    is published with a hard link, which fails if it exists, so exactly one key wins and the
    loser discards its own.
    """
    keys_dir = Path(keys_dir)
    pointer = keys_dir / CURRENT_POINTER
    if pointer.exists():
        return _load_current(keys_dir), False

    _ensure_private_dir(keys_dir)
    key = IssuerKey.generate()
    key_path = _key_path(keys_dir, key.kid)
    key.save(key_path)
    tmp = keys_dir / f".{CURRENT_POINTER}.{secrets.token_hex(6)}.tmp"
    _write_private(tmp, (key.kid.hex() + "\n").encode("ascii"), mode=0o644)
    try:
        os.link(tmp, pointer)
    except FileExistsError:
        key_path.unlink()
        return _load_current(keys_dir), False
    finally:
        tmp.unlink()
    return key, True


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise TrustListError(f"{what} must be a base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TrustListError(f"{what} is not valid base64url") from exc


def _jwk_to_key(jwk: Mapping[str, Any]) -> PublicKey:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "OKP" and crv == "Ed25519":
            return Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk.get("x"), "x"))
        if kty == "EC" and crv == "P-256":
            x = _b64url_decode(jwk.get("x"), "x")
            y = _b64url_decode(jwk.get("y"), "y")
            if len(x) != 32 or len(y) != 32:
                raise TrustListError("P-256 coordinates must be 32 bytes each")
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
        if kty == "RSA":
            n = int.from_bytes(_b64url_decode(jwk.get("n"), "n"), "big")
            e = int.from_bytes(_b64url_decode(jwk.get("e"), "e"), "big")
            key = rsa.RSAPublicNumbers(e, n).public_key()
            if key.key_size < MIN_RSA_BITS:
                raise TrustListError(f"RSA keys need at least {MIN_RSA_BITS} bits")
            return key
    except ValueError as exc:  # cryptography's answer to a malformed or off-curve point
        raise TrustListError(f"invalid {kty}/{crv} public key: {exc}") from exc
    raise TrustListError(f"unsupported key type kty={kty!r} crv={crv!r}")


def _key_to_jwk(kid: bytes, key: PublicKey) -> dict[str, str]:
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {
            "kty": "RSA",
            "kid": kid.hex(),
            "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }
    if isinstance(key, Ed25519PublicKey):
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": kid.hex(),
            "x": _b64url(_raw_public_bytes(key)),
        }
    point = _raw_public_bytes(key)
    return {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid.hex(),
        "x": _b64url(point[1:33]),
        "y": _b64url(point[33:65]),
    }


def _check_supported(key: object) -> PublicKey:
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise TypeError(
        f"unsupported public key type {type(key).__name__} (Ed25519, P-256 or RSA >= 2048)"
    )


def certificate_kid(cert: x509.Certificate) -> bytes:
    """The kid of an X.509 trust entry: first 8 bytes of SHA-256 over the certificate's DER.

    This is the EU Digital COVID Certificate convention, so foreign credentials whose kid was
    derived from their signer certificate are found without any mapping table.
    """
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()[:KID_LENGTH]


class TrustList:
    """Public keys a verifier accepts, by kid. Immutable once built."""

    def __init__(self, keys: Mapping[bytes, PublicKey] | None = None) -> None:
        self._keys: dict[bytes, PublicKey] = {}
        for kid, key in (keys or {}).items():
            if not isinstance(kid, bytes) or not kid:
                raise TypeError("trust list kids must be non-empty bytes")
            self._keys[kid] = _check_supported(key)

    @classmethod
    def from_keys(cls, keys: Iterable[IssuerKey | PublicKey]) -> TrustList:
        """Trust each key (issuer keys contribute their public half) under its computed kid."""
        mapping: dict[bytes, PublicKey] = {}
        for item in keys:
            public = item.public_key if isinstance(item, IssuerKey) else _check_supported(item)
            mapping[key_id(public)] = public
        return cls(mapping)

    @classmethod
    def from_certificates(cls, certs: Iterable[x509.Certificate]) -> TrustList:
        """Trust each certificate's key directly, filed under both its certificate kid
        (`certificate_kid`) and its key kid (`key_id`, what sanad's own cards carry)."""
        mapping: dict[bytes, PublicKey] = {}
        for cert in certs:
            try:
                public = _check_supported(cert.public_key())
            except TypeError as exc:
                raise TrustListError(f"certificate {cert.subject.rfc4514_string()}: {exc}") from exc
            mapping[certificate_kid(cert)] = public
            mapping[key_id(public)] = public
        return cls(mapping)

    @classmethod
    def from_pem(cls, data: bytes) -> TrustList:
        """Trust every certificate in a PEM file (one or more `BEGIN CERTIFICATE` blocks)."""
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise TrustListError(f"not PEM X.509 certificates: {exc}") from exc
        return cls.from_certificates(certs)

    def merged(self, other: TrustList) -> TrustList:
        """A trust list holding the keys of both (`other` wins on a kid clash)."""
        return TrustList({**self._keys, **other._keys})

    def get(self, kid: bytes) -> PublicKey | None:
        """The key for `kid`, or None when it is not trusted."""
        return self._keys.get(kid)

    def kids(self) -> list[bytes]:
        """The trusted key ids, sorted."""
        return sorted(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.kids())

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def to_jwks(self) -> dict[str, Any]:
        """A JWKS document (`{"keys": [...]}`) with hex kids, sorted by kid."""
        return {"keys": [_key_to_jwk(kid, self._keys[kid]) for kid in self.kids()]}

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> TrustList:
        """Parse a JWKS document; `TrustListError` names what is wrong.

        A key's `kid` is hex. A key without one is filed under its computed kid; a foreign
        issuer's kid is taken as given (issuers derive kids in different ways).
        """
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise TrustListError('a trust list is a JSON object with a "keys" array')
        mapping: dict[bytes, PublicKey] = {}
        for i, jwk in enumerate(jwks["keys"]):
            if not isinstance(jwk, Mapping):
                raise TrustListError(f"keys[{i}] is not an object")
            key = _jwk_to_key(jwk)
            kid_hex = jwk.get("kid")
            if kid_hex is None:
                kid = key_id(key)
            elif isinstance(kid_hex, str) and re.fullmatch(r"(?:[0-9a-fA-F]{2})+", kid_hex):
                kid = bytes.fromhex(kid_hex)
            else:
                raise TrustListError(f"keys[{i}].kid must be a non-empty hex string")
            if kid in mapping:
                raise TrustListError(f"kid {kid.hex()} appears twice")
            mapping[kid] = key
        return cls(mapping)

    def save(self, path: Path) -> None:
        """Write the JWKS as JSON, atomically (public data: mode 0644)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_jwks(), indent=2, sort_keys=True) + "\n"
        _write_private(path, text.encode("utf-8"), mode=0o644)

    @classmethod
    def load(cls, path: Path) -> TrustList:
        """Read a JWKS file written by `save` (or by another issuer)."""
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TrustListError(f"cannot read trust list {path}: {exc.strerror}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TrustListError(f"{path} is not JSON") from exc
        return cls.from_jwks(document)


def trust_list_from_keys_dir(keys_dir: Path) -> TrustList:
    """A trust list of every `issuer-*.pem` in `keys_dir`, current and retired."""
    keys_dir = Path(keys_dir)
    keys = [
        IssuerKey.load(path)
        for path in sorted(keys_dir.glob("issuer-*.pem"))
        if _KEY_FILE.fullmatch(path.name)
    ]
    return TrustList.from_keys(keys)

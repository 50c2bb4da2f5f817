"""Keys of field-kit sync: the station's Ed25519 signing key and the centre's P-256 key.

The station key signs packets (COSE_Sign1, EdDSA); the centre registers its public half and
can revoke it. The central key receives packets (COSE_Encrypt, ECDH-ES + HKDF-256, A256GCM):
stations hold only its public half, so a captured kit cannot read its own queued packets.
P-256 rather than X25519 because pycose 1.1 implements ECDH only for EC2 keys.

Key ids are the first 8 bytes of SHA-256 over the raw public key, in hex (as for issuer keys).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from sanad.errors import InvalidInput, NotInitialised
from sanad.registry.sealing import write_private_file

CENTRAL_KEY_FILE = "sync-central.pem"


def _kid(raw: bytes) -> str:
    return hashlib.sha256(raw).digest()[:8].hex()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{field} is not base64url", field=field) from exc


def ed25519_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def station_kid(public: Ed25519PublicKey) -> str:
    return _kid(ed25519_raw(public))


def load_private_pem(path: Path) -> Any:
    if not path.exists():
        raise NotInitialised(f"key file missing: {path}")
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def save_private_pem(path: Path, key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(path, pem)


def new_station_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    save_private_pem(path, key)
    return key


def load_station_key(path: Path) -> Ed25519PrivateKey:
    key = load_private_pem(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 key", field="station_key")
    return key


@dataclass(frozen=True)
class CentralPublicKey:
    """The centre's public key as a station holds it (a small JWK-like JSON document)."""

    kid: str
    x: bytes
    y: bytes

    def to_json(self) -> dict[str, str]:
        return {"kty": "EC", "crv": "P-256", "kid": self.kid, "x": _b64(self.x),
                "y": _b64(self.y), "use": "enc"}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CentralPublicKey:
        if doc.get("kty") != "EC" or doc.get("crv") != "P-256":
            raise InvalidInput("central key must be an EC P-256 JWK", field="central_key")
        x = _unb64(str(doc.get("x", "")), "central_key.x")
        y = _unb64(str(doc.get("y", "")), "central_key.y")
        if len(x) != 32 or len(y) != 32:
            raise InvalidInput("central key coordinates must be 32 bytes", field="central_key")
        key = cls(kid=_kid(x + y), x=x, y=y)
        if doc.get("kid") not in (None, key.kid):
            raise InvalidInput("central key kid does not match the key", field="central_key.kid")
        # Fails on a point not on the curve.
        try:
            ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            ).public_key()
        except ValueError as exc:
            raise InvalidInput("central key is not a P-256 point", field="central_key") from exc
        return key

    @classmethod
    def load(cls, path: Path) -> CentralPublicKey:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not JSON", field="central_key") from exc
        return cls.from_json(doc)


@dataclass(frozen=True)
class CentralKey:
    """The centre's private packet-decryption key."""

    private: ec.EllipticCurvePrivateKey

    @property
    def public(self) -> CentralPublicKey:
        nums = self.private.public_key().public_numbers()
        x, y = nums.x.to_bytes(32, "big"), nums.y.to_bytes(32, "big")
        return CentralPublicKey(kid=_kid(x + y), x=x, y=y)

    @property
    def d(self) -> bytes:
        return self.private.private_numbers().private_value.to_bytes(32, "big")


def load_or_create_central_key(keys_dir: Path) -> tuple[CentralKey, bool]:
    """The centre's key under `keys_dir` (created on first use)."""
    path = keys_dir / CENTRAL_KEY_FILE
    if path.exists():
        key = load_private_pem(path)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidInput(f"{path} is not an EC key", field="central_key")
        return CentralKey(key), False
    private = ec.generate_private_key(ec.SECP256R1())
    save_private_pem(path, private)
    return CentralKey(private), True


def load_central_key(keys_dir: Path) -> CentralKey:
    path = keys_dir / CENTRAL_KEY_FILE
    if not path.exists():
        raise NotInitialised("central sync key missing: run `sanad kit central-key` on the centre")
    return load_or_create_central_key(keys_dir)[0]


def public_key_b64(public: Ed25519PublicKey) -> str:
    return _b64(ed25519_raw(public))


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    raw = _unb64(text, "public_key")
    if len(raw) != 32:
        raise InvalidInput("an Ed25519 public key is 32 bytes", field="public_key")
    return Ed25519PublicKey.from_public_bytes(raw)

"""Biometric templates sealed at rest with AES-256-GCM.

The key lives in a file outside the database (`$SANAD_HOME/keys/template.key`, mode 0600), so a
stolen database dump holds no usable biometrics. The associated data binds each ciphertext to its
person and modality: a template copied onto another person's row fails to open.
Per-record data keys wrapped by a key-encryption key (crypto-shredding) come with the
reliability issue; the sealed format carries a version byte for that migration.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sanad.errors import SanadError

_VERSION = b"\x01"


class SealError(SanadError):
    code = "template_unsealable"
    status = 500


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 (never world-readable, not even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class TemplateSealer:
    """Seal/open templates with one AES-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SealError("template key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, path: Path) -> TemplateSealer:
        if not path.exists():
            write_private_file(path, AESGCM.generate_key(bit_length=256))
        return cls(path.read_bytes())

    def seal(self, template: bytes, *, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, template, aad)

    def open(self, sealed: bytes, *, aad: bytes) -> bytes:
        if len(sealed) < 29 or sealed[:1] != _VERSION:
            raise SealError("sealed template has an unknown format")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], aad)
        except InvalidTag as exc:
            raise SealError("sealed template failed authentication") from exc

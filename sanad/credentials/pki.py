"""Two-level PKI, as in ICAO's: a root (CSCA-like) key certifies document-signer keys.

Layout of `keys_dir` (private files 0600, the directory 0700):

    root.pem                   the root's Ed25519 private key (offline in production, see below)
    root.crt                   the self-signed root certificate (PEM)
    issuer-<kidhex>.pem        a document-signer private key (`sanad.credentials.keys`)
    issuer-<kidhex>.crt        its certificate, issued by the root
    current                    the kid of the signer that signs new cards

Checkpoints pin the root (its SHA-256 fingerprint) and accept signer certificates that chain to
it, so a key rotation needs no new software or configuration at the checkpoint: the next trust
bundle carries the new signer's certificate. The trust bundle (`build_bundle`) is one JSON
document signed by the root: the root certificate, every signer certificate still needed, the
same keys as JWKS for other tools, and the current signed status list.

In production the root key lives offline (an HSM or an air-gapped machine) and `root.pem` is
absent from the issuing server; `ensure_pki` only creates one when no root certificate exists
yet, which is what a single-machine deployment or a test wants.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from sanad.credentials.keys import (
    CURRENT_POINTER,
    IssuerKey,
    KeyStoreError,
    TrustList,
    TrustListError,
    _check_supported,
    _write_private,
    load_or_create_issuer_key,
)

__all__ = [
    "BUNDLE_FORMAT",
    "LoadedTrust",
    "Pki",
    "build_bundle",
    "ensure_pki",
    "fingerprint",
    "load_trust",
    "parse_bundle",
    "rotate_signer",
]

BUNDLE_FORMAT = "sanad-trust-bundle/1"
ROOT_KEY_FILE = "root.pem"
ROOT_CERT_FILE = "root.crt"
ROOT_VALIDITY = timedelta(days=365 * 20)
# A signer signs cards for its usage period and must verify them until the last one expires:
# usage (up to 3 years between rotations) + card validity (2 years) + margin.
SIGNER_VALIDITY = timedelta(days=365 * 6)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the certificate's DER, hex: what a checkpoint pins for the root."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _root_certificate(key: Ed25519PrivateKey, issuer: str, now: datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{issuer} sanad root"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, None)
    )


def _signer_certificate(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate, signer: IssuerKey, now: datetime
) -> x509.Certificate:
    org = root_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    issuer = str(org[0].value) if org else "sanad"
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer),
                    x509.NameAttribute(
                        NameOID.COMMON_NAME, f"{issuer} document signer {signer.kid.hex()}"
                    ),
                ]
            )
        )
        .issuer_name(root_cert.subject)
        .public_key(signer.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + SIGNER_VALIDITY, root_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                root_key.public_key()
            ),
            critical=False,
        )
        .sign(root_key, None)
    )


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise KeyStoreError(f"cannot read certificate {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeyStoreError(f"{path} is not a PEM certificate") from exc


def _load_root_key(keys_dir: Path) -> Ed25519PrivateKey:
    path = keys_dir / ROOT_KEY_FILE
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise KeyStoreError(
            f"root key {path} is not available (it is kept offline in production): "
            f"{exc.strerror}"
        ) from exc
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyStoreError(f"{path} is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Pki:
    """The root certificate and the signer certificates found in a keys directory."""

    keys_dir: Path
    root_cert: x509.Certificate
    signer_certs: dict[bytes, x509.Certificate]
    current_kid: bytes

    def root_key(self) -> Ed25519PrivateKey:
        """The root's private key; `KeyStoreError` when it is kept offline (absent)."""
        return _load_root_key(self.keys_dir)


def ensure_pki(keys_dir: Path, *, issuer: str, now: datetime | None = None) -> Pki:
    """Make what is missing: a current signer key, the root, a certificate per signer key.

    Idempotent. A new root is made only when there is no root certificate at all; a signer
    without a certificate gets one only if the root key is present (`KeyStoreError` otherwise,
    naming the missing piece).
    """
    keys_dir = Path(keys_dir)
    now = now or datetime.now(UTC)
    current, _ = load_or_create_issuer_key(keys_dir)
    root_cert_path = keys_dir / ROOT_CERT_FILE
    if not root_cert_path.exists():
        root_key = Ed25519PrivateKey.generate()
        pem = root_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(keys_dir / ROOT_KEY_FILE, pem)
        cert = _root_certificate(root_key, issuer, now)
        _write_private(root_cert_path, _pem(cert).encode("ascii"), mode=0o644)
    root_cert = _load_cert(root_cert_path)
    certs: dict[bytes, x509.Certificate] = {}
    for key_path in sorted(keys_dir.glob("issuer-*.pem")):
        kid_hex = key_path.stem.removeprefix("issuer-")
        cert_path = keys_dir / f"issuer-{kid_hex}.crt"
        if not cert_path.exists():
            signer = IssuerKey.load(key_path)
            cert = _signer_certificate(_load_root_key(keys_dir), root_cert, signer, now)
            _write_private(cert_path, _pem(cert).encode("ascii"), mode=0o644)
        certs[bytes.fromhex(kid_hex)] = _load_cert(cert_path)
    return Pki(keys_dir=keys_dir, root_cert=root_cert, signer_certs=certs, current_kid=current.kid)


def rotate_signer(keys_dir: Path, *, issuer: str, now: datetime | None = None) -> IssuerKey:
    """Make a new document-signer key with a new kid, certify it, and make it current.

    The old keys and certificates stay: cards they signed keep verifying. The `current`
    pointer is replaced atomically, after the new key and certificate are on disk.
    """
    keys_dir = Path(keys_dir)
    pki = ensure_pki(keys_dir, issuer=issuer, now=now)
    root_key = pki.root_key()  # first: without the root, leave no uncertified key behind
    key = IssuerKey.generate()
    key.save(keys_dir / f"issuer-{key.kid.hex()}.pem")
    cert = _signer_certificate(root_key, pki.root_cert, key, now or datetime.now(UTC))
    _write_private(
        keys_dir / f"issuer-{key.kid.hex()}.crt", _pem(cert).encode("ascii"), mode=0o644
    )
    _write_private(
        keys_dir / CURRENT_POINTER, (key.kid.hex() + "\n").encode("ascii"), mode=0o644
    )
    return key


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_bundle(
    pki: Pki,
    *,
    kids: Iterable[bytes],
    status_list: bytes | None,
    now: datetime | None = None,
) -> bytes:
    """The trust bundle checkpoints download, signed by the root (JSON, UTF-8).

    `kids` selects the signer certificates to include (the caller drops retired signers whose
    last card has expired). `status_list` is the signed status list (COSE bytes) or None.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    certs = [pki.signer_certs[k] for k in sorted(set(kids)) if k in pki.signer_certs]
    trust = TrustList.from_keys([_check_supported(c.public_key()) for c in certs])
    body: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "issued_at": now.isoformat().replace("+00:00", "Z"),
        "root_certificate": _pem(pki.root_cert),
        "root_sha256": fingerprint(pki.root_cert),
        "signer_certificates": [_pem(c) for c in certs],
        "jwks": trust.to_jwks(),
        "status_list": base64.b64encode(status_list).decode("ascii") if status_list else None,
    }
    signature = pki.root_key().sign(_canonical(body))
    document = {"bundle": body, "signature": base64.b64encode(signature).decode("ascii")}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True)
class LoadedTrust:
    """What a verifier reads from a trust file: keys, and a status list when the file has one."""

    trust: TrustList
    status_list: bytes | None = None
    root_sha256: str | None = None
    issued_at: str | None = None


def parse_bundle(
    document: Mapping[str, Any], *, pinned_root_sha256: str | None = None
) -> LoadedTrust:
    """Check a trust bundle: root self-signed (and pinned if asked), bundle signature by the
    root, every signer certificate issued by the root and not a CA. `TrustListError` otherwise.
    """
    body = document.get("bundle")
    signature = document.get("signature")
    if not isinstance(body, dict) or not isinstance(signature, str):
        raise TrustListError('a trust bundle has a "bundle" object and a "signature"')
    if body.get("format") != BUNDLE_FORMAT:
        raise TrustListError(f"unknown trust bundle format {body.get('format')!r}")
    try:
        root = x509.load_pem_x509_certificate(str(body["root_certificate"]).encode("ascii"))
        signers = [
            x509.load_pem_x509_certificate(str(pem).encode("ascii"))
            for pem in body["signer_certificates"]
        ]
        sig = base64.b64decode(signature, validate=True)
        status = body.get("status_list")
        status_bytes = base64.b64decode(status, validate=True) if status else None
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise TrustListError(f"trust bundle is malformed: {exc}") from exc
    root_fp = fingerprint(root)
    if pinned_root_sha256 is not None and root_fp != pinned_root_sha256.lower():
        raise TrustListError(f"trust bundle root {root_fp} is not the pinned root")
    root_key = root.public_key()
    if not isinstance(root_key, Ed25519PublicKey):
        raise TrustListError("the root key must be Ed25519")
    try:
        root.verify_directly_issued_by(root)
        root_key.verify(sig, _canonical(body))
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise TrustListError("trust bundle signature does not verify with its root") from exc
    for cert in signers:
        try:
            cert.verify_directly_issued_by(root)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise TrustListError(
                f"signer certificate {cert.subject.rfc4514_string()} is not issued by the root"
            ) from exc
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise TrustListError("a signer certificate must not be a CA")
    return LoadedTrust(
        trust=TrustList.from_certificates(signers),
        status_list=status_bytes,
        root_sha256=root_fp,
        issued_at=str(body.get("issued_at")),
    )


def load_trust(path: Path, *, pinned_root_sha256: str | None = None) -> LoadedTrust:
    """Read a trust file of any accepted kind, told apart by content:

    a sanad trust bundle (JSON, checked against its root), a JWKS (JSON with "keys"), or PEM
    X.509 certificates trusted directly (kid = first 8 bytes of SHA-256 over the DER).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustListError(f"cannot read trust file {path}: {exc.strerror}") from exc
    if not data.lstrip().startswith(b"{") and b"-----BEGIN CERTIFICATE-----" in data:
        return LoadedTrust(trust=TrustList.from_pem(data))
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrustListError(f"{path} is neither JSON nor PEM certificates") from exc
    if isinstance(document, dict) and "bundle" in document:
        return parse_bundle(document, pinned_root_sha256=pinned_root_sha256)
    if pinned_root_sha256 is not None:
        raise TrustListError("a pinned root needs a trust bundle, not a bare key list")
    return LoadedTrust(trust=TrustList.from_jwks(document))


def write_public(path: Path, data: bytes) -> None:
    """Write a public artefact (bundle, certificate, status list) atomically, mode 0644."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


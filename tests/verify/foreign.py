"""A foreign issuer, built here with `cryptography` and `cbor2` only (no sanad signing code):
X.509 signer certificates with ES256 (P-256) or PS256 (RSA) keys, kid = first 8 bytes of the
SHA-256 of the certificate's DER (the EU Digital COVID Certificate convention), any prefix."""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import base45
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ES256, PS256 = -7, -37
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class ForeignIssuer:
    """A signer with a self-signed certificate that can make credentials of any shape."""

    def __init__(self, alg: int, *, country: str = "XF", rsa_bits: int = 2048) -> None:
        self.alg = alg
        if alg == ES256:
            self.key: Any = ec.generate_private_key(ec.SECP256R1())
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"DSC {country} {alg}")])
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=365))
            .not_valid_after(NOW + timedelta(days=365))
            .sign(self.key, hashes.SHA256())
        )
        self.kid = hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).digest()[:8]

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def _sign(self, data: bytes) -> bytes:
        if self.alg == ES256:
            r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return bytes(self.key.sign(
            data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256()))

    def credential(
        self, claims: dict[Any, Any], *, prefix: str = "HC1:", kid_unprotected: bool = False,
        tag: bool = True,
    ) -> str:
        protected_map: dict[int, Any] = {1: self.alg}
        unprotected: dict[int, Any] = {}
        if kid_unprotected:
            unprotected[4] = self.kid
        else:
            protected_map[4] = self.kid
        protected = cbor2.dumps(protected_map)
        payload = cbor2.dumps(claims)
        signature = self._sign(cbor2.dumps(["Signature1", protected, b"", payload]))
        body: Any = [protected, unprotected, payload, signature]
        cose = cbor2.dumps(cbor2.CBORTag(18, body) if tag else body)
        encoded: bytes = base45.b45encode(zlib.compress(cose))
        return prefix + encoded.decode("ascii")


def health_claims(**overrides: Any) -> dict[Any, Any]:
    """EU-DCC-shaped claims: iss, iat, exp and a -260 certificate map sanad knows nothing of."""
    claims: dict[Any, Any] = {
        1: "XF",
        6: int((NOW - timedelta(days=10)).timestamp()),
        4: int((NOW + timedelta(days=170)).timestamp()),
        -260: {1: {"ver": "1.3.0", "nam": {"fn": "Musterfrau", "gn": "Erika"},
                   "dob": "1964-08-12", "v": [{"dn": 2, "sd": 2, "tg": "840539006"}]}},
    }
    claims.update(overrides)
    return claims

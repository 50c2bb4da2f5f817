"""``sanad bench verify``: offline verifications per second on one core, against the raw
signature check they are built on.

A checkpoint's whole job per card: peel prefix, Base45, zlib and COSE_Sign1; look the kid up
in the trust list; check the Ed25519 signature; decode and type-check the claims; check the
validity period and the status-list bit. The baseline is `cryptography`'s bare Ed25519
`verify` of the same signature over the same Sig_structure bytes, measured in the same run,
so the ratio says how much the credential layers cost on top of the cryptography itself
(goal: at least 0.5). Both loops run in this one Python thread: one core.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import cbor2
import numpy as np

from sanad.bench import BenchmarkParamError, BenchResult
from sanad.credentials.card import CardClaims, issue_qr
from sanad.credentials.keys import IssuerKey, TrustList
from sanad.credentials.qr import decode_signed, qr_version
from sanad.credentials.status import encode_status_list, parse_status_list
from sanad.verify import verify


def _rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    """Best calls-per-second of `fn` over `repeats` rounds of `n` calls (the least disturbed
    round on a shared machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def run_verify(*, n: int = 3000, repeats: int = 5, trusted_keys: int = 20,
               seed: int = 0) -> BenchResult:
    """Verify one typical card (128-byte face template, Arabic names, status index) `n`
    times per round; a trust list of `trusted_keys` keys and a 131072-card status list."""
    if n < 1 or repeats < 1 or trusted_keys < 1:
        raise BenchmarkParamError("n, repeats and trusted_keys must be at least 1")
    rng = np.random.default_rng(seed)
    key = IssuerKey.generate()
    others = [IssuerKey.generate() for _ in range(trusted_keys - 1)]
    trust = TrustList.from_keys([key, *others])
    now = datetime.now(UTC).replace(microsecond=0)
    template = rng.integers(-127, 128, size=128, dtype=np.int8).tobytes()
    claims = CardClaims(
        card_id=secrets.token_bytes(16), card_number="482057314", issuer="UTO-RA",
        issued_at=now, not_before=now, expires_at=now + timedelta(days=730),
        given_name="Amira Nour", family_name="Al-Hassan", given_name_ar="أميرة نور",
        family_name_ar="الحسن", date_of_birth="1990-05-17", dob_precision="exact", sex="F",
        nationality="SYR", status_index=12_345, face_template=template,
    )
    qr = issue_qr(claims, key)
    revoked = rng.choice(131_072, size=500, replace=False).tolist()
    revoked = [i for i in revoked if i != 12_345]
    status = parse_status_list(
        encode_status_list(revoked=revoked, allocated=131_072, version=1, issuer="UTO-RA",
                           issued_at=now, key=key),
        trust=trust,
    )
    at = now + timedelta(hours=1)
    result = verify(qr, trust=trust, at=at, status=status, require_status=True)
    if not result.valid:  # the benchmark must measure the success path
        raise RuntimeError(f"benchmark card does not verify: {result.reasons}")

    message = decode_signed(qr)
    to_be_signed = cbor2.dumps(["Signature1", message.protected, b"", message.payload])
    public = key.public_key
    signature = message.signature

    def full() -> object:
        return verify(qr, trust=trust, at=at, status=status, require_status=True)

    def raw() -> None:
        public.verify(signature, to_be_signed)

    # Interleaved rounds: both contenders see the same background load.
    full_rate = raw_rate = 0.0
    for _ in range(repeats):
        full_rate = max(full_rate, _rate(full, n, 1))
        raw_rate = max(raw_rate, _rate(raw, n, 1))
    return BenchResult(
        name="verify",
        params={"n": n, "repeats": repeats, "trusted_keys": trusted_keys, "seed": seed},
        figures={
            "verify_per_s": round(full_rate, 1),
            "raw_verify_per_s": round(raw_rate, 1),
            "ratio_vs_raw": round(full_rate / raw_rate, 3),
            "us_per_verify": round(1e6 / full_rate, 1),
            "qr_chars": float(len(qr)),
            "qr_version": float(qr_version(qr)),
        },
        notes={
            "method": "best of `repeats` interleaved rounds of `n` calls each, one thread; "
            "verify = prefix+Base45+zlib+COSE parse, kid lookup, Ed25519, claims, validity, "
            "status bit; raw = cryptography Ed25519PublicKey.verify on the same bytes",
            "goal": "ratio_vs_raw >= 0.5",
        },
    )

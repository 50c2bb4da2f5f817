"""Foreign credentials: another prefix, ES256/PS256 keys in X.509 certificates trusted from a
PEM file, claims sanad does not know, kid in the protected or the unprotected header."""

from __future__ import annotations

import zlib
from datetime import timedelta
from pathlib import Path

import base45
import cbor2
import pytest

from sanad.credentials.keys import TrustList, TrustListError
from sanad.credentials.pki import load_trust
from sanad.verify import REASONS, verify
from tests.verify.foreign import ES256, NOW, PS256, ForeignIssuer, health_claims

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@pytest.fixture(scope="module")
def issuers() -> dict[int, ForeignIssuer]:
    return {ES256: ForeignIssuer(ES256), PS256: ForeignIssuer(PS256, country="XP")}


@pytest.fixture(scope="module")
def trust(issuers: dict[int, ForeignIssuer], tmp_path_factory: pytest.TempPathFactory) -> TrustList:
    path = tmp_path_factory.mktemp("trust") / "dsc.pem"
    path.write_bytes(b"".join(i.pem() for i in issuers.values()))
    return load_trust(path).trust


@pytest.mark.parametrize("alg", [ES256, PS256], ids=["ES256", "PS256"])
@pytest.mark.parametrize("kid_unprotected", [False, True], ids=["kid-protected", "kid-unprot"])
def test_foreign_credential_verifies(issuers, trust, alg, kid_unprotected) -> None:
    issuer = issuers[alg]
    text = issuer.credential(health_claims(), kid_unprotected=kid_unprotected)
    result = verify(text, trust=trust, at=NOW, prefixes=("SND1:", "HC1:"), require_status=True)
    assert result.valid, result.reasons
    assert result.kid == issuer.kid.hex()
    assert result.claims is not None
    assert result.claims["iss"] == "XF"
    assert result.claims["-260"]["1"]["nam"] == {"fn": "Musterfrau", "gn": "Erika"}
    assert result.status is None  # no status index: a status list does not apply


def test_foreign_prefix_must_be_accepted(issuers, trust) -> None:
    text = issuers[ES256].credential(health_claims(), prefix="HC1:")
    assert verify(text, trust=trust, at=NOW).reasons == ("malformed_prefix",)
    other = issuers[ES256].credential(health_claims(), prefix="XYZ:")
    assert verify(other, trust=trust, at=NOW, prefixes=("XYZ:",)).valid


def test_untagged_cose_and_time_checks(issuers, trust) -> None:
    text = issuers[PS256].credential(health_claims(), tag=False)
    assert verify(text, trust=trust, at=NOW, prefixes=("HC1:",)).valid
    late = NOW + timedelta(days=171)
    assert verify(text, trust=trust, at=late, prefixes=("HC1:",)).reasons == ("expired",)
    early = NOW - timedelta(days=11)
    assert verify(text, trust=trust, at=early, prefixes=("HC1:",)).reasons == ("not_yet_valid",)


@pytest.mark.parametrize("alg", [ES256, PS256], ids=["ES256", "PS256"])
def test_every_single_character_change_fails(issuers, trust, alg) -> None:
    text = issuers[alg].credential(health_claims())
    # Every position after the prefix, with a deterministic replacement character.
    for i in range(4, len(text)):
        replacement = next(c for c in BASE45[i % 45:] + BASE45 if c != text[i])
        tampered = text[:i] + replacement + text[i + 1:]
        result = verify(tampered, trust=trust, at=NOW, prefixes=("HC1:",))
        assert not result.valid, i
        assert result.reasons and set(result.reasons) <= set(REASONS)
        assert result.claims is None


def test_altered_claims_are_a_bad_signature(issuers, trust) -> None:
    issuer = issuers[ES256]
    good = issuer.credential(health_claims())
    # Same kid, same alg, other claims: a signature from this key over different bytes.
    protected, unprotected, _payload, signature = cbor2.loads(
        zlib.decompress(base45.b45decode(good[4:]))).value
    forged_payload = cbor2.dumps({**health_claims(), 1: "XX"})
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, forged_payload, signature]))
    text = "HC1:" + base45.b45encode(zlib.compress(forged)).decode()
    assert verify(text, trust=trust, at=NOW, prefixes=("HC1:",)).reasons == ("bad_signature",)


def test_unknown_issuer_and_weak_keys(issuers, trust, tmp_path: Path) -> None:
    stranger = ForeignIssuer(ES256, country="ZZ")
    text = stranger.credential(health_claims())
    result = verify(text, trust=trust, at=NOW, prefixes=("HC1:",))
    assert result.reasons == ("unknown_key",) and result.kid == stranger.kid.hex()
    weak = tmp_path / "weak.pem"
    weak.write_bytes(ForeignIssuer(PS256, rsa_bits=1024).pem())
    with pytest.raises(TrustListError, match="RSA >= 2048"):
        load_trust(weak)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(TrustListError):
        load_trust(junk)


def test_a_key_of_another_algorithm_under_the_same_kid_is_a_bad_signature(issuers) -> None:
    # The ES256 issuer's kid mapped to the PS256 issuer's key: alg/key mismatch never verifies.
    es, ps = issuers[ES256], issuers[PS256]
    confused = TrustList({es.kid: ps.key.public_key()})
    text = es.credential(health_claims())
    assert verify(text, trust=confused, at=NOW, prefixes=("HC1:",)).reasons == ("bad_signature",)


def test_jwks_round_trip_keeps_rsa_and_ec(trust: TrustList) -> None:
    again = TrustList.from_jwks(trust.to_jwks())
    assert again.kids() == trust.kids()

import hashlib
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sanad.credentials.keys import (
    IssuerKey,
    KeyStoreError,
    TrustList,
    TrustListError,
    key_id,
    load_or_create_issuer_key,
    trust_list_from_keys_dir,
)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_kid_is_sha256_of_raw_public_key_truncated():
    key = IssuerKey.generate()
    raw = key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key.kid == hashlib.sha256(raw).digest()[:8]
    assert key_id(key.public_key) == key.kid
    assert key.kid.hex() in repr(key)


def test_save_load_round_trip_with_private_modes(tmp_path):
    key = IssuerKey.generate()
    path = tmp_path / "new" / "dir" / "issuer.pem"
    key.save(path)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = IssuerKey.load(path)
    assert loaded.kid == key.kid
    assert [p.name for p in path.parent.iterdir()] == ["issuer.pem"]  # no temp file left


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "k.pem"
    IssuerKey.generate().save(path)
    second = IssuerKey.generate()
    second.save(path)
    assert IssuerKey.load(path).kid == second.kid
    assert mode(path) == 0o600


def test_load_missing_file(tmp_path):
    with pytest.raises(KeyStoreError) as info:
        IssuerKey.load(tmp_path / "nope.pem")
    assert info.value.code == "invalid_key_store"


def test_load_rejects_non_ed25519_and_garbage(tmp_path):
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "rsa.pem").write_bytes(rsa_pem)
    (tmp_path / "junk.pem").write_bytes(b"not a key")
    for name in ("rsa.pem", "junk.pem"):
        with pytest.raises(KeyStoreError):
            IssuerKey.load(tmp_path / name)


def test_load_or_create_is_idempotent(tmp_path):
    keys_dir = tmp_path / "keys"
    key, created = load_or_create_issuer_key(keys_dir)
    assert created
    assert mode(keys_dir) == 0o700
    assert (keys_dir / "current").read_text().strip() == key.kid.hex()
    assert (keys_dir / f"issuer-{key.kid.hex()}.pem").exists()
    again, created_again = load_or_create_issuer_key(keys_dir)
    assert not created_again
    assert again.kid == key.kid
    assert sorted(p.name for p in keys_dir.iterdir()) == [
        "current",
        f"issuer-{key.kid.hex()}.pem",
    ]


def test_load_or_create_concurrently_yields_one_key(tmp_path):
    keys_dir = tmp_path / "keys"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: load_or_create_issuer_key(keys_dir), range(16)))
    assert len({key.kid for key, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(list(keys_dir.glob("issuer-*.pem"))) == 1
    assert not list(keys_dir.glob(".*"))


@pytest.mark.parametrize("pointer", ["zz", "0123456789abcdef", ""])
def test_bad_current_pointer(tmp_path, pointer):
    load_or_create_issuer_key(tmp_path)
    (tmp_path / "current").write_text(pointer)
    with pytest.raises(KeyStoreError):
        load_or_create_issuer_key(tmp_path)


def test_current_pointing_at_a_key_with_another_kid(tmp_path):
    key, _ = load_or_create_issuer_key(tmp_path)
    IssuerKey.generate().save(tmp_path / f"issuer-{key.kid.hex()}.pem")
    with pytest.raises(KeyStoreError):
        load_or_create_issuer_key(tmp_path)


def test_trust_list_from_keys_dir_keeps_retired_keys(tmp_path):
    old, _ = load_or_create_issuer_key(tmp_path)
    (tmp_path / "current").unlink()  # rotation: a new key becomes current
    new, created = load_or_create_issuer_key(tmp_path)
    assert created and new.kid != old.kid
    (tmp_path / "notes.pem").write_text("ignored: not an issuer-<kid>.pem file")
    trust = trust_list_from_keys_dir(tmp_path)
    assert trust.kids() == sorted([old.kid, new.kid])
    assert trust.get(old.kid) is not None
    assert trust.get(b"\x00" * 8) is None


def p256_public() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


def test_jwks_round_trip_ed25519_and_p256(tmp_path):
    issuer = IssuerKey.generate()
    p256 = p256_public()
    trust = TrustList.from_keys([issuer, p256])
    jwks = trust.to_jwks()
    assert {k["kty"] for k in jwks["keys"]} == {"OKP", "EC"}
    assert all(set(k) >= {"kty", "crv", "kid", "x"} for k in jwks["keys"])
    json.dumps(jwks)  # JSON-serialisable
    back = TrustList.from_jwks(jwks)
    assert back.kids() == trust.kids()
    back_key = back.get(issuer.kid)
    assert isinstance(back_key, Ed25519PublicKey)
    assert back_key.public_bytes_raw() == issuer.public_key.public_bytes_raw()
    path = tmp_path / "trust" / "jwks.json"
    trust.save(path)
    loaded = TrustList.load(path)
    assert loaded.to_jwks() == jwks
    assert len(loaded) == 2 and issuer.kid in loaded


def test_jwks_key_without_kid_gets_computed_kid_and_foreign_kid_is_kept():
    issuer = IssuerKey.generate()
    jwk = TrustList.from_keys([issuer]).to_jwks()["keys"][0]
    del jwk["kid"]
    assert TrustList.from_jwks({"keys": [jwk]}).kids() == [issuer.kid]
    jwk["kid"] = "00112233445566778899"
    assert TrustList.from_jwks({"keys": [jwk]}).kids() == [bytes.fromhex(jwk["kid"])]


def _ok_jwk() -> dict[str, str]:
    jwk: dict[str, str] = TrustList.from_keys([IssuerKey.generate()]).to_jwks()["keys"][0]
    return jwk


@pytest.mark.parametrize(
    "document",
    [
        [],
        {},
        {"keys": {}},
        {"keys": ["x"]},
        {"keys": [{**_ok_jwk(), "kty": "RSA"}]},
        {"keys": [{**_ok_jwk(), "crv": "Ed448"}]},
        {"keys": [{**_ok_jwk(), "x": "AAAA"}]},
        {"keys": [{**_ok_jwk(), "x": 5}]},
        {"keys": [{**_ok_jwk(), "x": "!!!"}]},
        {"keys": [{**_ok_jwk(), "kid": "xyz"}]},
        {"keys": [{**_ok_jwk(), "kid": ""}]},
        {"keys": [{**_ok_jwk(), "kid": "abc"}]},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43}]},  # off-curve
    ],
)
def test_from_jwks_rejects(document):
    with pytest.raises(TrustListError) as info:
        TrustList.from_jwks(document)
    assert info.value.code == "invalid_trust_list"


def test_from_jwks_rejects_duplicate_kid():
    jwk = _ok_jwk()
    with pytest.raises(TrustListError):
        TrustList.from_jwks({"keys": [jwk, dict(jwk)]})


def test_load_rejects_unreadable_or_non_json(tmp_path):
    with pytest.raises(TrustListError):
        TrustList.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TrustListError):
        TrustList.load(tmp_path / "bad.json")


def test_trust_list_refuses_unsupported_key_types():
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(TypeError):
        TrustList.from_keys([p384])

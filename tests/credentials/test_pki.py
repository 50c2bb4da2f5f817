"""Two-level PKI: root → document signers, rotation, the root-signed trust bundle."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography import x509

from sanad.credentials.card import issue_qr
from sanad.credentials.keys import IssuerKey, KeyStoreError, TrustListError, certificate_kid
from sanad.credentials.pki import (
    build_bundle,
    ensure_pki,
    fingerprint,
    load_trust,
    parse_bundle,
    rotate_signer,
)
from sanad.credentials.status import encode_status_list, parse_status_list
from sanad.verify import verify
from tests.credentials.cards import VERIFY_AT, random_claims
from tests.verify.foreign import ES256, ForeignIssuer

ISSUER = "SANAD-TEST"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_root_certifies_signers_and_private_files_are_0600(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pki = ensure_pki(keys, issuer=ISSUER)
    assert ensure_pki(keys, issuer=ISSUER).root_cert == pki.root_cert  # idempotent
    assert _mode(keys) == 0o700
    for private in [keys / "root.pem", *keys.glob("issuer-*.pem")]:
        assert _mode(private) == 0o600, private
    (kid, cert), = pki.signer_certs.items()
    assert kid == pki.current_kid
    cert.verify_directly_issued_by(pki.root_cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    root_bc = pki.root_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert root_bc.ca is True


def test_rotation_keeps_old_cards_verifying(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pki = ensure_pki(keys, issuer=ISSUER)
    old_key = IssuerKey.load(keys / f"issuer-{pki.current_kid.hex()}.pem")
    old_card = issue_qr(random_claims(status_index=3), old_key)
    new_key = rotate_signer(keys, issuer=ISSUER)
    assert new_key.kid != old_key.kid
    assert (keys / "current").read_text().strip() == new_key.kid.hex()
    new_card = issue_qr(random_claims(status_index=4), new_key)
    pki = ensure_pki(keys, issuer=ISSUER)
    status = encode_status_list(revoked=[4], allocated=5, version=2, issuer="SANAD-TEST",
                                issued_at=VERIFY_AT, key=new_key)
    bundle_path = tmp_path / "trust.json"
    bundle_path.write_bytes(build_bundle(pki, kids=pki.signer_certs, status_list=status,
                                         now=VERIFY_AT))
    loaded = load_trust(bundle_path, pinned_root_sha256=fingerprint(pki.root_cert))
    assert loaded.status_list == status
    parsed = parse_status_list(status, trust=loaded.trust)
    # A card signed by the rotated-out (still trusted) key verifies; the new one is revoked.
    assert verify(old_card, trust=loaded.trust, at=VERIFY_AT, status=parsed).valid
    assert verify(new_card, trust=loaded.trust, at=VERIFY_AT, status=parsed).reasons == (
        "revoked",)
    # Once the old key is dropped from the bundle (its last card expired), it is unknown.
    only_new = tmp_path / "only-new.json"
    only_new.write_bytes(build_bundle(pki, kids=[new_key.kid], status_list=None))
    assert verify(old_card, trust=load_trust(only_new).trust,
                  at=VERIFY_AT).reasons == ("unknown_key",)


def test_bundle_is_checked_against_its_root(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pki = ensure_pki(keys, issuer=ISSUER)
    document = json.loads(build_bundle(pki, kids=pki.signer_certs, status_list=None))
    assert parse_bundle(document).root_sha256 == fingerprint(pki.root_cert)
    with pytest.raises(TrustListError, match="not the pinned root"):
        parse_bundle(document, pinned_root_sha256="00" * 32)

    tampered = json.loads(json.dumps(document))
    tampered["bundle"]["issued_at"] = "2000-01-01T00:00:00Z"
    with pytest.raises(TrustListError, match="signature"):
        parse_bundle(tampered)

    # A signer certificate slipped in from outside the root's hierarchy.
    stranger = ForeignIssuer(ES256).pem().decode()
    smuggled = json.loads(json.dumps(document))
    smuggled["bundle"]["signer_certificates"].append(stranger)
    with pytest.raises(TrustListError):
        parse_bundle(smuggled)

    # A whole bundle re-signed by another root is refused when the root is pinned.
    other = ensure_pki(tmp_path / "other", issuer=ISSUER)
    forged = json.loads(build_bundle(other, kids=other.signer_certs, status_list=None))
    parse_bundle(forged)  # self-consistent ...
    with pytest.raises(TrustListError, match="pinned"):
        parse_bundle(forged, pinned_root_sha256=fingerprint(pki.root_cert))

    for bad in ({}, {"bundle": {"format": "x"}, "signature": ""},
                {"bundle": {**document["bundle"], "root_certificate": "junk"},
                 "signature": document["signature"]}):
        with pytest.raises(TrustListError):
            parse_bundle(bad)


def test_trust_file_kinds(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pki = ensure_pki(keys, issuer=ISSUER)
    (kid, cert), = pki.signer_certs.items()
    pem = tmp_path / "signer.pem"
    pem.write_bytes((keys / f"issuer-{kid.hex()}.crt").read_bytes())
    from_pem = load_trust(pem).trust
    assert kid in from_pem and certificate_kid(cert) in from_pem  # both kid conventions
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(json.loads(
        build_bundle(pki, kids=[kid], status_list=None))["bundle"]["jwks"]))
    assert load_trust(jwks).trust.kids() == [kid]
    with pytest.raises(TrustListError, match="needs a trust bundle"):
        load_trust(jwks, pinned_root_sha256="00" * 32)
    for content in (b"\xff\xfe", b"[1, 2]", b""):
        junk = tmp_path / "junk"
        junk.write_bytes(content)
        with pytest.raises(TrustListError):
            load_trust(junk)
    with pytest.raises(TrustListError, match="cannot read"):
        load_trust(tmp_path / "missing.json")


def test_rotation_needs_the_root_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    ensure_pki(keys, issuer=ISSUER)
    (keys / "root.pem").unlink()  # the root is kept offline
    before = sorted(p.name for p in keys.iterdir())
    with pytest.raises(KeyStoreError, match="offline"):
        rotate_signer(keys, issuer=ISSUER)
    assert sorted(p.name for p in keys.iterdir()) == before  # nothing half-made

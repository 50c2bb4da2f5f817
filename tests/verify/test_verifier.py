import ast
import json
import zlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import base45
import cbor2
import numpy as np
import pytest

from sanad.credentials.card import issue_qr
from sanad.credentials.keys import IssuerKey, TrustList
from sanad.credentials.qr import sign_claims
from sanad.credentials.status import (
    StatusList,
    StatusListError,
    encode_status_list,
    parse_status_list,
)
from sanad.verify import REASONS, VerificationResult, verify
from sanad.verify.face import FaceProbe, FaceUnavailable, probe_from_image
from tests.credentials.cards import VECTOR, VERIFY_AT, random_claims, vector_claims, vector_key

TRUST = TrustList.from_keys([vector_key()])
OUR_KID = vector_key().kid
BASE45 = base45.BASE45_CHARSET


def wrap(cose: bytes, prefix: str = "SND1:") -> str:
    return prefix + str(base45.b45encode(zlib.compress(cose)).decode())


def forge(protected, payload: bytes, *, key: IssuerKey | None = None, unprotected=None) -> str:
    """A COSE_Sign1 built by hand, signed (correctly) with `key`."""
    key = key or vector_key()
    p = cbor2.dumps(protected)
    sig = key.private_key.sign(cbor2.dumps(["Signature1", p, b"", payload]))
    return wrap(cbor2.dumps(cbor2.CBORTag(18, [p, unprotected or {}, payload, sig])))


def test_issued_qr_verifies():
    result = verify(VECTOR["qr"], trust=TRUST, at=VERIFY_AT)
    assert result == VerificationResult(
        valid=True, reasons=(), claims=VECTOR["claims"], kid=VECTOR["kid_hex"]
    )
    assert json.loads(json.dumps(result.to_json())) == {
        "valid": True,
        "reasons": [],
        "claims": VECTOR["claims"],
        "kid": VECTOR["kid_hex"],
    }


def test_fresh_card_verifies_now_by_default():
    now = datetime.now(UTC)
    claims = random_claims(
        issued_at=now, not_before=now - timedelta(minutes=1), expires_at=now + timedelta(days=1)
    )
    result = verify(issue_qr(claims, vector_key()), trust=TRUST)
    assert result.valid, result.reasons
    assert result.claims is not None and result.claims["card_number"] == claims.card_number


def test_every_single_character_change_is_rejected():
    text = VECTOR["qr"]
    for i in range(len(text)):
        # Cycle through the alphabet with the position so every replacement character is used.
        replacement = next(c for c in BASE45[i % 45 :] + BASE45 if c != text[i])
        tampered = text[:i] + replacement + text[i + 1 :]
        result = verify(tampered, trust=TRUST, at=VERIFY_AT)
        assert not result.valid, (i, replacement)
        assert result.reasons and set(result.reasons) <= set(REASONS)
        assert result.claims is None  # nothing unauthenticated is shown


def test_changed_claims_with_original_signature_are_a_bad_signature():
    cose = cbor2.loads(zlib.decompress(base45.b45decode(VECTOR["qr"][5:])))
    protected, unprotected, payload, signature = cose.value
    cwt = cbor2.loads(payload)
    cwt[-65537]["dob"] = "1980-05-17"
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(cwt), signature]))
    result = verify(wrap(forged), trust=TRUST, at=VERIFY_AT)
    assert result.reasons == ("bad_signature",)
    assert result.kid == VECTOR["kid_hex"]
    assert result.claims is None


def test_signed_by_another_key_under_our_kid_is_a_bad_signature():
    impostor = IssuerKey.generate()
    text = forge({1: -8, 4: vector_key().kid}, cbor2.dumps(vector_claims().to_cwt()), key=impostor)
    assert verify(text, trust=TRUST, at=VERIFY_AT).reasons == ("bad_signature",)


def test_unknown_key():
    other = IssuerKey.generate()
    result = verify(issue_qr(vector_claims(), other), trust=TRUST, at=VERIFY_AT)
    assert result.reasons == ("unknown_key",)
    assert result.kid == other.kid.hex()
    assert result.claims is None
    assert verify(VECTOR["qr"], trust=TrustList(), at=VERIFY_AT).reasons == ("unknown_key",)


def test_missing_kid_is_unknown_key():
    text = forge({1: -8}, cbor2.dumps(vector_claims().to_cwt()))
    result = verify(text, trust=TRUST, at=VERIFY_AT)
    assert result.reasons == ("unknown_key",)
    assert result.kid is None


def test_rotated_keys_both_verify():
    new = IssuerKey.generate()
    trust = TrustList.from_keys([vector_key(), new])
    assert verify(VECTOR["qr"], trust=trust, at=VERIFY_AT).valid
    assert verify(issue_qr(vector_claims(), new), trust=trust, at=VERIFY_AT).valid


def test_expired():
    claims = vector_claims()
    result = verify(VECTOR["qr"], trust=TRUST, at=claims.expires_at + timedelta(seconds=1))
    assert result.reasons == ("expired",)
    assert not result.valid
    assert result.claims == VECTOR["claims"]  # a genuine but expired card still shows whose
    at_exp = verify(VECTOR["qr"], trust=TRUST, at=claims.expires_at)
    assert at_exp.reasons == ("expired",)  # RFC 8392: "on or after"
    assert verify(VECTOR["qr"], trust=TRUST, at=claims.expires_at - timedelta(seconds=1)).valid


def test_not_yet_valid():
    claims = vector_claims()
    result = verify(VECTOR["qr"], trust=TRUST, at=claims.not_before - timedelta(seconds=1))
    assert result.reasons == ("not_yet_valid",)
    assert result.claims == VECTOR["claims"]
    assert verify(VECTOR["qr"], trust=TRUST, at=claims.not_before).valid


def test_at_in_another_timezone():
    plus5 = timezone(timedelta(hours=5))
    assert verify(VECTOR["qr"], trust=TRUST, at=VERIFY_AT.astimezone(plus5)).valid


def test_naive_at_is_a_programming_error():
    with pytest.raises(ValueError):
        verify(VECTOR["qr"], trust=TRUST, at=datetime(2027, 1, 1))


def test_time_is_checked_only_after_the_signature():
    other = IssuerKey.generate()
    text = issue_qr(vector_claims(), other)
    late = vector_claims().expires_at + timedelta(days=1)
    assert verify(text, trust=TRUST, at=late).reasons == ("unknown_key",)


def test_unsupported_alg():
    payload = cbor2.dumps(vector_claims().to_cwt())
    for alg in (-35, -257, 5, "EdDSA"):  # ES384, RS256, HMAC, text label
        result = verify(forge({1: alg, 4: vector_key().kid}, payload), trust=TRUST, at=VERIFY_AT)
        assert result.reasons == ("unsupported_alg",), alg


def test_genuinely_signed_but_malformed_claims():
    key = vector_key()
    good = vector_claims().to_cwt()
    # Our card claim present but broken, or a registered claim mistyped.
    bad_card = {**good, -65537: {"cn": 5}}
    for claims in ({1: 5}, {**good, 4: "tomorrow"}, bad_card, {1: "x", 6: float("nan")}):
        result = verify(sign_claims(claims, key), trust=TRUST, at=VERIFY_AT)
        assert result.reasons == ("malformed_claims",)
        assert result.claims is None
        assert result.kid == key.kid.hex()
    not_a_map = forge({1: -8, 4: key.kid}, cbor2.dumps([1, 2]))
    assert verify(not_a_map, trust=TRUST, at=VERIFY_AT).reasons == ("malformed_claims",)
    not_cbor = forge({1: -8, 4: key.kid}, b"\xff\xfe")
    assert verify(not_cbor, trust=TRUST, at=VERIFY_AT).reasons == ("malformed_claims",)


def test_claims_it_does_not_know_are_returned_not_interpreted():
    key = vector_key()
    claims = {1: "only an issuer", -260: {1: {"v": [{"dn": 1}]}}, 99: b"\x01"}
    result = verify(sign_claims(claims, key), trust=TRUST, at=VERIFY_AT)
    assert result.valid, result.reasons
    assert result.claims == {"iss": "only an issuer", "-260": {"1": {"v": [{"dn": 1}]}},
                             "99": "AQ=="}


def test_other_prefixes():
    text = sign_claims(vector_claims().to_cwt(), vector_key(), prefix="XYZ9:")
    assert verify(text, trust=TRUST, at=VERIFY_AT).reasons == ("malformed_prefix",)
    assert verify(text, trust=TRUST, at=VERIFY_AT, prefixes=("SND1:", "XYZ9:")).valid
    assert verify(VECTOR["qr"], trust=TRUST, at=VERIFY_AT, prefixes=()).reasons == (
        "malformed_prefix",
    )


def _z(data: bytes) -> str:
    return "SND1:" + str(base45.b45encode(zlib.compress(data)).decode())


GARBAGE = [
    ("", "malformed_prefix"),
    ("SND1", "malformed_prefix"),
    ("HC1:6BFOXN", "malformed_prefix"),
    ("\x00\x01\x02", "malformed_prefix"),
    ("سند١:ABC", "malformed_prefix"),
    ("😀" * 1000, "malformed_prefix"),
    ("SND1:" + "A" * 1_000_000, "malformed_base45"),
    ("SND1:é", "malformed_base45"),
    ("SND1:😀😀😀", "malformed_base45"),
    ("SND1:abc", "malformed_base45"),
    ("SND1:A", "malformed_base45"),
    ("SND1:ZZZ", "malformed_base45"),
    ("SND1:\n\n\nAB", "malformed_base45"),
    ("SND1:", "malformed_zlib"),
    ("SND1:00", "malformed_zlib"),
    ("SND1:" + base45.b45encode(b"\x78\x9c" + b"\xff" * 50).decode(), "malformed_zlib"),
    ("SND1:" + base45.b45encode(zlib.compress(b"\0" * 1_000_000)).decode(), "malformed_zlib"),
    (_z(b""), "not_cose_sign1"),
    (_z(b"\x81" * 5000 + b"\x00"), "not_cose_sign1"),  # deep nesting
    (_z(b"\x9b" + b"\xff" * 8), "not_cose_sign1"),  # absurd declared length
    (_z(b"\xd8\x01\x1b" + b"\xff" * 8), "not_cose_sign1"),  # epoch datetime overflow
    (_z(b"\xc0\x63abc"), "not_cose_sign1"),
    (_z(cbor2.dumps(cbor2.CBORTag(18, None))), "not_cose_sign1"),
    (_z(cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b"", b"", b""]))), "not_cose_sign1"),
    (_z(cbor2.dumps(cbor2.CBORTag(98, [b"", {}, b"", []]))), "not_cose_sign1"),
    (_z(cbor2.dumps([b"\xa1\x01\x27", {(1, 2): 3}, b"", b""])), "unknown_key"),
    (_z(cbor2.dumps([b"\xa1\x01\x27", {4: b"k"}, b"", b""])), "unknown_key"),
    (_z(cbor2.dumps([cbor2.dumps({1: -8, 4: b"\xff" * 8}), {}, b"", b""])), "unknown_key"),
    (_z(cbor2.dumps([cbor2.dumps({1: -8, 2: "crit"}), {}, b"", b""])), "not_cose_sign1"),
    (_z(cbor2.dumps([cbor2.dumps({1: -8, 4: [1]}), {}, b"", b""])), "not_cose_sign1"),
    (_z(cbor2.dumps([cbor2.dumps({1: 2**70}), {}, b"", b""])), "unsupported_alg"),
    (_z(cbor2.dumps([cbor2.dumps({1: None}), {}, b"", b""])), "unsupported_alg"),
    (_z(cbor2.dumps([cbor2.dumps({1: -8, 4: OUR_KID}), {}, b"", b""])), "bad_signature"),
    (_z(cbor2.dumps([cbor2.dumps({1: -8, 4: OUR_KID}), {}, b"", b"\0" * 64])), "bad_signature"),
]


@pytest.mark.parametrize(("text", "reason"), GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_gives_a_reason_and_never_raises(text, reason):
    result = verify(text, trust=TRUST, at=VERIFY_AT)
    assert result.reasons == (reason,)
    assert not result.valid and result.claims is None


@pytest.mark.parametrize("value", [None, b"SND1:ABC", 42, ["SND1:"]])
def test_non_text_input_is_a_malformed_prefix(value):
    assert verify(value, trust=TRUST, at=VERIFY_AT).reasons == ("malformed_prefix",)


def test_every_reason_has_a_negative_test():
    source = Path(__file__).read_text(encoding="utf-8")
    for reason in REASONS:
        assert f'"{reason}"' in source, reason


def test_verifier_imports_only_credentials():
    """The verifier must ship alone to a checkpoint: no registry, no database."""
    package = Path(__file__).parents[2] / "sanad" / "verify"
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("sanad"):
                    assert name.startswith(
                        ("sanad.credentials", "sanad.verify", "sanad.errors")
                    ), (path, name)
                assert not name.startswith(("sqlalchemy", "fastapi", "psycopg")), (path, name)


def test_result_is_frozen_and_json_ready():
    result = verify("nope", trust=TRUST)
    assert result.to_json() == {
        "valid": False,
        "reasons": ["malformed_prefix"],
        "claims": None,
        "kid": None,
    }
    with pytest.raises(AttributeError):
        result.valid = True  # type: ignore[misc]


def test_claims_without_optional_fields():
    claims = replace(random_claims(), face_template=None, status_index=None)
    result = verify(issue_qr(claims, vector_key()), trust=TRUST, at=VERIFY_AT)
    assert result.valid
    assert result.claims is not None
    assert "face_template" not in result.claims and "status_index" not in result.claims


# -- status list and 1:1 face check ------------------------------------------------------------


def _status(revoked: Iterable[int] = (), *, allocated: int = 200_000,
            issued_at: datetime = VERIFY_AT, issuer: str = "SANAD-TEST",
            key: IssuerKey | None = None, version: int = 3) -> StatusList:
    data = encode_status_list(revoked=revoked, allocated=allocated, version=version,
                              issuer=issuer, issued_at=issued_at, key=key or vector_key())
    return parse_status_list(data, trust=TRUST)


def test_revoked_card_is_rejected_offline_and_still_shows_whose_it_is():
    claims = random_claims(status_index=42)
    text = issue_qr(claims, vector_key())
    assert verify(text, trust=TRUST, at=VERIFY_AT, status=_status([41, 43])).valid
    result = verify(text, trust=TRUST, at=VERIFY_AT, status=_status([42]))
    assert result.reasons == ("revoked",)
    assert result.claims is not None and result.claims["card_number"] == claims.card_number
    assert result.status is not None and result.status["version"] == 3


def test_stale_and_unknown_status_are_distinct_from_signature_errors():
    text = issue_qr(random_claims(status_index=7), vector_key())
    old = _status(issued_at=VERIFY_AT - timedelta(days=8))
    assert verify(text, trust=TRUST, at=VERIFY_AT, status=old).reasons == ("status_stale",)
    assert verify(text, trust=TRUST, at=VERIFY_AT, status=old,
                  status_max_age=timedelta(days=9)).valid
    revoked_old = _status([7], issued_at=VERIFY_AT - timedelta(days=8))
    assert verify(text, trust=TRUST, at=VERIFY_AT, status=revoked_old).reasons == (
        "revoked", "status_stale")
    # No list at all, when one is required; a list of another issuer; an index beyond the list.
    assert verify(text, trust=TRUST, at=VERIFY_AT, require_status=True).reasons == (
        "status_unknown",)
    assert verify(text, trust=TRUST, at=VERIFY_AT).valid  # library default: not required
    other = _status(issuer="ANOTHER-ISSUER")
    assert verify(text, trust=TRUST, at=VERIFY_AT, status=other).reasons == ("status_unknown",)
    far = issue_qr(random_claims(status_index=10_000_000), vector_key())
    assert verify(far, trust=TRUST, at=VERIFY_AT, status=_status()).reasons == (
        "status_unknown",)


def test_status_list_is_signed_versioned_and_compressed():
    key = vector_key()
    data = encode_status_list(revoked=[0, 9, 131_071], allocated=10, version=12,
                              issuer="SANAD-TEST", issued_at=VERIFY_AT, key=key)
    assert len(data) < 400  # 131072 bits (16 KiB) compress to a few dozen bytes
    parsed = parse_status_list(data, trust=TRUST)
    assert (parsed.version, parsed.size, parsed.revoked_count()) == (12, 131_072, 3)
    assert [parsed.is_revoked(i) for i in (0, 1, 9, 131_071, 131_072)] == [
        True, False, True, True, None]
    stranger = IssuerKey.generate()
    with pytest.raises(StatusListError, match="not trusted"):
        parse_status_list(data, trust=TrustList.from_keys([stranger]))
    for i in range(0, len(data), 7):
        tampered = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
        with pytest.raises(StatusListError):
            parse_status_list(tampered, trust=TRUST)
    with pytest.raises(StatusListError):
        parse_status_list(b"", trust=TRUST)


def test_face_check_matches_mismatches_and_unavailable():
    rng = np.random.default_rng(5)
    enrolled = rng.normal(size=128)
    template = (np.rint(enrolled / np.linalg.norm(enrolled) * 127)).astype(np.int8).tobytes()
    text = issue_qr(random_claims(face_template=template), vector_key())
    same = FaceProbe.from_vector(enrolled + rng.normal(scale=0.1, size=128))
    ok = verify(text, trust=TRUST, at=VERIFY_AT, face=same)
    assert ok.valid and ok.face_score is not None and ok.face_score > 0.9
    other = FaceProbe.from_vector(rng.normal(size=128))
    bad = verify(text, trust=TRUST, at=VERIFY_AT, face=other)
    assert bad.reasons == ("face_mismatch",) and bad.face_score is not None
    assert bad.to_json()["face_score"] == round(bad.face_score, 4)
    bare = issue_qr(random_claims(face_template=None), vector_key())
    assert verify(bare, trust=TRUST, at=VERIFY_AT, face=same).reasons == ("face_unavailable",)
    wrong_dim = FaceProbe.from_vector(rng.normal(size=64))
    assert verify(text, trust=TRUST, at=VERIFY_AT, face=wrong_dim).reasons == ("face_mismatch",)
    with pytest.raises(FaceUnavailable):
        FaceProbe.from_vector(np.zeros(128))


def test_probe_from_image_uses_the_encoder_protocol():
    class FixedEncoder:
        def __init__(self, vector: np.ndarray) -> None:
            self.vector = vector

        def extract(self, image: bytes) -> np.ndarray:
            assert image == b"jpeg bytes"
            return self.vector

    vec = np.arange(1, 129, dtype=np.float32)
    probe = probe_from_image(b"jpeg bytes", encoder=FixedEncoder(vec), threshold=0.7)
    assert probe.threshold == 0.7
    assert np.allclose(probe.vector, vec / np.linalg.norm(vec))

import zlib
from typing import Any

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from pycose.headers import KID, Algorithm
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from sanad.credentials.keys import IssuerKey
from sanad.credentials.qr import (
    ALG_ES256,
    MalformedBase45,
    MalformedClaims,
    MalformedPrefix,
    MalformedZlib,
    NotCoseSign1,
    SignedMessage,
    UnsupportedAlg,
    b45decode,
    decode_claims,
    decode_signed,
    qr_png,
    qr_version,
    sign_claims,
    signature_valid,
)
from tests.credentials.cards import VECTOR, vector_claims, vector_key


def wrap(cose: bytes, prefix: str = "SND1:") -> str:
    return prefix + str(base45.b45encode(zlib.compress(cose)).decode())


def cose_of(text: str) -> bytes:
    return zlib.decompress(base45.b45decode(text[5:]))


def test_known_answer_cwt_and_cose_bytes():
    key = vector_key()
    assert key.kid.hex() == VECTOR["kid_hex"]
    assert key.public_key.public_bytes_raw().hex() == VECTOR["public_key_hex"]
    cwt = vector_claims().to_cwt()
    assert cbor2.dumps(cwt, canonical=True).hex() == VECTOR["cwt_hex"]
    text = sign_claims(cwt, key)
    assert cose_of(text).hex() == VECTOR["cose_hex"]
    # The stored QR (made by whatever zlib built the vector) decodes to the same bytes.
    assert cose_of(VECTOR["qr"]).hex() == VECTOR["cose_hex"]


def test_envelope_is_rfc9052_cose_sign1_with_eddsa_and_kid():
    key = vector_key()
    item = cbor2.loads(bytes.fromhex(VECTOR["cose_hex"]))
    assert isinstance(item, cbor2.CBORTag) and item.tag == 18
    protected, unprotected, payload, signature = item.value
    assert cbor2.loads(protected) == {1: -8, 4: key.kid}
    assert unprotected == {}
    assert cbor2.loads(payload) == vector_claims().to_cwt()
    # Independent check of the signature over the RFC 9052 Sig_structure.
    key.public_key.verify(signature, cbor2.dumps(["Signature1", protected, b"", payload]))


def test_pycose_verifies_what_we_sign():
    key = vector_key()
    message = Sign1Message.decode(bytes.fromhex(VECTOR["cose_hex"]))
    message.key = OKPKey(crv="Ed25519", x=key.public_key.public_bytes_raw())
    assert message.verify_signature()


def test_decode_signed_of_vector():
    message = decode_signed(VECTOR["qr"])
    assert message.kid == vector_key().kid
    assert message.alg == -8
    assert signature_valid(message, vector_key().public_key)
    assert decode_claims(message) == vector_claims().to_cwt()


def test_custom_prefix():
    text = sign_claims({1: "x"}, vector_key(), prefix="HC1:")
    assert text.startswith("HC1:")
    with pytest.raises(MalformedPrefix):
        decode_signed(text)
    assert decode_signed(text, prefixes=("SND1:", "HC1:")).kid == vector_key().kid


def test_trailing_newline_from_scanner_is_ignored():
    assert decode_signed(VECTOR["qr"] + "\r\n").kid == vector_key().kid


def test_es256_signed_by_pycose_verifies():
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    from pycose.algorithms import Es256
    from pycose.keys.ec2 import EC2Key

    msg = Sign1Message(phdr={Algorithm: Es256, KID: b"es256kid"}, payload=cbor2.dumps({1: "x"}))
    msg.key = EC2Key(
        crv="P_256",
        x=numbers.x.to_bytes(32, "big"),
        y=numbers.y.to_bytes(32, "big"),
        d=private.private_numbers().private_value.to_bytes(32, "big"),
    )
    message = decode_signed(wrap(msg.encode()))
    assert message.alg == ALG_ES256
    assert signature_valid(message, private.public_key())
    assert not signature_valid(message, ec.generate_private_key(ec.SECP256R1()).public_key())
    assert not signature_valid(message, vector_key().public_key)  # wrong key type for alg


def test_es256_der_signature_is_not_accepted():
    private = ec.generate_private_key(ec.SECP256R1())
    protected = cbor2.dumps({1: -7, 4: b"k"})
    payload = cbor2.dumps({1: "x"})
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    der = private.sign(tbs, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    good = SignedMessage(protected=protected, alg=-7, kid=b"k", payload=payload, signature=raw)
    assert signature_valid(good, private.public_key())
    bad = SignedMessage(protected=protected, alg=-7, kid=b"k", payload=payload, signature=der)
    assert not signature_valid(bad, private.public_key())


def sign1(
    protected: dict[int, Any] | None,
    payload: bytes = b"\xa0",
    unprotected: dict[int, Any] | None = None,
    tag: int | None = 18,
    key: IssuerKey | None = None,
) -> bytes:
    key = key or vector_key()
    p = cbor2.dumps(protected) if protected is not None else b""
    sig = key.private_key.sign(cbor2.dumps(["Signature1", p, b"", payload]))
    body = [p, unprotected or {}, payload, sig]
    return cbor2.dumps(cbor2.CBORTag(tag, body) if tag is not None else body)


def test_untagged_and_cwt_tagged_messages_are_accepted():
    kid = vector_key().kid
    untagged = sign1({1: -8, 4: kid}, tag=None)
    cwt_tagged = cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(sign1({1: -8, 4: kid}))))
    for cose in (untagged, cwt_tagged):
        message = decode_signed(wrap(cose))
        assert signature_valid(message, vector_key().public_key)


def test_kid_in_unprotected_header_is_read():
    kid = vector_key().kid
    message = decode_signed(wrap(sign1({1: -8}, unprotected={4: kid})))
    assert message.kid == kid


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", MalformedPrefix),
        ("SND2:ABC", MalformedPrefix),
        ("snd1:ABC", MalformedPrefix),
        ("SND1:abc", MalformedBase45),
        ("SND1:A", MalformedBase45),
        ("SND1:::::", MalformedBase45),  # 3-char group above 0xFFFF
        ("SND1:" + "0" * 5000, MalformedBase45),
        ("SND1:", MalformedZlib),
        ("SND1:" + base45.b45encode(b"not zlib").decode(), MalformedZlib),
        ("SND1:" + base45.b45encode(zlib.compress(b"x" * 100)[:-3]).decode(), MalformedZlib),
        ("SND1:" + base45.b45encode(zlib.compress(b"x") + b"tail").decode(), MalformedZlib),
        ("SND1:" + base45.b45encode(zlib.compress(b"\0" * 20_000, 9)).decode(), MalformedZlib),
    ],
)
def test_layer_errors(text, error):
    with pytest.raises(error) as info:
        decode_signed(text)
    assert info.value.code == error.code


TEST_KID = b"\x01" * 8


@pytest.mark.parametrize(
    ("cose", "error"),
    [
        (b"\xff", NotCoseSign1),
        (cbor2.dumps("text"), NotCoseSign1),
        (cbor2.dumps(cbor2.CBORTag(17, [b"", {}, b"", b""])), NotCoseSign1),  # COSE_Mac0
        (cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b""])), NotCoseSign1),
        (cbor2.dumps(cbor2.CBORTag(18, [b"", {}, None, b""])), NotCoseSign1),  # detached
        (cbor2.dumps(cbor2.CBORTag(18, [{1: -8}, {}, b"", b""])), NotCoseSign1),
        (cbor2.dumps(cbor2.CBORTag(18, [b"\xff", {}, b"", b""])), NotCoseSign1),
        (cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps([1]), {}, b"", b""])), NotCoseSign1),
        (sign1({1: -8, 4: TEST_KID}) + b"\x00", NotCoseSign1),  # trailing bytes
        (sign1({1: -8, 4: "text kid"}), NotCoseSign1),
        (sign1({1: -8, 4: TEST_KID}, unprotected={1: -8}), NotCoseSign1),
        (sign1({1: -8, 4: TEST_KID, 2: [1, 99]}), NotCoseSign1),
        (sign1({1: -8, 4: TEST_KID, 2: [[1]]}), NotCoseSign1),
        (sign1({1: -8, 4: TEST_KID, 2: []}), NotCoseSign1),
        (sign1({4: TEST_KID}), UnsupportedAlg),
        (sign1(None), UnsupportedAlg),
        (sign1({1: -35, 4: TEST_KID}), UnsupportedAlg),  # ES384
        (sign1({1: 5, 4: TEST_KID}), UnsupportedAlg),  # HMAC 256/256
        (sign1({1: "EdDSA", 4: TEST_KID}), UnsupportedAlg),
        (sign1({1: True, 4: TEST_KID}), UnsupportedAlg),
    ],
)
def test_structure_errors(cose, error):
    with pytest.raises(error):
        decode_signed(wrap(cose))


def test_critical_header_we_understand_is_accepted():
    assert decode_signed(wrap(sign1({1: -8, 4: TEST_KID, 2: [4]}))).kid == TEST_KID


@pytest.mark.parametrize("payload", [b"", b"\xff", b"\x01", cbor2.dumps([1]), b"\xa0\x00"])
def test_decode_claims_rejects_non_maps(payload):
    message = SignedMessage(protected=b"", alg=-8, kid=None, payload=payload, signature=b"")
    with pytest.raises(MalformedClaims):
        decode_claims(message)


def test_qr_png_and_version(tmp_path):
    text = VECTOR["qr"]
    path = tmp_path / "card.png"
    qr_png(text, path)
    version = qr_version(text)
    assert abs(version - VECTOR["qr_version_m"]) <= 1
    modules = 17 + 4 * version + 2 * 4  # symbol + quiet zone
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (modules * 4, modules * 4)
    assert qr_version("SND1:ABC") == 1


@given(st.binary(max_size=600))
def test_fast_base45_decoder_matches_the_reference_package(data):
    text = base45.b45encode(data).decode("ascii")
    assert b45decode(text) == data


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:ab!é", max_size=12))
def test_fast_base45_decoder_rejects_what_the_reference_rejects(text):
    try:
        expected: bytes | None = base45.b45decode(text)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            b45decode(text)
    else:
        assert b45decode(text) == expected

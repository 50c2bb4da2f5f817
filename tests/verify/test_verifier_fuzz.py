"""Property tests: verify() never raises and always explains a rejection."""

import zlib

import base45
import cbor2
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sanad.credentials.keys import TrustList  # noqa: E402
from sanad.verify import REASONS, verify  # noqa: E402
from tests.credentials.cards import VECTOR, VERIFY_AT, vector_key  # noqa: E402

TRUST = TrustList.from_keys([vector_key()])
# Modest example counts keep the suite fast; no example database (.hypothesis/) is written.
FAST = settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

cbor_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True)
    | st.binary(max_size=40)
    | st.text(max_size=20)
)
cbor_values = st.recursive(
    cbor_leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.integers(-70000, 10) | st.text(max_size=4), children, max_size=5)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 18, 61, 98, 258]), children)
    ),
    max_leaves=12,
)


def pack(data: bytes) -> str:
    return "SND1:" + str(base45.b45encode(zlib.compress(data)).decode())


def check(text: object) -> None:
    result = verify(text, trust=TRUST, at=VERIFY_AT)  # type: ignore[arg-type]
    assert isinstance(result.valid, bool)
    if not result.valid:
        assert len(result.reasons) == 1 and result.reasons[0] in REASONS
    result.to_json()


@FAST
@given(st.text(max_size=300))
def test_any_text(text):
    check(text)


@FAST
@given(st.text(alphabet=base45.BASE45_CHARSET, max_size=600))
def test_any_base45_after_the_prefix(body):
    check("SND1:" + body)


@FAST
@given(st.binary(max_size=600))
def test_any_bytes_inside_the_envelope(data):
    check(pack(data))


@FAST
@given(cbor_values)
def test_any_cbor_inside_the_envelope(value):
    check(pack(cbor2.dumps(value)))


@FAST
@given(cbor_values, cbor_values, cbor_values, st.binary(max_size=70))
def test_cose_shaped_arrays(protected, unprotected, payload, signature):
    header = cbor2.dumps(protected) if not isinstance(protected, bytes) else protected
    body = payload if isinstance(payload, bytes) else cbor2.dumps(payload)
    for item in ([header, unprotected, body, signature], [header, {}, body, signature]):
        check(pack(cbor2.dumps(cbor2.CBORTag(18, item))))


@FAST
@given(cbor_values)
def test_signed_arbitrary_claims_never_raise(claims):
    payload = cbor2.dumps(claims)
    key = vector_key()
    protected = cbor2.dumps({1: -8, 4: key.kid})
    sig = key.private_key.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
    check(pack(cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, sig]))))


@FAST
@given(st.integers(0, len(VECTOR["qr"]) - 1), st.integers(1, 3), st.binary(max_size=3))
def test_spliced_vector(pos, cut, insert):
    text = VECTOR["qr"]
    check(text[:pos] + insert.decode("latin-1") + text[pos + cut :])

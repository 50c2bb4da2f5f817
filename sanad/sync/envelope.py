"""The packet envelope: COSE_Sign1 (station, EdDSA) inside COSE_Encrypt (centre, ECDH-ES).

    COSE_Encrypt [A256GCM; recipient: ECDH-ES+HKDF-256, kid = central kid, ephemeral P-256 key]
      └─ ciphertext of COSE_Sign1 [EdDSA, kid = station kid]
             └─ payload: CBOR map {v, packet_id, kind, station_id, created_at, body}

Sign-then-encrypt (RFC 9052 §§ 4, 5): the signature proves which station made the packet and
the encryption hides both content and signer from anyone but the centre; the AES-GCM tag makes
any altered byte fail before the signature is even looked at. Both layers are standard COSE,
so another implementation (e.g. a phone app with a COSE library) can produce packets too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pycose.algorithms import A256GCM, EcdhEsHKDF256, EdDSA
from pycose.exceptions import (
    CoseException,
    CoseIllegalAlgorithm,
    CoseIllegalKeyOps,
    CoseIllegalKeyType,
    CoseInvalidKey,
    CoseMalformedMessage,
    CoseUnsupportedCurve,
)
from pycose.headers import IV, KID, Algorithm, EphemeralKey, StaticKey
from pycose.keys.curves import P256, Ed25519
from pycose.keys.ec2 import EC2Key
from pycose.keys.okp import OKPKey
from pycose.messages.cosemessage import CoseMessage
from pycose.messages.encmessage import EncMessage
from pycose.messages.recipient import DirectKeyAgreement
from pycose.messages.sign1message import Sign1Message

from sanad.errors import PacketRejected
from sanad.sync.keys import CentralKey, CentralPublicKey, ed25519_raw, station_kid

PACKET_VERSION = 1

# Everything a malformed or tampered envelope can raise inside cbor2/pycose/cryptography.
_DECODE_ERRORS = (
    CoseException, CoseIllegalAlgorithm, CoseIllegalKeyOps, CoseIllegalKeyType, CoseInvalidKey,
    CoseMalformedMessage, CoseUnsupportedCurve, InvalidTag, InvalidSignature,
    cbor2.CBORDecodeError, ValueError, LookupError, TypeError, AttributeError, AssertionError,
    OverflowError, NotImplementedError, RecursionError,
)


def seal(
    payload: dict[str, Any], *, station_key: Ed25519PrivateKey, central: CentralPublicKey
) -> bytes:
    """Sign `payload` with the station key, then encrypt it to the centre."""
    public = station_key.public_key()
    signed = Sign1Message(
        phdr={Algorithm: EdDSA, KID: bytes.fromhex(station_kid(public))},
        payload=cbor2.dumps(payload, canonical=True),
    )
    signed.key = OKPKey(crv=Ed25519, d=station_key.private_bytes_raw(), x=ed25519_raw(public))
    inner = signed.encode()

    ephemeral = EC2Key.generate_key(crv=P256)
    recipient = DirectKeyAgreement(
        phdr={Algorithm: EcdhEsHKDF256},
        uhdr={KID: bytes.fromhex(central.kid),
              EphemeralKey: EC2Key(crv=P256, x=ephemeral.x, y=ephemeral.y)},
    )
    recipient.key = ephemeral
    # pycose's header typing is narrower than what it accepts at run time.
    recipient.local_attrs = {
        StaticKey: EC2Key(crv=P256, x=central.x, y=central.y)  # type: ignore[dict-item]
    }
    message = EncMessage(
        phdr={Algorithm: A256GCM}, uhdr={IV: os.urandom(12)}, payload=inner,
        recipients=[recipient],
    )
    return bytes(message.encode())


@dataclass(frozen=True)
class OpenedEnvelope:
    """A decrypted envelope whose signature is not yet checked (the caller finds the key)."""

    station_kid: str
    _signed: Sign1Message

    def verify(self, public: Ed25519PublicKey) -> dict[str, Any]:
        """Check the station signature and return the packet payload."""
        try:
            self._signed.key = OKPKey(crv=Ed25519, x=ed25519_raw(public))
            if not self._signed.verify_signature():
                raise PacketRejected("station signature does not verify")
            payload = cbor2.loads(self._signed.payload or b"")
        except _DECODE_ERRORS as exc:
            raise PacketRejected(f"station signature does not verify ({type(exc).__name__})") \
                from exc
        if not isinstance(payload, dict) or payload.get("v") != PACKET_VERSION:
            raise PacketRejected("packet payload is not a version-1 sanad packet")
        return payload


_ENC_TAG = 96
_EPHEMERAL_LABEL = -1
_RECIPIENT_UHDR_LABELS = {4, _EPHEMERAL_LABEL}  # kid, ephemeral key
_EC2_KEY_LABELS = {1, -1, -2, -3}  # kty, crv, x, y


def _check_structure(data: bytes) -> None:
    """Refuse anything but the exact shape `seal` writes.

    The recipient's unprotected header is not covered by the AEAD tag; pycose would silently
    ignore an unknown label there (e.g. a flipped bit turning the `y` label into another), so an
    altered byte could otherwise go unnoticed. Strict shape = every byte matters.
    """
    obj = cbor2.loads(data)
    if not isinstance(obj, cbor2.CBORTag) or obj.tag != _ENC_TAG:
        raise PacketRejected("not a tagged COSE_Encrypt")
    body = obj.value
    if not isinstance(body, list) or len(body) != 4 or not isinstance(body[3], list):
        raise PacketRejected("COSE_Encrypt has the wrong shape")
    if len(body[3]) != 1 or not isinstance(body[3][0], list) or len(body[3][0]) != 3:
        raise PacketRejected("COSE_Encrypt must carry exactly one recipient")
    uhdr = body[3][0][1]
    if not isinstance(uhdr, dict) or set(uhdr) != _RECIPIENT_UHDR_LABELS:
        raise PacketRejected("recipient header has unexpected labels")
    ephemeral = uhdr[_EPHEMERAL_LABEL]
    if not isinstance(ephemeral, dict) or set(ephemeral) != _EC2_KEY_LABELS:
        raise PacketRejected("ephemeral key has unexpected labels")
    if cbor2.dumps(obj, canonical=False) != data:
        raise PacketRejected("envelope is not in its canonical encoding")


def open_envelope(data: bytes, *, central: CentralKey) -> OpenedEnvelope:
    """Decrypt an envelope addressed to `central`; `PacketRejected` on any defect."""
    public = central.public
    try:
        _check_structure(data)
        message = CoseMessage.decode(data)
        if not isinstance(message, EncMessage) or len(message.recipients) != 1:
            raise PacketRejected("not a COSE_Encrypt with one recipient")
        recipient = message.recipients[0]
        if recipient.get_attr(KID) != bytes.fromhex(public.kid):
            raise PacketRejected("packet is not addressed to this centre's key")
        recipient.key = EC2Key(crv=P256, d=central.d, x=public.x, y=public.y)
        inner = message.decrypt(recipient)
        signed = CoseMessage.decode(inner)
        if not isinstance(signed, Sign1Message) or signed.get_attr(Algorithm) is not EdDSA:
            raise PacketRejected("inner message is not an EdDSA COSE_Sign1")
        kid = signed.get_attr(KID)
        if not isinstance(kid, bytes) or len(kid) != 8:
            raise PacketRejected("inner message has no 8-byte station kid")
    except PacketRejected:
        raise
    except _DECODE_ERRORS as exc:
        raise PacketRejected(f"packet cannot be decrypted ({type(exc).__name__})") from exc
    return OpenedEnvelope(station_kid=kid.hex(), _signed=signed)

"""The packet envelope: round trip, and every altered byte / wrong key rejected."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sanad.errors import InvalidInput, PacketRejected
from sanad.sync.envelope import open_envelope, seal
from sanad.sync.keys import CentralKey, CentralPublicKey, station_kid

PAYLOAD = {"v": 1, "packet_id": "p", "kind": "household", "body": {"x": "y" * 50}}


@pytest.fixture(scope="module")
def keys() -> tuple[CentralKey, Ed25519PrivateKey, bytes]:
    central = CentralKey(ec.generate_private_key(ec.SECP256R1()))
    station = Ed25519PrivateKey.generate()
    return central, station, seal(PAYLOAD, station_key=station, central=central.public)


def test_round_trip(keys: tuple[CentralKey, Ed25519PrivateKey, bytes]) -> None:
    central, station, envelope = keys
    opened = open_envelope(envelope, central=central)
    assert opened.station_kid == station_kid(station.public_key())
    assert opened.verify(station.public_key()) == PAYLOAD
    # Encryption is randomised: the same payload never gives the same envelope twice.
    assert seal(PAYLOAD, station_key=station, central=central.public) != envelope


def test_any_altered_byte_is_rejected(keys: tuple[CentralKey, Ed25519PrivateKey, bytes]) -> None:
    central, station, envelope = keys
    for pos in range(len(envelope)):
        for bit in (0, 5):
            bad = bytearray(envelope)
            bad[pos] ^= 1 << bit
            with pytest.raises(PacketRejected):
                open_envelope(bytes(bad), central=central).verify(station.public_key())
    for cut in (0, 1, len(envelope) // 2, len(envelope) - 1):
        with pytest.raises(PacketRejected):
            open_envelope(envelope[:cut], central=central)
    with pytest.raises(PacketRejected):
        open_envelope(envelope + b"\x00", central=central)


def test_wrong_keys_and_versions(keys: tuple[CentralKey, Ed25519PrivateKey, bytes]) -> None:
    central, station, envelope = keys
    other_centre = CentralKey(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(PacketRejected, match="not addressed"):
        open_envelope(envelope, central=other_centre)
    with pytest.raises(PacketRejected, match="signature"):
        open_envelope(envelope, central=central).verify(Ed25519PrivateKey.generate().public_key())
    old = seal({**PAYLOAD, "v": 0}, station_key=station, central=central.public)
    with pytest.raises(PacketRejected, match="version-1"):
        open_envelope(old, central=central).verify(station.public_key())


def test_central_public_key_document() -> None:
    central = CentralKey(ec.generate_private_key(ec.SECP256R1()))
    doc = central.public.to_json()
    assert CentralPublicKey.from_json(doc) == central.public
    with pytest.raises(InvalidInput):
        CentralPublicKey.from_json({**doc, "kid": "00" * 8})
    with pytest.raises(InvalidInput):
        CentralPublicKey.from_json({**doc, "y": doc["x"]})  # not on the curve
    with pytest.raises(InvalidInput):
        CentralPublicKey.from_json({**doc, "crv": "P-384"})

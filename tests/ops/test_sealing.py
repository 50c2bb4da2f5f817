"""Per-record data keys under a key-encryption key: format, binding, legacy blobs."""

from __future__ import annotations

import os
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select

from sanad.registry.crypto_models import DataKey
from sanad.registry.db import transaction
from sanad.registry.models import BiometricRecord
from sanad.registry.sealing import (
    DataKeyDestroyed,
    FileKek,
    KekRing,
    KeyEncryptionKey,
    SealError,
    TemplateSealer,
)
from tests.ops.helpers import enrol


def test_file_kek_satisfies_the_protocol_and_round_trips() -> None:
    kek = FileKek.generate()
    assert isinstance(kek, KeyEncryptionKey)
    dek = os.urandom(32)
    assert kek.unwrap(kek.wrap(dek)) == dek
    with pytest.raises(SealError):
        FileKek.generate().unwrap(kek.wrap(dek))


def test_seal_writes_a_data_key_in_the_callers_transaction(registry) -> None:
    sealer = registry.sealer
    subject = str(uuid.uuid4())
    aad = f"{subject}:face".encode()
    with transaction(registry.sessions) as session:
        blob = sealer.seal(b"template bytes", aad=aad)
    assert blob[0] == 2 and TemplateSealer.dek_id(blob) is not None
    # A fresh sealer (another process) has no cached key: it must find the row.
    other = TemplateSealer.from_file(registry.settings.template_key_path)
    with registry.sessions() as session:
        row = session.get(DataKey, TemplateSealer.dek_id(blob))
        assert row is not None and row.subject == subject
        assert row.kek_id == other.ring.current
        assert other.open(blob, aad=aad, session=session) == b"template bytes"
        with pytest.raises(SealError):
            other.open(blob, aad=f"{uuid.uuid4()}:face".encode(), session=session)
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        with pytest.raises(SealError):
            other.open(tampered, aad=aad, session=session)


def test_a_rolled_back_seal_leaves_no_key(registry) -> None:
    with pytest.raises(RuntimeError), transaction(registry.sessions) as session:
        registry.sealer.seal(b"x", aad=b"whoever:face")
        raise RuntimeError("enrolment failed after sealing")
    with registry.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DataKey)) == 0


def test_missing_key_is_reported_as_destroyed(registry) -> None:
    with transaction(registry.sessions) as session:
        blob = registry.sealer.seal(b"x", aad=b"s:face")
        session.flush()
        session.delete(session.get(DataKey, TemplateSealer.dek_id(blob)))
    fresh = TemplateSealer.from_file(registry.settings.template_key_path)
    with registry.sessions() as session, pytest.raises(DataKeyDestroyed):
        fresh.open(blob, aad=b"s:face", session=session)


def test_seal_outside_a_transaction_is_refused() -> None:
    with pytest.raises(SealError, match="transaction"):
        TemplateSealer(KekRing.single(FileKek.generate())).seal(b"x", aad=b"a:b")


def test_version_1_blobs_still_open_with_the_legacy_key() -> None:
    key = os.urandom(32)
    nonce = os.urandom(12)
    v1 = b"\x01" + nonce + AESGCM(key).encrypt(nonce, b"old template", b"p:face")
    sealer = TemplateSealer(key)  # a version-1 key file is a one-key ring
    assert sealer.open(v1, aad=b"p:face") == b"old template"
    with pytest.raises(SealError):
        TemplateSealer(os.urandom(32)).open(v1, aad=b"p:face")
    # The legacy key survives the ring's JSON form (so rotation keeps old blobs readable).
    again = TemplateSealer(KekRing.parse(sealer.ring.dump()).dump())
    assert again.open(v1, aad=b"p:face") == b"old template"


def test_enrolled_templates_are_sealed_under_data_keys(registry) -> None:
    result = enrol(registry, [101, 102])
    with registry.sessions() as session:
        recs = list(session.scalars(select(BiometricRecord)))
        assert len(recs) == 2
        subjects = {session.get(DataKey, TemplateSealer.dek_id(r.template)).subject
                    for r in recs}
    assert subjects == {str(m.person_id) for m in result.members}


def test_ring_file_is_private_and_never_in_the_database(registry) -> None:
    path = registry.settings.template_key_path
    assert path.stat().st_mode & 0o077 == 0
    ring = KekRing.parse(path.read_bytes())
    key = ring.keks[ring.current].key_bytes  # type: ignore[attr-defined]
    enrol(registry, [103])
    with registry.sessions() as session:
        for row in session.scalars(select(DataKey)):
            assert key not in row.wrapped


def test_open_many_batches_keys_and_can_skip_erased(registry) -> None:
    aads = [f"{uuid.uuid4()}:face".encode() for _ in range(3)]
    with transaction(registry.sessions) as session:
        blobs = [registry.sealer.seal(f"t{i}".encode(), aad=a) for i, a in enumerate(aads)]
        session.flush()
        session.delete(session.get(DataKey, TemplateSealer.dek_id(blobs[1])))
    fresh = TemplateSealer.from_file(registry.settings.template_key_path)
    items = list(zip(blobs, aads, strict=True))
    with registry.sessions() as session:
        assert fresh.open_many(items, session=session, skip_destroyed=True) == [
            b"t0", None, b"t2"]
        with pytest.raises(DataKeyDestroyed):
            fresh.open_many(items, session=session)
        with pytest.raises(SealError):
            fresh.open_many([(blobs[0], aads[2])], session=session)

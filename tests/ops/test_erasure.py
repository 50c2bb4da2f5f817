"""Lawful erasure: data keys destroyed, templates unreadable, gallery drops them, audited."""

from __future__ import annotations

import subprocess
import sys
from uuid import UUID

import numpy as np
import pytest
from sqlalchemy import select

from sanad.audit import events_for, verify_chain
from sanad.errors import InvalidInput, NotFound
from sanad.registry.access_models import PersonPhoto
from sanad.registry.cards import issue_card
from sanad.registry.crypto_models import DataKey, ErasedRecord
from sanad.registry.db import transaction
from sanad.registry.erasure import (
    ERASED_MODALITY,
    drop_from_gallery,
    erase_person,
    erasure_count,
    sync_gallery_erasures,
)
from sanad.registry.gallery import Gallery
from sanad.registry.models import BiometricRecord, Card
from sanad.registry.runtime import Registry
from sanad.registry.sealing import DataKeyDestroyed, TemplateSealer
from tests.ops.helpers import enrol


def _face_ids(registry: Registry, person_id: UUID) -> list[int]:
    with registry.sessions() as session:
        return list(session.scalars(
            select(BiometricRecord.id).where(BiometricRecord.person_id == person_id)
        ))


def test_erasure_shreds_keys_and_drops_the_gallery_entry(registry) -> None:
    result = enrol(registry, [201, 202])
    victim, other = result.members[0].person_id, result.members[1].person_id
    assert victim is not None and other is not None
    (rec_id,) = _face_ids(registry, victim)
    with registry.sessions() as session:
        blob = session.get(BiometricRecord, rec_id).template
    with transaction(registry.sessions) as session:
        session.add(PersonPhoto(person_id=victim, content_type="image/jpeg", data=b"\xff\xd8p"))
    with transaction(registry.sessions) as session:
        card = issue_card(session, person_id=victim, officer="t", key=registry.issuer_key,
                          sealer=registry.sealer, settings=registry.settings).card
    with transaction(registry.sessions) as session:
        report = erase_person(session, person_id=victim, reason="court order 17/2026",
                              actor="dpo")
    drop_from_gallery(registry.gallery, report.records_erased, report.dek_ids)
    assert report.keys_destroyed == 1 and report.records_erased == [rec_id]
    assert report.cards_revoked == [card.id] and report.photos_deleted == 1

    fresh = TemplateSealer.from_file(registry.settings.template_key_path)
    with registry.sessions() as session:
        assert session.scalars(select(DataKey).where(DataKey.subject == str(victim))).all() == []
        # Even a copy of the blob taken before the erasure (a backup) no longer opens.
        with pytest.raises(DataKeyDestroyed):
            fresh.open(blob, aad=f"{victim}:face".encode(), session=session)
        rec = session.get(BiometricRecord, rec_id)
        assert rec.modality == ERASED_MODALITY and rec.template == b""
        assert session.get(ErasedRecord, rec_id) is not None
        assert session.get(PersonPhoto, victim) is None
        stored = session.get(Card, card.id)
        assert stored.status == "revoked" and stored.qr == ""
        (event,) = [e for e in events_for(session, subject_id=str(victim))
                    if e.action == "person.erase"]
        assert event.details["reason"] == "court order 17/2026"
        assert event.actor == "dpo"
        assert verify_chain(session).ok
    # This process's index no longer holds the id; the other member is still searchable.
    assert len(registry.gallery.index) == 1
    # A process that starts now rebuilds from the snapshot + database without the erased id.
    reopened = Gallery.open(kind=registry.settings.index_backend, sealer=fresh,
                            path=registry.settings.index_path)
    with registry.sessions() as session:
        reopened.catch_up(session)
        assert sync_gallery_erasures(reopened, session) == 0
    assert len(reopened.index) == 1
    probe = np.ones((1, reopened.index.dim), np.float32) / np.sqrt(reopened.index.dim)
    _, ids = reopened.index.search(probe, 2)
    assert rec_id not in ids.tolist()
    assert _face_ids(registry, other)


def test_a_process_that_missed_the_erasure_drops_the_id(registry) -> None:
    result = enrol(registry, [203])
    pid = result.members[0].person_id
    assert pid is not None
    stale = Gallery.open(kind=registry.settings.index_backend, sealer=registry.sealer, path=None)
    with registry.sessions() as session:
        stale.catch_up(session)
    assert len(stale.index) == 1
    with transaction(registry.sessions) as session:
        erase_person(session, person_id=pid, reason="withdrawn consent", actor="dpo")
    with registry.sessions() as session:
        assert erasure_count(session) == 1
        assert sync_gallery_erasures(stale, session) == 1
        assert sync_gallery_erasures(stale, session) == 0  # idempotent
    assert len(stale.index) == 0


def test_erasure_needs_a_reason_and_a_person(registry) -> None:
    result = enrol(registry, [204])
    pid = result.members[0].person_id
    assert pid is not None
    with pytest.raises(InvalidInput), transaction(registry.sessions) as session:
        erase_person(session, person_id=pid, reason="  ", actor="x")
    import uuid

    with pytest.raises(NotFound), transaction(registry.sessions) as session:
        erase_person(session, person_id=uuid.uuid4(), reason="r", actor="x")


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # the service runs on both
def test_cli_person_erase(registry, db_env) -> None:
    result = enrol(registry, [205])
    pid = str(result.members[0].person_id)
    registry.close()
    proc = subprocess.run(
        [sys.executable, "-m", "sanad", "person", "erase", pid, "--reason", "court order"],
        env=db_env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"keys_destroyed": 1' in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "sanad", "person", "erase", "not-a-uuid", "--reason", "x"],
        env=db_env, capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 1 and "invalid_input" in bad.stderr

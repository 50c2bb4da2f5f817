"""A captured kit: its SQLite is SQLCipher-encrypted under a key wrapped by the kit's KEK, so
neither plain sqlite3 nor a grep of the files finds a name, a date of birth or a phone; the
kit still enrols, and its packets still carry the data to the centre, then leave the kit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlcipher3 import dbapi2 as sqlcipher

from sanad.abis.biographic import name_key
from sanad.app import create_app
from sanad.config import Settings
from sanad.errors import InvalidInput
from sanad.ops import kek
from sanad.ops.backup import BackupError, create_backup
from sanad.registry.db import transaction
from sanad.registry.dbkey import (
    database_key,
    database_key_kek,
    database_key_path,
    encrypt_database,
)
from sanad.registry.models import Person
from sanad.registry.runtime import Registry, init_registry, open_registry
from sanad.registry.sealing import FileKek, KekRing, SealError, replace_private_file
from sanad.registry.sync_models import QueuedPacket, SyncReceipt
from sanad.sync.client import sync_station
from tests.factories import household
from tests.sync.conftest import Kit

GIVEN, FAMILY, FATHER = "Zarghuna", "Qaderzai", "Baryalai"
DOB = "1979-11-23"
PHONE = "+962790001122"
ARABIC = "زرغونة"


def _needles() -> list[bytes]:
    words = [GIVEN, FAMILY, FATHER, DOB, PHONE, "19791123"]
    out = [w.encode() for w in words] + [w.lower().encode() for w in words]
    out += [ARABIC.encode("utf-8"), ARABIC.encode("utf-16-le"), GIVEN.encode("utf-16-le")]
    # The biographic blocking key holds consonant skeletons of the names: look for those too.
    out += [part.encode() for part in name_key(GIVEN, FAMILY).split("|")]
    return out


def _enrol_distinctive(kit: Kit) -> str:
    rng = np.random.default_rng(31)
    data = household([7100], rng)
    data["members"][0].update(given_name=GIVEN, family_name=FAMILY, father_name=FATHER,
                              given_name_ar=ARABIC, date_of_birth=DOB, phone=PHONE)
    resp = kit.client.post("/households", json=data, headers=kit.headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["household_id"])


def _db_files(settings: Settings) -> list[Path]:
    db = settings.home / "sanad.db"
    return [p for p in (db, db.with_name("sanad.db-wal"), db.with_name("sanad.db-shm"))
            if p.exists()]


def test_captured_kit_database_shows_no_names_or_dates(kit: Kit) -> None:
    household_id = _enrol_distinctive(kit)
    settings = kit.registry.settings
    # Seen through the kit itself, the person is there (the UI/API still works).
    head = kit.client.get(f"/households/{household_id}", headers=kit.headers).json()["head_id"]
    page = kit.client.get(f"/persons/{head}", headers=kit.headers)
    assert page.status_code == 200 and page.json()["given_name"] == GIVEN
    # Every byte of the database and of its write-ahead log (where fresh pages sit).
    files = _db_files(settings)
    assert files
    for path in files:
        data = path.read_bytes()
        for needle in _needles():
            assert needle not in data, f"{needle!r} readable in {path.name}"
    # Plain sqlite3 cannot even read the schema.
    plain = sqlite3.connect(settings.home / "sanad.db")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="not a database"):
            plain.execute("SELECT name FROM sqlite_master").fetchall()
    finally:
        plain.close()
    # With the station's key (unwrapped by its KEK), SQLCipher reads the very same file.
    key = database_key(settings)
    assert key is not None
    conn = sqlcipher.connect(str(settings.home / "sanad.db"))
    try:
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        names = [r[0] for r in conn.execute("SELECT given_name FROM persons")]
    finally:
        conn.close()
    assert names == [GIVEN]
    status = kit.client.get("/sync/station/status", headers=kit.headers).json()
    assert status["database_encrypted"] is True
    # No plaintext gallery snapshot (face vectors) is written next to it either.
    kit.registry.gallery.save()
    assert kit.registry.gallery.path is None
    assert not settings.index_path.exists()


def test_key_file_is_wrapped_and_bound_to_the_kek(kit: Kit, tmp_path: Path) -> None:
    settings = kit.registry.settings
    key = database_key(settings)
    assert key is not None
    doc = json.loads(database_key_path(settings).read_text())
    assert doc["format"] == "sanad-dbkey/1" and key.hex() not in json.dumps(doc)
    assert database_key_path(settings).stat().st_mode & 0o077 == 0
    # Another kit's KEK ring (the keys directory of a different device) cannot unwrap it.
    other = Settings(home=tmp_path / "elsewhere", database_url=None)
    init_registry(other)
    other_key_file = database_key_path(other)
    other_key_file.write_text(database_key_path(settings).read_text())
    with pytest.raises(SealError):
        database_key(other)


def test_packets_carry_the_data_to_the_centre_then_leave_the_kit(
    kit: Kit, registry: Registry, client: TestClient, admin_token: str,
) -> None:
    _enrol_distinctive(kit)
    report = sync_station(kit.registry, client=client, url="http://testserver",
                          token=admin_token)
    assert report.sent == 1 and report.receipted == 1
    with transaction(registry.sessions) as session:
        person = session.scalar(select(Person).where(Person.given_name == GIVEN))
        assert person is not None and person.family_name == FAMILY
        assert person.date_of_birth.isoformat() == DOB and person.phone == PHONE
    with transaction(kit.registry.sessions) as session:
        assert session.scalar(select(func.count()).select_from(QueuedPacket)) == 0
        [receipt] = session.scalars(select(SyncReceipt)).all()
        kept = json.dumps(receipt.result, ensure_ascii=False)
    # What the kit keeps per packet is ids and outcomes, no personal data.
    for word in (GIVEN, FAMILY, FATHER, DOB, PHONE, ARABIC):
        assert word not in kept


def test_a_used_registry_is_not_converted(tmp_path: Path) -> None:
    # A kit database is encrypted when it is made: a home that already holds people is
    # refused (its plaintext pages would stay on the disk's free blocks), and nothing changes.
    settings = Settings(home=tmp_path / "used", database_url=None)
    password = init_registry(settings).created_admin_password
    reg = open_registry(settings)
    try:
        with TestClient(create_app(registry=reg)) as api:
            token = api.post("/auth/token", json={"username": "admin", "password": password})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            resp = api.post("/households", json=household([7200], np.random.default_rng(2)),
                            headers=headers)
            assert resp.status_code == 201, resp.text
    finally:
        reg.close()
    with pytest.raises(InvalidInput, match="already holds 1 people"):
        encrypt_database(settings)
    assert not database_key_path(settings).exists()
    plain = sqlite3.connect(settings.home / "sanad.db")
    try:
        assert plain.execute("SELECT count(*) FROM persons").fetchone() == (1,)
    finally:
        plain.close()
    # A registry on another database, or one encrypted already, is left alone.
    assert encrypt_database(Settings(home=tmp_path / "pg", database_url="postgresql://x/y")) \
        is False


def test_kek_rotation_rewraps_the_database_key_and_guards_retirement(kit: Kit) -> None:
    settings = kit.registry.settings
    _enrol_distinctive(kit)
    kit.client.__exit__(None, None, None)
    kit.registry.close()
    old_kek = database_key_kek(settings)
    key = database_key(settings)
    # A new current KEK that nothing has been re-wrapped under yet (a rotation interrupted
    # before the re-wrap): retiring the old one would lock the kit's database, so it is refused.
    ring = KekRing.parse(settings.template_key_path.read_bytes()).with_current(
        FileKek.generate())
    replace_private_file(settings.template_key_path, ring.dump())
    assert old_kek is not None
    with pytest.raises(SealError):
        kek.retire(settings, old_kek)
    report = kek.rotate(settings, new_kek=False)  # `sanad keys rewrap --resume`
    assert report["database_key_rewrapped"] is True
    assert database_key_kek(settings) == ring.current != old_kek
    assert database_key(settings) == key  # the same key, wrapped anew: no re-encryption
    kek.retire(settings, old_kek)
    reopened = open_registry(settings)
    try:
        with transaction(reopened.sessions) as session:
            assert session.scalar(select(Person.given_name)) == GIVEN
    finally:
        reopened.close()
    # The kit fixture closes its registry again at teardown: give it a fresh one.
    kit.registry = open_registry(settings)


def test_backup_refuses_an_encrypted_kit_with_a_reason(kit: Kit, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="field kit with an encrypted database"):
        create_backup(kit.registry.settings, tmp_path / "kit.backup", passphrase=b"x" * 20)
    assert not (tmp_path / "kit.backup").exists()

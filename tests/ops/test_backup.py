"""Backup → restore round trips: every row, every key file, cards still verify, audit intact."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from sanad.audit import verify_chain
from sanad.config import Settings
from sanad.ops.backup import (
    BackupError,
    RestoreTargetNotEmpty,
    create_backup,
    decrypt_stream,
    dump_database,
    encrypt_stream,
    restore_backup,
)
from sanad.registry.cards import issue_card
from sanad.registry.db import transaction
from sanad.registry.erasure import erase_person
from sanad.registry.gallery import Gallery
from sanad.registry.runtime import open_registry
from sanad.verify import verify
from tests.conftest import PG_ADMIN_URL, _pg_worker_url
from tests.ops.helpers import enrol

PASS = b"correct horse battery staple"


@pytest.fixture
def empty_target(settings: Settings, tmp_path: Path):
    """Settings for an empty SANAD_HOME and an empty database of the same kind."""
    home = tmp_path / "restored"
    if settings.database_url is None:
        yield Settings(home=home)
        return
    name = f"sanad_restore_{os.getpid()}_{tmp_path.name[-20:]}".replace("-", "_").lower()
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield Settings(home=home, database_url=_pg_worker_url(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _key_files(s: Settings) -> dict[str, bytes]:
    return {p.relative_to(s.keys_dir).as_posix(): p.read_bytes()
            for p in sorted(s.keys_dir.rglob("*")) if p.is_file()}


def test_round_trip_is_identical(registry, empty_target: Settings, tmp_path: Path) -> None:
    first = enrol(registry, [401, 402, 403])
    second = enrol(registry, [404], seed=2)
    card_holder, erased = first.members[0].person_id, second.members[0].person_id
    assert card_holder is not None and erased is not None
    with transaction(registry.sessions) as session:
        qr = issue_card(session, person_id=card_holder, officer="t",
                        key=registry.issuer_key, sealer=registry.sealer,
                        settings=registry.settings).qr
        erase_person(session, person_id=erased, reason="r", actor="t")
    registry.gallery.save()
    archive = tmp_path / "b.sanad"
    report = create_backup(registry.settings, archive, passphrase=PASS)
    assert report.tables["persons"] == 4 and report.index_snapshot
    assert b"Mohammad" not in archive.read_bytes()  # encrypted, not just packed

    restored = restore_backup(empty_target, archive, passphrase=PASS)
    assert restored.tables == report.tables
    assert _key_files(empty_target) == _key_files(registry.settings)
    assert empty_target.index_path.read_bytes() == registry.settings.index_path.read_bytes()

    target = open_registry(empty_target)
    try:
        with registry.engine.connect() as a, target.engine.connect() as b:
            assert dump_database(a) == dump_database(b)
        with target.sessions() as session:
            assert verify_chain(session).ok
        result = verify(qr, trust=target.trust_list, prefixes=(empty_target.qr_prefix,))
        assert result.valid, result.to_json()
        # Templates open with the restored keys; the index catches up to the same members.
        fresh = Gallery.open(kind=empty_target.index_backend, sealer=target.sealer, path=None)
        with target.sessions() as session:
            assert fresh.catch_up(session) == 3
        # New enrolments on the restored registry get fresh ids (sequences moved past).
        enrol(target, [405], seed=3)
    finally:
        target.close()


def test_restore_refuses_a_non_empty_target(registry, tmp_path: Path) -> None:
    enrol(registry, [406])
    archive = tmp_path / "b.sanad"
    create_backup(registry.settings, archive, passphrase=PASS)
    with pytest.raises(RestoreTargetNotEmpty):
        restore_backup(registry.settings, archive, passphrase=PASS)


def test_envelope_detects_wrong_secret_truncation_and_tampering() -> None:
    data = os.urandom(200_000)  # several 64 KiB chunks
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(data), sealed, passphrase=PASS)
    blob = sealed.getvalue()
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, passphrase=PASS)
    assert out.getvalue() == data
    bad = [
        (blob, {"passphrase": b"wrong passphrase!!"}),
        (blob[: len(blob) - 70_000], {"passphrase": PASS}),  # whole last chunk dropped
        (blob[:100] + bytes([blob[100] ^ 1]) + blob[101:], {"passphrase": PASS}),
        (blob[:9] + bytes([blob[9] ^ 1]) + blob[10:], {"passphrase": PASS}),  # header edit
        (blob, {"key": os.urandom(32)}),
    ]
    for candidate, secret in bad:
        with pytest.raises(BackupError):
            decrypt_stream(io.BytesIO(candidate), io.BytesIO(), **secret)
    with pytest.raises(BackupError, match="passphrase"):
        encrypt_stream(io.BytesIO(b"x"), io.BytesIO(), passphrase=b"short")


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_cli_backup_restore_and_audit_verify(registry, db_env, tmp_path: Path) -> None:
    enrol(registry, [407, 408])
    registry.close()
    archive = tmp_path / "cli.sanad"
    keyfile = tmp_path / "backup.key"
    keyfile.write_bytes(os.urandom(32))

    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sanad", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    made = run("backup", "--out", str(archive), "--key-file", str(keyfile), env=db_env)
    assert made.returncode == 0, made.stderr
    env2 = {**db_env, "SANAD_HOME": str(tmp_path / "restored")}
    done = run("restore", str(archive), "--key-file", str(keyfile), env=env2)
    assert done.returncode == 0, done.stderr
    assert '"persons": 2' in done.stdout
    audit = run("audit", "verify", env=env2)
    assert audit.returncode == 0, audit.stdout + audit.stderr


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_sqlite_backup_restores_into_postgresql(registry, tmp_path: Path, pg_url) -> None:
    result = enrol(registry, [409, 410])
    card_holder = result.members[0].person_id
    assert card_holder is not None
    with transaction(registry.sessions) as session:
        qr = issue_card(session, person_id=card_holder, officer="t",
                        key=registry.issuer_key, sealer=registry.sealer,
                        settings=registry.settings).qr
    archive = tmp_path / "x.sanad"
    create_backup(registry.settings, archive, passphrase=PASS)
    name = f"sanad_xrestore_{os.getpid()}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    target_settings = Settings(home=tmp_path / "pg-home", database_url=_pg_worker_url(name))
    try:
        restore_backup(target_settings, archive, passphrase=PASS)
        target = open_registry(target_settings)
        try:
            with registry.engine.connect() as a, target.engine.connect() as b:
                assert dump_database(a) == dump_database(b)
            with target.sessions() as session:
                assert verify_chain(session).ok
            assert verify(qr, trust=target.trust_list, prefixes=(target_settings.qr_prefix,)).valid
            enrol(target, [411], seed=4)
        finally:
            target.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

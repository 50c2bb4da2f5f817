"""Encrypted backups of a whole registry, and restore into an empty SANAD_HOME/database.

What a backup holds (a tar archive, then encrypted):

* ``manifest.json`` — format, creation time, source dialect, Alembic heads, per-table row
  counts and the SHA-256 of every other member;
* ``db/<table>.jsonl`` — a logical dump of every table (one JSON object per row, bytes as
  base64, UUIDs and timestamps as strings), taken from one consistent snapshot: SQLite's online
  backup API copies the live database first; PostgreSQL is read in one REPEATABLE READ, READ
  ONLY transaction. Logical rather than ``pg_dump`` so that the same archive restores into
  SQLite or PostgreSQL and needs no client binaries of a matching version;
* ``keys/…`` — every file of ``$SANAD_HOME/keys`` (KEK ring, issuer keys, session secret);
* ``gallery`` — the index snapshot, copied *before* the database snapshot so it is never ahead
  of it (a restored registry catches the index up from the database on start).

Encryption (age-like, built from `cryptography` primitives): a header ``SANADBK1 ‖ mode ‖ salt ‖
scrypt parameters ‖ nonce prefix``; the file key is scrypt(passphrase, salt) (N=2^15, r=8, p=1)
or HKDF-SHA256(backup key, salt); the body is the STREAM construction — 64 KiB chunks sealed
with AES-256-GCM under nonce ``prefix ‖ counter ‖ last-chunk flag`` and the header as associated
data, so reordering, truncation, extension and header edits all fail authentication.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import sqlite3
import struct
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import JSON, Connection, Engine, MetaData, Table, func, insert, select, text
from sqlalchemy.engine import make_url

from sanad import __version__
from sanad.config import Settings
from sanad.errors import SanadError
from sanad.registry import all_models, migrate  # noqa: F401  (complete metadata)
from sanad.registry.db import Base, make_engine
from sanad.registry.dbkey import database_key_path
from sanad.registry.runtime import open_registry

MAGIC = b"SANADBK1"
FORMAT = "sanad-backup/1"
_CHUNK = 64 * 1024
_TAG = 16
_MODE_PASSPHRASE = 1
_MODE_KEY = 2
_SCRYPT_LOG2N, _SCRYPT_R, _SCRYPT_P = 15, 8, 1
_HEADER = struct.Struct(">8sB16sBBB7s")


class BackupError(SanadError):
    """A backup archive cannot be read: wrong passphrase or key, damaged or truncated."""

    code = "backup_invalid"
    status = 422


class RestoreTargetNotEmpty(SanadError):
    """Restore refuses to write into a database or SANAD_HOME that already holds data."""

    code = "restore_target_not_empty"
    status = 409


# --- the encrypted envelope --------------------------------------------------------------------


def _file_key(mode: int, secret: bytes, salt: bytes) -> bytes:
    if mode == _MODE_PASSPHRASE:
        return Scrypt(salt=salt, length=32, n=2**_SCRYPT_LOG2N, r=_SCRYPT_R,
                      p=_SCRYPT_P).derive(secret)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=b"sanad backup file key").derive(secret)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


def encrypt_stream(
    src: BinaryIO, dst: BinaryIO, *, passphrase: bytes | None = None, key: bytes | None = None
) -> None:
    """Encrypt `src` into `dst` with a passphrase (scrypt) or a 32-byte backup key."""
    mode, secret = _secret(passphrase, key)
    salt, prefix = os.urandom(16), os.urandom(7)
    header = _HEADER.pack(MAGIC, mode, salt, _SCRYPT_LOG2N, _SCRYPT_R, _SCRYPT_P, prefix)
    aead = AESGCM(_file_key(mode, secret, salt))
    dst.write(header)
    counter = 0
    chunk = src.read(_CHUNK)
    while True:
        nxt = src.read(_CHUNK)
        last = not nxt
        dst.write(aead.encrypt(_nonce(prefix, counter, last), chunk, header))
        if last:
            return
        chunk, counter = nxt, counter + 1


def decrypt_stream(
    src: BinaryIO, dst: BinaryIO, *, passphrase: bytes | None = None, key: bytes | None = None
) -> None:
    """Inverse of `encrypt_stream`; `BackupError` on any tampering, truncation or wrong secret."""
    header = src.read(_HEADER.size)
    if len(header) != _HEADER.size:
        raise BackupError("not a sanad backup (file too short)")
    magic, mode, salt, log2n, r, p, prefix = _HEADER.unpack(header)
    if magic != MAGIC or mode not in {_MODE_PASSPHRASE, _MODE_KEY}:
        raise BackupError("not a sanad backup (bad header)")
    if (log2n, r, p) != (_SCRYPT_LOG2N, _SCRYPT_R, _SCRYPT_P):
        raise BackupError("unsupported key-derivation parameters")
    want, secret = _secret(passphrase, key)
    if want != mode:
        raise BackupError("this backup needs a " +
                          ("passphrase" if mode == _MODE_PASSPHRASE else "backup key"))
    aead = AESGCM(_file_key(mode, secret, salt))
    counter = 0
    block = src.read(_CHUNK + _TAG)
    while True:
        if len(block) < _TAG:
            raise BackupError("backup is truncated")
        nxt = src.read(_CHUNK + _TAG)
        last = not nxt
        try:
            dst.write(aead.decrypt(_nonce(prefix, counter, last), block, header))
        except InvalidTag as exc:
            raise BackupError("wrong passphrase/key, or the backup is damaged or truncated") \
                from exc
        if last:
            return
        block, counter = nxt, counter + 1


def _secret(passphrase: bytes | None, key: bytes | None) -> tuple[int, bytes]:
    if (passphrase is None) == (key is None):
        raise BackupError("give exactly one of a passphrase or a backup key")
    if key is not None:
        if len(key) != 32:
            raise BackupError("a backup key must be 32 bytes")
        return _MODE_KEY, key
    assert passphrase is not None
    if len(passphrase) < 12:
        raise BackupError("a backup passphrase must be at least 12 characters")
    return _MODE_PASSPHRASE, passphrase


# --- logical dump ------------------------------------------------------------------------------


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def _enc(value: Any, is_json: bool) -> Any:
    if is_json or value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes | memoryview):
        return {"b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    raise TypeError(f"cannot back up a value of type {type(value).__name__}")


def _dec(value: Any, is_json: bool) -> Any:
    if is_json or not isinstance(value, dict):
        return value
    ((kind, raw),) = value.items()
    if kind == "b64":
        return base64.b64decode(raw)
    if kind == "uuid":
        return uuid.UUID(raw)
    if kind == "datetime":
        return dt.datetime.fromisoformat(raw)
    if kind == "date":
        return dt.date.fromisoformat(raw)
    raise BackupError(f"unknown value kind {kind!r} in backup")


def _pk_order(table: Table) -> list[Any]:
    return list(table.primary_key.columns) or list(table.columns)


def iter_rows(conn: Connection, table: Table, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every row of `table` in primary-key order, as JSON-ready dicts."""
    json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
    result = conn.execution_options(yield_per=batch).execute(
        select(table).order_by(*_pk_order(table))
    )
    for row in result.mappings():
        yield {k: _enc(v, k in json_cols) for k, v in row.items()}


def dump_database(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """All rows of all tables (tests compare a source and its restore with this)."""
    return {t.name: list(iter_rows(conn, t)) for t in _tables()}


def _check_all_tables_known(conn: Connection) -> None:
    reflected = MetaData()
    reflected.reflect(bind=conn)
    unknown = set(reflected.tables) - {t.name for t in _tables()} - {"alembic_version"}
    if unknown:
        raise BackupError(
            f"tables without a model in sanad.registry.all_models: {', '.join(sorted(unknown))}"
        )


@dataclass(frozen=True)
class BackupReport:
    path: Path
    tables: dict[str, int]
    key_files: int
    index_snapshot: bool
    bytes_written: int


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, digests: dict[str, str]) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))
    digests[name] = hashlib.sha256(data).hexdigest()


def _add_file(tar: tarfile.TarFile, name: str, path: Path, digests: dict[str, str]) -> None:
    _add_bytes(tar, name, path.read_bytes(), digests)


def _snapshot_sqlite(db_file: Path, copy: Path) -> None:
    src = sqlite3.connect(db_file)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)  # the online backup API: a consistent copy while writers continue
    finally:
        dst.close()
        src.close()


def _dump_tables(
    conn: Connection, tar: tarfile.TarFile, work: Path, digests: dict[str, str]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    _check_all_tables_known(conn)
    for table in _tables():
        part = work / f"{table.name}.jsonl"
        n = 0
        with part.open("w", encoding="utf-8") as fh:
            for row in iter_rows(conn, table):
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
        _add_file(tar, f"db/{table.name}.jsonl", part, digests)
        part.unlink()
        counts[table.name] = n
    return counts


def create_backup(
    settings: Settings, out: Path, *, passphrase: bytes | None = None, key: bytes | None = None
) -> BackupReport:
    """Write an encrypted backup of the registry at `settings` to `out` (atomic)."""
    _secret(passphrase, key)  # fail before doing any work
    if database_key_path(settings).exists():
        raise BackupError("this is a field kit with an encrypted database: it is not backed up "
                          "here; its records reach the centre as packets (`sanad sync`)")
    reg = open_registry(settings)
    engine = reg.engine
    digests: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="sanad-backup-") as tmp:
            work = Path(tmp)
            tar_path = work / "backup.tar"
            with tarfile.open(tar_path, "w") as tar:
                has_index = settings.index_path.is_file()
                if has_index:  # before the database: the snapshot may lag, never lead
                    _add_file(tar, "gallery", settings.index_path, digests)
                key_files = 0
                for path in sorted(settings.keys_dir.rglob("*")):
                    if path.is_file():
                        rel = path.relative_to(settings.keys_dir).as_posix()
                        _add_file(tar, f"keys/{rel}", path, digests)
                        key_files += 1
                if not settings.template_key_path.is_relative_to(settings.keys_dir):
                    _add_file(tar, "keys/template.key", settings.template_key_path, digests)
                    key_files += 1
                counts, heads = _dump(engine, settings, tar, work, digests)
                manifest = {
                    "format": FORMAT, "sanad_version": __version__,
                    "created_at": dt.datetime.now(dt.UTC).isoformat(),
                    "dialect": engine.dialect.name, "alembic_heads": heads,
                    "tables": counts, "sha256": digests,
                }
                _add_bytes(tar, "manifest.json",
                           json.dumps(manifest, indent=2, sort_keys=True).encode(), {})
            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_name(f".{out.name}.partial")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with tar_path.open("rb") as src, os.fdopen(fd, "wb") as dst:
                encrypt_stream(src, dst, passphrase=passphrase, key=key)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(partial, out)
    finally:
        reg.engine.dispose()
    return BackupReport(out, counts, key_files, has_index, out.stat().st_size)


def _heads(conn: Connection) -> list[str]:
    return sorted(str(r) for r in conn.execute(text("SELECT version_num FROM alembic_version"))
                  .scalars())


def _dump(
    engine: Engine, settings: Settings, tar: tarfile.TarFile, work: Path, digests: dict[str, str]
) -> tuple[dict[str, int], list[str]]:
    if engine.dialect.name == "sqlite":
        db_file = make_url(settings.db_url).database
        if not db_file:
            raise BackupError("cannot back up an in-memory SQLite database")
        copy = work / "snapshot.db"
        _snapshot_sqlite(Path(db_file), copy)
        snap = make_engine(f"sqlite:///{copy}")
        try:
            with snap.connect() as conn:
                return _dump_tables(conn, tar, work, digests), _heads(conn)
        finally:
            snap.dispose()
            copy.unlink()
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            return _dump_tables(conn, tar, work, digests), _heads(conn)


# --- restore -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    tables: dict[str, int]
    key_files: int
    index_snapshot: bool
    source_dialect: str
    created_at: str


def _target_is_empty(engine: Engine, settings: Settings) -> None:
    if settings.keys_dir.exists() and any(settings.keys_dir.iterdir()):
        raise RestoreTargetNotEmpty(f"{settings.keys_dir} is not empty")
    if settings.template_key_path.exists():
        raise RestoreTargetNotEmpty(f"{settings.template_key_path} exists")
    if settings.index_path.exists():
        raise RestoreTargetNotEmpty(f"{settings.index_path} exists")
    reflected = MetaData()
    with engine.connect() as conn:
        reflected.reflect(bind=conn)
        for table in reflected.tables.values():
            if table.name == "alembic_version":
                continue
            if conn.scalar(select(func.count()).select_from(table)):
                raise RestoreTargetNotEmpty(f"table {table.name} in the target holds rows")


def _reset_sequences(conn: Connection) -> None:
    # Rows came in with explicit ids: move PostgreSQL sequences past them.
    for table in _tables():
        for col in table.primary_key.columns:
            if col.autoincrement is True:
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{col.name}'), "
                    f"COALESCE((SELECT MAX({col.name}) FROM {table.name}), 0) + 1, false)"
                ))


def _read_member(tar: tarfile.TarFile, name: str, digests: dict[str, str]) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise BackupError(f"backup member {name} is missing")
    data = member.read()
    if hashlib.sha256(data).hexdigest() != digests.get(name):
        raise BackupError(f"backup member {name} does not match the manifest")
    return data


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def restore_backup(
    settings: Settings, archive: Path, *, passphrase: bytes | None = None,
    key: bytes | None = None, batch: int = 2000,
) -> RestoreReport:
    """Restore `archive` into the empty database and SANAD_HOME named by `settings`."""
    with tempfile.TemporaryDirectory(prefix="sanad-restore-") as tmp:
        tar_path = Path(tmp) / "backup.tar"
        with archive.open("rb") as src, tar_path.open("wb") as dst:
            decrypt_stream(src, dst, passphrase=passphrase, key=key)
        with tarfile.open(tar_path, "r") as tar:
            return _restore_tar(settings, tar, batch)


def _restore_tar(settings: Settings, tar: tarfile.TarFile, batch: int) -> RestoreReport:
    manifest_file = tar.extractfile("manifest.json")
    if manifest_file is None:
        raise BackupError("backup has no manifest")
    manifest = json.loads(manifest_file.read())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unsupported backup format {manifest.get('format')!r}")
    digests: dict[str, str] = manifest["sha256"]
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    try:
        _target_is_empty(engine, settings)
        migrate.upgrade(engine)
        with engine.connect() as conn:
            heads = _heads(conn)
        if heads != manifest["alembic_heads"]:
            raise BackupError(
                f"schema mismatch: backup at {manifest['alembic_heads']}, this sanad at {heads}"
            )
        counts: dict[str, int] = {}
        with engine.begin() as conn:
            for table in _tables():
                json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
                data = _read_member(tar, f"db/{table.name}.jsonl", digests)
                rows = [
                    {k: _dec(v, k in json_cols) for k, v in json.loads(line).items()}
                    for line in data.decode("utf-8").splitlines() if line
                ]
                if len(rows) != manifest["tables"].get(table.name):
                    raise BackupError(f"row count of {table.name} does not match the manifest")
                for i in range(0, len(rows), batch):
                    conn.execute(insert(table), rows[i:i + batch])
                counts[table.name] = len(rows)
            if engine.dialect.name == "postgresql":
                _reset_sequences(conn)
    finally:
        engine.dispose()
    key_files = 0
    for name in sorted(n for n in tar.getnames() if n.startswith("keys/")):
        rel = Path(name).relative_to("keys")
        if ".." in rel.parts:
            raise BackupError(f"unsafe path in backup: {name}")
        target = settings.keys_dir / rel
        if rel.as_posix() == "template.key":
            target = settings.template_key_path
        _write_private(target, _read_member(tar, name, digests))
        key_files += 1
    has_index = "gallery" in digests
    if has_index:
        _write_private(settings.index_path, _read_member(tar, "gallery", digests))
    settings.cards_dir.mkdir(parents=True, exist_ok=True)
    return RestoreReport(counts, key_files, has_index, str(manifest["dialect"]),
                         str(manifest["created_at"]))

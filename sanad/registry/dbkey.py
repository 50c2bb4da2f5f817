"""A field kit's database key: the whole SQLite file encrypted (SQLCipher), key bound to the kit.

Why the whole file and not sealed columns: a captured kit must not give away names, dates of
birth, phone numbers — and those also sit in the biographic blocking key (`name_key`), its
index pages, audit details, adjudication candidates and the WAL. Page-level encryption covers
every one of them without a second code path in enrolment, search or the web UI.

The key is a random 256-bit data key, **wrapped by the kit's key-encryption key** (the ring at
``template_key_path``: a file KEK, or a PKCS#11 key on a TPM/secure element that never leaves
the device) and stored as ``$SANAD_HOME/keys/database.key``:
``{"format": "sanad-dbkey/1", "kek": <kek id>, "wrapped": <base64>}``. The database file alone
is noise; with a PKCS#11 KEK, so is the file plus the keys directory off the device.

A home is encrypted when that file exists (`database_key` returns the key); `encrypt_database`
turns a fresh, still empty SQLite registry into an encrypted one (`sanad kit init` does it).
KEK rotation re-wraps it (`rewrap_database_key`, called by `sanad.ops.kek.rotate`), and the KEK
it is wrapped under cannot be retired (`sanad.ops.kek.retire` refuses).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select

from sanad.config import Settings
from sanad.errors import InvalidInput
from sanad.registry.db import make_engine, make_sessionmaker, transaction
from sanad.registry.models import Person
from sanad.registry.sealing import (
    KekRing,
    SealError,
    TemplateSealer,
    replace_private_file,
    write_private_file,
)

DATABASE_KEY_FILE = "database.key"
FORMAT = "sanad-dbkey/1"
_SIDE_FILES = ("-wal", "-shm", "-journal")


def database_key_path(settings: Settings) -> Path:
    return settings.keys_dir / DATABASE_KEY_FILE


def sqlite_file(settings: Settings) -> Path | None:
    """The registry's SQLite file, or None when it runs on another database."""
    url = settings.db_url
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///"))


def _ring(settings: Settings) -> KekRing:
    return TemplateSealer.from_file(settings.template_key_path).ring


def database_key(settings: Settings) -> bytes | None:
    """The unwrapped key of an encrypted kit database; None for an ordinary registry."""
    path = database_key_path(settings)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            raise ValueError(f"unknown format {doc.get('format')!r}")
        kek_id, wrapped = str(doc["kek"]), base64.b64decode(doc["wrapped"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SealError(f"database key file {path} is unreadable: {exc}") from exc
    kek = _ring(settings).keks.get(kek_id)
    if kek is None:
        raise SealError(f"the database key is wrapped by {kek_id}, which is not in the ring")
    key = kek.unwrap(wrapped)
    if len(key) != 32:
        raise SealError("the database key is not 32 bytes")
    return key


def _write_key(settings: Settings, key: bytes) -> None:
    ring = TemplateSealer.load_or_create(settings.template_key_path).ring
    kek = ring.keks[ring.current]
    doc = {"format": FORMAT, "kek": kek.identifier,
           "wrapped": base64.b64encode(kek.wrap(key)).decode()}
    write_private_file(database_key_path(settings), (json.dumps(doc, indent=2) + "\n").encode())


def encrypt_database(settings: Settings) -> bool:
    """Encrypt this home's SQLite registry in place under a new kit database key.

    Only a registry that holds no person yet is converted (the plaintext pages of a used one
    would stay on the disk's free blocks); returns False, changing nothing, when the registry
    is not on SQLite or is encrypted already.
    """
    db_file = sqlite_file(settings)
    if db_file is None or database_key_path(settings).exists():
        return False
    from sqlcipher3 import dbapi2 as sqlcipher

    engine = make_engine(settings.db_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            people = session.scalar(select(func.count()).select_from(Person)) or 0
    finally:
        engine.dispose()
    if people:
        raise InvalidInput(
            f"{db_file} already holds {people} people: a kit database is encrypted when it is "
            "made, start from an empty home", field="home")
    key = AESGCM.generate_key(bit_length=256)
    tmp = db_file.with_name(f".{db_file.name}.encrypting")
    for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in _SIDE_FILES)):
        leftover.unlink(missing_ok=True)
    conn = sqlcipher.connect(str(db_file), isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute(f"ATTACH DATABASE ? AS enc KEY \"x'{key.hex()}'\"", (str(tmp),))
        conn.execute("SELECT sqlcipher_export('enc')")
        conn.execute("DETACH DATABASE enc")
    finally:
        conn.close()
    # Key first: a crash after it but before the rename leaves a plain, empty registry and a
    # key file — `open_registry` then fails loudly ("file is not a database"), never silently.
    _write_key(settings, key)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, db_file)
    for suffix in _SIDE_FILES:
        db_file.with_name(db_file.name + suffix).unlink(missing_ok=True)
    return True


def database_key_kek(settings: Settings) -> str | None:
    """The identifier of the KEK the kit database key is wrapped under (None: no key)."""
    path = database_key_path(settings)
    if not path.exists():
        return None
    try:
        return str(json.loads(path.read_text())["kek"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SealError(f"database key file {path} is unreadable: {exc}") from exc


def rewrap_database_key(settings: Settings, ring: KekRing) -> bool:
    """Re-wrap the kit database key under `ring.current` (KEK rotation); True if it moved.

    The database itself is not re-keyed: only the wrapping changes, atomically.
    """
    wrapped_under = database_key_kek(settings)
    if wrapped_under is None or wrapped_under == ring.current:
        return False
    key = database_key(settings)
    assert key is not None
    kek = ring.keks[ring.current]
    doc = {"format": FORMAT, "kek": kek.identifier,
           "wrapped": base64.b64encode(kek.wrap(key)).decode()}
    replace_private_file(database_key_path(settings), (json.dumps(doc, indent=2) + "\n").encode())
    return True

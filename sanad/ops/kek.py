"""Rotating the key-encryption key: re-wrap every data key in short, resumable batches.

Procedure (no downtime): the new KEK is added to the ring file and made current *before* any
data key moves, so every process that re-reads the ring (`TemplateSealer.from_file`) can
unwrap both old and new wrappings throughout; templates are never re-encrypted. A process
that started before the rotation keeps wrapping new data keys under the old KEK until it
restarts: run ``sanad keys rewrap --resume`` after a rolling restart, then
``sanad keys kek-retire``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sanad.config import Settings
from sanad.registry.db import transaction
from sanad.registry.dbkey import database_key_kek, rewrap_database_key
from sanad.registry.runtime import open_registry
from sanad.registry.sealing import (
    FileKek,
    KekRing,
    KeyEncryptionKey,
    SealError,
    count_keys_by_kek,
    replace_private_file,
    rewrap_batch,
)


def load_ring(settings: Settings) -> KekRing:
    path = settings.template_key_path
    if not path.exists():
        raise SealError(f"no key-encryption key ring at {path}: run `sanad init`")
    return KekRing.parse(path.read_bytes())


def kek_status(settings: Settings) -> dict[str, Any]:
    """The ring (identifiers only, never key material) and data keys per KEK."""
    ring = load_ring(settings)
    reg = open_registry(settings)
    try:
        with reg.sessions() as session:
            counts = count_keys_by_kek(session)
    finally:
        reg.engine.dispose()
    return {"current": ring.current, "keks": sorted(ring.keks), "data_keys": counts}


def rotate(
    settings: Settings, *, new_kek: bool | KeyEncryptionKey = True, batch: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Make a new KEK current (unless resuming) and re-wrap every data key under it."""
    ring = load_ring(settings)
    if new_kek is not False:
        kek = FileKek.generate() if new_kek is True else new_kek
        ring = ring.with_current(kek)
        # The ring file changes first: a crash after this line is finished by --resume.
        replace_private_file(settings.template_key_path, ring.dump())
    reg = open_registry(settings)
    total = 0
    try:
        while True:
            with transaction(reg.sessions) as session:
                n = rewrap_batch(session, ring, batch=batch)
            if n == 0:
                break
            total += n
            if progress:
                progress(total)
        with reg.sessions() as session:
            counts = count_keys_by_kek(session)
    finally:
        reg.engine.dispose()
    # A field kit's database key (sanad.registry.dbkey) moves to the new KEK too.
    database_key_moved = rewrap_database_key(settings, ring)
    return {"current": ring.current, "rewrapped": total, "data_keys": counts,
            "database_key_rewrapped": database_key_moved}


def retire(settings: Settings, kek_id: str) -> dict[str, Any]:
    """Remove `kek_id` from the ring; refused while any data key is still wrapped under it."""
    ring = load_ring(settings)
    if kek_id not in ring.keks:
        raise SealError(f"key-encryption key {kek_id} is not in the ring")
    reg = open_registry(settings)
    try:
        with reg.sessions() as session:
            left = count_keys_by_kek(session).get(kek_id, 0)
    finally:
        reg.engine.dispose()
    if left:
        raise SealError(f"{left} data keys are still wrapped under {kek_id}: run "
                        "`sanad keys rewrap --resume` first")
    if database_key_kek(settings) == kek_id:
        raise SealError(f"this kit's database key is wrapped under {kek_id}: run "
                        "`sanad keys rewrap --resume` first")
    ring = ring.without(kek_id)
    replace_private_file(settings.template_key_path, ring.dump())
    return {"current": ring.current, "keks": sorted(ring.keks), "retired": kek_id}

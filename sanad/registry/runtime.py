"""The one object every adapter shares: settings, database, gallery, keys.

`open_registry(settings)` is what the API factory, the CLI and the tests all call (the
datasette pattern: one object, many front ends). `init_registry` prepares a fresh
SANAD_HOME/database and is idempotent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sanad.config import Settings
from sanad.credentials.keys import IssuerKey, TrustList, load_or_create_issuer_key
from sanad.credentials.keys import trust_list_from_keys_dir as _trust_from_dir
from sanad.credentials.pki import ensure_pki
from sanad.errors import NotInitialised
from sanad.registry import migrate
from sanad.registry.db import make_engine, make_sessionmaker, transaction
from sanad.registry.dbkey import database_key, database_key_path
from sanad.registry.finger_gallery import (
    FingerGallery,
    finger_index_kind,
    finger_index_options,
)
from sanad.registry.gallery import Gallery
from sanad.registry.models import Role
from sanad.registry.sealing import TemplateSealer, write_private_file
from sanad.registry.users import count_users, create_user

ADMIN_USERNAME = "admin"


@dataclass
class Registry:
    """Process-wide handles. Cheap to build; the gallery is loaded lazily on first use."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    @cached_property
    def sealer(self) -> TemplateSealer:
        path = self.settings.template_key_path
        if not path.exists():
            raise NotInitialised("template key missing: run `sanad init`")
        # from_file: a running server picks up a new key-encryption key after rotation.
        return TemplateSealer.from_file(path)

    @cached_property
    def gallery(self) -> Gallery:
        s = self.settings
        options: dict[str, Any] = {}
        if s.index_backend == "twostage":
            options.update(shortlist=s.index_shortlist, subvectors=s.index_pq_subvectors,
                           threads=s.index_threads, batch_stage=s.index_batch_stage)
        elif s.index_backend == "milvus" and s.milvus_uri:
            options["uri"] = s.milvus_uri
        # A field kit with an encrypted database keeps no plaintext index snapshot on disk
        # (face vectors): its small gallery is rebuilt from the sealed templates at start.
        encrypted = database_key_path(s).exists()
        snapshot = None if encrypted else s.index_path
        gallery = Gallery.open(
            kind=s.index_backend, sealer=self.sealer, path=snapshot, **options
        )
        if s.finger_prefilter_candidates > 0:
            # The fingerprint pre-filter index (descriptors, never templates): the same rule,
            # no snapshot beside an encrypted database.
            kind = finger_index_kind(s.index_backend)
            gallery.fingers = FingerGallery.open(
                kind=kind, sealer=self.sealer,
                path=None if encrypted else s.finger_index_path,
                **finger_index_options(kind, s.index_shortlist),
            )
        with self.sessions() as session:
            gallery.catch_up(session)
        return gallery

    @cached_property
    def issuer_key(self) -> IssuerKey:
        if not (self.settings.keys_dir / "current").exists():
            raise NotInitialised("issuer key missing: run `sanad init`")
        key, _ = load_or_create_issuer_key(self.settings.keys_dir)
        return key

    @cached_property
    def trust_list(self) -> TrustList:
        return _trust_from_dir(self.settings.keys_dir)

    def session_secret(self) -> bytes:
        if self.settings.session_secret:
            return self.settings.session_secret.encode()
        path = self.settings.keys_dir / "session.secret"
        if not path.exists():
            raise NotInitialised("session secret missing: run `sanad init`")
        return path.read_bytes()

    def close(self) -> None:
        if "gallery" in self.__dict__:
            self.gallery.save()
        self.engine.dispose()


def open_registry(settings: Settings, *, check_schema: bool = True) -> Registry:
    """Connect to an initialised registry (raises `NotInitialised` otherwise)."""
    sqlite_default = settings.database_url is None
    if sqlite_default and not (settings.home / "sanad.db").exists():
        raise NotInitialised(f"no database under {settings.home}: run `sanad init`")
    engine = make_engine(settings.db_url, key=database_key(settings))
    if check_schema and not migrate.is_current(engine):
        engine.dispose()
        raise NotInitialised("database schema is missing or old: run `sanad init`")
    return Registry(settings=settings, engine=engine, sessions=make_sessionmaker(engine))


@dataclass(frozen=True)
class InitReport:
    created_admin_password: str | None
    created_issuer_key: bool
    kid: str


def init_registry(settings: Settings) -> InitReport:
    """Create SANAD_HOME, migrate the schema, make missing keys and the first admin. Idempotent."""
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.cards_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url, key=database_key(settings))
    try:
        migrate.upgrade(engine)
        TemplateSealer.load_or_create(settings.template_key_path)
        secret_path = settings.keys_dir / "session.secret"
        if not secret_path.exists():
            write_private_file(secret_path, secrets.token_bytes(32))
        key, created_key = load_or_create_issuer_key(settings.keys_dir)
        # Root certificate + a document-signer certificate for the current key (idempotent).
        ensure_pki(settings.keys_dir, issuer=settings.issuer)
        password = None
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            if count_users(session) == 0:
                password = secrets.token_urlsafe(12)
                create_user(
                    session, username=ADMIN_USERNAME, password=password,
                    roles=[r.value for r in Role], actor="sanad-init",
                )
    finally:
        engine.dispose()
    return InitReport(
        created_admin_password=password, created_issuer_key=created_key, kid=key.kid.hex()
    )

"""Biometric templates (and later photos) sealed at rest: per-record data keys under a KEK.

Envelope encryption, the construction cloud KMSs and HSM vendors recommend:

* every `seal` draws a fresh AES-256 **data key** (DEK) and encrypts with AES-256-GCM;
* the DEK is **wrapped** by a key-encryption key (KEK, `KeyEncryptionKey`) — a file key by
  default (RFC 3394 AES key wrap), or a key that never leaves an HSM (`Pkcs11Kek`);
* the wrapped DEK is a row of `data_keys` (`DataKey`), written in the *same transaction* as
  the sealed blob, so a crash never leaves a template without its key or a key without data;
* the sealed blob is ``0x02 ‖ dek_id (16) ‖ nonce (12) ‖ ciphertext ‖ tag``; the version byte
  and dek id are authenticated together with the caller's associated data.

Deleting a person's `DataKey` rows is **crypto-shredding** (`sanad.registry.erasure`): every copy
of their templates — in the database, in old backups' blobs, in replicas — becomes noise.
Rotating the KEK re-wraps DEKs only (`rewrap_batch`); no template is re-encrypted.

Which database session holds the key rows: the caller's transaction. `seal`/`open` accept
``session=``; without it they use the session whose transaction is active in the current
context (tracked with SQLAlchemy session events), because enrolment, the gallery and card
issuance call ``seal(template, aad=…)``/``open(blob, aad=…)`` from inside their transaction.
Version-1 blobs (one AES-GCM key, before data keys) still open with a file KEK's key.

The KEK ring is the file at ``template_key_path`` (``$SANAD_HOME/keys/template.key``): JSON
``{"format": "sanad-kek-ring/1", "current": id, "keks": [...]}`` with entries of type ``file``
(base64 key) or ``pkcs11`` (module, token, key label, PIN from an environment variable). A raw
32-byte file (the version-1 format) is read as a one-key ring.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import json
import os
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from sanad.errors import SanadError
from sanad.registry.crypto_models import DataKey
from sanad.registry.db import utcnow

_V1 = 0x01
_V2 = 0x02
_DEK_ID_LEN = 16
_NONCE_LEN = 12
_V2_HEADER = 1 + _DEK_ID_LEN
RING_FORMAT = "sanad-kek-ring/1"


class SealError(SanadError):
    """A sealed template cannot be opened (wrong key, damaged or unknown format)."""

    code = "template_unsealable"
    status = 500


class DataKeyDestroyed(SealError):
    """The data key of a sealed blob is gone: the data was erased (crypto-shredded)."""

    code = "data_key_destroyed"
    status = 410


class KekUnavailable(SealError):
    """The key-encryption key a data key is wrapped under is not in the configured ring."""

    code = "kek_unavailable"
    status = 500


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 (never world-readable, not even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def replace_private_file(path: Path, data: bytes) -> None:
    """Atomically replace `path` (mode 0600): write a sibling, fsync, rename over."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    write_private_file(tmp, data)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --- key-encryption keys -------------------------------------------------------------------


@runtime_checkable
class KeyEncryptionKey(Protocol):
    """Wraps and unwraps 32-byte data keys; the key material may never leave its device.

    ``identifier`` is stable for the key's lifetime and unique within a ring (it is stored
    with every wrapped data key). ``unwrap(wrap(k)) == k``; `unwrap` raises `SealError` for
    input it did not wrap. Implementations must be safe to call from several threads.
    """

    @property
    def identifier(self) -> str: ...

    def wrap(self, dek: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


class FileKek:
    """A 256-bit KEK held in a file outside the database; RFC 3394 AES key wrap."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SealError("a file key-encryption key must be 32 bytes")
        self._key = key
        self._id = "file:" + hashlib.sha256(b"sanad-kek-id\x00" + key).hexdigest()[:16]

    @classmethod
    def generate(cls) -> FileKek:
        return cls(AESGCM.generate_key(bit_length=256))

    @property
    def identifier(self) -> str:
        return self._id

    @property
    def key_bytes(self) -> bytes:
        return self._key

    def wrap(self, dek: bytes) -> bytes:
        return aes_key_wrap(self._key, dek)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._key, wrapped)
        except InvalidUnwrap as exc:
            raise SealError("data key does not unwrap under this key-encryption key") from exc


class Pkcs11Kek:
    """A KEK inside an HSM (or SoftHSM2), used through PKCS#11 with python-pkcs11.

    The AES key is generated on the token (`generate`) as non-extractable; wrapping is
    AES-GCM *on the token* (``nonce ‖ ciphertext ‖ tag``), so the KEK never reaches this
    process. The PIN comes from an environment variable named in the ring, never the file.
    One PKCS#11 session is kept open and serialised with a lock.
    """

    def __init__(self, *, module: str, token: str, label: str, pin_env: str) -> None:
        self.module = module
        self.token_label = token
        self.label = label
        self.pin_env = pin_env
        self._lock = threading.Lock()
        self._session: Any = None
        self._key: Any = None

    @property
    def identifier(self) -> str:
        return f"pkcs11:{self.token_label}/{self.label}"

    def _open(self) -> Any:
        import pkcs11
        from pkcs11 import KeyType, ObjectClass

        if self._key is None:
            pin = os.environ.get(self.pin_env)
            if pin is None:
                raise KekUnavailable(f"PKCS#11 PIN not set: export {self.pin_env}")
            try:
                lib = pkcs11.lib(self.module)
                token = lib.get_token(token_label=self.token_label)
                try:
                    self._session = token.open(user_pin=pin)
                except pkcs11.exceptions.UserAlreadyLoggedIn:
                    # PKCS#11 login is per application and token: another Pkcs11Kek of this
                    # process (or `generate`) is logged in, and this session shares that state.
                    self._session = token.open()
                self._key = self._session.get_key(
                    object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=self.label
                )
            except (pkcs11.PKCS11Error, RuntimeError) as exc:
                raise KekUnavailable(f"PKCS#11 key {self.identifier} unavailable: {exc}") from exc
        return self._key

    @classmethod
    def generate(cls, *, module: str, token: str, label: str, pin_env: str) -> Pkcs11Kek:
        """Create a non-extractable AES-256 key labelled `label` on the token."""
        import pkcs11
        from pkcs11 import Attribute, KeyType

        pin = os.environ.get(pin_env)
        if pin is None:
            raise KekUnavailable(f"PKCS#11 PIN not set: export {pin_env}")
        tok = pkcs11.lib(module).get_token(token_label=token)
        try:
            opened = tok.open(user_pin=pin, rw=True)
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            opened = tok.open(rw=True)  # this process is logged in to the token already
        with opened as session:
            session.generate_key(
                KeyType.AES, 256, label=label, store=True,
                template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
            )
        return cls(module=module, token=token, label=label, pin_env=pin_env)

    def wrap(self, dek: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        nonce = os.urandom(_NONCE_LEN)
        with self._lock:
            key = self._open()
            ct = key.encrypt(dek, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce))
        return nonce + bytes(ct)

    def unwrap(self, wrapped: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        with self._lock:
            key = self._open()
            try:
                return bytes(
                    key.decrypt(
                        wrapped[_NONCE_LEN:], mechanism=Mechanism.AES_GCM,
                        mechanism_param=GCMParams(wrapped[:_NONCE_LEN]),
                    )
                )
            except pkcs11.PKCS11Error as exc:
                raise SealError("data key does not unwrap under the PKCS#11 key") from exc

    def describe(self) -> dict[str, str]:
        return {"id": self.identifier, "type": "pkcs11", "module": self.module,
                "token": self.token_label, "label": self.label, "pin_env": self.pin_env}


@dataclass
class KekRing:
    """The KEKs a process knows: `current` wraps new data keys; every one can unwrap."""

    keks: dict[str, KeyEncryptionKey]
    current: str
    legacy_key: bytes | None = None  # the version-1 AES-GCM key, when the ring came from one

    @classmethod
    def single(cls, kek: KeyEncryptionKey) -> KekRing:
        return cls({kek.identifier: kek}, kek.identifier)

    @classmethod
    def parse(cls, data: bytes) -> KekRing:
        """Read a ring file; a bare 32-byte key is the version-1 format (one file KEK)."""
        if len(data) == 32 and not data.lstrip().startswith(b"{"):
            legacy = FileKek(data)
            return cls({legacy.identifier: legacy}, legacy.identifier, legacy_key=data)
        try:
            doc = json.loads(data)
            if doc.get("format") != RING_FORMAT:
                raise ValueError("unknown format")
            keks: dict[str, KeyEncryptionKey] = {}
            for entry in doc["keks"]:
                kek: KeyEncryptionKey
                if entry["type"] == "file":
                    kek = FileKek(base64.b64decode(entry["key"]))
                elif entry["type"] == "pkcs11":
                    kek = Pkcs11Kek(module=entry["module"], token=entry["token"],
                                    label=entry["label"], pin_env=entry["pin_env"])
                else:
                    raise ValueError(f"unknown KEK type {entry['type']!r}")
                keks[kek.identifier] = kek
            legacy_b64 = doc.get("legacy_key")
            ring = cls(keks, str(doc["current"]),
                       legacy_key=base64.b64decode(legacy_b64) if legacy_b64 else None)
        except (ValueError, KeyError, TypeError) as exc:
            raise SealError(f"key-encryption key ring is unreadable: {exc}") from exc
        if ring.current not in ring.keks:
            raise SealError("key-encryption key ring names a current key it does not hold")
        return ring

    def dump(self) -> bytes:
        entries: list[dict[str, str]] = []
        for kek in self.keks.values():
            if isinstance(kek, FileKek):
                entries.append({"id": kek.identifier, "type": "file",
                                "key": base64.b64encode(kek.key_bytes).decode()})
            elif isinstance(kek, Pkcs11Kek):
                entries.append(kek.describe())
            else:
                raise TypeError(f"cannot serialise KEK {kek.identifier}")
        doc: dict[str, Any] = {"format": RING_FORMAT, "current": self.current, "keks": entries}
        if self.legacy_key is not None:
            doc["legacy_key"] = base64.b64encode(self.legacy_key).decode()
        return (json.dumps(doc, indent=2) + "\n").encode()

    def with_current(self, kek: KeyEncryptionKey) -> KekRing:
        return KekRing({**self.keks, kek.identifier: kek}, kek.identifier, self.legacy_key)

    def without(self, identifier: str) -> KekRing:
        if identifier == self.current:
            raise SealError("cannot retire the current key-encryption key")
        return KekRing({k: v for k, v in self.keks.items() if k != identifier}, self.current,
                       self.legacy_key)


# --- which session is in a transaction in this context ----------------------------------------

_ACTIVE: contextvars.ContextVar[tuple[weakref.ref[Session], ...]] = contextvars.ContextVar(
    "sanad_active_sessions", default=()
)


@event.listens_for(Session, "after_transaction_create")
def _track_begin(session: Session, tx: SessionTransaction) -> None:
    # Tuples, never mutated in place: a copied context (threadpool) must not see our pushes.
    if tx.parent is None:
        _ACTIVE.set((*_ACTIVE.get(), weakref.ref(session)))


@event.listens_for(Session, "after_transaction_end")
def _track_end(session: Session, tx: SessionTransaction) -> None:
    if tx.parent is None:
        _ACTIVE.set(tuple(r for r in _ACTIVE.get() if r() is not session and r() is not None))


def active_session() -> Session | None:
    """The innermost session with an open transaction in this context, if any."""
    for ref in reversed(_ACTIVE.get()):
        session = ref()
        if session is not None:
            return session
    return None


# --- the sealer --------------------------------------------------------------------------------


def subject_of(aad: bytes) -> str:
    """Whose data an AAD names: sanad's AADs are ``<subject id>:<purpose>``."""
    head = aad.split(b":", 1)[0].decode("ascii", "replace")
    try:
        return str(uuid.UUID(head))
    except ValueError:
        return hashlib.sha256(aad).hexdigest()[:32]


class TemplateSealer:
    """Seal/open blobs with per-record AES-256-GCM data keys wrapped by a KEK ring."""

    _CACHE = 4096  # unwrapped data keys kept in memory (a gallery rebuild reads each once)

    def __init__(self, key: bytes | KekRing | KeyEncryptionKey, *, path: Path | None = None):
        if isinstance(key, bytes):
            self.ring = KekRing.parse(key)
        elif isinstance(key, KekRing):
            self.ring = key
        else:
            self.ring = KekRing.single(key)
        self.path = path
        self._legacy = AESGCM(self.ring.legacy_key) if self.ring.legacy_key else None
        self._cache: OrderedDict[bytes, AESGCM] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def load_or_create(cls, path: Path) -> TemplateSealer:
        """The ring at `path`, creating a one-key file ring on first use."""
        if not path.exists():
            write_private_file(path, KekRing.single(FileKek.generate()).dump())
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: Path) -> TemplateSealer:
        """A sealer that re-reads `path` when it meets a KEK it does not know (rotation)."""
        return cls(path.read_bytes(), path=path)

    # data keys

    def _remember(self, dek_id: bytes, aead: AESGCM) -> None:
        with self._lock:
            self._cache[dek_id] = aead
            self._cache.move_to_end(dek_id)
            while len(self._cache) > self._CACHE:
                self._cache.popitem(last=False)

    def _kek(self, identifier: str) -> KeyEncryptionKey:
        kek = self.ring.keks.get(identifier)
        if kek is None and self.path is not None and self.path.exists():
            self.ring = KekRing.parse(self.path.read_bytes())  # rotated under us: reload
            kek = self.ring.keks.get(identifier)
        if kek is None:
            raise KekUnavailable(f"key-encryption key {identifier} is not in the ring")
        return kek

    @staticmethod
    def _session(session: Session | None) -> Session:
        found = session or active_session()
        if found is None:
            raise SealError("sealing needs a database transaction (pass session=)")
        return found

    def _aead_for(self, dek_id: bytes, session: Session | None) -> AESGCM:
        with self._lock:
            aead = self._cache.get(dek_id)
        if aead is not None:
            return aead
        row = self._session(session).get(DataKey, dek_id)
        if row is None:
            raise DataKeyDestroyed("the data key of this record was destroyed (erased)")
        aead = AESGCM(self._kek(row.kek_id).unwrap(row.wrapped))
        self._remember(dek_id, aead)
        return aead

    def _load_keys(self, session: Session, dek_ids: Iterable[bytes]) -> dict[bytes, AESGCM]:
        """Data keys by id, cached or loaded in chunks of 500 ids per query."""
        found: dict[bytes, AESGCM] = {}
        wanted: list[bytes] = []
        with self._lock:
            for d in set(dek_ids):
                aead = self._cache.get(d)
                if aead is None:
                    wanted.append(d)
                else:
                    found[d] = aead
        for chunk in range(0, len(wanted), 500):
            for row in session.scalars(
                select(DataKey).where(DataKey.id.in_(wanted[chunk:chunk + 500]))
            ):
                found[row.id] = AESGCM(self._kek(row.kek_id).unwrap(row.wrapped))
        return found

    def prefetch(self, session: Session, dek_ids: Iterable[bytes]) -> None:
        """Warm the cache with many data keys in few queries."""
        for dek_id, aead in self._load_keys(session, dek_ids).items():
            self._remember(dek_id, aead)

    def open_many(
        self, items: list[tuple[bytes, bytes]], *, session: Session | None = None,
        skip_destroyed: bool = False,
    ) -> list[bytes | None]:
        """Open many ``(sealed, aad)`` pairs with one key query per 500 (a gallery rebuild).

        With `skip_destroyed`, a blob whose data key was erased yields None instead of raising
        `DataKeyDestroyed` (an erasure may commit while a catch-up is reading).
        """
        ids = [d for sealed, _ in items if (d := self.dek_id(sealed)) is not None]
        keys = self._load_keys(self._session(session), ids) if ids else {}
        out: list[bytes | None] = []
        for sealed, aad in items:
            dek_id = self.dek_id(sealed)
            if dek_id is None:
                out.append(self.open(sealed, aad=aad, session=session))
                continue
            aead = keys.get(dek_id)
            if aead is None:
                if skip_destroyed:
                    out.append(None)
                    continue
                raise DataKeyDestroyed("the data key of this record was destroyed (erased)")
            body = sealed[_V2_HEADER:]
            try:
                out.append(aead.decrypt(body[:_NONCE_LEN], body[_NONCE_LEN:],
                                        sealed[:_V2_HEADER] + aad))
            except InvalidTag as exc:
                raise SealError("sealed template failed authentication") from exc
        return out

    def seal(
        self, template: bytes, *, aad: bytes, session: Session | None = None,
        subject: str | None = None,
    ) -> bytes:
        """Encrypt under a fresh data key whose wrapped row joins the caller's transaction."""
        sess = self._session(session)
        dek = AESGCM.generate_key(bit_length=256)
        dek_id = uuid.uuid4().bytes
        kek = self.ring.keks[self.ring.current]
        sess.add(DataKey(id=dek_id, subject=subject or subject_of(aad), kek_id=kek.identifier,
                         wrapped=kek.wrap(dek)))
        aead = AESGCM(dek)
        self._remember(dek_id, aead)
        header = bytes([_V2]) + dek_id
        nonce = os.urandom(_NONCE_LEN)
        return header + nonce + aead.encrypt(nonce, template, header + aad)

    def open(self, sealed: bytes, *, aad: bytes, session: Session | None = None) -> bytes:
        """Decrypt; `DataKeyDestroyed` if erased, `SealError` if tampered or misplaced."""
        if len(sealed) >= _V2_HEADER + _NONCE_LEN + 16 and sealed[0] == _V2:
            header, body = sealed[:_V2_HEADER], sealed[_V2_HEADER:]
            aead = self._aead_for(header[1:], session)
            try:
                return aead.decrypt(body[:_NONCE_LEN], body[_NONCE_LEN:], header + aad)
            except InvalidTag as exc:
                raise SealError("sealed template failed authentication") from exc
        if len(sealed) >= 29 and sealed[0] == _V1 and self._legacy is not None:
            try:
                return self._legacy.decrypt(sealed[1:13], sealed[13:], aad)
            except InvalidTag as exc:
                raise SealError("sealed template failed authentication") from exc
        raise SealError("sealed template has an unknown format")

    @staticmethod
    def dek_id(sealed: bytes) -> bytes | None:
        """The data-key id a blob was sealed under (None for version-1 blobs)."""
        if len(sealed) > _V2_HEADER and sealed[0] == _V2:
            return sealed[1:_V2_HEADER]
        return None

    def forget(self, dek_ids: Iterable[bytes]) -> None:
        """Drop cached data keys (after erasure, so this process cannot open them either)."""
        with self._lock:
            for d in dek_ids:
                self._cache.pop(d, None)


# --- services over the data-key table ---------------------------------------------------------


def destroy_subject_keys(session: Session, subject: str) -> list[bytes]:
    """Delete every data key of `subject`; returns their ids (caller audits and commits)."""
    ids = list(session.scalars(select(DataKey.id).where(DataKey.subject == subject)))
    if ids:
        session.execute(delete(DataKey).where(DataKey.subject == subject))
    return ids


def count_keys_by_kek(session: Session) -> dict[str, int]:
    return {str(k): int(n) for k, n in session.execute(
        select(DataKey.kek_id, func.count()).group_by(DataKey.kek_id)
    ).all()}


def rewrap_batch(session: Session, ring: KekRing, *, batch: int = 1000) -> int:
    """Re-wrap up to `batch` data keys not under the ring's current KEK; returns how many.

    Each call is one short transaction of the caller's, so rotation is resumable (run again
    until it returns 0) and never holds locks on more than `batch` rows.
    """
    target = ring.keks[ring.current]
    rows = list(session.scalars(
        select(DataKey).where(DataKey.kek_id != ring.current).order_by(DataKey.id).limit(batch)
        .with_for_update(skip_locked=True)
    ))
    now = utcnow()
    for row in rows:
        old = ring.keks.get(row.kek_id)
        if old is None:
            raise KekUnavailable(f"key-encryption key {row.kek_id} is not in the ring")
        row.wrapped = target.wrap(old.unwrap(row.wrapped))
        row.kek_id = target.identifier
        row.rewrapped_at = now
    return len(rows)

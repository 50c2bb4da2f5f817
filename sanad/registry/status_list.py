"""The issuing side of the status list: index allocation, versions, the signed list served.

Invariants:

* every card gets its status index in the transaction that creates it (`allocate_index` locks
  the single `status_lists` row, so concurrent issuances never share a bit);
* every revocation bumps the list version in the transaction that revokes (`bump_version`),
  so a list signed after the commit always includes it;
* the signed list served to checkpoints (`current_status_list`) is rebuilt from the cards
  table — the source of truth — whenever the version moved, the signing key changed, or the
  cached one is older than the re-sign interval (freshness: checkpoints flag old lists);
* the online verifiers (`POST /verify`, the checkpoint page) hold the parsed list in memory
  (`StatusCache`) for a few seconds instead of opening a transaction per request; a revocation
  committed in the same process empties that cache at once, one committed elsewhere is seen
  within `status_cache_seconds`.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sanad.config import Settings
from sanad.credentials.keys import IssuerKey, TrustList
from sanad.credentials.pki import build_bundle, ensure_pki, fingerprint
from sanad.credentials.status import StatusList, encode_status_list, parse_status_list
from sanad.registry.card_models import StatusListState
from sanad.registry.db import transaction, utcnow
from sanad.registry.models import Card

__all__ = [
    "StatusCache",
    "allocate_index",
    "bump_version",
    "checkpoint_status",
    "current_status_list",
    "needed_signer_kids",
    "status_state",
    "trust_bundle",
]

_ROW = 1
_CHANGED = "sanad_status_list_changed"  # session.info flag set by `bump_version`


def status_state(session: Session) -> StatusListState:
    """The status-list row, locked FOR UPDATE (created on first use)."""
    state = session.get(StatusListState, _ROW, with_for_update=True)
    if state is not None:
        return state
    try:
        # A savepoint: if another transaction created the row first, only this insert rolls
        # back and we read theirs.
        with session.begin_nested():
            session.add(StatusListState(id=_ROW, next_index=0, version=1, updated_at=utcnow()))
    except IntegrityError:
        pass
    state = session.get(StatusListState, _ROW, with_for_update=True, populate_existing=True)
    assert state is not None
    return state


def allocate_index(session: Session) -> int:
    """The next free status index (caller's transaction; rolled back with it)."""
    state = status_state(session)
    index = state.next_index
    state.next_index = index + 1
    state.updated_at = utcnow()
    return index


def bump_version(session: Session) -> int:
    """Record that the list changed (a revocation); returns the new version."""
    state = status_state(session)
    state.version += 1
    state.updated_at = utcnow()
    session.info[_CHANGED] = True  # StatusCache.watch: drop cached lists when this commits
    return state.version


def current_status_list(
    session: Session,
    *,
    key: IssuerKey,
    issuer: str,
    resign_after: timedelta,
    now: datetime | None = None,
) -> bytes:
    """The signed status list (COSE_Sign1 bytes) checkpoints download.

    Re-signed when the cached list is out of date (see module docstring); the caller commits
    so the new cache is kept.
    """
    now = now or utcnow()
    state = status_state(session)
    if (
        state.signed is not None
        and state.signed_version == state.version
        and state.signed_kid == key.kid.hex()
        and state.signed_issuer == issuer
        and state.signed_at is not None
        and now - state.signed_at < resign_after
    ):
        return state.signed
    revoked = session.scalars(
        select(Card.status_index).where(Card.status == "revoked", Card.status_index.is_not(None))
    ).all()
    signed = encode_status_list(
        revoked=[i for i in revoked if i is not None],
        allocated=state.next_index,
        version=state.version,
        issuer=issuer,
        issued_at=now,
        key=key,
    )
    state.signed = signed
    state.signed_version = state.version
    state.signed_at = now
    state.signed_kid = key.kid.hex()
    state.signed_issuer = issuer
    return signed


def needed_signer_kids(session: Session, *, current: bytes, now: datetime) -> set[bytes]:
    """Signer kids a checkpoint still needs: the current one and every key that signed a
    card not yet expired (revoked ones included, so a revoked card reads as genuine+revoked
    rather than as a forgery)."""
    kids = session.scalars(select(Card.kid).where(Card.expires_at > now).distinct()).all()
    return {current} | {bytes.fromhex(k) for k in kids}


def trust_bundle(
    session: Session, *, settings: Settings, key: IssuerKey, now: datetime | None = None
) -> tuple[bytes, dict[str, Any]]:
    """The signed trust bundle (JSON bytes) and a summary of what it holds.

    Needs the root key on this machine (`KeyStoreError` otherwise: export where the root
    lives). The caller commits (the status list cache may be refreshed).
    """
    now = now or utcnow()
    pki = ensure_pki(settings.keys_dir, issuer=settings.issuer)
    kids = needed_signer_kids(session, current=key.kid, now=now)
    status = current_status_list(
        session, key=key, issuer=settings.issuer,
        resign_after=timedelta(hours=settings.status_resign_hours), now=now,
    )
    bundle = build_bundle(pki, kids=kids, status_list=status, now=now)
    state = status_state(session)
    return bundle, {
        "root_sha256": fingerprint(pki.root_cert),
        "signers": sorted(k.hex() for k in kids if k in pki.signer_certs),
        "status_list_version": state.signed_version,
        "status_list_bytes": len(status),
    }


def checkpoint_status(
    session: Session, *, settings: Settings, key: IssuerKey, trust: TrustList
) -> StatusList:
    """The current status list as a checkpoint would hold it (signed, then parsed and checked
    against `trust`): what the online verify endpoint and the checkpoint page use."""
    data = current_status_list(
        session, key=key, issuer=settings.issuer,
        resign_after=timedelta(hours=settings.status_resign_hours),
    )
    return parse_status_list(data, trust=trust)


class StatusCache:
    """The parsed current status list of one process, reused for at most `ttl` seconds.

    `get` answers from memory; `load` (blocking: a transaction, maybe a re-signature) refreshes
    it. `watch` empties it after any commit in this process that bumped the list version, so
    a revocation made through this process is never answered from a stale list; a revocation
    committed by another process is picked up within `ttl` seconds. `ttl` 0 disables caching.
    """

    def __init__(self, *, ttl: float) -> None:
        self.ttl = ttl
        self._entry: tuple[float, StatusList] | None = None
        self._generation = 0
        self._lock = threading.Lock()  # one refresh at a time; the others wait for it

    def get(self) -> StatusList | None:
        entry = self._entry
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def clear(self) -> None:
        self._generation += 1
        self._entry = None

    def load(
        self, sessions: sessionmaker[Session], *, settings: Settings, key: IssuerKey,
        trust: TrustList,
    ) -> StatusList:
        """The current list, read (and cached) now unless a fresh one is already held."""
        with self._lock:
            cached = self.get()
            if cached is not None:
                return cached
            generation = self._generation
            with transaction(sessions) as session:
                status = checkpoint_status(session, settings=settings, key=key, trust=trust)
            if self.ttl > 0 and generation == self._generation:
                self._entry = (time.monotonic() + self.ttl, status)
            return status

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Empty the cache after every commit through `sessions` that bumped the version."""

        # A flag left by a rolled-back transaction only costs one needless refresh later.
        def after_commit(session: Session) -> None:
            if session.info.pop(_CHANGED, False):
                self.clear()

        event.listen(sessions, "after_commit", after_commit)

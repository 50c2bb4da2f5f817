"""Idempotency keys for POSTs that create records (enrolment).

The first request with a key *claims* it (a row with status 0, committed before the work), so a
concurrent retry of the same request gets `IdempotencyInProgress` instead of enrolling the
household twice. When the work ends, the row stores the status code and the exact response
body; a retry with the same key and the same request body gets that response again, byte for
byte. The same key with a different body is an error (`IdempotencyKeyReused`). Keys are scoped
per caller (a user or an API key), so two systems cannot collide.

Records are kept for `idempotency_retention_hours` (24 h by default, like the common practice
of payment APIs): a record older than that is no longer answered from — the key is free again
and a request with it is a new request — and `sanad worker` deletes such records
(`purge_expired`), so the table holds about one day of keyed POSTs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sanad.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidInput
from sanad.registry.access_models import IdempotencyRecord
from sanad.registry.db import transaction, utcnow

MAX_KEY_LENGTH = 200
_IN_PROGRESS = 0


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def claim(
    sessions: sessionmaker[Session], *, principal: str, key: str, request_hash: str,
    retention: timedelta, now: datetime | None = None,
) -> StoredResponse | None:
    """Claim `key` for this request, or return the response stored for an earlier identical one.

    A record older than `retention` is expired: it is claimed afresh as if absent. Commits its
    own transaction so that the claim is visible to concurrent requests.
    """
    now = now or utcnow()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable characters",
            field="Idempotency-Key",
        )
    try:
        with transaction(sessions) as session:
            row = session.get(IdempotencyRecord, (principal, key), with_for_update=True)
            if row is None:
                session.add(IdempotencyRecord(
                    principal=principal, key=key, request_hash=request_hash,
                    status_code=_IN_PROGRESS, response_body="", response_hash="", created_at=now,
                ))
                return None
            if row.created_at <= now - retention:
                # Expired (not yet purged): the key is free again; this is a new request.
                row.request_hash = request_hash
                row.status_code = _IN_PROGRESS
                row.response_body = ""
                row.response_hash = ""
                row.created_at = now
                return None
            if row.request_hash != request_hash:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with a different request body"
                )
            if row.status_code == _IN_PROGRESS:
                raise IdempotencyInProgress("a request with this Idempotency-Key is in progress")
            return StoredResponse(row.status_code, row.response_body)
    except IntegrityError:
        # Lost a race with an identical request inserting the same key at the same moment.
        raise IdempotencyInProgress(
            "a request with this Idempotency-Key is in progress"
        ) from None


def complete(
    sessions: sessionmaker[Session], *, principal: str, key: str, status_code: int, body: str
) -> None:
    """Store the final response of a claimed key."""
    with transaction(sessions) as session:
        row = session.get(IdempotencyRecord, (principal, key))
        if row is None:  # pragma: no cover - the claim was committed before the work
            return
        row.status_code = status_code
        row.response_body = body
        row.response_hash = fingerprint(body.encode())


def release(sessions: sessionmaker[Session], *, principal: str, key: str) -> None:
    """Forget a claim whose request failed before producing a response (a retry may run)."""
    with transaction(sessions) as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.principal == principal, IdempotencyRecord.key == key,
                IdempotencyRecord.status_code == _IN_PROGRESS,
            )
        )


def purge_expired(session: Session, *, retention: timedelta, now: datetime | None = None) -> int:
    """Delete the records older than `retention` (answered or abandoned); returns how many."""
    cutoff = (now or utcnow()) - retention
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)

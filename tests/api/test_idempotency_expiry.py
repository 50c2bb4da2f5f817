"""Idempotency-Key records expire after `idempotency_retention_hours`: an expired key is a new
request, and `sanad worker` (and `purge_expired`) delete expired records."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from sanad.notify.worker import run_worker
from sanad.registry import idempotency
from sanad.registry.access_models import IdempotencyRecord
from sanad.registry.db import transaction, utcnow
from sanad.registry.models import Household
from sanad.registry.runtime import Registry
from tests import factories


def _age(registry: Registry, key: str, hours: float) -> None:
    """Pretend the record of `key` was written `hours` ago."""
    with transaction(registry.sessions) as s:
        s.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == key)
                  .values(created_at=utcnow() - timedelta(hours=hours)))


def _households(registry: Registry) -> int:
    with registry.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Household)) or 0)


def test_an_expired_key_is_a_new_request(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    headers = {**admin_headers, "Idempotency-Key": "enrol-expiry-1"}
    first = factories.household([500], np.random.default_rng(50))
    assert client.post("/households", json=first, headers=headers).status_code == 201
    other = factories.household([501], np.random.default_rng(51))
    # Within the retention: another body under the same key is refused.
    reused = client.post("/households", json=other, headers=headers)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    _age(registry, "enrol-expiry-1", 23.5)
    assert client.post("/households", json=other, headers=headers).status_code == 422
    # After it: the key is free again; the new body is enrolled, not replayed nor refused.
    _age(registry, "enrol-expiry-1", 24.5)
    fresh = client.post("/households", json=other, headers=headers)
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert _households(registry) == 2
    replay = client.post("/households", json=other, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == fresh.content
    assert _households(registry) == 2


def test_purge_deletes_only_expired_records(registry: Registry) -> None:
    keep = timedelta(hours=24)
    for key in ("old-done", "old-stuck", "new-done"):
        stored = idempotency.claim(registry.sessions, principal="user:t", key=key,
                                   request_hash="h", retention=keep)
        assert stored is None
    idempotency.complete(registry.sessions, principal="user:t", key="old-done",
                         status_code=201, body="{}")
    idempotency.complete(registry.sessions, principal="user:t", key="new-done",
                         status_code=201, body="{}")
    _age(registry, "old-done", 30)
    _age(registry, "old-stuck", 25)  # a claim whose request never finished
    with transaction(registry.sessions) as s:
        assert idempotency.purge_expired(s, retention=keep) == 2
    with registry.sessions() as s:
        assert s.scalars(select(IdempotencyRecord.key)).all() == ["new-done"]
    again = idempotency.claim(registry.sessions, principal="user:t", key="new-done",
                              request_hash="h", retention=keep)
    assert again is not None and again.status_code == 201


def test_the_worker_purges_expired_records(registry: Registry) -> None:
    keep = timedelta(hours=registry.settings.idempotency_retention_hours)
    for key in ("w-old", "w-new"):
        idempotency.claim(registry.sessions, principal="key:x", key=key, request_hash="h",
                          retention=keep)
    _age(registry, "w-old", registry.settings.idempotency_retention_hours + 1)
    run_worker(registry, until_idle=True)
    with registry.sessions() as s:
        assert s.scalars(select(IdempotencyRecord.key)).all() == ["w-new"]

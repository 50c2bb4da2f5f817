"""The centre's receipt is idempotent across a crash: a packet whose household committed but
whose answer never reached the station gets the *original* result on retry, never
`duplicate` (its own household found by 1:N) and never a second household."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sanad.registry.db import transaction, utcnow
from sanad.registry.enrolment import enrol_household
from sanad.registry.models import Household
from sanad.registry.runtime import Registry
from sanad.registry.sync_models import ReceivedPacket, SyncReceipt
from sanad.sync import centre, station
from tests.factories import household
from tests.sync.conftest import Kit


class _Crash(BaseException):
    """The process dying: not an Exception, so nothing on the way catches it."""


def _envelope(kit: Kit, identities: list[int], seed: int) -> bytes:
    resp = kit.client.post("/households", json=household(identities, np.random.default_rng(seed)),
                           headers=kit.headers)
    assert resp.status_code == 201, resp.text
    with transaction(kit.registry.sessions) as session:
        station.queue_new_households(session, kit.registry.settings, kit.registry.sealer)
        [packet] = station.pending_packets(session, limit=10)
        return packet.envelope


def _post(client: TestClient, headers: dict[str, str], envelope: bytes) -> dict[str, Any]:
    resp = client.post("/sync/packets", headers=headers,
                       json={"packets": [base64.b64encode(envelope).decode()]})
    assert resp.status_code == 200, resp.text
    [result] = resp.json()["results"]
    return dict(result)


def _households(reg: Registry) -> int:
    with transaction(reg.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Household)) or 0)


def test_crash_after_commit_then_retry_returns_the_original_result(
    kit: Kit, registry: Registry, client: TestClient, admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    envelope = _envelope(kit, [5100, 5101], seed=51)
    real = enrol_household  # the function `centre` calls, patched there below

    def enrol_then_die(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # the household commits…
        raise _Crash  # …and the process dies before answering

    monkeypatch.setattr(centre, "enrol_household", enrol_then_die)
    with pytest.raises(_Crash):
        centre.receive_packets(registry, [envelope], actor="test")
    monkeypatch.undo()
    assert _households(registry) == 1
    # Long after the crash (a `processing` claim would be stale by now).
    with transaction(registry.sessions) as session:
        for row in session.scalars(select(ReceivedPacket)):
            row.received_at = utcnow() - timedelta(hours=1)
    retry = _post(client, admin_headers, envelope)
    assert retry["status"] == "imported", retry
    assert retry["replayed"] is True
    assert _households(registry) == 1
    with transaction(registry.sessions) as session:
        [household_id] = session.scalars(select(Household.id)).all()
    assert retry["household_id"] == str(household_id)
    assert [m["outcome"] for m in retry["members"]] == ["no_match", "no_match"]
    assert len(retry["person_versions"]) == 2
    # The station takes that answer as its receipt: imported, not duplicate.
    with transaction(kit.registry.sessions) as session:
        counts = station.apply_results(session, [retry])
    assert counts["receipted"] == 1
    with transaction(kit.registry.sessions) as session:
        [receipt] = session.scalars(select(SyncReceipt)).all()
        assert receipt.status == "imported"
        assert receipt.result["household_id"] == str(household_id)


def test_retry_after_a_lost_response_is_byte_for_byte_the_first_answer(
    kit: Kit, registry: Registry, client: TestClient, admin_headers: dict[str, str],
) -> None:
    envelope = _envelope(kit, [5200], seed=52)
    first = _post(client, admin_headers, envelope)  # the response is lost on the way back
    again = _post(client, admin_headers, envelope)
    assert first.pop("replayed") is False and again.pop("replayed") is True
    assert again == first
    assert first["status"] == "imported" and uuid.UUID(first["household_id"])
    assert _households(registry) == 1

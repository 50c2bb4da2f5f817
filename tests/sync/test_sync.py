"""Station ↔ centre: a week offline, idempotent replay, tampering, unknown and revoked
stations, conflicts, the provisional receipt and the purge on receipt."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.errors import StationRevoked, SyncUnavailable
from sanad.registry.db import transaction
from sanad.registry.models import Household, Person
from sanad.registry.runtime import Registry
from sanad.registry.sync_models import QueuedPacket, ReceivedPacket, SyncConflict
from sanad.sync import centre, station
from sanad.sync.client import sync_station
from tests.factories import count_rows, household
from tests.sync.conftest import Kit, make_kit

URL = "http://testserver"


def _queue(kit: Kit) -> list[bytes]:
    with transaction(kit.registry.sessions) as session:
        station.queue_new_households(session, kit.registry.settings, kit.registry.sealer)
        return [p.envelope for p in station.pending_packets(session, limit=1000)]


def test_week_offline_then_sync_with_central_dedup(
    kit: Kit, registry: Registry, client: TestClient, admin_headers: dict[str, str],
    admin_token: str,
) -> None:
    rng = np.random.default_rng(11)
    # Identity 900 is already registered centrally: the station cannot know (no national
    # gallery on a kit), so only central dedup catches it.
    assert client.post("/households", json=household([900], rng),
                       headers=admin_headers).status_code == 201
    local_ids = []
    identity = 1000
    for day in range(7):
        for _ in range(3):
            members = [identity, identity + 1] if day % 2 else [identity]
            identity += len(members)
            resp = kit.client.post("/households", json=household(members, rng),
                                   headers=kit.headers)
            assert resp.status_code == 201, resp.text
            local_ids.append(resp.json()["household_id"])
    # Same person twice at one site: refused locally by the station's own gallery.
    again = kit.client.post("/households", json=household([1000], rng), headers=kit.headers)
    assert again.status_code == 409
    dup = kit.client.post("/households", json=household([900], rng), headers=kit.headers)
    assert dup.status_code == 201
    local_ids.append(dup.json()["household_id"])

    receipt = kit.client.get(f"/sync/station/households/{local_ids[0]}/receipt",
                             headers=kit.headers)
    assert receipt.status_code == 200
    assert receipt.json()["provisional"] is True and receipt.json()["sync_status"] == "queued"
    status = kit.client.get("/sync/station/status", headers=kit.headers).json()
    assert status["queue_size"] == 22 and status["last_error"] is None
    # The kit's gallery holds its own enrolments only.
    assert len(kit.registry.gallery.index) == count_rows(kit.registry, Person)

    report = sync_station(kit.registry, client=client, url=URL, token=admin_token)
    assert report.sent == 22 and report.receipted == 22 and report.rejected == 0
    statuses = sorted(r["status"] for r in report.results)
    assert statuses.count("duplicate") == 1 and statuses.count("imported") == 21
    assert count_rows(kit.registry, QueuedPacket) == 0  # purged on receipt
    assert count_rows(registry, Household) == 1 + 21
    final = kit.client.get(f"/sync/station/households/{local_ids[0]}/receipt",
                           headers=kit.headers).json()
    assert final["provisional"] is False and final["central"]["registration_number"]
    dup_receipt = kit.client.get(f"/sync/station/households/{local_ids[-1]}/receipt",
                                 headers=kit.headers).json()
    assert dup_receipt["sync_status"] == "duplicate" and dup_receipt["provisional"] is True
    with transaction(registry.sessions) as session:
        sites = set(session.scalars(select(Person.province)))
        assert sites == {"Amman"}
    # Nothing left: a second sync sends nothing.
    assert sync_station(kit.registry, client=client, url=URL, token=admin_token).sent == 0


def test_same_packet_twice_is_imported_once(
    kit: Kit, registry: Registry, client: TestClient, admin_headers: dict[str, str],
) -> None:
    rng = np.random.default_rng(12)
    kit.client.post("/households", json=household([2000, 2001], rng), headers=kit.headers)
    [envelope] = _queue(kit)
    body = {"packets": [base64.b64encode(envelope).decode()] * 2}
    first = client.post("/sync/packets", json=body, headers=admin_headers)
    assert first.status_code == 200, first.text
    a, b = first.json()["results"]
    assert a["status"] == "imported" and a["replayed"] is False
    assert b["status"] == "imported" and b["replayed"] is True
    assert b["household_id"] == a["household_id"]
    again = client.post("/sync/packets", json=body, headers=admin_headers).json()["results"]
    assert all(r["replayed"] for r in again)
    assert count_rows(registry, Household) == 1 and count_rows(registry, ReceivedPacket) == 1


def test_altered_byte_and_unknown_station_are_rejected_and_reported(
    kit: Kit, tmp_path: Path, registry: Registry, client: TestClient,
    admin_headers: dict[str, str], admin_token: str, kit_template: tuple[Path, str],
) -> None:
    rng = np.random.default_rng(13)
    kit.client.post("/households", json=household([3000], rng), headers=kit.headers)
    [envelope] = _queue(kit)
    for pos in (10, len(envelope) // 2, len(envelope) - 3):
        bad = bytearray(envelope)
        bad[pos] ^= 0x01
        [r] = client.post("/sync/packets", json={"packets": [base64.b64encode(bad).decode()]},
                          headers=admin_headers).json()["results"]
        assert r["status"] == "rejected" and r["code"] == "packet_invalid"
    assert count_rows(registry, Household) == 0

    stranger = make_kit(tmp_path, registry, "kit-unregistered", kit_template, register=False)
    try:
        stranger.client.post("/households", json=household([3100], rng),
                             headers=stranger.headers)
        report = sync_station(stranger.registry, client=client, url=URL, token=admin_token)
        assert report.rejected == 1 and report.receipted == 0
        assert report.results[0]["code"] == "station_unknown"
        with transaction(stranger.registry.sessions) as session:
            status = station.kit_status(session, stranger.registry.settings)
        assert status["queue_size"] == 1 and "rejected" in status["last_error"]
    finally:
        stranger.client.__exit__(None, None, None)
        stranger.registry.close()
    assert count_rows(registry, Household) == 0


def test_revoked_station_is_refused(
    kit: Kit, registry: Registry, client: TestClient, admin_headers: dict[str, str],
    admin_token: str,
) -> None:
    rng = np.random.default_rng(14)
    kit.client.post("/households", json=household([4000], rng), headers=kit.headers)
    resp = client.post("/sync/stations/kit-a/revoke", headers=admin_headers)
    assert resp.status_code == 200 and resp.json()["status"] == "revoked"
    report = sync_station(kit.registry, client=client, url=URL, token=admin_token)
    assert report.rejected == 1 and report.results[0]["code"] == "station_revoked"
    assert count_rows(registry, Household) == 0
    status = kit.client.get("/sync/station/status", headers=kit.headers).json()
    assert status["revoked"] is True and status["queue_size"] == 1
    # Enrolment still works offline, but nothing more is queued for a revoked key.
    kit.client.post("/households", json=household([4001], rng), headers=kit.headers)
    status = kit.client.get("/sync/station/status", headers=kit.headers).json()
    assert status["queue_size"] == 1 and status["not_yet_queued"] == 1
    with pytest.raises(StationRevoked), transaction(kit.registry.sessions) as session:
        station.queue_person_update(session, kit.registry.settings, person_id=uuid.uuid4(),
                                    base_version=1, changes={"phone": None}, actor="x")


def test_no_link_keeps_packets_and_records_the_error(kit: Kit, admin_token: str) -> None:
    rng = np.random.default_rng(16)
    kit.client.post("/households", json=household([4500], rng), headers=kit.headers)
    with httpx.Client(timeout=5) as offline, pytest.raises(SyncUnavailable):
        sync_station(kit.registry, client=offline, url="http://127.0.0.1:9", token=admin_token)
    status = kit.client.get("/sync/station/status", headers=kit.headers).json()
    assert status["queue_size"] == 1 and "unreachable" in status["last_error"]


def test_central_change_after_packet_is_a_conflict_never_overwritten(
    kit: Kit, registry: Registry, client: TestClient, admin_headers: dict[str, str],
    admin_token: str,
) -> None:
    rng = np.random.default_rng(15)
    kit.client.post("/households", json=household([5000], rng), headers=kit.headers)
    report = sync_station(kit.registry, client=client, url=URL, token=admin_token)
    [result] = report.results
    with transaction(registry.sessions) as session:
        person_id = session.scalar(
            select(Person.id).where(Person.household_id == uuid.UUID(result["household_id"])))
    assert person_id is not None
    # Two corrections made at the station against version 1; the first lands (version 2),
    # so the second was made against a record that has since changed centrally.
    with transaction(kit.registry.sessions) as session:
        station.queue_person_update(session, kit.registry.settings, person_id=person_id,
                                    base_version=1, changes={"phone": "+962790000001"},
                                    actor="officer-1")
    report = sync_station(kit.registry, client=client, url=URL, token=admin_token)
    assert [r["status"] for r in report.results] == ["applied"]
    with transaction(kit.registry.sessions) as session:
        station.queue_person_update(session, kit.registry.settings, person_id=person_id,
                                    base_version=1, changes={"family_name": "Haddad"},
                                    actor="officer-2")
    report = sync_station(kit.registry, client=client, url=URL, token=admin_token)
    assert [r["status"] for r in report.results] == ["conflict"]
    with transaction(registry.sessions) as session:
        person = session.get(Person, person_id)
        assert person is not None
        assert person.family_name == "Al-Rashid" and person.phone == "+962790000001"
        assert person.version == 2
    listed = client.get("/sync/conflicts", headers=admin_headers).json()
    assert len(listed) == 1 and listed[0]["changes"] == {"family_name": "Haddad"}
    resolved = client.post(f"/sync/conflicts/{listed[0]['id']}/resolve",
                           json={"resolution": "apply"}, headers=admin_headers)
    assert resolved.status_code == 200
    with transaction(registry.sessions) as session:
        person = session.get(Person, person_id)
        assert person is not None and person.family_name == "Haddad" and person.version == 3
        assert session.scalar(select(SyncConflict.status)) == "resolved"
    again = client.post(f"/sync/conflicts/{listed[0]['id']}/resolve",
                        json={"resolution": "discard"}, headers=admin_headers)
    assert again.status_code == 409


def test_register_station_api_and_errors(
    registry: Registry, client: TestClient, admin_headers: dict[str, str], tmp_path: Path,
    kit_template: tuple[Path, str],
) -> None:
    kit = make_kit(tmp_path, registry, "kit-api", kit_template, register=False)
    try:
        body = {"station_id": "kit-api", "site": "North", "public_key":
                kit.registration["public_key"], "kid": kit.registration["kid"]}
        assert client.post("/sync/stations", json=body,
                           headers=admin_headers).status_code == 201
        dup = client.post("/sync/stations", json=body, headers=admin_headers)
        assert dup.status_code == 409 and dup.json()["code"] == "conflict"
        wrong = client.post("/sync/stations", json={**body, "station_id": "x", "kid": "00" * 8},
                            headers=admin_headers)
        assert wrong.status_code == 422
        listed = client.get("/sync/stations", headers=admin_headers).json()
        assert [s["station_id"] for s in listed] == ["kit-api"]
        key = client.get("/sync/central-key", headers=admin_headers).json()
        assert key["crv"] == "P-256" and key["kid"]
        # The station itself refuses packets (it is not a centre).
        refused = kit.client.post("/sync/packets", json={"packets": ["AA=="]},
                                  headers=kit.headers)
        assert refused.status_code == 422
        assert client.post("/sync/packets", json={"packets": ["%%%"]},
                           headers=admin_headers).status_code == 422
    finally:
        kit.client.__exit__(None, None, None)
        kit.registry.close()
    assert centre  # module used for fixtures

"""Person and household resources: pagination and filters, ETag / If-Match, Idempotency-Key on
enrolment, reversible status changes with one head per household, adjudication, dashboard."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sanad.abis.templates import encode_template
from sanad.registry.access_models import IdempotencyRecord
from sanad.registry.models import Household
from sanad.registry.runtime import Registry
from sanad.registry.sync_models import OutboxEvent
from tests import factories


def _enrol(client: TestClient, headers: dict[str, str], ids: list[int], seed: int,
           **extra: Any) -> dict[str, Any]:
    payload = factories.household(ids, np.random.default_rng(seed), **extra)
    resp = client.post("/households", json=payload, headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_persons_are_paginated_and_filtered(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    _enrol(client, admin_headers, [100, 101, 102], 1)
    _enrol(client, admin_headers, [103], 2, province="Irbid", district="Ramtha")
    page = client.get("/persons", params={"limit": 2}, headers=admin_headers)
    assert page.status_code == 200
    assert page.headers["X-Total-Count"] == "4" and len(page.json()) == 2
    assert 'rel="next"' in page.headers["Link"]
    rest = client.get("/persons", params={"limit": 2, "offset": 2}, headers=admin_headers)
    assert len(rest.json()) == 2 and 'rel="prev"' in rest.headers["Link"]
    ids = {p["id"] for p in page.json()} | {p["id"] for p in rest.json()}
    assert len(ids) == 4
    irbid = client.get("/persons", params={"province": "Irbid"}, headers=admin_headers).json()
    assert [p["district"] for p in irbid] == ["Ramtha"]
    girls = client.get("/persons", params={"sex": "F"}, headers=admin_headers)
    assert girls.headers["X-Total-Count"] == "2"
    by_name = client.get("/persons", params={"q": "childb"}, headers=admin_headers).json()
    assert [p["given_name"] for p in by_name] == ["Childb"]
    bad = client.get("/persons", params={"sex": "Q"}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "sex"


def test_update_needs_the_current_etag(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    body = _enrol(client, admin_headers, [110], 3)
    pid = body["members"][0]["person_id"]
    read = client.get(f"/persons/{pid}", headers=admin_headers)
    etag = read.headers["ETag"]
    missing = client.patch(f"/persons/{pid}", json={"phone": "+962790000001"},
                           headers=admin_headers)
    assert missing.status_code == 428 and missing.json()["code"] == "precondition_required"
    first = client.patch(f"/persons/{pid}", json={"phone": "+962790000001"},
                         headers={**admin_headers, "If-Match": etag})
    assert first.status_code == 200 and first.json()["phone"] == "+962790000001"
    assert first.headers["ETag"] != etag
    # A second officer still holding the old ETag cannot overwrite the first one's change.
    lost = client.patch(f"/persons/{pid}", json={"phone": "+962790000002"},
                        headers={**admin_headers, "If-Match": etag})
    assert lost.status_code == 412 and lost.json()["code"] == "precondition_failed"
    assert client.get(f"/persons/{pid}", headers=admin_headers).json()["phone"] == "+962790000001"
    invalid = client.patch(f"/persons/{pid}", json={"phone": "12"},
                           headers={**admin_headers, "If-Match": first.headers["ETag"]})
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "phone"
    script = client.patch(f"/persons/{pid}", json={"given_name": "محمد"},
                          headers={**admin_headers, "If-Match": first.headers["ETag"]})
    assert script.status_code == 422
    assert script.json()["errors"][0]["field"] == "given_name"
    # Only the one accepted change told subscribers (field names, never values).
    with registry.sessions() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "person.updated")
                           ).all()
    assert [(e.subject_id, e.payload) for e in events] == [
        (pid, {"person_id": pid, "version": 2, "fields": ["phone"]})]


def test_idempotency_key_replays_the_first_response(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    payload = factories.household([120, 121], np.random.default_rng(4))
    headers = {**admin_headers, "Idempotency-Key": "enrol-7f3a"}
    first = client.post("/households", json=payload, headers=headers)
    again = client.post("/households", json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    with registry.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Household)) == 1
        stored = s.scalar(select(IdempotencyRecord))
    assert stored is not None and stored.status_code == 201 and len(stored.response_hash) == 64
    changed = dict(payload, district="Other")
    reused = client.post("/households", json=changed, headers=headers)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    # A refused duplicate is replayed as the same refusal.
    dup = factories.household([121], np.random.default_rng(5))
    key = {**admin_headers, "Idempotency-Key": "dup-1"}
    one = client.post("/households", json=dup, headers=key)
    two = client.post("/households", json=dup, headers=key)
    assert one.status_code == two.status_code == 409 and one.content == two.content


def test_death_head_change_and_reversal_keep_one_head(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = _enrol(client, admin_headers, [130, 131, 132], 6)
    hid = body["household_id"]
    head, child, _ = (m["person_id"] for m in body["members"])
    no_heir = client.post(f"/persons/{head}/death", json={"reason": "certificate 2026/9"},
                          headers=admin_headers)
    assert no_heir.status_code == 422 and no_heir.json()["errors"][0]["field"] == "new_head_id"
    death = client.post(f"/persons/{head}/death",
                        json={"reason": "certificate 2026/9", "new_head_id": child},
                        headers=admin_headers)
    assert death.status_code == 201, death.text
    house = client.get(f"/households/{hid}", headers=admin_headers).json()
    assert house["head_id"] == child
    assert client.get(f"/persons/{head}", headers=admin_headers).json()["status"] == "deceased"
    again = client.post(f"/persons/{head}/death", json={"reason": "again"},
                        headers=admin_headers)
    assert again.status_code == 409 and again.json()["code"] == "status_change_refused"
    changes = client.get(f"/households/{hid}/status-changes", headers=admin_headers).json()
    assert [c["kind"] for c in changes] == ["head_changed", "deceased"]
    undo = client.post(f"/status-changes/{death.json()['id']}/revert",
                       json={"reason": "wrong person reported"}, headers=admin_headers)
    assert undo.status_code == 201 and undo.json()["kind"] == "reactivated"
    assert client.get(f"/persons/{head}", headers=admin_headers).json()["status"] == "active"
    head_change = changes[0]["id"]
    back = client.post(f"/status-changes/{head_change}/revert",
                       json={"reason": "restore head"}, headers=admin_headers)
    assert back.status_code == 201
    assert client.get(f"/households/{hid}", headers=admin_headers).json()["head_id"] == head
    twice = client.post(f"/status-changes/{head_change}/revert", json={"reason": "again"},
                        headers=admin_headers)
    assert twice.status_code == 409
    members = [client.get(f"/persons/{p}", headers=admin_headers).json()
               for p in (head, child)]
    assert sum(m["relationship_to_head"] == "head" for m in members) == 1


def _review_band(registry: Registry) -> tuple[float, float]:
    """The face review and match thresholds the app under test decides with."""
    return registry.settings.dedup_review_threshold, registry.settings.dedup_match_threshold


def _borderline(enrolled_b64: str, other_id: int, cos: float) -> str:
    """A template whose cosine with the enrolled one is exactly `cos` (the review band)."""
    from sanad.abis.templates import decode_template
    from sanad.biometrics.synthetic import FACE_DIM

    anchor = decode_template(base64.b64decode(enrolled_b64), FACE_DIM).astype(np.float64)
    anchor /= np.linalg.norm(anchor)
    other = factories.POPULATION.identity_template(other_id).astype(np.float64)
    other -= other.dot(anchor) * anchor
    other /= np.linalg.norm(other)
    probe = cos * anchor + np.sqrt(1 - cos**2) * other
    return base64.b64encode(encode_template(probe.astype(np.float32))).decode()


def test_adjudication_api_lists_shows_and_decides(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    first_payload = factories.household([140], np.random.default_rng(7))
    first = client.post("/households", json=first_payload, headers=admin_headers).json()
    payload = factories.household([141], np.random.default_rng(8))
    review, match = _review_band(registry)
    payload["members"][0]["face"]["template"] = _borderline(
        first_payload["members"][0]["face"]["template"], 141, (review + match) / 2)
    second = client.post("/households", json=payload, headers=admin_headers).json()
    assert second["outcome"] == "adjudicate"
    queue = client.get("/adjudication/cases", headers=admin_headers).json()
    assert len(queue) == 1 and queue[0]["person_id"] == second["members"][0]["person_id"]
    case = client.get(f"/adjudication/cases/{queue[0]['id']}", headers=admin_headers).json()
    cand = case["candidates"][0]
    assert cand["person_id"] == first["members"][0]["person_id"]
    assert review <= cand["score"] < match
    no_reason = client.post(f"/adjudication/cases/{case['id']}/decision",
                            json={"verdict": "different_person", "reason": ""},
                            headers=admin_headers)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    decided = client.post(f"/adjudication/cases/{case['id']}/decision",
                          json={"verdict": "different_person", "reason": "different ages"},
                          headers=admin_headers)
    assert decided.status_code == 200 and decided.json()["status"] == "resolved"
    assert client.get("/adjudication/cases", headers=admin_headers).json() == []


def test_dashboard_counts(client: TestClient, admin_headers: dict[str, str]) -> None:
    _enrol(client, admin_headers, [150, 151, 152], 9)
    d = client.get("/dashboard", headers=admin_headers).json()
    assert d["persons"] == 3 and d["households"] == 1
    assert {c["key"]: c["count"] for c in d["by_sex"]} == {"F": 2, "M": 1}
    assert {c["key"]: c["count"] for c in d["by_age"]}["5-11"] == 2
    assert d["enrolments_per_day"][-1]["count"] == 1 and len(d["enrolments_per_day"]) == 30
    assert {c["key"]: c["count"] for c in d["dedup_outcomes"]}["no_match"] == 1
    assert client.get("/healthz").json() == {"status": "ok"}


def test_control_characters_are_refused_naming_the_field(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    """PostgreSQL cannot store NUL: such input is a 422 naming the field, never a 500."""
    key = client.post("/api-keys", json={"name": "a\u0000b", "roles": ["verifier"]},
                      headers=admin_headers)
    assert key.status_code == 422 and key.json()["errors"][0]["field"] == "name"
    found = client.get("/persons", params={"q": "x\u0000"}, headers=admin_headers)
    assert found.status_code == 422 and found.json()["errors"][0]["field"] == "q"
    body = _enrol(client, admin_headers, [160], 10)
    pid = body["members"][0]["person_id"]
    death = client.post(f"/persons/{pid}/death", json={"reason": "bad\u0000reason"},
                        headers=admin_headers)
    assert death.status_code == 422 and death.json()["errors"][0]["field"] == "reason"

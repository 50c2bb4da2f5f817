"""Malformed input to every endpoint: 4xx problem+json naming the field, nothing written."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sanad.registry.models import AuditEvent, Household, Person
from sanad.registry.runtime import Registry
from tests import factories


def _state(registry: Registry) -> tuple[int, int, int]:
    with registry.sessions() as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Household, Person, AuditEvent)
        )


def _good() -> dict[str, Any]:
    return factories.household([1, 2], np.random.default_rng(0))


def _bad_households() -> list[tuple[str, Any, str]]:
    cases: list[tuple[str, Any, str]] = []
    g = _good()
    g["members"] = []
    cases.append(("no members", g, "members"))
    g = _good()
    g["members"][0]["given_name"] = ""
    cases.append(("empty name", g, "members.0.given_name"))
    g = _good()
    g["members"][0]["given_name_ar"] = "Latin"
    cases.append(("latin in arabic field", g, "members.0.given_name_ar"))
    g = _good()
    g["members"][0]["date_of_birth"] = "2999-01-01"
    cases.append(("future dob", g, "members.0.date_of_birth"))
    g = _good()
    g["members"][1]["relationship_to_head"] = "head"
    cases.append(("two heads", g, "body"))
    g = _good()
    g["members"][0]["face"]["template"] = "not base64!!"
    cases.append(("bad base64", g, "members.0.face.template"))
    g = _good()
    g["members"][0]["face"]["template"] = "AAAA"
    cases.append(("short template", g, "members.0.face.template"))
    g = _good()
    g["members"][0]["nationality"] = "syria"
    cases.append(("bad nationality", g, "members.0.nationality"))
    g = _good()
    g["members"][0]["sex"] = "Q"
    cases.append(("bad sex", g, "members.0.sex"))
    g = _good()
    g["members"][0]["phone"] = "12345"
    cases.append(("bad phone", g, "members.0.phone"))
    g = _good()
    g["unexpected"] = 1
    cases.append(("unknown field", g, "unexpected"))
    cases.append(("not an object", [1, 2, 3], "body"))
    return cases


@pytest.mark.parametrize("case", range(len(_bad_households())))
def test_bad_household_bodies(case: int, client: TestClient, admin_headers: dict[str, str],
                              registry: Registry) -> None:
    name, body, field = _bad_households()[case]
    before = _state(registry)
    resp = client.post("/households", json=body, headers=admin_headers)
    assert 400 <= resp.status_code < 500, name
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["status"] == resp.status_code and problem["type"].startswith("https://")
    fields = [e["field"] for e in problem.get("errors", [])]
    assert any(f.startswith(field) for f in fields), (name, fields)
    assert _state(registry) == before, name


def test_malformed_json_and_bad_ids(client: TestClient, admin_headers: dict[str, str],
                                    registry: Registry) -> None:
    before = _state(registry)
    raw = client.post("/households", content=b"{not json",
                      headers={**admin_headers, "content-type": "application/json"})
    assert raw.status_code == 422 and raw.json()["code"] == "validation_error"
    for method, url, body in (
        ("get", "/persons/not-a-uuid", None),
        ("post", "/persons/not-a-uuid/cards", None),
        ("post", "/verify", {"qr": ""}),
        ("post", "/verify", {"nope": 1}),
        ("post", "/auth/token", {"username": "admin"}),
    ):
        resp = client.request(method.upper(), url, headers=admin_headers, json=body)
        assert resp.status_code == 422, url
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["errors"][0]["field"]
    missing = client.get(f"/persons/{uuid.uuid4()}", headers=admin_headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    card = client.post(f"/persons/{uuid.uuid4()}/cards", headers=admin_headers)
    assert card.status_code == 404
    assert client.get("/no-such-route").status_code == 404
    # Reads of a missing person write no audit row; nothing else changed either.
    assert _state(registry) == before


def test_verify_garbage_is_a_result_not_an_error(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    for qr in ("SND1:", "SND1:%%%%", "HC1:ABC", "x" * 4000, "SND1:ÄÖÜ", "SND1:6BFOXN%TS3DH"):
        resp = client.post("/verify", json={"qr": qr}, headers=admin_headers)
        assert resp.status_code == 200
        assert resp.json()["valid"] is False and resp.json()["reasons"]

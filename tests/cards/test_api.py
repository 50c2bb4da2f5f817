"""Cards over HTTP: lifecycle endpoints, PDF/PNG, print queue, status list, trust bundle."""

from __future__ import annotations

import io
import json

import numpy as np
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from sanad.credentials.pki import parse_bundle
from sanad.credentials.status import parse_status_list
from sanad.registry.runtime import Registry
from tests import factories


def _enrol(client: TestClient, headers: dict[str, str], identity: int, seed: int) -> str:
    payload = factories.household([identity], np.random.default_rng(seed))
    resp = client.post("/households", json=payload, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["members"][0]["person_id"])


def test_lifecycle_and_offline_revocation_over_http(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    pid = _enrol(client, admin_headers, 700, 1)
    first = client.post(f"/persons/{pid}/cards", headers=admin_headers).json()
    assert first["status_index"] is not None and first["print_job_id"]
    lost = client.post(f"/persons/{pid}/cards/replace-lost", headers=admin_headers)
    assert lost.status_code == 201, lost.text
    second = lost.json()
    assert second["issue_reason"] == "replacement" and second["superseded"] == [first["id"]]
    check = client.post("/verify", json={"qr": first["qr"]}, headers=admin_headers).json()
    assert check["valid"] is False and check["reasons"] == ["revoked"]
    assert check["claims"]["card_number"] == first["card_number"]

    # The public status list says the same thing to a checkpoint that has only the trust list.
    resp = client.get("/status-list")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/cose")
    status = parse_status_list(resp.content, trust=registry.trust_list)
    assert status.is_revoked(first["status_index"]) is True
    assert status.is_revoked(second["status_index"]) is False

    bundle = client.get("/trust-bundle")
    assert bundle.status_code == 200
    loaded = parse_bundle(json.loads(bundle.content))
    assert loaded.status_list is not None
    assert bytes.fromhex(second["kid"]) in loaded.trust

    revoked = client.post(f"/cards/{second['id']}/revoke", json={"reason": "fraud"},
                          headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["revocation_reason"] == "fraud"
    again = client.post(f"/cards/{second['id']}/revoke", json={"reason": "fraud"},
                        headers=admin_headers)
    assert again.status_code == 409 and again.json()["code"] == "card_state_conflict"
    bad = client.post(f"/cards/{second['id']}/revoke", json={"reason": "whim"},
                      headers=admin_headers)
    assert bad.status_code == 422

    gone = client.post(f"/persons/{pid}/surrender", json={"note": "went home"},
                       headers=admin_headers)
    assert gone.status_code == 200 and gone.json() == []
    refused = client.post(f"/persons/{pid}/cards", headers=admin_headers)
    assert refused.status_code == 409 and refused.json()["code"] == "card_not_issuable"


def test_pdf_png_and_print_queue(client: TestClient, admin_headers: dict[str, str]) -> None:
    pid = _enrol(client, admin_headers, 710, 2)
    card = client.post(f"/persons/{pid}/cards", headers=admin_headers).json()
    pdf = client.get(f"/cards/{card['id']}/pdf", headers=admin_headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    back = client.get(f"/cards/{card['id']}/preview.png?side=back&dpi=300",
                      headers=admin_headers)
    assert back.status_code == 200 and back.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(back.content)))
    assert [b.text for b in decoded] == [card["qr"]]

    queued = client.get("/print-jobs?state=requested", headers=admin_headers).json()
    assert [j["id"] for j in queued] == [card["print_job_id"]]
    early = client.post(f"/print-jobs/{card['print_job_id']}/collected",
                        json={"collected_by": "holder", "proof": "fingerprint"},
                        headers=admin_headers)
    assert early.status_code == 409
    batch = client.post("/print-jobs/batch", headers=admin_headers)
    assert batch.status_code == 200 and batch.headers["x-sanad-cards"] == "1"
    assert client.post("/print-jobs/batch", headers=admin_headers).status_code == 409
    job_id = card["print_job_id"]
    reprint = client.post(f"/print-jobs/{job_id}/reprint", json={"reason": "smudged"},
                          headers=admin_headers).json()
    assert reprint["state"] == "requested" and reprint["reprints"] == 1
    failed = client.post(f"/print-jobs/{job_id}/failed", json={"error": "jam"},
                         headers=admin_headers).json()
    assert failed["state"] == "requested" and failed["attempts"] == 1
    client.post(f"/print-jobs/{job_id}/printed", headers=admin_headers)
    done = client.post(f"/print-jobs/{job_id}/collected",
                       json={"collected_by": "Amira (holder)", "proof": "fingerprint match"},
                       headers=admin_headers)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "collected" and done.json()["handed_over_by"] == "admin"


def test_card_routes_need_card_officer(client: TestClient, admin_headers: dict[str, str],
                                       registry: Registry) -> None:
    from sanad.registry.db import transaction
    from sanad.registry.users import create_user

    with transaction(registry.sessions) as s:
        create_user(s, username="checkpoint2", password="pw-checkpoint-2", roles=["verifier"],
                    actor="test")
    token = client.post("/auth/token", json={"username": "checkpoint2",
                                             "password": "pw-checkpoint-2"}).json()
    verifier = {"Authorization": f"Bearer {token['access_token']}"}
    pid = _enrol(client, admin_headers, 720, 3)
    card = client.post(f"/persons/{pid}/cards", headers=admin_headers).json()
    for method, url in (("post", f"/persons/{pid}/cards/renew"),
                        ("post", f"/cards/{card['id']}/revoke"),
                        ("get", f"/cards/{card['id']}/pdf"),
                        ("get", "/print-jobs")):
        resp = client.request(method, url, headers=verifier, json={"reason": "lost"})
        assert resp.status_code == 403, url
    ok = client.post("/verify", json={"qr": card["qr"]}, headers=verifier).json()
    assert ok["valid"] is True and ok["status"]["version"] >= 1

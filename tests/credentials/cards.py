"""Card test data shared by the credential and verifier tests: the known-answer card vector."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sanad.credentials.card import CardClaims
from sanad.credentials.ids import new_card_number
from sanad.credentials.keys import IssuerKey

VECTOR_PATH = Path(__file__).parents[1] / "vectors" / "qr_card_v1.json"
VECTOR: dict[str, Any] = json.loads(VECTOR_PATH.read_text(encoding="utf-8"))
VERIFY_AT = datetime.fromisoformat(VECTOR["verify_at"])


def claims_from_json(data: dict[str, Any]) -> CardClaims:
    """Inverse of `CardClaims.to_json` (tests only)."""
    values = dict(data)
    for name in ("issued_at", "not_before", "expires_at"):
        values[name] = datetime.fromisoformat(values[name])
    values["card_id"] = bytes.fromhex(values["card_id"])
    if "face_template" in values:
        values["face_template"] = base64.b64decode(values["face_template"])
    return CardClaims(**values)


def vector_key() -> IssuerKey:
    return IssuerKey.from_seed(bytes.fromhex(VECTOR["issuer_seed_hex"]))


def vector_claims() -> CardClaims:
    return claims_from_json(VECTOR["claims"])


def random_claims(**overrides: Any) -> CardClaims:
    """A plausible card valid around VERIFY_AT, with a fresh id and number."""
    base = replace(
        vector_claims(),
        card_id=secrets.token_bytes(16),
        card_number=new_card_number(),
        issued_at=VERIFY_AT - timedelta(days=30),
        not_before=VERIFY_AT - timedelta(days=30),
        expires_at=VERIFY_AT + timedelta(days=365),
    )
    return replace(base, **overrides)

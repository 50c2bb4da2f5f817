"""Card test helpers: enrol a synthetic person through the real enrolment service."""

from __future__ import annotations

import uuid

import numpy as np

from sanad.registry.cards import IssuedCard, issue_card
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.runtime import Registry
from sanad.registry.schemas import HouseholdCreate
from tests import factories

OFFICER = "card-officer-1"


def enrol(registry: Registry, identities: list[int], seed: int) -> list[uuid.UUID]:
    """Enrol one household of synthetic identities; returns the person ids."""
    payload = factories.household(identities, np.random.default_rng(seed))
    result = enrol_household(
        registry.sessions, registry.gallery, registry.settings,
        data=HouseholdCreate.model_validate(payload), ctx=EnrolmentContext(officer="reg-1"),
    )
    ids = [m.person_id for m in result.members]
    assert all(i is not None for i in ids), result
    return [i for i in ids if i is not None]


def issue(registry: Registry, person_id: uuid.UUID) -> IssuedCard:
    with transaction(registry.sessions) as s:
        return issue_card(s, person_id=person_id, officer=OFFICER, key=registry.issuer_key,
                          sealer=registry.sealer, settings=registry.settings)

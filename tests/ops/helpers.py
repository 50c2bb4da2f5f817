"""Shared helpers of the operations tests: enrol synthetic households through the service."""

from __future__ import annotations

import numpy as np

from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.runtime import Registry
from sanad.registry.schemas import EnrolmentResult, HouseholdCreate
from tests import factories


def enrol(registry: Registry, identities: list[int], seed: int = 1) -> EnrolmentResult:
    rng = np.random.default_rng(seed)
    data = HouseholdCreate(**factories.household(identities, rng))
    result = enrol_household(
        registry.sessions, registry.gallery, registry.settings, data=data,
        ctx=EnrolmentContext(officer="test"),
    )
    assert result.outcome in {"no_match", "adjudicate"}, result.outcome
    return result

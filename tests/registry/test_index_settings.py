"""The twostage index settings reach the index a registry opens (they are not decoration)."""

from __future__ import annotations

import numpy as np

from sanad.abis.finger_stage import PREFILTER_DIM
from sanad.abis.twostage import TwoStageIndex
from sanad.config import Settings
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.finger_gallery import PREFILTER_SUBVECTORS
from sanad.registry.runtime import open_registry
from sanad.registry.schemas import HouseholdCreate
from tests import factories


def test_sub_vectors_threads_shortlist_and_batch_stage_reach_the_face_index(
    initialised: tuple[Settings, str],
) -> None:
    settings = initialised[0].model_copy(update={
        "index_backend": "twostage", "index_pq_subvectors": 32, "index_threads": 1,
        "index_shortlist": 64, "index_batch_stage": "pq",
    })
    reg = open_registry(settings)
    try:
        index = reg.gallery.index
        assert isinstance(index, TwoStageIndex)
        assert (index.subvectors, index.threads, index.shortlist) == (32, 1, 64)
        assert index.batch_stage == "pq"
        # And it is the index enrolment writes to and searches.
        rng = np.random.default_rng(7)
        for payload in (factories.household([3], rng), factories.household([3], rng)):
            result = enrol_household(
                reg.sessions, reg.gallery, reg.settings,
                data=HouseholdCreate.model_validate(payload),
                ctx=EnrolmentContext(officer="officer-1"),
            )
        assert len(index) == 1
        assert result.outcome == "duplicate"  # the second capture of identity 3
        # The finger pre-filter index keeps its own code size (2 dimensions per sub-vector),
        # whatever the face index's setting says.
        fingers = reg.gallery.fingers
        assert fingers is not None and isinstance(fingers.index, TwoStageIndex)
        assert (fingers.index.subvectors, fingers.index.shortlist) == (PREFILTER_SUBVECTORS, 64)
        assert PREFILTER_SUBVECTORS == PREFILTER_DIM // 2 != index.subvectors
    finally:
        reg.close()

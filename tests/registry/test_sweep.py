"""The gallery sweep (`sanad.registry.sweep`), on both databases: a look-alike pair enrolled
under laxer thresholds is found by a later sweep and put to adjudicators once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from sanad.biometrics.synthetic import FACE_DIM
from sanad.registry.adjudication import Verdict, decide_case
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext
from sanad.registry.models import AdjudicationCase, AuditEvent
from sanad.registry.runtime import Registry
from sanad.registry.sweep import sweep
from tests import factories

CTX = EnrolmentContext(officer="auditor-1")


def _enrol(reg: Registry, face: np.ndarray, n: int) -> uuid.UUID:
    """One active person with this face and biographic data unlike the others'."""
    rng = np.random.default_rng(n)
    member = factories.member(700 + n, rng,
                              face=factories.face_capture(face / np.linalg.norm(face)),
                              given_name=["Samir", "Omar", "Khalil"][n],
                              family_name=["Haddad", "Nasser", "Saleh"][n],
                              father_name=["Karim", "Fadi", "Tariq"][n],
                              date_of_birth=["1971-01-05", "1990-07-19", "2001-11-30"][n])
    result = factories.enrol(reg, factories.alone(member))
    assert result.outcome == "no_match", result
    pid = result.members[0].person_id
    assert pid is not None
    return pid


@pytest.fixture
def slipped(make_registry: Callable[..., Registry]) -> tuple[Registry, uuid.UUID, uuid.UUID]:
    """Two people whose faces sit between today's review and match thresholds, and a third
    unlike both, all enrolled (active, no case) while the thresholds were far higher."""
    lax = make_registry(dedup_review_threshold=0.97, dedup_match_threshold=0.99)
    strict = make_registry()
    st = strict.settings
    rng = np.random.default_rng(31)
    a, u, c = rng.standard_normal((3, FACE_DIM))
    a /= np.linalg.norm(a)
    u -= (u @ a) * a
    u /= np.linalg.norm(u)
    cos = (st.dedup_review_threshold + st.dedup_match_threshold) / 2
    first = _enrol(lax, a, 0)
    second = _enrol(lax, cos * a + np.sqrt(1 - cos**2) * u, 1)
    _enrol(lax, c, 2)
    return strict, first, second


def test_a_pair_that_slipped_through_is_put_to_adjudicators_once(
    slipped: tuple[Registry, uuid.UUID, uuid.UUID],
) -> None:
    reg, first, second = slipped
    report = sweep(reg.sessions, reg.gallery, reg.settings, ctx=CTX, batch=2)  # two pages

    assert report.faces_searched == 3
    assert report.people_flagged == 2  # each of the pair, with the other
    assert report.rechecked == 1 and report.already_pending == 1
    (case_id,) = report.cases_opened
    with reg.sessions() as s:
        case = s.get(AdjudicationCase, uuid.UUID(case_id))
        assert case is not None and case.kind == "recheck" and case.status == "open"
        assert case.person_id in (first, second)
        (named,) = [c["person_id"] for c in case.candidates]
        assert {case.person_id, uuid.UUID(named)} == {first, second}
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "abis.sweep")).all()
        (event,) = events
        assert event.actor == "auditor-1"
        assert event.details["faces_searched"] == 3 and event.details["cases_opened"] == 1

    # A second sweep: the pair already has its case, nothing new.
    again = sweep(reg.sessions, reg.gallery, reg.settings, ctx=CTX)
    assert (again.people_flagged, again.already_pending, again.cases_opened) == (2, 2, [])


def test_a_pair_judged_different_does_not_come_back(
    slipped: tuple[Registry, uuid.UUID, uuid.UUID],
) -> None:
    reg, _, _ = slipped
    (case_id,) = sweep(reg.sessions, reg.gallery, reg.settings, ctx=CTX).cases_opened
    with transaction(reg.sessions) as s:
        decide_case(s, case_id=uuid.UUID(case_id), verdict=Verdict.DIFFERENT_PERSON,
                    reason="twins, checked documents", actor="adj-1", sealer=reg.sealer,
                    match_threshold=reg.settings.dedup_match_threshold)
    later = sweep(reg.sessions, reg.gallery, reg.settings, ctx=CTX)
    assert later.people_flagged == 2  # the faces still resemble each other...
    assert later.rechecked == 2 and later.cases_opened == []  # ...but the verdict stands


def test_report_only_opens_nothing(slipped: tuple[Registry, uuid.UUID, uuid.UUID]) -> None:
    reg, _, _ = slipped
    report = sweep(reg.sessions, reg.gallery, reg.settings, ctx=CTX, open_cases=False)
    assert (report.faces_searched, report.people_flagged) == (3, 2)
    assert (report.rechecked, report.cases_opened) == (0, [])
    with reg.sessions() as s:
        assert s.scalars(select(AdjudicationCase)).all() == []


def test_a_batch_below_one_is_refused(slipped: tuple[Registry, Any, Any]) -> None:
    reg = slipped[0]
    with pytest.raises(ValueError, match="batch"):
        sweep(reg.sessions, reg.gallery, reg.settings, ctx=CTX, batch=0)

"""The fingerprint pre-filter at enrolment: a second gallery index over finger descriptors.

Candidates the face search misses (a different face, a poor photo) are found by their fingers,
judged on the fused rule and marked ``via="finger"``; the index survives restarts, is rebuilt
when its snapshot is ahead or unreadable, and drops erased people.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sanad.abis.rebuild import rebuild_finger_index
from sanad.config import Settings
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext, recheck_person
from sanad.registry.erasure import drop_from_gallery, erase_person
from sanad.registry.finger_gallery import (
    FingerGallery,
    load_snapshot,
    save_snapshot,
)
from sanad.registry.models import AuditEvent, BiometricRecord, Person
from sanad.registry.runtime import Registry
from sanad.registry.schemas import HouseholdCreate
from tests import factories
from tests.factories import alone as _alone
from tests.factories import enrol as _enrol

CTX = EnrolmentContext(officer="officer-1")
TEN = tuple(range(1, 11))
OTHER = 300  # the synthetic person whose face the probe wears





def _decoys(rng: np.random.Generator, n: int = 3) -> dict[str, Any]:
    """People without fingers whose faces resemble `OTHER` more than anyone else does (below
    the review threshold): they fill the probe's face top-k."""
    payload = factories.household([400 + i for i in range(n)], rng)
    for m in payload["members"]:
        m["face"] = factories.face_near(OTHER, 0.4, rng)
    return payload


def _db_max(registry: Registry) -> int:
    with registry.sessions() as s:
        return int(s.scalar(select(func.max(BiometricRecord.id))) or 0)


def _expected(registry: Registry, fused: float) -> str:
    s = registry.settings
    assert fused >= s.dedup_fused_review_threshold
    return "duplicate" if fused >= s.dedup_fused_match_threshold else "adjudicate"


@pytest.mark.parametrize("prefilter", [10, 0])
def test_other_face_with_fresh_fingers_is_found_only_by_the_prefilter(
    make_registry: Callable[..., Registry], prefilter: int,
) -> None:
    reg = make_registry(dedup_candidates=2, finger_prefilter_candidates=prefilter)
    rng = np.random.default_rng(31)
    first = _enrol(reg, _alone(factories.member(70, rng, fingers=factories.fingers(70, rng, TEN))))
    a = first.members[0].person_id
    assert _enrol(reg, _decoys(rng)).outcome == "no_match"
    # Person 70 again, wearing someone else's face: the face top 2 are the decoys.
    probe = factories.member(70, rng, face=factories.face(OTHER, rng),
                             fingers=factories.fingers(70, rng, TEN), given_name="Ahmad")
    result = _enrol(reg, _alone(probe))
    member = result.members[0]
    mine = [c for c in member.candidates if c.person_id == a]
    if prefilter == 0:
        assert reg.gallery.fingers is None
        assert mine == [] and member.outcome == "no_match"  # nobody compared their fingers
        return
    assert reg.gallery.fingers is not None and len(reg.gallery.fingers) == 1
    (cand,) = mine
    assert cand.via == "finger"
    assert cand.face_score is not None
    assert cand.face_score < reg.settings.dedup_review_threshold
    assert cand.rule == "fused" and cand.fingers_compared == 10
    assert cand.fused_llr is not None and cand.finger_llr is not None
    assert member.outcome == result.outcome == _expected(reg, cand.fused_llr)
    with reg.sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action.in_(
            ["enrolment.refused_duplicate", "household.enrol"]))).all()
    assert any(str(a) in e.details["fingers_read"] for e in events)


def test_same_person_twice_in_one_submission_behind_other_faces(
    make_registry: Callable[..., Registry],
) -> None:
    """Within a submission too: member 5 is member 1's fingers with another face."""
    reg = make_registry(dedup_candidates=2)
    rng = np.random.default_rng(32)
    payload = _decoys(rng)
    payload["members"][0]["relationship_to_head"] = "sibling"
    payload["members"].insert(0, factories.member(71, rng, fingers=factories.fingers(71, rng, TEN)))
    payload["members"].append(factories.member(
        71, rng, face=factories.face(OTHER, rng), fingers=factories.fingers(71, rng, TEN),
        given_name="Ahmad", relationship_to_head="other"))
    result = _enrol(reg, {**payload, "request_adjudication": True})
    last = result.members[-1]
    (cand,) = [c for c in last.candidates if c.member_no == 1]
    assert cand.via == "finger" and cand.rule == "fused" and cand.fingers_compared == 10
    assert cand.fused_llr is not None
    assert last.outcome == "adjudicate"  # a duplicate, turned into a case on request
    assert cand.fused_llr >= reg.settings.dedup_fused_review_threshold
    # Only people with usable thumb/index fingers have an entry (members 1 and 5).
    assert reg.gallery.fingers is not None and len(reg.gallery.fingers) == 2


def test_face_and_prefilter_candidates_are_merged_as_both(registry: Registry) -> None:
    rng = np.random.default_rng(33)
    first = _enrol(registry, _alone(factories.member(72, rng,
                                                     fingers=factories.fingers(72, rng, TEN))))
    again = _enrol(registry, _alone(factories.member(72, rng,
                                                     fingers=factories.fingers(72, rng, TEN))))
    assert again.outcome == "duplicate"
    (cand,) = [c for c in again.members[0].candidates
               if c.person_id == first.members[0].person_id]
    assert cand.via == "both" and cand.rule == "fused"


def test_recheck_finds_a_person_the_face_search_misses(
    make_registry: Callable[..., Registry],
) -> None:
    # Enrolled while the pre-filter was off: person 73 twice, the second time with another face.
    off = make_registry(dedup_candidates=2, finger_prefilter_candidates=0)
    rng = np.random.default_rng(34)
    a = _enrol(off, _alone(factories.member(73, rng, fingers=factories.fingers(73, rng, TEN))))
    _enrol(off, _decoys(rng))
    b = _enrol(off, _alone(factories.member(73, rng, face=factories.face(OTHER, rng),
                                            fingers=factories.fingers(73, rng, TEN),
                                            given_name="Ahmad")))
    assert b.outcome == "no_match"
    pid = b.members[0].person_id
    assert pid is not None
    assert recheck_person(off.sessions, off.gallery, off.settings, person_id=pid, ctx=CTX) is None
    on = make_registry(dedup_candidates=2)  # a later start with the pre-filter on
    case = recheck_person(on.sessions, on.gallery, on.settings, person_id=pid, ctx=CTX)
    assert case is not None and case.kind == "recheck"
    (cand,) = [c for c in case.candidates if c["person_id"] == str(a.members[0].person_id)]
    assert cand["via"] == "finger" and cand["rule"] == "fused"
    assert cand["fused_llr"] >= on.settings.dedup_fused_review_threshold
    with on.sessions() as s:
        audited = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "biometrics.fingers_compared")).all()
    assert [e.details["with"] for e in audited] == [[str(a.members[0].person_id)]]


def test_index_survives_restart_and_catches_up(
    make_registry: Callable[..., Registry], settings: Settings,
) -> None:
    rng = np.random.default_rng(35)
    reg = make_registry()
    _enrol(reg, _alone(factories.member(74, rng, fingers=factories.fingers(74, rng, (1, 2)))))
    _enrol(reg, _alone(factories.member(75, rng)))  # no fingers: no entry
    reg.close()
    path = settings.finger_index_path
    assert (path / "space.npz").is_file() and len(list(path.glob("index-*.npz"))) == 1
    saved = load_snapshot(path, reg.settings.index_backend)
    assert saved is not None and len(saved[0]) == 1 and saved[1] is not None
    assert 0 < saved[0].watermark <= _db_max(reg)
    # A restart loads the snapshot (no rebuild) and catches up what others committed since.
    other = make_registry()
    _enrol(other, _alone(factories.member(76, rng, fingers=factories.fingers(76, rng))))
    loaded = FingerGallery.open(kind=reg.settings.index_backend, sealer=reg.sealer, path=path)
    assert loaded.index is not None and len(loaded) == 1  # from the file
    assert loaded.space is not None
    assert np.array_equal(loaded.space.centre, saved[1].centre)
    assert np.array_equal(loaded.space.projection, saved[1].projection)  # type: ignore[arg-type]
    with reg.sessions() as s:
        assert loaded.catch_up(s) == 1
    assert len(loaded) == 2 and loaded.watermark == _db_max(reg)
    again = make_registry()
    assert again.gallery.fingers is not None and len(again.gallery.fingers) == 2
    # The same person (76) is found through the restarted index alone.
    probe = factories.member(76, rng, face=factories.face(OTHER, rng),
                             fingers=factories.fingers(76, rng, TEN), given_name="Ahmad")
    with again.sessions() as s:
        hits = again.gallery.fingers.search(
            again.gallery.fingers.descriptors(s, [_minutiae(probe)]), 1)
        owner = s.scalar(select(BiometricRecord.person_id).where(
            BiometricRecord.id == hits[0][0][0]))
        assert s.get(Person, owner).given_name == "Mohammad"  # type: ignore[union-attr]


def _minutiae(member: dict[str, Any]) -> dict[Any, Any]:
    parsed = HouseholdCreate.model_validate(_alone(member)).members[0]
    out = {}
    for f in parsed.fingers:
        view, _ = f.parsed()
        out[view.position] = view.as_array()
    return out


def test_snapshot_ahead_or_unreadable_is_rebuilt(
    make_registry: Callable[..., Registry], settings: Settings,
) -> None:
    rng = np.random.default_rng(36)
    reg = make_registry()
    _enrol(reg, _alone(factories.member(77, rng, fingers=factories.fingers(77, rng))))
    reg.close()
    path = settings.finger_index_path
    saved = load_snapshot(path, settings.index_backend)
    assert saved is not None
    index, space = saved
    # As after restoring an older database: the snapshot claims records the database lacks.
    index.add(np.empty(0, np.int64), np.empty((0, index.dim), np.float32),
              watermark=_db_max(reg) + 1000)
    save_snapshot(path, index, space)
    ahead = make_registry()
    assert ahead.gallery.fingers is not None
    assert ahead.gallery.fingers.watermark == _db_max(reg) and len(ahead.gallery.fingers) == 1
    ahead.close()
    (path / "space.npz").write_bytes(b"not a snapshot")
    damaged = make_registry()
    assert damaged.gallery.fingers is not None and len(damaged.gallery.fingers) == 1


def test_erased_people_leave_the_index_here_and_in_other_processes(
    make_registry: Callable[..., Registry], settings: Settings,
) -> None:
    rng = np.random.default_rng(37)
    here, there = make_registry(), make_registry()
    first = _enrol(here, _alone(factories.member(78, rng, fingers=factories.fingers(78, rng))))
    pid = first.members[0].person_id
    assert pid is not None
    with there.sessions() as s:
        there.gallery.catch_up(s)
    assert there.gallery.fingers is not None and len(there.gallery.fingers) == 1
    with transaction(here.sessions) as s:
        report = erase_person(s, person_id=pid, reason="court order 13/2026", actor="dpo")
    drop_from_gallery(here.gallery, report.records_erased, report.dek_ids)
    assert here.gallery.fingers is not None and len(here.gallery.fingers) == 0
    saved = load_snapshot(settings.finger_index_path, settings.index_backend)
    assert saved is not None and len(saved[0]) == 0  # not on disk either
    with there.sessions() as s:
        there.gallery.catch_up(s)  # the other process learns of the erasure
    assert len(there.gallery.fingers) == 0
    # The same fingers again: nothing left to find.
    again = _enrol(here, _alone(factories.member(78, rng, face=factories.face(OTHER, rng),
                                                 fingers=factories.fingers(78, rng))))
    assert again.outcome == "no_match"


def test_rebuild_refits_the_space_and_matches_the_live_index(registry: Registry) -> None:
    rng = np.random.default_rng(38)
    payload = factories.household([80, 81, 82], rng)
    for i, m in enumerate(payload["members"][:2]):
        m["fingers"] = factories.fingers(80 + i, rng, (1, 2, 6, 7))
    _enrol(registry, payload)
    live = registry.gallery.fingers
    assert live is not None and len(live) == 2
    pages: list[int] = []
    index, report = rebuild_finger_index(
        registry.sessions, sealer=registry.sealer, kind=registry.settings.index_backend,
        path=registry.settings.finger_index_path, actor="ops", batch=1, progress=pages.append,
    )
    assert report.entries == len(index) == 2 and pages == [1, 1]
    assert report.watermark == _db_max(registry)
    saved = load_snapshot(registry.settings.finger_index_path, registry.settings.index_backend)
    assert saved is not None and len(saved[0]) == 2
    with registry.sessions() as s:
        event = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "abis.index_rebuilt")).one()
    assert event.details["entries"] == 2 and event.details["space"] == "synthetic"


def test_bad_finger_record_adds_nothing_to_either_index(
    client: TestClient, admin_headers: dict[str, str], registry: Registry,
) -> None:
    rng = np.random.default_rng(39)
    ok = factories.household([83], rng)
    ok["members"][0]["fingers"] = factories.fingers(83, rng)
    assert client.post("/households", json=ok, headers=admin_headers).status_code == 201
    fingers = registry.gallery.fingers
    assert fingers is not None
    with registry.sessions() as s:
        registry.gallery.catch_up(s)
    before = (len(registry.gallery.index), len(fingers), fingers.watermark)
    payload = factories.household([84], rng)
    payload["members"][0]["fingers"] = factories.fingers(84, rng)
    good = base64.b64decode(payload["members"][0]["fingers"][1]["record"])
    payload["members"][0]["fingers"][1]["record"] = base64.b64encode(good[:-5]).decode()
    resp = client.post("/households", json=payload, headers=admin_headers)
    assert resp.status_code == 422, resp.text
    assert [e["field"] for e in resp.json()["errors"]] == ["members.0.fingers.1.record"]
    # A member refused deeper down (zero face template) after another member's fingers.
    payload = factories.household([85, 86], rng)
    payload["members"][0]["fingers"] = factories.fingers(85, rng)
    payload["members"][1]["face"]["template"] = base64.b64encode(bytes(4 * 128)).decode()
    resp = client.post("/households", json=payload, headers=admin_headers)
    assert resp.status_code == 422, resp.text
    with registry.sessions() as s:
        registry.gallery.catch_up(s)
    assert (len(registry.gallery.index), len(fingers), fingers.watermark) == before


def test_catch_up_in_small_pages_adds_each_person_once(registry: Registry) -> None:
    """A person's finger records spanning catch-up pages give one entry, not a crash."""
    from sanad.abis.finger_stage import PREFILTER_DIM, bootstrap_space
    from sanad.abis.index import make_index

    rng = np.random.default_rng(40)
    payload = factories.household([87, 88], rng)
    for i, m in enumerate(payload["members"]):
        m["fingers"] = factories.fingers(87 + i, rng, (1, 2, 6, 7))
    _enrol(registry, payload)
    kind = registry.settings.index_backend
    fresh = FingerGallery(kind=kind, sealer=registry.sealer, path=None,
                          loaded=(make_index(kind, PREFILTER_DIM), bootstrap_space()))
    with registry.sessions() as s:
        assert fresh.catch_up(s, batch=3) == 2
        assert fresh.catch_up(s, batch=3) == 0  # nothing new
    assert len(fresh) == 2 and fresh.watermark == _db_max(registry)
    live = registry.gallery.fingers
    assert live is not None
    probe = factories.member(88, rng, fingers=factories.fingers(88, rng, (1, 2, 6, 7)))
    with registry.sessions() as s:
        d = fresh.descriptors(s, [_minutiae(probe)])
    assert fresh.search(d, 1)[0][0][0] == live.search(d, 1)[0][0][0]

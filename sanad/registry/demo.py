"""Synthetic demo population: households enrolled through the real enrolment service.

Every synthetic person also gives two fingerprints (right and left index, synthetic minutiae
as ISO/IEC 19794-2 records), so the demo exercises the fused face + finger second stage; about
2 % have one of the two recorded as missing instead (amputated or unreadable). Some submissions
are deliberate re-enrolment attempts of people already enrolled (a fresh noisy face and fresh
finger captures, a respelled name, a new single-person household): the report counts how many
of them deduplication caught and how many genuinely new people it wrongly called duplicates.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from sanad.abis.templates import encode_template
from sanad.biometrics.finger import FingerMinutiaeRecord, encode_record
from sanad.biometrics.finger.synthetic import IMAGE_HEIGHT, IMAGE_WIDTH, SyntheticFingers
from sanad.biometrics.synthetic import (
    SyntheticPerson,
    SyntheticPopulation,
    respell,
    synthetic_households,
    synthetic_person,
)
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.runtime import Registry
from sanad.registry.schemas import (
    FaceCapture,
    FingerCapture,
    HouseholdCreate,
    MissingBiometric,
    PersonCreate,
)

DEMO_FINGERS = (2, 7)  # right and left index
_MISSING_FINGER_RATE = 0.02


@dataclass(frozen=True)
class DemoReport:
    enrolled: int
    households: int
    injected_duplicates: int
    caught: int
    caught_as_duplicate: int
    caught_for_adjudication: int
    false_matches: int
    new_people_sent_to_adjudication: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def _fingers(
    fingers: SyntheticFingers, identity: int, rng: np.random.Generator
) -> tuple[list[FingerCapture], list[MissingBiometric]]:
    """Fresh captures of the demo fingers; now and then one is recorded as missing."""
    positions = list(DEMO_FINGERS)
    missing: list[MissingBiometric] = []
    if rng.random() < _MISSING_FINGER_RATE:
        gone = positions.pop(int(rng.integers(len(positions))))
        reason = "amputated" if rng.random() < 0.3 else "unreadable"
        missing.append(MissingBiometric(modality=f"finger:{gone}", reason=reason))
    captures = []
    for p in positions:
        record = FingerMinutiaeRecord(views=(fingers.capture_view(identity, p, rng),),
                                      image_width=IMAGE_WIDTH, image_height=IMAGE_HEIGHT)
        captures.append(FingerCapture(
            position=p, record=base64.b64encode(encode_record(record)).decode()))
    return captures, missing


def _member(
    bio: SyntheticPerson, relationship: str, template: np.ndarray, quality: float,
    fingers: tuple[list[FingerCapture], list[MissingBiometric]],
) -> PersonCreate:
    return PersonCreate(
        given_name=bio["given_name"],
        family_name=bio["family_name"],
        father_name=bio["father_name"],
        given_name_ar=bio["given_name_ar"],
        family_name_ar=bio["family_name_ar"],
        father_name_ar=bio["father_name_ar"],
        date_of_birth=bio["date_of_birth"],
        dob_precision=bio["dob_precision"],
        sex=bio["sex"],
        nationality=bio["nationality"],
        relationship_to_head=relationship,
        phone=bio["phone"],
        face=FaceCapture(
            template=base64.b64encode(encode_template(template)).decode(), quality=quality
        ),
        fingers=fingers[0],
        missing_biometrics=fingers[1],
    )


def run_demo(
    registry: Registry,
    *,
    people: int,
    duplicates: int,
    seed: int,
    officer: str = "demo",
    progress: Callable[[int], None] | None = None,
) -> DemoReport:
    """Enrol `people` new synthetic people plus `duplicates` re-enrolment attempts."""
    if people < 1 or duplicates < 0:
        raise ValueError("people must be >= 1 and duplicates >= 0")
    rng = np.random.default_rng(seed)
    population = SyntheticPopulation(seed=seed)
    finger_source = SyntheticFingers(seed=seed)
    households = list(synthetic_households(people, seed))
    # Re-enrolment attempts are spread over the run, each after at least one household exists.
    slots = sorted(rng.integers(1, len(households) + 1, size=duplicates).tolist())
    enrolled_bio: dict[int, SyntheticPerson] = {}
    ctx = EnrolmentContext(officer=officer)
    counts = dict(enrolled=0, households=0, caught=0, dup=0, adj=0, false=0, new_adj=0)

    def submit(data: HouseholdCreate) -> list[str]:
        result = enrol_household(
            registry.sessions, registry.gallery, registry.settings, data=data, ctx=ctx
        )
        if result.outcome != "duplicate":
            counts["households"] += 1
            counts["enrolled"] += len(result.members)
        return [m.outcome for m in result.members]

    slot_iter = iter(slots)
    next_slot = next(slot_iter, None)
    for h, identities in enumerate(households):
        head = synthetic_person(rng)
        bios: list[SyntheticPerson] = []
        for j, _identity in enumerate(identities):
            bio = head if j == 0 else synthetic_person(rng)
            if j:
                bio = SyntheticPerson(
                    **{**bio, "family_name": head["family_name"],
                       "family_name_ar": head["family_name_ar"],
                       "province": head["province"], "district": head["district"]}
                )
            bios.append(bio)
        members = [
            _member(bio, "head" if j == 0 else ("spouse" if j == 1 else "child"),
                    population.capture(identity, rng), float(rng.uniform(0.7, 1.0)),
                    _fingers(finger_source, identity, rng))
            for j, (bio, identity) in enumerate(zip(bios, identities, strict=True))
        ]
        outcomes = submit(
            HouseholdCreate(province=head["province"], district=head["district"],
                            site="demo-site", station="demo-1", members=members)
        )
        if "duplicate" not in outcomes:
            enrolled_bio.update(zip(identities, bios, strict=True))
        counts["false"] += outcomes.count("duplicate")
        counts["new_adj"] += outcomes.count("adjudicate")
        if progress:
            progress(len(identities))
        while next_slot is not None and next_slot <= h + 1:
            next_slot = next(slot_iter, None)
            known = list(enrolled_bio)
            identity = known[int(rng.integers(len(known)))]
            bio = enrolled_bio[identity]
            again = SyntheticPerson(
                **{**bio, "given_name": respell(bio["given_name"], rng),
                   "family_name": respell(bio["family_name"], rng)}
            )
            (outcome,) = submit(
                HouseholdCreate(
                    province=bio["province"], district=bio["district"], site="demo-site",
                    station="demo-2",
                    members=[_member(again, "head", population.capture(identity, rng), 0.9,
                                     _fingers(finger_source, identity, rng))],
                )
            )
            if outcome != "no_match":
                counts["caught"] += 1
                counts["dup" if outcome == "duplicate" else "adj"] += 1
    registry.gallery.save()
    return DemoReport(
        enrolled=counts["enrolled"],
        households=counts["households"],
        injected_duplicates=duplicates,
        caught=counts["caught"],
        caught_as_duplicate=counts["dup"],
        caught_for_adjudication=counts["adj"],
        false_matches=counts["false"],
        new_people_sent_to_adjudication=counts["new_adj"],
    )

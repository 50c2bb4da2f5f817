"""Synthetic populations: reproducibility, score statistics and biographic plausibility."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import numpy as np
import pytest

from sanad.biometrics import synthetic
from sanad.biometrics.synthetic import (
    CAPTURE_NOISE,
    FACE_DIM,
    NATIONALITIES,
    PROVINCES,
    SyntheticPopulation,
    respell,
    synthetic_households,
    synthetic_person,
)

AS_OF = dt.date(2026, 1, 15)
ARABIC = re.compile(r"^[\u0600-\u06FF ]+$")


def test_identity_template_is_a_stable_unit_vector() -> None:
    a = SyntheticPopulation(seed=3).identity_template(42)
    b = SyntheticPopulation(seed=3).identity_template(42)
    assert a.dtype == np.float32 and a.shape == (FACE_DIM,)
    assert np.array_equal(a, b)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    assert not np.array_equal(a, SyntheticPopulation(seed=4).identity_template(42))


def test_identity_template_does_not_depend_on_generation_order() -> None:
    pop = SyntheticPopulation(seed=3)
    batch = pop.identity_templates([9, 5, 7])
    assert np.array_equal(batch[1], pop.identity_template(5))


def test_captures_are_reproducible_from_the_callers_generator() -> None:
    pop = SyntheticPopulation(seed=1)
    a = pop.captures([1, 2, 3], np.random.default_rng(9))
    b = pop.captures([1, 2, 3], np.random.default_rng(9))
    assert np.array_equal(a, b)
    assert a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    one = pop.capture(1, np.random.default_rng(9))
    assert np.array_equal(one, a[0])


@pytest.fixture(scope="module")
def two_captures() -> tuple[np.ndarray, np.ndarray]:
    pop = SyntheticPopulation(seed=11)
    rng = np.random.default_rng(0)
    ids = np.arange(2000)
    return pop.captures(ids, rng), pop.captures(ids, rng)


def test_genuine_scores_average_078(two_captures: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = two_captures
    genuine = np.sum(a * b, axis=1)
    assert genuine.mean() == pytest.approx(0.78, abs=0.05)
    # The module docstring derives sd ≈ 0.027 for the default noise.
    assert genuine.std() == pytest.approx(0.027, abs=0.01)
    assert abs(CAPTURE_NOISE - np.sqrt(1 / 0.78 - 1)) < 1e-3


def test_impostor_scores_centre_on_zero(two_captures: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = two_captures
    scores = a[:1000] @ b[1000:].T
    assert abs(scores.mean()) < 0.02
    assert scores.std() == pytest.approx(1 / np.sqrt(FACE_DIM), abs=0.01)


def test_more_noise_lowers_genuine_scores() -> None:
    rng = np.random.default_rng(0)
    noisy = SyntheticPopulation(seed=1, capture_noise=1.0)
    a, b = noisy.captures(range(500), rng), noisy.captures(range(500), rng)
    assert np.sum(a * b, axis=1).mean() == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize(
    "kwargs", [{"seed": -1}, {"seed": 0, "dim": 1}, {"seed": 0, "capture_noise": -0.1}]
)
def test_invalid_population_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SyntheticPopulation(**kwargs)  # type: ignore[arg-type]


def test_negative_identity_is_rejected() -> None:
    with pytest.raises(ValueError):
        SyntheticPopulation(seed=0).identity_template(-1)


def test_households_partition_the_population() -> None:
    households = list(synthetic_households(1000, seed=2))
    assert [i for h in households for i in h] == list(range(1000))
    assert all(1 <= len(h) <= 8 for h in households)
    assert households == list(synthetic_households(1000, seed=2))


def test_synthetic_person_fields_are_plausible() -> None:
    rng = np.random.default_rng(5)
    people = [synthetic_person(rng, as_of=AS_OF) for _ in range(2000)]
    latin_to_arabic = dict(
        synthetic._MALE_NAMES + synthetic._FEMALE_NAMES + synthetic._FAMILY_NAMES
    )
    for p in people:
        assert p["sex"] in ("M", "F")
        assert p["nationality"] in NATIONALITIES
        assert p["district"] in PROVINCES[p["province"]]
        assert p["date_of_birth"] <= AS_OF
        for field in ("given_name", "family_name", "father_name"):
            latin = str(p[field])
            arabic = str(p[f"{field}_ar"])  # type: ignore[literal-required]
            assert latin.isascii()
            assert ARABIC.match(arabic)
            assert latin_to_arabic[latin] == arabic
        assert p["phone"] is None or re.fullmatch(r"\+999\d{9}", p["phone"])
        if p["dob_precision"] != "exact":
            assert (p["date_of_birth"].month, p["date_of_birth"].day) == (1, 1)
    precision = Counter(p["dob_precision"] for p in people)
    assert 0.10 < precision["year"] / 2000 < 0.20
    assert 0.06 < precision["estimated"] / 2000 < 0.14
    sexes = Counter(p["sex"] for p in people)
    assert 0.4 < sexes["F"] / 2000 < 0.6
    female_names = {name for name, _ in synthetic._FEMALE_NAMES}
    assert all(p["given_name"] in female_names for p in people if p["sex"] == "F")


def test_synthetic_person_is_deterministic() -> None:
    a = synthetic_person(np.random.default_rng(1), as_of=AS_OF)
    b = synthetic_person(np.random.default_rng(1), as_of=AS_OF)
    assert a == b


@pytest.mark.parametrize(
    "name", ["Mohammad", "Ahmad", "Al-Hassan", "Fatima", "Ali", "Noor Al-Ahmad", "Abdi", "Al-"]
)
def test_respell_always_changes_the_name(name: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        variant = respell(name, rng)
        assert variant != name
        assert variant.strip()


def test_respell_produces_the_usual_transliterations() -> None:
    rng = np.random.default_rng(0)
    mohammad = {respell("Mohammad", rng) for _ in range(200)}
    assert {"Muhammad", "Mohammed"} <= mohammad
    ahmad = {respell("Ahmad", rng) for _ in range(200)}
    assert "Ahmed" in ahmad
    assert "El-Hassan" in {respell("Al-Hassan", rng) for _ in range(200)}


def test_respell_keeps_capitalisation() -> None:
    rng = np.random.default_rng(1)
    assert all(respell("Yusuf", rng)[0] == "Y" for _ in range(30))
    assert all(respell("HASSAN", rng).isupper() for _ in range(30))


def test_respell_rejects_an_empty_name() -> None:
    with pytest.raises(ValueError):
        respell("  ", np.random.default_rng(0))


# --- the population calibrated to SFace ---------------------------------------------------------

from sanad.biometrics.synthetic import (  # noqa: E402
    SFACE_GENUINE_MEAN,
    SFACE_GENUINE_SD,
    SFACE_IMPOSTOR_MEAN,
    CalibratedPopulation,
    chunked_normals,
    enrolment_stream,
    isotropic_captures,
)


@pytest.fixture(scope="module")
def calibrated() -> tuple[CalibratedPopulation, np.ndarray, np.ndarray]:
    pop = CalibratedPopulation(seed=5)
    rng = np.random.default_rng(1)
    ids = np.arange(4000)
    return pop, pop.captures(ids, rng), pop.captures(ids, rng)


def test_calibrated_scores_follow_sface(calibrated) -> None:
    pop, a, b = calibrated
    genuine = np.sum(a * b, axis=1)
    assert genuine.mean() == pytest.approx(SFACE_GENUINE_MEAN, abs=0.02)
    assert genuine.std() == pytest.approx(SFACE_GENUINE_SD, abs=0.015)
    households = pop.households(np.arange(4000))
    scores = a[:2000] @ b[2000:].T
    strangers = households[:2000, None] != households[None, 2000:]
    assert scores[strangers].mean() == pytest.approx(SFACE_IMPOSTOR_MEAN, abs=0.02)


def test_siblings_are_hard_impostors(calibrated) -> None:
    pop, a, b = calibrated
    households = pop.households(np.arange(4000))
    scores = a @ b.T
    same = households[:, None] == households[None, :]
    np.fill_diagonal(same, False)
    siblings = scores[same]
    strangers = scores[:500, 2000:2500].ravel()
    assert siblings.size > 1000
    assert siblings.mean() > strangers.mean() + 0.15
    assert siblings.mean() < np.sum(a * b, axis=1).mean() - 0.25


def test_calibrated_generation_is_order_independent_and_seeded() -> None:
    pop = CalibratedPopulation(seed=9)
    x = pop.identity_templates(np.array([9000, 3, 4096]))
    y = pop.identity_templates(np.array([3, 4096, 9000]))
    assert np.array_equal(x[0], y[2]) and np.array_equal(x[1], y[0])
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    assert not np.array_equal(x, CalibratedPopulation(seed=10).identity_templates([9000, 3, 4096]))
    assert np.array_equal(CalibratedPopulation(seed=9).households([5000]), pop.households([5000]))


def test_households_cover_sizes_one_to_eight() -> None:
    households = CalibratedPopulation(seed=1).households(np.arange(20000))
    assert np.all(np.diff(households) >= 0)  # consecutive identities share households
    sizes = np.bincount(households)[:-1]  # the last one may be cut off
    assert sizes.min() >= 1 and sizes.max() <= 8
    assert 4.0 < sizes.mean() < 5.0


def test_isotropic_captures_have_the_isotropic_statistics() -> None:
    rng = np.random.default_rng(0)
    a = isotropic_captures(2, np.arange(2000), rng)
    b = isotropic_captures(2, np.arange(2000), rng)
    assert np.sum(a * b, axis=1).mean() == pytest.approx(0.78, abs=0.02)
    assert abs((a[:1000] @ b[1000:].T).mean()) < 0.01
    assert np.array_equal(chunked_normals(1, 2, np.array([5, 5000]), 8)[1],
                          chunked_normals(1, 2, np.array([5000]), 8)[0])


def test_enrolment_stream_has_two_percent_reenrolments() -> None:
    stream = enrolment_stream(50_000, seed=3)
    first_seen: dict[int, int] = {}
    repeats = 0
    for record, identity in enumerate(stream.tolist()):
        if identity in first_seen:
            repeats += 1
            assert first_seen[identity] < record
        else:
            assert identity == len(first_seen)  # new identities are numbered in order
            first_seen[identity] = record
    assert repeats / stream.size == pytest.approx(0.02, abs=0.003)
    assert np.array_equal(stream, enrolment_stream(50_000, seed=3))
    with pytest.raises(ValueError):
        enrolment_stream(10, seed=0, reenrolment_rate=1.0)


@pytest.mark.parametrize("kwargs", [{"seed": -1}, {"seed": 0, "dim": 1},
                                    {"seed": 0, "sibling_share": 1.0}])
def test_invalid_calibrated_arguments(kwargs) -> None:
    with pytest.raises(ValueError):
        CalibratedPopulation(**kwargs)

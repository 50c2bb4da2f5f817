"""The dedup decision: thresholds, in-batch self-deduplication, no false duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from sanad.abis.decision import Candidate, Decision, Outcome, decide, dedup_batch
from sanad.abis.index import INDEX_KINDS, make_index
from sanad.biometrics.synthetic import FACE_DIM, SyntheticPopulation
from sanad.config import Settings

# The shipped defaults: the tests hold for what a default install decides.
MATCH = Settings.model_fields["dedup_match_threshold"].default
REVIEW = Settings.model_fields["dedup_review_threshold"].default
T = {"match_threshold": MATCH, "review_threshold": REVIEW}
BAND = (MATCH + REVIEW) / 2  # a score in the review band


def row(*pairs: tuple[int, float]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([i for i, _ in pairs], dtype=np.int64)
    scores = np.array([s for _, s in pairs], dtype=np.float32)
    return scores, ids


def test_outcome_values_are_stable_strings() -> None:
    assert [o.value for o in Outcome] == ["no_match", "duplicate", "adjudicate"]
    assert str(Outcome.DUPLICATE) == "duplicate"
    assert Outcome("adjudicate") is Outcome.ADJUDICATE


@pytest.mark.parametrize(
    ("best", "outcome"),
    [
        (0.95, Outcome.DUPLICATE),
        (MATCH, Outcome.DUPLICATE),
        (MATCH - 1e-4, Outcome.ADJUDICATE),
        (REVIEW, Outcome.ADJUDICATE),
        (REVIEW - 1e-4, Outcome.NO_MATCH),
        (-0.2, Outcome.NO_MATCH),
    ],
)
def test_thresholds(best: float, outcome: Outcome) -> None:
    scores, ids = row((5, best), (6, -0.5))
    decision = decide(scores.astype(np.float64), ids, **T)
    assert decision.outcome is outcome
    assert decision.best_score == pytest.approx(best)


def test_candidates_are_those_above_review_best_first() -> None:
    scores, ids = row((1, BAND), (2, 0.72), (3, 0.30), (4, MATCH + 0.01))
    decision = decide(scores, ids, **T)
    assert decision.outcome is Outcome.DUPLICATE
    assert [c.gallery_id for c in decision.candidates] == [2, 4, 1]
    assert decision.candidates[0].score == pytest.approx(0.72)
    assert all(c.batch_member is None for c in decision.candidates)


def test_no_match_keeps_best_score_but_no_candidates() -> None:
    scores, ids = row((9, 0.31), (8, 0.1))
    decision = decide(scores, ids, **T)
    assert (decision.outcome, decision.candidates) == (Outcome.NO_MATCH, ())
    assert decision.best_score == pytest.approx(0.31)


def test_padding_is_ignored() -> None:
    scores = np.array([BAND, -np.inf, -np.inf], dtype=np.float32)
    ids = np.array([3, -1, -1])
    decision = decide(scores, ids, **T)
    assert [c.gallery_id for c in decision.candidates] == [3]
    empty = decide(np.full(3, -np.inf), np.full(3, -1), **T)
    assert empty == Decision(Outcome.NO_MATCH, (), None)


@pytest.mark.parametrize(("match", "review"), [(0.4, 0.5), (float("nan"), 0.5)])
def test_match_threshold_below_review_is_an_error(match: float, review: float) -> None:
    scores, ids = row((1, 0.5))
    with pytest.raises(ValueError, match="match_threshold"):
        decide(scores, ids, match_threshold=match, review_threshold=review)


def test_decide_rejects_mismatched_rows() -> None:
    with pytest.raises(ValueError, match="1-d"):
        decide(np.zeros(3), np.zeros(2, dtype=np.int64), **T)


def test_candidate_batch_member() -> None:
    assert Candidate(-1, 0.9).batch_member == 0
    assert Candidate(-4, 0.9).batch_member == 3
    assert Candidate(0, 0.9).batch_member is None


@pytest.fixture(params=INDEX_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def population() -> SyntheticPopulation:
    return SyntheticPopulation(seed=21)


def gallery_of(kind: str, population: SyntheticPopulation, identities: range):
    index = make_index(kind, FACE_DIM)
    vectors = population.captures(identities, np.random.default_rng(1))
    index.add(np.asarray(identities, dtype=np.int64), vectors)
    return index


def test_batch_catches_two_captures_of_one_person(
    kind: str, population: SyntheticPopulation
) -> None:
    index = gallery_of(kind, population, range(200))
    rng = np.random.default_rng(2)
    # Member 0 and 2 are the same new person; member 1 is already enrolled (gallery id 7).
    probes = population.captures([500, 7, 500, 501], rng)
    decisions = dedup_batch(probes, index, k=10, **T)
    assert [d.outcome for d in decisions] == [
        Outcome.NO_MATCH,
        Outcome.DUPLICATE,
        Outcome.DUPLICATE,
        Outcome.NO_MATCH,
    ]
    assert decisions[1].candidates[0].gallery_id == 7
    assert decisions[2].candidates[0].gallery_id == -1
    assert decisions[2].candidates[0].batch_member == 0
    assert decisions[2].best_score == pytest.approx(0.78, abs=0.12)


def test_household_submitted_twice_in_one_batch(kind: str, population: SyntheticPopulation) -> None:
    index = make_index(kind, FACE_DIM)  # empty gallery: only the batch can catch it
    household = [900, 901, 902, 903, 904]
    probes = population.captures(household + household, np.random.default_rng(3))
    decisions = dedup_batch(probes, index, k=10, **T)
    assert all(d.outcome is Outcome.NO_MATCH for d in decisions[:5])
    assert all(d.candidates == () for d in decisions[:5])
    for j, d in enumerate(decisions[5:]):
        assert d.outcome is Outcome.DUPLICATE
        assert d.candidates[0].batch_member == j
        # Only earlier members count, never the probe itself or later ones.
        assert all(c.batch_member is not None and c.batch_member < 5 + j for c in d.candidates)


def test_candidates_merge_gallery_and_batch_up_to_k(
    kind: str, population: SyntheticPopulation
) -> None:
    index = gallery_of(kind, population, range(10))
    # Six captures of gallery identity 3: the last sees the gallery entry and five batch copies.
    probes = population.captures([3] * 6, np.random.default_rng(4))
    decisions = dedup_batch(probes, index, k=4, **T)
    last = decisions[-1]
    assert len(last.candidates) == 4
    assert {c.gallery_id for c in last.candidates} <= {3, -1, -2, -3, -4, -5}
    assert [c.score for c in last.candidates] == sorted(
        (c.score for c in last.candidates), reverse=True
    )


def test_no_false_duplicate_across_2000_distinct_identities(
    kind: str, population: SyntheticPopulation
) -> None:
    index = gallery_of(kind, population, range(2000))
    rng = np.random.default_rng(5)
    strangers = population.captures(range(2000, 4000), rng)
    decisions = dedup_batch(strangers, index, k=10, **T)
    assert not any(d.outcome is Outcome.DUPLICATE for d in decisions)
    # Impostor scores (sd ≈ 0.09) almost never reach review either.
    assert sum(d.outcome is Outcome.ADJUDICATE for d in decisions) <= 2
    mates = population.captures(range(0, 2000, 10), rng)
    found = dedup_batch(mates, index, k=10, **T)
    assert all(d.outcome is Outcome.DUPLICATE for d in found)
    assert [d.candidates[0].gallery_id for d in found] == list(range(0, 2000, 10))


def test_dedup_batch_validates(kind: str, population: SyntheticPopulation) -> None:
    index = make_index(kind, FACE_DIM)
    probes = population.captures([1], np.random.default_rng(0))
    with pytest.raises(ValueError, match="match_threshold"):
        dedup_batch(probes, index, k=5, match_threshold=0.3, review_threshold=0.4)
    with pytest.raises(ValueError, match="shape"):
        dedup_batch(probes[:, :10], index, k=5, **T)
    assert dedup_batch(probes[:0], index, k=5, **T) == []


def test_blocked_in_batch_search_gives_the_same_decisions(
    population: SyntheticPopulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = gallery_of("exact", population, range(10))
    identities = np.random.default_rng(6).integers(0, 40, size=60)
    probes = population.captures(identities, np.random.default_rng(7))
    whole = dedup_batch(probes, index, k=5, **T)
    monkeypatch.setattr("sanad.abis.decision._SCORE_BLOCK_ELEMENTS", 100)  # many row blocks
    blocked = dedup_batch(probes, index, k=5, **T)

    def shape(ds: list[Decision]) -> list[tuple[Outcome, list[int]]]:
        return [(d.outcome, [c.gallery_id for c in d.candidates]) for d in ds]

    assert shape(blocked) == shape(whole)

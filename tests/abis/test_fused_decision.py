"""The fused decision: fused thresholds with fingers, face thresholds without."""

from __future__ import annotations

import numpy as np
import pytest

from sanad.abis.decision import Outcome, Thresholds, decide, decide_fused, judge_pair
from sanad.abis.fusion import FusedScore, fuse

T = Thresholds(face_match=0.60, face_review=0.45, fused_match=21.1, fused_review=5.0)


@pytest.mark.parametrize("seed", range(5))
def test_without_fingers_it_decides_exactly_like_the_face_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.2, 0.8, size=8).astype(np.float32)
    ids = np.arange(8)
    face = decide(scores, ids, match_threshold=0.60, review_threshold=0.45)
    fused = decide_fused(((int(i), float(s), fuse(float(s), None)) for i, s in zip(ids, scores,
                                                                                    strict=True)),
                         T, limit=None)
    assert fused.outcome == face.outcome
    assert {c.gallery_id for c in fused.candidates} == {c.gallery_id for c in face.candidates}
    assert all(c.rule == "face" for c in fused.candidates)


def test_fingers_switch_the_pair_to_the_fused_thresholds() -> None:
    # A face at the face duplicate threshold, two clearly different fingers: adjudicate at most.
    twin = fuse(0.70, [0.02, 0.05])
    assert judge_pair(0.70, twin, T) == (Outcome.ADJUDICATE, "fused")
    # A weak face, four matching fingers: not let through.
    poor_photo = fuse(0.40, [0.45, 0.5, 0.38, 0.41])
    outcome, rule = judge_pair(0.40, poor_photo, T)
    assert rule == "fused" and outcome != Outcome.NO_MATCH
    assert judge_pair(0.40, fuse(0.40, None), T) == (Outcome.NO_MATCH, "face")
    # A fresh capture of the same person, fingers agreeing: duplicate.
    assert judge_pair(0.78, fuse(0.78, [0.4, 0.35]), T) == (Outcome.DUPLICATE, "fused")


def test_no_biometric_evidence_is_never_a_candidate() -> None:
    nothing = FusedScore(0.0, None, None, 0)
    assert judge_pair(None, nothing, T) == (Outcome.NO_MATCH, "face")
    assert decide_fused([(1, None, nothing)], T, limit=None).candidates == ()


def test_most_severe_first_and_limit() -> None:
    pairs = [
        (1, 0.50, fuse(0.50, None)),  # face adjudicate
        (2, 0.78, fuse(0.78, [0.4, 0.4])),  # fused duplicate
        (3, 0.30, fuse(0.30, None)),  # nothing
        (4, 0.55, fuse(0.55, None)),  # face adjudicate, higher
    ]
    d = decide_fused(pairs, T, limit=2)
    assert d.outcome == Outcome.DUPLICATE
    assert [c.gallery_id for c in d.candidates] == [2, 4]
    assert d.best_face == pytest.approx(0.78)


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="match_threshold"):
        Thresholds(face_match=0.6, face_review=0.45, fused_match=4.0, fused_review=5.0)


def test_fused_settings_must_be_ordered() -> None:
    from pydantic import ValidationError

    from sanad.config import Settings

    with pytest.raises(ValidationError, match="SANAD_DEDUP_FUSED_REVIEW_THRESHOLD"):
        Settings(dedup_fused_review_threshold=30.0)
    s = Settings()
    assert (s.dedup_fused_match_threshold, s.dedup_fused_review_threshold) == (21.1, 5.0)

"""Score fusion: per-modality calibration to log-likelihood ratios, summed over what exists.

Rule (docs/fusion.md discusses it and the alternatives):

* Each modality's raw score ``s`` (face cosine; one fingerprint matcher score per finger) is
  mapped to bounded evidence ``llr(s) = clip(slope · (s − centre), −bound, +bound)``: the
  log-likelihood ratio ln P(s | same person) / P(s | different people) under an
  equal-variance Gaussian model of the two score populations, fitted by `ScoreCalibration.fit`
  from genuine and impostor scores (the accuracy benchmark does it and prints the constants).
* The fused evidence is the **sum** over the modalities present: the face (if both people
  have one) plus every finger position compared (if both have it). Independent evidence adds
  in log space; a missing modality contributes 0 — no evidence, neither for nor against — so
  people who refused or lack a modality are still scored on what they have.
* ``bound`` caps what one score can contribute, so a single freak score (a spurious finger
  alignment, a twin's face) cannot decide alone against the other modalities.
* Decisions compare the fused LLR with thresholds that are parameters (the lead stores them
  in config); ``FusedScore.score`` = sigmoid(llr) is the same number squashed into (0, 1)
  for display and for code that expects a bounded score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sanad.abis.finger_stage import StageResult
from sanad.biometrics.finger.matcher import FingerComparison

FACE = "face"
FINGER = "finger"

# Caps on one score's evidence. The face cap (20) lets a face alone reach the 1.45 M
# adjudication threshold (ln(1.45e6 / 0.01) = 18.8) but not the duplicate one (21.1): without
# fingerprints a face match goes to a person, never straight to "duplicate". Each finger is
# capped lower (8) because one finger can be partial, scarred or spuriously aligned.
FACE_BOUND = 20.0
FINGER_BOUND = 8.0


@dataclass(frozen=True)
class ScoreCalibration:
    """Linear, bounded log-likelihood ratio of one modality's raw score."""

    slope: float
    centre: float
    bound: float

    def __post_init__(self) -> None:
        if not (self.slope > 0 and self.bound > 0 and math.isfinite(self.centre)):
            raise ValueError("calibration needs slope > 0, bound > 0 and a finite centre")

    def llr(self, score: float) -> float:
        """Evidence (natural log-likelihood ratio) carried by ``score``."""
        return float(np.clip(self.slope * (score - self.centre), -self.bound, self.bound))

    def llr_array(self, scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """`llr` of many scores at once."""
        s = np.asarray(scores, dtype=np.float64)
        out: npt.NDArray[np.float64] = np.clip(
            self.slope * (s - self.centre), -self.bound, self.bound
        )
        return out

    @classmethod
    def fit(
        cls, genuine: npt.ArrayLike, impostor: npt.ArrayLike, *, bound: float
    ) -> ScoreCalibration:
        """Equal-variance Gaussian LLR from samples: slope = Δμ/σ², centre = mid-point.

        σ² is the mean of the two classes' variances (so a tight genuine class does not make
        the slope explode). Raises ``ValueError`` unless genuine scores are on average higher.
        """
        g = np.asarray(genuine, dtype=np.float64)
        i = np.asarray(impostor, dtype=np.float64)
        if g.size < 2 or i.size < 2:
            raise ValueError("need at least two genuine and two impostor scores")
        mu_g, mu_i = float(g.mean()), float(i.mean())
        if not mu_g > mu_i:
            raise ValueError("genuine scores must be higher than impostor scores on average")
        var = max((float(g.var()) + float(i.var())) / 2.0, 1e-6)
        return cls(slope=(mu_g - mu_i) / var, centre=(mu_g + mu_i) / 2.0, bound=bound)


@dataclass(frozen=True)
class FusionCalibration:
    """Calibrations of the two modalities (one shared by all finger positions)."""

    face: ScoreCalibration
    finger: ScoreCalibration


# Fitted by `sanad bench accuracy` (n=5000, seed 0, 2 fingers, siblings; see
# docs/benchmarks-accuracy.md): face on the SFace-calibrated synthetic generator
# (`CalibratedPopulation`), finger on the synthetic minutiae captures with sanad's matcher.
# Refit, and store in config, when the face model, the matcher or the capture devices change.
DEFAULT_CALIBRATION = FusionCalibration(
    face=ScoreCalibration(slope=100.0, centre=0.440, bound=FACE_BOUND),
    finger=ScoreCalibration(slope=36.6, centre=0.198, bound=FINGER_BOUND),
)


@dataclass(frozen=True)
class FusedScore:
    """Fused evidence for one probe/candidate pair.

    ``llr`` is the total; ``face_llr`` / ``finger_llr`` the parts (``None`` when that modality
    was absent); ``fingers_compared`` how many finger positions contributed. ``modalities``
    lists what was present: empty means no biometric evidence at all (``llr == 0``), which a
    decision must never read as a duplicate.
    """

    llr: float
    face_llr: float | None
    finger_llr: float | None
    fingers_compared: int

    @property
    def score(self) -> float:
        """``sigmoid(llr)`` in (0, 1): the posterior probability at even prior odds."""
        if self.llr >= 0:
            return 1.0 / (1.0 + math.exp(-self.llr))
        e = math.exp(self.llr)
        return e / (1.0 + e)

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities that contributed, e.g. ``("face", "finger")``."""
        present = []
        if self.face_llr is not None:
            present.append(FACE)
        if self.finger_llr is not None:
            present.append(FINGER)
        return tuple(present)


def fuse(
    face: float | None,
    fingers: FingerComparison | Mapping[object, float] | Iterable[float] | None,
    calibration: FusionCalibration = DEFAULT_CALIBRATION,
) -> FusedScore:
    """Fuse a face score (``None``: no face on either side) and per-finger scores.

    ``fingers`` may be a `FingerComparison`, a mapping position → score, a plain iterable of
    scores, or ``None``; an empty collection means no shared finger (no finger evidence).
    """
    if fingers is None:
        finger_scores: list[float] = []
    elif isinstance(fingers, FingerComparison):
        finger_scores = list(fingers.scores.values())
    elif isinstance(fingers, Mapping):
        finger_scores = [float(v) for v in fingers.values()]
    else:
        finger_scores = [float(v) for v in fingers]
    for s in [*finger_scores, *([] if face is None else [face])]:
        if not math.isfinite(s):
            raise ValueError(f"scores must be finite, got {s}")
    face_llr = None if face is None else calibration.face.llr(face)
    finger_llr = (
        float(calibration.finger.llr_array(finger_scores).sum()) if finger_scores else None
    )
    total = (face_llr or 0.0) + (finger_llr or 0.0)
    return FusedScore(total, face_llr, finger_llr, len(finger_scores))


def fuse_candidates(
    face_scores: Mapping[int, float],
    stage: Iterable[StageResult],
    calibration: FusionCalibration = DEFAULT_CALIBRATION,
) -> list[tuple[int, FusedScore]]:
    """Fused scores of every candidate of a search, best (highest LLR) first.

    ``face_scores`` maps gallery id → face cosine for the candidates that have one (face
    search hits, or 1:1 face comparisons of the fingerprint pre-filter's candidates);
    ``stage`` is `second_stage`'s output. A candidate missing from either side is fused on
    what it has. Ties keep face-search order.
    """
    fingers: dict[int, FingerComparison] = {r.gallery_id: r.comparison for r in stage}
    ids = list(dict.fromkeys([*face_scores, *fingers]))
    fused = [
        (gid, fuse(face_scores.get(gid), fingers.get(gid), calibration)) for gid in ids
    ]
    return sorted(fused, key=lambda item: -item[1].llr)

"""``sanad bench accuracy``: 1:N accuracy of face, fingerprint and fused search; DET curve.

Protocol (ISO/IEC 19795-1 style 1:N, as NIST FRVT reports it):

* A gallery of ``n`` synthetic people, each with a face capture and captures of ``fingers``
  (a few fingers are missing: ``missing_finger_rate`` per finger, and ``no_finger_rate`` of
  people have none at all, as recorded exceptions would leave them).
* ``mated`` re-enrolment attempts: fresh captures of gallery people. ``non_mated`` searches:
  fresh people never enrolled.
* Three pipelines, each a real search path:
  - **face**: exact face search, top ``face_candidates``, score = cosine;
  - **finger**: fingerprint pre-filter (`FingerDescriptorSpace`), top ``finger_candidates``,
    then the minutiae matcher on every shared finger, score = summed finger evidence (LLR);
  - **fused**: union of both candidate lists, second stage on fingers, score = fused LLR.
* FPIR(T) = share of non-mated searches returning any candidate scoring ≥ T;
  FNIR(T) = share of mated searches whose mate is not returned with a score ≥ T.
  ``fnir_at_fpir_X`` sets T at the lowest threshold with FPIR ≤ X.
* ``ann_loss_rate``: of the (probe, candidate) pairs that exact face search returns in its top
  ``face_candidates`` at or above the face review threshold (FPIR 1 %), the share the ANN
  index (``index_kind``) does not return. With ``ann_gallery`` > 0 the same figure is also
  measured face-only on a gallery of that size (``ann_*_large``; e.g. 1.45 M, where the
  finger stage would be far too slow to run), with the same searches' construction, at that
  gallery's own review threshold (FPIR 1 % of its non-mated searches) and, for comparison,
  at the main run's (``..._at_main_threshold``: far lower than a 1.45 M gallery needs, so it
  counts the nearest strangers too).
* ``large_gallery`` > 0 (e.g. 1,450,000, the production size) adds the *enrolment path* at
  that size (``*_large`` figures, `_enrolment_large`): ``large_mated`` mated and
  ``large_non_mated`` non-mated searches (siblings as above) against that many calibrated
  faces in the ``index_kind`` index; top ``face_candidates`` (enrolment's
  ``dedup_candidates``), then the minutiae second stage on the candidates enrolment would
  match, fused with the shipped calibration and judged with the shipped thresholds. Fingers
  are generated only for the probes and their candidates. No fingerprint pre-filter (not on
  enrolment's path): the fused figures are a lower bound. Reports face and fused FNIR at FPIR
  0.1 % / 1 % and their thresholds, FNIR / FPIR of the shipped thresholds, and the face-only
  thresholds this gallery calls for (face threshold at FPIR 0.1 % / 1 %, rounded up to 0.01).
* Speed is reported only as a ratio measured in the same run: the batched second stage
  against a pair-by-pair loop over the same comparisons.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from sanad.abis.decision import Outcome, Thresholds, decide_fused, judge_pair
from sanad.abis.finger_stage import (
    FingerDescriptorSpace,
    PreparedFingers,
    merge_candidates,
    second_stage,
)
from sanad.abis.fusion import (
    DEFAULT_CALIBRATION,
    FACE_BOUND,
    FINGER_BOUND,
    FusionCalibration,
    ScoreCalibration,
    fuse,
)
from sanad.abis.index import INDEX_KINDS, make_index
from sanad.bench import BenchmarkParamError, BenchResult
from sanad.biometrics.finger.matcher import match, match_many, prepare
from sanad.biometrics.finger.synthetic import SyntheticFingers
from sanad.biometrics.finger.template import FingerPosition, MinutiaeArray
from sanad.biometrics.synthetic import SyntheticPopulation
from sanad.config import Settings

F64 = npt.NDArray[np.float64]
FPIR_POINTS = (0.001, 0.01)
PRODUCTION_GALLERY = 1_450_000
_NOTHING = -math.inf  # score of a search that returned nothing (or not the mate)


def _face_population(seed: int, generator: str, noise: float) -> tuple[Any, str]:
    """The face generator: the calibrated one when present, else the isotropic one.

    ``noise`` > 0 overrides the isotropic generator's capture noise (harder faces, to see the
    fingerprints' contribution when faces alone are not enough).
    """
    if generator in ("auto", "calibrated"):
        module = importlib.import_module("sanad.biometrics.synthetic")
        calibrated = getattr(module, "CalibratedPopulation", None)
        if calibrated is not None:
            return calibrated(seed), "calibrated (sanad.biometrics.synthetic.CalibratedPopulation)"
        if generator == "calibrated":
            raise BenchmarkParamError("no calibrated face generator in sanad.biometrics.synthetic")
    elif generator != "isotropic":
        raise BenchmarkParamError("face_generator must be auto, calibrated or isotropic")
    pop = SyntheticPopulation(seed, capture_noise=noise) if noise > 0 else SyntheticPopulation(seed)
    return pop, f"isotropic SyntheticPopulation (dim {pop.dim}, capture_noise {pop.capture_noise})"


def threshold_at(nonmated_max: F64, fpir: float) -> float:
    """Lowest threshold T with share(nonmated_max ≥ T) ≤ ``fpir``."""
    s = np.sort(nonmated_max[np.isfinite(nonmated_max)])[::-1]
    allowed = math.floor(fpir * nonmated_max.size + 1e-9)
    if allowed >= s.size:
        return -math.inf
    return float(np.nextafter(s[allowed], math.inf))


def fnir_at(mate_scores: F64, nonmated_max: F64, fpir: float) -> tuple[float, float]:
    """``(FNIR, threshold)`` at the threshold giving FPIR ≤ ``fpir``."""
    t = threshold_at(nonmated_max, fpir)
    return float(np.mean(~(mate_scores >= t))), t


def det_points(mate_scores: F64, nonmated_max: F64) -> tuple[F64, F64]:
    """(FPIR, FNIR) over every distinct non-mated score used as threshold."""
    finite = np.unique(nonmated_max[np.isfinite(nonmated_max)])
    thresholds = np.concatenate([finite, [np.inf]])
    fpir = np.array([np.mean(nonmated_max >= t) for t in thresholds])
    fnir = np.array([np.mean(~(mate_scores >= t)) for t in thresholds])
    return fpir, fnir


def _save_det(curves: dict[str, tuple[F64, F64]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    # Fixed margins: tight_layout costs more than the whole plot at test sizes.
    fig.subplots_adjust(left=0.14, right=0.97, top=0.92, bottom=0.11)
    for label, (fpir, fnir) in curves.items():
        keep = fpir > 0
        ax.step(fpir[keep], np.maximum(fnir[keep], 1e-4), where="post", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FPIR (non-mated searches returning a candidate)")
    ax.set_ylabel("FNIR (mated searches missing the mate; floor 1e-4)")
    for x in FPIR_POINTS:
        ax.axvline(x, color="grey", linewidth=0.5, linestyle=":")
    ax.grid(True, linewidth=0.3)
    ax.legend(loc="lower left")  # a fixed spot: "best" searches the data and is slow
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class _People:
    faces: npt.NDArray[np.float32]
    raw: list[dict[FingerPosition, MinutiaeArray]]
    prepared: Sequence[PreparedFingers]


def _people(
    ids: npt.NDArray[np.int64],
    face_pop: Any,
    fingers: SyntheticFingers,
    positions: tuple[FingerPosition, ...],
    rng: np.random.Generator,
    missing_finger_rate: float,
    no_finger_rate: float,
) -> _People:
    faces = face_pop.captures(ids, rng)
    raw: list[dict[FingerPosition, MinutiaeArray]] = []
    for identity in ids.tolist():
        person: dict[FingerPosition, MinutiaeArray] = {}
        if rng.random() >= no_finger_rate:
            for pos in positions:
                if rng.random() >= missing_finger_rate:
                    person[pos] = fingers.capture(identity, int(pos), rng)
        raw.append(person)
    prepared = [{pos: prepare(m) for pos, m in person.items()} for person in raw]
    return _People(faces, raw, prepared)


def _split(
    face_pop: Any, n: int, non_mated: int, sibling_rate: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """Gallery identities, non-mated identities, and how many of the latter are siblings.

    With a generator that has households (``households(ids)``, consecutive identities), the
    second member of each household is held back from the gallery; up to ``sibling_rate`` of
    the non-mated searches are such held-back siblings whose household has a gallery member,
    the rest are fresh identities from beyond the pool (unrelated to everyone enrolled).
    """
    households = getattr(face_pop, "households", None)
    wanted = round(sibling_rate * non_mated)
    if households is None or wanted == 0:
        return np.arange(n, dtype=np.int64), np.arange(n, n + non_mated, dtype=np.int64), 0
    pool = np.arange(2 * n + 2 * wanted + 16, dtype=np.int64)
    hh = np.asarray(households(pool), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, hh[1:] != hh[:-1]])
    rank = pool - np.repeat(starts, np.diff(np.r_[starts, pool.size]))
    gallery = pool[rank != 1][:n]
    enrolled_households = set(hh[gallery].tolist())
    held = pool[(rank == 1) & np.isin(hh, list(enrolled_households)) & (pool < gallery[-1])]
    siblings = held[:wanted]
    fresh = np.arange(pool.size, pool.size + non_mated - siblings.size, dtype=np.int64)
    return gallery, np.concatenate([siblings, fresh]), int(siblings.size)


def _ann_loss_large(
    face_pop: Any, *, size: int, mated: int, non_mated: int, sibling_rate: float, seed: int,
    index_kind: str, k: int, main_threshold: float,
    index_options: dict[str, Any] | None = None,
) -> dict[str, float]:
    """``ann_loss_rate`` face-only on a gallery of ``size`` (see the module docstring)."""
    gallery_ids, non_mated_ids, _ = _split(face_pop, size, non_mated, sibling_rate)
    rng = np.random.default_rng((seed, 13))
    faces = face_pop.captures(gallery_ids, rng)
    mates = rng.choice(size, size=mated, replace=False).astype(np.int64)
    probes = np.concatenate(
        [face_pop.captures(gallery_ids[mates], rng), face_pop.captures(non_mated_ids, rng)]
    ).astype(np.float32)
    # FAISS's blocked BLAS search: exact, and far lighter than a (probes x gallery) matrix.
    exact_s, exact_i = faiss.knn(probes, faces, k, metric=faiss.METRIC_INNER_PRODUCT)
    index = make_index(index_kind, faces.shape[1], **(index_options or {}))
    index.add(np.arange(size, dtype=np.int64), faces)
    del faces
    _, ann_ids = index.search(probes, k)
    found = (exact_i[:, :, None] == ann_ids[:, None, :]).any(axis=2)
    own_threshold = threshold_at(exact_s[mated:, 0].astype(np.float64), 0.01)
    figures = {"ann_gallery": float(size), "ann_review_threshold_large": own_threshold}
    for suffix, threshold in (("", own_threshold), ("_at_main_threshold", main_threshold)):
        counted = exact_s >= threshold
        lost = counted & ~found
        # A lost pair within 0.002 of the exact k-th score swapped places at the top-k edge
        # with an entry just below it (int8 re-rank rounding), not missed by the scan.
        at_edge = lost & (exact_s - exact_s[:, -1:] < 0.002)
        figures[f"ann_loss_rate_large{suffix}"] = float(lost.sum() / max(1, counted.sum()))
        figures[f"ann_exact_matches_large{suffix}"] = float(counted.sum())
        figures[f"ann_lost_at_rank_edge_large{suffix}"] = float(at_edge.sum())
    first = exact_i[:mated, 0] == mates
    mate_found = (ann_ids[:mated] == mates[:, None]).any(axis=1)
    figures["ann_mate_recall_large"] = float(mate_found[first].mean()) if first.any() else 1.0
    return figures


# --- large-gallery mode: the enrolment path at production size -------------------------------


def shipped_thresholds() -> Thresholds:
    """The decision thresholds a default install uses (`sanad.config.Settings` defaults)."""
    fields = Settings.model_fields
    return Thresholds(
        face_match=float(fields["dedup_match_threshold"].default),
        face_review=float(fields["dedup_review_threshold"].default),
        fused_match=float(fields["dedup_fused_match_threshold"].default),
        fused_review=float(fields["dedup_fused_review_threshold"].default),
    )


def ceil_2dp(x: float) -> float:
    """``x`` rounded *up* to two decimals (a threshold never rounds towards more false hits)."""
    return math.ceil(x * 100 - 1e-9) / 100


class _LazyFingers:
    """Fingers of the people a large run touches, generated on first use.

    Every person's recorded exceptions (no finger at all, a missing finger) and captures come
    from generators keyed by ``(seed, stream, identity)``: the same person gets the same
    enrolment record whichever probes happen to need it, and the 1.45 M people nobody looks
    at cost nothing. ``stream`` separates the enrolment capture from the probe's fresh one.
    Prepared fingers (~40 kB each) are kept for the ``keep`` most recently used people only;
    an evicted person is regenerated identically.
    """

    def __init__(
        self, fingers: SyntheticFingers, positions: tuple[FingerPosition, ...], seed: int,
        stream: int, missing_finger_rate: float, no_finger_rate: float, *, keep: int = 20_000,
    ) -> None:
        self._fingers = fingers
        self._positions = positions
        self._seed = seed
        self._stream = stream
        self._rates = (missing_finger_rate, no_finger_rate)
        self._keep = keep
        self._present: dict[int, tuple[FingerPosition, ...]] = {}
        self._prepared: OrderedDict[int, PreparedFingers] = OrderedDict()
        self.people: set[int] = set()  # everyone whose fingers were generated

    def positions(self, identity: int) -> tuple[FingerPosition, ...]:
        """The finger positions this person has on record (the exceptions drawn)."""
        got = self._present.get(identity)
        if got is None:
            missing, none = self._rates
            rng = np.random.default_rng((self._seed, self._stream, identity, 0))
            got = ()
            if rng.random() >= none:
                got = tuple(p for p in self._positions if rng.random() >= missing)
            self._present[identity] = got
        return got

    def prepared(self, identity: int) -> PreparedFingers:
        """The person's captures, prepared for the matcher."""
        got = self._prepared.get(identity)
        if got is not None:
            self._prepared.move_to_end(identity)
            return got
        rng = np.random.default_rng((self._seed, self._stream, identity, 1))
        got = {
            pos: prepare(self._fingers.capture(identity, int(pos), rng))
            for pos in self.positions(identity)
        }
        self._prepared[identity] = got
        self.people.add(identity)
        if len(self._prepared) > self._keep:
            self._prepared.popitem(last=False)
        return got

    def __len__(self) -> int:
        """How many different people's fingers were generated."""
        return len(self.people)


def _reachable(face: float, shared: int, t: Thresholds) -> bool:
    """Enrolment's gate (`sanad.registry.enrolment._reachable`): a pair goes through the
    matcher only if its face evidence plus ``shared`` maximal fingers could reach the fused
    review threshold; the others are judged on the face alone."""
    return shared > 0 and (
        DEFAULT_CALIBRATION.face.llr(face) + FINGER_BOUND * shared >= t.fused_review
    )


@dataclass
class _LargeRun:
    figures: dict[str, float]
    notes: dict[str, str]
    curves: dict[str, tuple[F64, F64]]


def _enrolment_large(
    face_pop: Any, finger_gen: SyntheticFingers, *, size: int, mated: int, non_mated: int,
    sibling_rate: float, seed: int, index_kind: str, k: int,
    index_options: dict[str, Any] | None = None,
    positions: tuple[FingerPosition, ...], missing_finger_rate: float, no_finger_rate: float,
) -> _LargeRun:
    """Face + finger 1:N accuracy on a gallery of ``size``, along enrolment's path.

    Gallery: ``size`` calibrated faces (siblings held back as in `_split`) in the ``index_kind``
    index. Each search: the index's top ``k`` (enrolment's ``dedup_candidates``), then the
    minutiae second stage on the candidates enrolment would match (`_reachable`), fused with
    the shipped `DEFAULT_CALIBRATION` and judged by `decide_fused` with the shipped thresholds.
    Fingers are generated only for probes and the candidates they return. There is no
    fingerprint pre-filter on this path: candidates come from the face only.
    """
    t = shipped_thresholds()
    cpu0, wall0, load0 = time.process_time(), time.perf_counter(), os.getloadavg()
    gallery_ids, non_mated_ids, n_siblings = _split(face_pop, size, non_mated, sibling_rate)
    rng = np.random.default_rng((seed, 19))
    faces = face_pop.captures(gallery_ids, rng)
    mates = np.sort(rng.choice(size, size=mated, replace=False)).astype(np.int64)
    probe_ids = np.concatenate([gallery_ids[mates], non_mated_ids])
    probe_faces = np.ascontiguousarray(face_pop.captures(probe_ids, rng), dtype=np.float32)
    index = make_index(index_kind, faces.shape[1], **(index_options or {}))
    index.add(np.arange(size, dtype=np.int64), faces)
    del faces
    build_s = time.perf_counter() - wall0
    t0 = time.perf_counter()
    scores, ids = index.search(probe_faces, k)
    search_s = time.perf_counter() - t0
    del index

    enrolled = _LazyFingers(finger_gen, positions, seed, 23, missing_finger_rate, no_finger_rate)
    fresh = _LazyFingers(finger_gen, positions, seed, 29, missing_finger_rate, no_finger_rate)
    m = probe_ids.size
    face_mate = np.full(mated, _NOTHING)
    fused_mate = np.full(mated, _NOTHING)
    face_max = np.full(non_mated, _NOTHING)
    fused_max = np.full(non_mated, _NOTHING)
    mate_outcome: list[Outcome] = []
    mate_rule: list[str | None] = []
    nonmated_outcome: list[Outcome] = []
    nonmated_by_face_rule = 0  # non-mated searches flagged by a pair without fingers
    comparisons = 0
    t0 = time.perf_counter()
    for r in range(m):
        identity = int(probe_ids[r])
        mine = fresh.positions(identity)
        pairs = [
            (int(g), float(s)) for g, s in zip(ids[r].tolist(), scores[r].tolist(), strict=True)
            if g >= 0
        ]
        lookups: dict[int, PreparedFingers] = {}
        for g, face in pairs:
            theirs = enrolled.positions(int(gallery_ids[g]))
            if _reachable(face, len(set(mine) & set(theirs)), t):
                lookups[g] = enrolled.prepared(int(gallery_ids[g]))
        compared = {}
        if lookups:
            compared = {
                res.gallery_id: res.comparison
                for res in second_stage(list(lookups), fresh.prepared(identity), lookups.get)
            }
            comparisons += sum(c.compared for c in compared.values())
        fused = [(g, face, fuse(face, compared.get(g), DEFAULT_CALIBRATION)) for g, face in pairs]
        decision = decide_fused(fused, t, limit=k)
        if r < mated:
            mate = int(mates[r])
            hit = [(face, f) for g, face, f in fused if g == mate]
            if hit:
                face_mate[r], fused_mate[r] = hit[0][0], hit[0][1].llr
                outcome, rule = judge_pair(hit[0][0], hit[0][1], t)
                mate_outcome.append(outcome)
                mate_rule.append(rule)
            else:
                mate_outcome.append(Outcome.NO_MATCH)
                mate_rule.append(None)
        else:
            j = r - mated
            face_max[j] = max((face for _, face, _ in fused), default=_NOTHING)
            fused_max[j] = max((f.llr for _, _, f in fused), default=_NOTHING)
            nonmated_outcome.append(decision.outcome)
            nonmated_by_face_rule += any(c.rule == "face" for c in decision.candidates)
    stage_s = time.perf_counter() - t0

    figures: dict[str, float] = {"large_gallery": float(size)}
    thresholds: dict[str, float] = {}
    curves: dict[str, tuple[F64, F64]] = {}
    for name, mate_s, nm in (("face", face_mate, face_max), ("fused", fused_mate, fused_max)):
        for fpir in FPIR_POINTS:
            fnir, thr = fnir_at(mate_s, nm, fpir)
            key = f"{fpir:g}".replace(".", "_")
            figures[f"fnir_at_fpir_{key}_{name}_large"] = fnir
            thresholds[f"{name}_threshold_at_fpir_{key}_large"] = thr
        curves[f"{name} (n={size:,})"] = det_points(mate_s, nm)
    figures.update({key: v for key, v in thresholds.items() if math.isfinite(v)})
    figures["mate_in_candidates_large"] = float(np.mean(np.isfinite(face_mate)))

    # What the product as configured decides: pairs with a finger compared by the fused
    # thresholds, the others by the face thresholds (`judge_pair`).
    severity = {Outcome.NO_MATCH: 0, Outcome.ADJUDICATE: 1, Outcome.DUPLICATE: 2}
    mate_sev = np.array([severity[o] for o in mate_outcome])
    nm_sev = np.array([severity[o] for o in nonmated_outcome])
    figures["fnir_shipped_duplicate_large"] = float(np.mean(mate_sev < 2))
    figures["fnir_shipped_review_large"] = float(np.mean(mate_sev < 1))
    figures["fpir_shipped_duplicate_large"] = float(np.mean(nm_sev >= 2))
    figures["fpir_shipped_review_large"] = float(np.mean(nm_sev >= 1))
    figures["mate_pairs_face_rule_large"] = float(sum(r == "face" for r in mate_rule))
    figures["fpir_shipped_review_by_face_rule_large"] = nonmated_by_face_rule / non_mated
    # Face-only pairs at the shipped face thresholds (a population without fingers).
    for label, value in (("duplicate", t.face_match), ("review", t.face_review)):
        thr = float(np.float32(value))
        figures[f"fnir_face_shipped_{label}_large"] = float(np.mean(~(face_mate >= thr)))
        figures[f"fpir_face_shipped_{label}_large"] = float(np.mean(face_max >= thr))
    # Recommended face-only thresholds at this gallery size: the face thresholds at FPIR
    # 0.1 % (duplicate) and 1 % (review), rounded up to two decimals.
    recommended = {}
    for label, key in (("duplicate", "0_001"), ("review", "0_01")):
        thr = thresholds[f"face_threshold_at_fpir_{key}_large"]
        if math.isfinite(thr):
            rec = ceil_2dp(thr)
            recommended[label] = rec
            figures[f"recommended_face_{label}_threshold_large"] = rec
            figures[f"fnir_face_at_recommended_{label}_large"] = float(
                np.mean(~(face_mate >= rec))
            )
            figures[f"fpir_face_at_recommended_{label}_large"] = float(np.mean(face_max >= rec))
    cpu_s = time.process_time() - cpu0
    wall_s = time.perf_counter() - wall0
    load1 = os.getloadavg()
    figures["large_cpu_s"] = cpu_s
    figures["large_wall_s"] = wall_s
    figures["large_finger_comparisons"] = float(comparisons)

    def rec_text() -> str:
        if len(recommended) < 2:
            return "not enough non-mated searches to set them"
        return (f"duplicate >= {recommended['duplicate']:.2f}, review >= "
                f"{recommended['review']:.2f}")

    notes = {
        "large_gallery": (
            f"enrolment path at n={size:,}: {index_kind} index, top {k} face candidates "
            f"(dedup_candidates), minutiae second stage on the candidates enrolment matches "
            f"(face LLR + {FINGER_BOUND:g} per shared finger must reach the fused review "
            f"threshold), fused with the shipped DEFAULT_CALIBRATION, judged by decide_fused; "
            f"{mated} mated + {non_mated} non-mated searches ({n_siblings} siblings of a "
            f"gallery member); fingers {','.join(str(int(p)) for p in positions)} generated "
            f"only for the {m} probes and the {len(enrolled)} gallery people matched "
            f"({comparisons} finger comparisons), exceptions as the main run "
            f"(missing {missing_finger_rate:g} per finger, none {no_finger_rate:g} per person)"
        ),
        "large_no_prefilter": (
            "the fingerprint pre-filter is NOT on this path (enrolment today takes candidates "
            "from the face search only): a mate the face search does not return in its top "
            f"{k} is missed whatever the fingers say, so the fused figures are a conservative "
            "lower bound on what face + pre-filter candidates would give; no finger-only "
            "figure at this size"
        ),
        "large_shipped_thresholds": (
            f"face {t.face_match:g} / {t.face_review:g} (match / review, pairs without a "
            f"finger compared); fused LLR {t.fused_match:g} / {t.fused_review:g} (pairs with "
            "one); *_shipped_* = the product's decision, *_face_shipped_* = the face "
            "thresholds on face scores alone (a population without fingers)"
        ),
        "large_recommended_face_thresholds": (
            f"{rec_text()} (rule: face cosine threshold at FPIR 0.1 % for duplicate and 1 % "
            f"for review over this run's non-mated searches, rounded up to 0.01)"
        ),
        "large_cost": (
            f"{wall_s:.0f} s wall, {cpu_s:.0f} s CPU (this process, all threads); gallery "
            f"+ index {build_s:.0f} s, {m} searches {search_s:.1f} s, fingers + second stage "
            f"{stage_s:.0f} s; load average (1/5/15 min) {load0[0]:.2f}/{load0[1]:.2f}/"
            f"{load0[2]:.2f} at start, {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} at end"
        ),
    }
    return _LargeRun(figures, notes, curves)


def _top(scores: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.int64], F64]:
    kk = min(k, scores.shape[1])
    idx = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    return idx.astype(np.int64), np.take_along_axis(scores, idx, 1).astype(np.float64)


def run_accuracy(
    *,
    n: int = 5000,
    mated: int = 500,
    non_mated: int = 5000,
    seed: int = 0,
    fingers: str = "2,7",
    face_candidates: int = 10,
    finger_candidates: int = 10,
    missing_finger_rate: float = 0.02,
    no_finger_rate: float = 0.005,
    sibling_rate: float = 0.5,
    face_generator: str = "auto",
    face_noise: float = 0.0,
    index_kind: str = "auto",
    ann_gallery: int = 0,
    ann_mated: int = 0,
    ann_non_mated: int = 0,
    index_subvectors: int = 0,
    large_gallery: int = 0,
    large_mated: int = 1000,
    large_non_mated: int = 5000,
    fit_calibration: bool = True,
    plot_dir: str = "bench/results",
) -> BenchResult:
    """Accuracy of face, finger and fused 1:N search on ``n`` people; DET curve as PNG."""
    if n < 10 or not 1 <= mated <= n or non_mated < 10:
        raise BenchmarkParamError("need n >= 10, 1 <= mated <= n and non_mated >= 10")
    if face_candidates < 1 or finger_candidates < 1:
        raise BenchmarkParamError("candidate counts must be at least 1")
    ann_mated, ann_non_mated = ann_mated or mated, ann_non_mated or non_mated
    if ann_gallery < 0 or 0 < ann_gallery < ann_mated or ann_mated < 1 or ann_non_mated < 10:
        raise BenchmarkParamError(
            "ann_gallery must be 0 (off) or at least ann_mated (default: mated); "
            "ann_mated >= 1, ann_non_mated >= 10"
        )
    if index_subvectors < 0:
        raise BenchmarkParamError("index_subvectors must be 0 (the index's default) or more")
    if large_mated < 1 or large_non_mated < 10:
        raise BenchmarkParamError("need large_mated >= 1 and large_non_mated >= 10")
    if large_gallery < 0 or 0 < large_gallery < max(large_mated, face_candidates, 1000):
        raise BenchmarkParamError(
            "large_gallery must be 0 (off) or at least 1000, large_mated and face_candidates"
        )
    if not (0 <= missing_finger_rate < 1 and 0 <= no_finger_rate < 1 and 0 <= sibling_rate <= 1):
        raise BenchmarkParamError("missing rates must be in [0, 1)")
    try:
        positions = tuple(FingerPosition(int(p)) for p in fingers.split(",") if p.strip())
    except ValueError:
        raise BenchmarkParamError(f"fingers must be finger codes 1..10, got {fingers!r}") from None
    if not positions or FingerPosition.UNKNOWN in positions or len(set(positions)) < len(positions):
        raise BenchmarkParamError(f"fingers must be distinct finger codes 1..10, got {fingers!r}")
    if index_kind == "auto":
        index_kind = "twostage" if "twostage" in INDEX_KINDS else "faiss-flat"
    elif index_kind not in INDEX_KINDS:
        raise BenchmarkParamError(f"index_kind must be auto or one of {', '.join(INDEX_KINDS)}")
    # The twostage index's PQ sub-vectors (SANAD_INDEX_PQ_SUBVECTORS); other kinds take none.
    # Its stage 1 stays the PQ scan even for these large probe batches: that is what the
    # product's enrolment searches (a household at a time) use, and what can lose a match;
    # the matrix stage of large batches scores every pair (docs/abis.md §8).
    index_options: dict[str, Any] = {}
    if index_kind == "twostage":
        index_options["batch_stage"] = "pq"
        if index_subvectors:
            index_options["subvectors"] = index_subvectors

    face_pop, face_note = _face_population(seed, face_generator, face_noise)
    finger_gen = SyntheticFingers(seed)
    rng = np.random.default_rng((seed, 7))
    rates = (missing_finger_rate, no_finger_rate)
    start = time.perf_counter()
    gallery_ids, non_mated_ids, n_siblings = _split(face_pop, n, non_mated, sibling_rate)
    gallery = _people(gallery_ids, face_pop, finger_gen, positions, rng, *rates)
    # ``mates`` are gallery rows (= gallery ids in the indexes); identities differ.
    mates = np.sort(rng.choice(n, size=mated, replace=False)).astype(np.int64)
    probe_ids = np.concatenate([gallery_ids[mates], non_mated_ids])
    probes = _people(probe_ids, face_pop, finger_gen, positions, rng, *rates)
    setup_s = time.perf_counter() - start
    m = probe_ids.size

    # --- face: exact search (the reference) and the ANN index -----------------------------
    face_scores = probes.faces @ gallery.faces.T  # (m, n), small enough at bench sizes
    face_idx, face_top = _top(face_scores, face_candidates)
    ann = make_index(index_kind, gallery.faces.shape[1], **index_options)
    ann.add(np.arange(n, dtype=np.int64), gallery.faces)
    _, ann_ids = ann.search(probes.faces, face_candidates)

    # --- finger pre-filter ------------------------------------------------------------------
    space = FingerDescriptorSpace.fit(gallery.raw[: min(n, 2000)], positions)
    gal_desc = [space.person_descriptor(p) for p in gallery.raw]
    has_desc = np.array([d is not None for d in gal_desc])
    desc_ids = np.flatnonzero(has_desc)
    desc_matrix = np.stack([d for d in gal_desc if d is not None])
    finger_idx: list[npt.NDArray[np.int64]] = []
    for person in probes.raw:
        d = space.person_descriptor(person)
        if d is None or desc_ids.size == 0:
            finger_idx.append(np.empty(0, np.int64))
            continue
        s = desc_matrix @ d
        kk = min(finger_candidates, s.size)
        finger_idx.append(desc_ids[np.argpartition(-s, kk - 1)[:kk]])
    prefilter_hit = np.mean([mates[r] in finger_idx[r] for r in range(mated)])

    # --- second stage over the union --------------------------------------------------------
    def lookup(gid: int) -> PreparedFingers:
        return gallery.prepared[gid]

    start = time.perf_counter()
    stage = []
    comparisons = 0
    for r in range(m):
        cands = merge_candidates(face_idx[r].tolist(), finger_idx[r].tolist())
        results = second_stage(cands, probes.prepared[r], lookup)
        comparisons += sum(res.comparison.compared for res in results)
        stage.append(results)
    stage_s = time.perf_counter() - start

    # --- calibration: genuine pairs vs random impostor pairs -----------------------------------
    cal_rng = np.random.default_rng((seed, 11))
    genuine_face = face_scores[np.arange(mated), mates]
    imp_cols = cal_rng.integers(0, n, size=m)
    imp_face = face_scores[np.arange(m), imp_cols]
    imp_face = imp_face[probe_ids != gallery_ids[imp_cols]]
    genuine_finger = [
        s for r in range(mated) for res in stage[r] if res.gallery_id == mates[r]
        for s in res.comparison.scores.values()
    ]
    imp_finger: list[float] = []
    for r in cal_rng.choice(m, size=min(m, 400), replace=False).tolist():
        for pos, pf in probes.prepared[r].items():
            others = [
                int(g) for g in cal_rng.integers(0, n, size=5) if gallery_ids[g] != probe_ids[r]
            ]
            impostors = [gallery.prepared[g][pos] for g in others if pos in gallery.prepared[g]]
            if impostors:
                imp_finger.extend(match_many(pf, impostors).tolist())
    if fit_calibration and len(genuine_finger) >= 2:
        calibration = FusionCalibration(
            face=ScoreCalibration.fit(genuine_face, imp_face, bound=FACE_BOUND),
            finger=ScoreCalibration.fit(genuine_finger, imp_finger, bound=FINGER_BOUND),
        )
    else:
        calibration = DEFAULT_CALIBRATION

    # --- per-search scores for the three pipelines ------------------------------------------
    face_mate = np.full(mated, _NOTHING)
    finger_mate = np.full(mated, _NOTHING)
    fused_mate = np.full(mated, _NOTHING)
    face_max = np.full(non_mated, _NOTHING)
    finger_max = np.full(non_mated, _NOTHING)
    fused_max = np.full(non_mated, _NOTHING)
    for r in range(m):
        face_of = dict(zip(face_idx[r].tolist(), face_top[r].tolist(), strict=True))
        finger_set = set(finger_idx[r].tolist())
        face_s: dict[int, float] = {}
        finger_s: dict[int, float] = {}
        fused_s: dict[int, float] = {}
        for res in stage[r]:
            gid = res.gallery_id
            f_llr = (
                float(calibration.finger.llr_array(list(res.comparison.scores.values())).sum())
                if res.comparison.compared
                else None
            )
            face_value = float(face_scores[r, gid])
            if gid in face_of:
                face_s[gid] = face_of[gid]
            if gid in finger_set and f_llr is not None:
                finger_s[gid] = f_llr
            fused_s[gid] = calibration.face.llr(face_value) + (f_llr or 0.0)
        if r < mated:
            mate = int(mates[r])
            face_mate[r] = face_s.get(mate, _NOTHING)
            finger_mate[r] = finger_s.get(mate, _NOTHING)
            fused_mate[r] = fused_s.get(mate, _NOTHING)
        else:
            j = r - mated
            face_max[j] = max(face_s.values(), default=_NOTHING)
            finger_max[j] = max(finger_s.values(), default=_NOTHING)
            fused_max[j] = max(fused_s.values(), default=_NOTHING)

    figures: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    curves = {}
    for name, mate_s, nm in (
        ("face", face_mate, face_max),
        ("finger", finger_mate, finger_max),
        ("fused", fused_mate, fused_max),
    ):
        for fpir in FPIR_POINTS:
            fnir, t = fnir_at(mate_s, nm, fpir)
            key = f"{fpir:g}".replace(".", "_")
            figures[f"fnir_at_fpir_{key}_{name}"] = fnir
            thresholds[f"{name}_threshold_at_fpir_{key}"] = t
        curves[name] = det_points(mate_s, nm)

    # --- ANN loss against exact search -------------------------------------------------------
    review_t = thresholds["face_threshold_at_fpir_0_01"]
    exact_pairs = {
        (r, int(g)) for r in range(m) for g, s in zip(face_idx[r], face_top[r], strict=True)
        if s >= review_t
    }
    ann_pairs = {(r, int(g)) for r in range(m) for g in ann_ids[r] if g >= 0}
    lost = len(exact_pairs - ann_pairs)
    figures["ann_loss_rate"] = lost / len(exact_pairs) if exact_pairs else 0.0
    figures["ann_exact_matches"] = float(len(exact_pairs))
    if ann_gallery:
        figures.update(
            _ann_loss_large(
                face_pop, size=ann_gallery, mated=ann_mated, non_mated=ann_non_mated,
                sibling_rate=sibling_rate, seed=seed, index_kind=index_kind,
                k=face_candidates, main_threshold=review_t, index_options=index_options,
            )
        )
    large: _LargeRun | None = None
    if large_gallery:
        large = _enrolment_large(
            face_pop, finger_gen, size=large_gallery, mated=large_mated,
            non_mated=large_non_mated, sibling_rate=sibling_rate, seed=seed,
            index_kind=index_kind, k=face_candidates, index_options=index_options,
            positions=positions,
            missing_finger_rate=missing_finger_rate, no_finger_rate=no_finger_rate,
        )
        figures.update(large.figures)
    figures["prefilter_mate_hit_rate"] = float(prefilter_hit)
    figures["prefilter_penetration"] = finger_candidates / n

    # --- speed as a ratio: batched second stage vs one pair at a time -----------------------
    sample = list(range(0, m, max(1, m // 20)))[:20]
    pairs = [
        (probes.prepared[r][pos], gallery.prepared[res.gallery_id][pos])
        for r in sample for res in stage[r] for pos in res.comparison.scores
    ]
    if pairs:
        t0 = time.perf_counter()
        for r in sample:
            cands = merge_candidates(face_idx[r].tolist(), finger_idx[r].tolist())
            second_stage(cands, probes.prepared[r], lookup)
        batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p, g in pairs:
            match(p, g)
        pairwise = time.perf_counter() - t0
        figures["second_stage_speedup_vs_pairwise"] = pairwise / batched
        figures["finger_comparisons_per_s"] = len(pairs) / batched

    for key in ("fused_threshold_at_fpir_0_001", "fused_threshold_at_fpir_0_01",
                "face_threshold_at_fpir_0_001", "face_threshold_at_fpir_0_01"):
        if math.isfinite(thresholds[key]):
            figures[key] = thresholds[key]

    # Recommended fused thresholds: the empirical one, but never below ln(gallery / FPIR) —
    # for a calibrated likelihood ratio P_impostor(LR >= t) <= 1/t, so this keeps the expected
    # false candidates per search under FPIR even where the data separate perfectly (and the
    # empirical threshold sits anywhere in an empty gap). It grows with the gallery.
    recommended = {}
    for label, fpir in (("duplicate", 0.001), ("adjudicate", 0.01)):
        key = f"{fpir:g}".replace(".", "_")
        for size_label, size in (("", n), ("_at_1_45m", PRODUCTION_GALLERY)):
            empirical = thresholds[f"fused_threshold_at_fpir_{key}"] + math.log(size / n)
            value = max(empirical, math.log(size / fpir))
            recommended[f"recommended_{label}_llr{size_label}"] = value
        figures[f"recommended_{label}_llr"] = recommended[f"recommended_{label}_llr"]
        figures[f"recommended_{label}_llr_at_1_45m"] = recommended[
            f"recommended_{label}_llr_at_1_45m"
        ]
        figures[f"fnir_fused_at_recommended_{label}"] = float(
            np.mean(~(fused_mate >= recommended[f"recommended_{label}_llr"]))
        )
        figures[f"fpir_fused_at_recommended_{label}"] = float(
            np.mean(fused_max >= recommended[f"recommended_{label}_llr"])
        )

    plot = Path(plot_dir) / f"accuracy-det-n{n}-seed{seed}.png"
    _save_det(curves, plot, f"sanad 1:N, n={n}, {len(positions)} finger(s)")
    large_plot = Path(plot_dir) / f"accuracy-det-large{large_gallery}-seed{seed}.png"
    if large is not None:
        _save_det(large.curves, large_plot,
                  f"sanad enrolment path, n={large_gallery:,}, face candidates only")

    notes = {
        "face_generator": face_note,
        "siblings": (
            f"{n_siblings} of {non_mated} non-mated searches are siblings of a gallery member "
            "(hard impostors: correlated faces, independent fingers)"
            if n_siblings
            else "none: the face generator used has no households (or sibling_rate=0)"
        ),
        "finger_generator": "sanad.biometrics.finger.synthetic.SyntheticFingers (default capture "
        f"settings), fingers {','.join(str(int(p)) for p in positions)}",
        "ann_index": f"{index_kind}"
        + (" with its PQ stage 1 for every batch" if index_kind == "twostage" else "")
        + " (ann_loss_rate is against exact numpy search"
        + (f"; ann_*_large: face only, gallery {ann_gallery}, exact by FAISS knn)"
           if ann_gallery else ")"),
        "calibration": (
            f"face slope={calibration.face.slope:.3g} centre={calibration.face.centre:.3g}; "
            f"finger slope={calibration.finger.slope:.3g} centre={calibration.finger.centre:.3g}"
            + (" (fitted in this run)" if fit_calibration else " (defaults)")
        ),
        "recommended_thresholds": (
            "fused LLR: duplicate >= "
            f"{recommended['recommended_duplicate_llr']:.3g}, adjudicate >= "
            f"{recommended['recommended_adjudicate_llr']:.3g} on this gallery; at 1.45 M: "
            f"{recommended['recommended_duplicate_llr_at_1_45m']:.3g} / "
            f"{recommended['recommended_adjudicate_llr_at_1_45m']:.3g} "
            "(max of the empirical threshold shifted by ln(size ratio) and ln(size / FPIR); "
            "docs/fusion.md); face cosine alone at FPIR 0.1 % / 1 % on this gallery: "
            f"{thresholds['face_threshold_at_fpir_0_001']:.3g} / "
            f"{thresholds['face_threshold_at_fpir_0_01']:.3g}"
        ),
        "det_curve": str(plot) + (f"; large gallery: {large_plot}" if large else ""),
        **(large.notes if large is not None else {}),
        "method": f"{mated} mated + {non_mated} non-mated searches against {n}; face top "
        f"{face_candidates}, finger pre-filter top {finger_candidates}; "
        f"{comparisons} finger comparisons in {stage_s:.1f} s; setup {setup_s:.1f} s",
    }
    return BenchResult(
        name="accuracy",
        params={
            "n": n, "mated": mated, "non_mated": non_mated, "seed": seed, "fingers": fingers,
            "face_candidates": face_candidates, "finger_candidates": finger_candidates,
            "missing_finger_rate": missing_finger_rate, "no_finger_rate": no_finger_rate,
            "sibling_rate": sibling_rate,
            "face_generator": face_generator, "face_noise": face_noise, "index_kind": index_kind,
            "ann_gallery": ann_gallery, "ann_mated": ann_mated,
            "ann_non_mated": ann_non_mated, "index_subvectors": index_subvectors,
            "large_gallery": large_gallery,
            "large_mated": large_mated, "large_non_mated": large_non_mated,
            "fit_calibration": fit_calibration, "plot_dir": plot_dir,
        },
        figures=figures,
        notes=notes,
    )

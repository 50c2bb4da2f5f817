"""Mate hit rate of the fingerprint pre-filter on synthetic fingers (docs/fusion.md).

    .venv/bin/python scripts/finger_prefilter_hitrate.py --people 3000

Each of ``--people`` synthetic people (`SyntheticFingers`) is enrolled with one capture of every
finger and searched with a fresh capture; a hit is the mate among the top ``k`` of the
pre-filter. Variants: the finger positions used, the projection (none / principal axes fitted
on the gallery / the synthetic bootstrap space) and the index backend storing the
descriptors.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt

from sanad.abis.finger_stage import (
    PREFILTER_DIM,
    PREFILTER_POSITIONS,
    FingerDescriptorSpace,
    bootstrap_space,
    finger_descriptor,
)
from sanad.abis.index import make_index
from sanad.biometrics.finger.synthetic import SyntheticFingers
from sanad.biometrics.finger.template import FingerPosition
from sanad.registry.finger_gallery import finger_index_options

F32 = npt.NDArray[np.float32]
TOPS = (1, 10, 30)


def _vectors(space: FingerDescriptorSpace, raw: list[dict[FingerPosition, F32]]) -> F32:
    rows = []
    for person in raw:
        desc = {r: person[p] for r, p in enumerate(space.positions) if p in person}
        v = space._concatenated(desc)
        assert v is not None
        if space.projection is not None:
            v = v @ space.projection
            v = v / np.linalg.norm(v)
        rows.append(v.astype(np.float32))
    return np.stack(rows)


def _hits(gallery: F32, probes: F32, kind: str) -> dict[int, float]:
    index = make_index(kind, gallery.shape[1], **finger_index_options(kind, 256))
    index.add(np.arange(len(gallery), dtype=np.int64), gallery)
    _, ids = index.search(probes, max(TOPS))
    truth = np.arange(len(probes))[:, None]
    return {k: float(np.mean((ids[:, :k] == truth).any(axis=1))) for k in TOPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    gen = SyntheticFingers(args.seed)
    rng = np.random.default_rng(args.seed)
    positions = PREFILTER_POSITIONS
    gal_minutiae = [{p: gen.capture(i, int(p), rng) for p in positions}
                    for i in range(args.people)]
    gal = [{p: finger_descriptor(m) for p, m in person.items()} for person in gal_minutiae]
    prb = [{p: finger_descriptor(gen.capture(i, int(p), rng)) for p in positions}
           for i in range(args.people)]
    print(f"# {args.people} people, seed {args.seed}, captures + descriptors "
          f"{time.perf_counter() - start:.0f} s")
    index2 = (FingerPosition.RIGHT_INDEX, FingerPosition.LEFT_INDEX)

    def centred(pos: tuple[FingerPosition, ...]) -> FingerDescriptorSpace:
        centre = np.concatenate([np.mean([g[p] for g in gal], axis=0) for p in pos])
        return FingerDescriptorSpace(pos, centre.astype(np.float32))

    two, four = centred(index2), centred(positions)
    variants: list[tuple[str, FingerDescriptorSpace, str]] = [
        ("2 index fingers, 2,304-d", two, "exact"),
        ("thumbs + index, 4,608-d", four, "exact"),
    ]
    # What the registry does: `FingerDescriptorSpace.fit` on (up to 4,096 of) the gallery.
    minutiae = gal_minutiae[:4096]
    fitted = {}
    for dim in (256, PREFILTER_DIM, 128, 64):
        fitted[dim] = FingerDescriptorSpace.fit(minutiae, positions, dim=dim)
        variants.append((f"thumbs + index, whitened PCA {dim} (gallery-fitted)",
                         fitted[dim], "exact"))
    variants.append((f"thumbs + index, whitened PCA {PREFILTER_DIM}, twostage (int8 + 4-bit PQ)",
                     fitted[PREFILTER_DIM], "twostage"))
    boot = bootstrap_space()
    variants.append(("thumbs + index, bootstrap space (synthetic, other seed)", boot, "exact"))
    variants.append(("thumbs + index, bootstrap space, twostage", boot, "twostage"))
    print("| variant | dim | backend | " + " | ".join(f"top {k}" for k in TOPS) + " |")
    print("|---|---|---|" + "---|" * len(TOPS))
    for name, space, kind in variants:
        hits = _hits(_vectors(space, gal), _vectors(space, prb), kind)
        print(f"| {name} | {space.dim} | {kind} | "
              + " | ".join(f"{hits[k]:.3f}" for k in TOPS) + " |")
    print(f"# total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

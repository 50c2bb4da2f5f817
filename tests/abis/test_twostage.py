"""What only the twostage backend has: the Hamming stage really filters and keeps the mate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sanad.abis.index import ExactIndex, load_index, make_index
from sanad.abis.twostage import TwoStageIndex, sign_codes
from sanad.biometrics.synthetic import FACE_DIM, CalibratedPopulation, isotropic_captures

N = 6000


def populations() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    mates = np.arange(0, N, 20)
    cal = CalibratedPopulation(3)
    return {
        "isotropic": (
            isotropic_captures(3, np.arange(N), rng), isotropic_captures(3, mates, rng)
        ),
        "calibrated": (cal.captures(np.arange(N), rng), cal.captures(mates, rng)),
    }


@pytest.fixture(scope="module", params=["isotropic", "calibrated"])
def data(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gallery, probes = populations()[str(request.param)]
    return gallery, probes, np.arange(0, N, 20)


def test_a_short_shortlist_still_ranks_the_mate_first(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    gallery, probes, mates = data
    index = TwoStageIndex(FACE_DIM, shortlist=50)  # 50 of 6000: the scan filters 99 %
    index.add(np.arange(N), gallery)
    scores, ids = index.search(probes, 10)
    exact = ExactIndex(FACE_DIM)
    exact.add(np.arange(N), gallery)
    exact_scores, exact_ids = exact.search(probes, 10)
    assert np.array_equal(exact_ids[:, 0], mates)
    assert np.mean(ids[:, 0] == mates) >= 0.99
    hit = ids[:, 0] == mates
    assert np.allclose(scores[hit, 0], exact_scores[hit, 0], atol=0.005)


def test_centring_matters_on_non_centred_templates() -> None:
    gallery, _ = populations()["calibrated"]
    index = TwoStageIndex(FACE_DIM)
    index.add(np.arange(N), gallery)
    centre = index._centre
    assert np.allclose(centre, gallery.mean(axis=0), atol=1e-3)
    # Raw sign bits of SFace-like templates are biased; centred ones are balanced.
    raw = np.unpackbits(sign_codes(gallery, np.zeros(FACE_DIM, np.float32)), axis=1)
    centred = np.unpackbits(sign_codes(gallery, centre), axis=1)
    assert np.abs(raw.mean(axis=0) - 0.5).max() > 0.3
    assert np.abs(centred.mean(axis=0) - 0.5).max() < 0.05


def test_incremental_adds_equal_a_bulk_build(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    gallery, probes, _ = data
    bulk = TwoStageIndex(FACE_DIM, shortlist=64)
    bulk.add(np.arange(N), gallery)
    one_by_one = TwoStageIndex(FACE_DIM, shortlist=64)
    for lo in range(0, N, 700):  # uneven batches: the centre is re-estimated as it grows
        one_by_one.add(np.arange(lo, min(lo + 700, N)), gallery[lo : lo + 700])
    assert len(one_by_one) == N
    a, b = bulk.search(probes, 5), one_by_one.search(probes, 5)
    assert np.mean(a[1][:, 0] == b[1][:, 0]) >= 0.99


def test_removed_entries_are_never_returned_by_the_hamming_stage(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    gallery, probes, mates = data
    index = TwoStageIndex(FACE_DIM, shortlist=64)
    index.add(np.arange(N), gallery)
    gone = mates[::2]
    index.remove(gone, watermark=7)
    _, ids = index.search(probes, 10)
    assert not np.isin(ids, gone).any()
    kept = ~np.isin(mates, gone)
    assert np.mean(ids[kept, 0] == mates[kept]) >= 0.99
    assert index.watermark == 7 and len(index) == N - gone.size


def test_memory_per_entry() -> None:
    gallery, _ = populations()["isotropic"]
    index = TwoStageIndex(FACE_DIM)
    index.add(np.arange(N), gallery)
    # 16 B code + 128 B int8 + 4 B inverse norm + 8 B id, with <= 25 % growth slack.
    assert 156 * N <= index.memory_bytes() <= 156 * N * 1.25 + 156 * 1024


def test_save_is_within_quantisation_of_the_original(tmp_path: Path) -> None:
    gallery, probes = populations()["isotropic"]
    index = make_index("twostage", FACE_DIM, shortlist=64)
    index.add(np.arange(N), gallery, watermark=3)
    index.save(tmp_path / "g")
    restored = load_index("exact", tmp_path / "g")
    assert restored.watermark == 3
    saved = restored.search(gallery[:100], 1)[0][:, 0]
    assert np.all(saved > 0.999)  # each saved vector is within int8 rounding of the original
    back = load_index("twostage", tmp_path / "g", shortlist=64)
    assert np.array_equal(back.search(probes, 3)[1], index.search(probes, 3)[1])


def test_invalid_options() -> None:
    with pytest.raises(ValueError):
        TwoStageIndex(FACE_DIM, shortlist=0)
    with pytest.raises(ValueError):
        TwoStageIndex(0)
    with pytest.raises(TypeError):
        make_index("exact", FACE_DIM, shortlist=5)


def test_single_probes_take_the_one_thread_path_with_the_same_results(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    import faiss

    gallery, probes, _ = data
    index = TwoStageIndex(FACE_DIM, shortlist=64)
    index.add(np.arange(N), gallery)
    threads = faiss.omp_get_max_threads()
    batch = index.search(probes[:20], 5)
    for i in range(20):
        scores, ids = index.search(probes[i : i + 1], 5)
        assert np.array_equal(ids[0], batch[1][i])
        assert np.allclose(scores[0], batch[0][i])
    assert faiss.omp_get_max_threads() == threads  # restored

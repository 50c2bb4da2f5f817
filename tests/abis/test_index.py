"""One suite for every gallery backend: the `GalleryIndex` contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sanad.abis.index import (
    INDEX_KINDS,
    ExactIndex,
    FaissFlatIndex,
    GalleryIndex,
    IndexFileError,
    load_index,
    make_index,
)
from sanad.abis.milvus import MilvusIndex
from sanad.abis.twostage import TwoStageIndex
from sanad.biometrics.synthetic import SyntheticPopulation

DIM = 32
# Score tolerance per backend: twostage scores int8 templates (about 0.001 off a float32
# cosine in 32-d, sd; see sanad.abis.twostage); the others are float32-exact.
TOLERANCE = {"exact": 1e-5, "faiss-flat": 1e-5, "milvus": 1e-5, "twostage": 0.005}


def assert_like_brute_force(got, vectors, ids, probes, tol: float) -> None:
    """``got`` is a correct top-k of ``probes`` against ``(ids, vectors)`` within ``tol``.

    Scores match the brute-force ranking position by position, and each returned id truly
    scores (within ``tol``) what its position promises, so a lossy backend may only swap
    near-ties. At float32 tolerance the ids must be exactly the brute-force ones.
    """
    got_s, got_i = got
    k = got_s.shape[1]
    want_s, want_i = brute_force(vectors, ids, probes, k)
    assert np.allclose(got_s, want_s, atol=tol)
    if tol <= 1e-5:
        assert np.array_equal(got_i, want_i)
        return
    row_of = {int(i): r for r, i in enumerate(ids)}
    true = np.array([[probes[p] @ vectors[row_of[int(i)]] for i in row] for p, row in
                     enumerate(got_i)])
    assert np.allclose(true, want_s, atol=tol)
    assert all(len(set(row.tolist())) == k for row in got_i)


def unit_rows(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    m = np.random.default_rng(seed).standard_normal((n, dim))
    unit: np.ndarray = (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)
    return unit


@pytest.fixture(params=INDEX_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def index(kind: str) -> GalleryIndex:
    return make_index(kind, DIM)


@pytest.fixture
def filled(index: GalleryIndex) -> tuple[GalleryIndex, np.ndarray, np.ndarray]:
    ids = np.arange(100, 400, dtype=np.int64)  # not 0-based, to catch row/id confusion
    vectors = unit_rows(ids.size)
    index.add(ids, vectors)
    return index, ids, vectors


def brute_force(vectors: np.ndarray, ids: np.ndarray, probes: np.ndarray, k: int):
    scores = probes @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def test_identifier_and_dim(index: GalleryIndex, kind: str) -> None:
    assert index.identifier == kind
    assert index.dim == DIM
    assert len(index) == 0
    assert index.watermark == 0


def test_backend_classes_are_gallery_indexes() -> None:
    # Static check (mypy): every backend satisfies the protocol.
    backends: list[GalleryIndex] = [
        ExactIndex(DIM), FaissFlatIndex(DIM), TwoStageIndex(DIM), MilvusIndex(DIM)
    ]
    assert [b.identifier for b in backends] == list(INDEX_KINDS)


def test_search_matches_brute_force(
    filled: tuple[GalleryIndex, np.ndarray, np.ndarray], kind: str
) -> None:
    index, ids, vectors = filled
    probes = unit_rows(25, seed=1)
    scores, found = index.search(probes, 10)
    assert scores.shape == found.shape == (25, 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    assert_like_brute_force((scores, found), vectors, ids, probes, TOLERANCE[kind])
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_a_gallery_member_finds_itself_first(
    filled: tuple[GalleryIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, vectors = filled
    scores, found = index.search(vectors[:50], 3)
    assert np.array_equal(found[:, 0], ids[:50])
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)


def test_empty_gallery_returns_padding(index: GalleryIndex) -> None:
    scores, found = index.search(unit_rows(3), 4)
    assert np.all(found == -1)
    assert np.all(np.isneginf(scores))


def test_k_larger_than_gallery_pads_the_tail(index: GalleryIndex) -> None:
    index.add(np.array([7, 8, 9]), unit_rows(3))
    scores, found = index.search(unit_rows(2, seed=5), 5)
    assert scores.shape == (2, 5)
    assert sorted(found[0, :3].tolist()) == [7, 8, 9]
    assert np.all(found[:, 3:] == -1)
    assert np.all(np.isneginf(scores[:, 3:]))
    assert np.all(np.isfinite(scores[:, :3]))


def test_empty_probe_batch(filled: tuple[GalleryIndex, np.ndarray, np.ndarray]) -> None:
    index, _, _ = filled
    scores, found = index.search(np.empty((0, DIM), dtype=np.float32), 3)
    assert scores.shape == found.shape == (0, 3)


def test_remove_forgets_entries(
    filled: tuple[GalleryIndex, np.ndarray, np.ndarray], kind: str
) -> None:
    index, ids, vectors = filled
    gone = ids[[0, 17, 150, -1]]  # first, middle and last rows: exercises swap-with-last
    index.remove(gone)
    assert len(index) == ids.size - gone.size
    keep = ~np.isin(ids, gone)
    _, found = index.search(vectors, 5)
    assert not np.isin(found, gone).any()
    # Every survivor is still found under its own id after rows moved.
    _, found = index.search(vectors[keep], 1)
    assert np.array_equal(found[:, 0], ids[keep])
    assert_like_brute_force(
        index.search(vectors[:20], 5), vectors[keep], ids[keep], vectors[:20], TOLERANCE[kind]
    )


def test_removed_id_can_be_added_again(index: GalleryIndex) -> None:
    v = unit_rows(2)
    index.add(np.array([1, 2]), v)
    index.remove(np.array([1]))
    index.add(np.array([1]), v[1:])
    _, found = index.search(v[1:], 2)
    assert sorted(found[0].tolist()) == [1, 2]


def test_remove_everything(filled: tuple[GalleryIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vectors = filled
    index.remove(ids)
    assert len(index) == 0
    assert np.all(index.search(vectors[:2], 2)[1] == -1)


def test_add_rejects_present_ids_without_side_effects(
    filled: tuple[GalleryIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, _ = filled
    with pytest.raises(ValueError, match="already"):
        index.add(np.array([1, int(ids[3])]), unit_rows(2), watermark=99)
    assert len(index) == ids.size
    assert index.watermark == 0
    assert index.search(unit_rows(1, seed=2), 1)[1][0, 0] != 1


def test_remove_rejects_unknown_ids_without_side_effects(
    filled: tuple[GalleryIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, _ = filled
    with pytest.raises(ValueError, match="not in the index"):
        index.remove(np.array([int(ids[0]), 5]))
    assert len(index) == ids.size


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (np.array([1, 1]), unit_rows(2), "repeat"),
        (np.array([-2]), unit_rows(1), "non-negative"),
        (np.array([1, 2]), unit_rows(1), "2 ids but 1"),
        (np.array([1]), unit_rows(1, dim=DIM + 1), "shape"),
        (np.array([1]), unit_rows(1)[0], "shape"),
        (np.array([1]), unit_rows(1) * 2, "unit length"),
        (np.array([[1]]), unit_rows(1), "1-d"),
        (np.array([1.5]), unit_rows(1), "integers"),
    ],
)
def test_add_validates_input(
    index: GalleryIndex, ids: np.ndarray, vectors: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        index.add(ids, vectors)
    assert len(index) == 0


def test_search_validates_input(filled: tuple[GalleryIndex, np.ndarray, np.ndarray]) -> None:
    index, _, _ = filled
    with pytest.raises(ValueError, match="shape"):
        index.search(unit_rows(2, dim=DIM - 1), 3)
    with pytest.raises(ValueError, match="k must"):
        index.search(unit_rows(2), 0)


def test_watermark_only_moves_forward(index: GalleryIndex) -> None:
    v = unit_rows(4)
    index.add(np.array([1]), v[:1], watermark=5)
    assert index.watermark == 5
    index.add(np.array([2]), v[1:2], watermark=3)  # a concurrent commit applied late
    assert index.watermark == 5
    index.add(np.array([3]), v[2:3])
    assert index.watermark == 5
    index.remove(np.array([1]), watermark=9)
    assert index.watermark == 9
    index.add(np.empty(0, dtype=np.int64), np.empty((0, DIM), np.float32), watermark=12)
    assert index.watermark == 12 and len(index) == 2
    with pytest.raises(ValueError, match="watermark"):
        index.add(np.array([4]), v[3:], watermark=-1)


def test_save_and_load_round_trip(
    filled: tuple[GalleryIndex, np.ndarray, np.ndarray], kind: str, tmp_path: Path
) -> None:
    index, ids, vectors = filled
    index.remove(ids[:10], watermark=41)
    path = tmp_path / "nested" / "gallery"
    index.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["gallery"]  # exact name, no temp left
    for target in INDEX_KINDS:  # the file format is backend-neutral
        restored = load_index(target, path)
        assert restored.identifier == target
        assert len(restored) == len(index) and restored.watermark == 41
        probes = vectors[:30]
        keep = np.isin(ids, ids[10:])
        tol = max(TOLERANCE[kind], TOLERANCE[target])
        got = restored.search(probes, 7)
        assert_like_brute_force(got, vectors[keep], ids[keep], probes, tol)
        if tol <= 1e-5:
            assert np.array_equal(got[1], index.search(probes, 7)[1])


def test_save_replaces_an_existing_file(index: GalleryIndex, tmp_path: Path) -> None:
    path = tmp_path / "gallery.npz"
    index.save(path)
    index.add(np.array([3]), unit_rows(1), watermark=2)
    index.save(path)
    assert len(type(index).load(path)) == 1
    assert type(index).load(path).watermark == 2


def test_empty_index_round_trips(index: GalleryIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "g")
    restored = type(index).load(tmp_path / "g")
    assert len(restored) == 0 and restored.dim == DIM


def test_load_reports_damaged_and_missing_files(index: GalleryIndex, tmp_path: Path) -> None:
    bad = tmp_path / "gallery"
    bad.write_bytes(b"not an index")
    with pytest.raises(IndexFileError) as info:
        type(index).load(bad)
    assert info.value.code == "invalid_gallery_index"
    index.add(np.array([1, 2]), unit_rows(2))
    index.save(bad)
    bad.write_bytes(bad.read_bytes()[:-40])  # truncated
    with pytest.raises(IndexFileError):
        type(index).load(bad)
    with pytest.raises(FileNotFoundError):
        type(index).load(tmp_path / "absent")


def test_load_rejects_a_foreign_npz(index: GalleryIndex, tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, something=np.arange(3))
    with pytest.raises(IndexFileError):
        type(index).load(path)


def test_make_index_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="exact, faiss-flat"):
        make_index("hnsw", DIM)


def test_backends_agree_on_a_synthetic_population() -> None:
    pop = SyntheticPopulation(seed=2)
    rng = np.random.default_rng(0)
    gallery = pop.captures(range(3000), rng)
    probes = pop.captures(range(0, 3000, 30), rng)
    results = {}
    for kind in INDEX_KINDS:
        # A short shortlist, so the twostage first stage really filters (3000 > 64).
        options = {"shortlist": 64} if kind == "twostage" else {}
        idx = make_index(kind, gallery.shape[1], **options)
        idx.add(np.arange(3000), gallery)
        results[kind] = idx.search(probes, 10)
    s0, i0 = results["exact"]
    assert np.array_equal(i0[:, 0], np.arange(0, 3000, 30))
    for kind, (s, i) in results.items():
        assert np.array_equal(i[:, 0], i0[:, 0]), kind
        assert np.allclose(s[:, 0], s0[:, 0], atol=TOLERANCE[kind]), kind


def test_exact_search_in_blocks_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    index = ExactIndex(DIM)
    vectors = unit_rows(300)
    index.add(np.arange(300), vectors)
    probes = unit_rows(40, seed=3)
    whole = index.search(probes, 6)
    monkeypatch.setattr("sanad.abis.index._SCORE_BLOCK_ELEMENTS", 1000)  # 3 probes per block
    blocked = index.search(probes, 6)
    assert np.array_equal(blocked[1], whole[1])
    assert np.allclose(blocked[0], whole[0], atol=1e-6)

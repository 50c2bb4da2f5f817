"""`sanad abis rebuild`: the index rebuilt from the database equals the live gallery."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import select

from sanad.abis.index import FloatMatrix, GalleryIndex, IdArray, load_index
from sanad.abis.rebuild import count_face_records, rebuild_index
from sanad.audit import verify_chain
from sanad.registry.db import transaction
from sanad.registry.demo import run_demo
from sanad.registry.models import AuditEvent
from sanad.registry.runtime import Registry

SANAD = [sys.executable, "-m", "sanad"]


def test_rebuild_matches_the_live_gallery(registry: Registry) -> None:
    run_demo(registry, people=40, duplicates=0, seed=3)
    # The last records written are finger records (not in the face index): the live watermark
    # reaches them at the next catch-up, as the rebuilt one does at once.
    with transaction(registry.sessions) as session:
        registry.gallery.catch_up(session)
    live = registry.gallery.index
    with registry.sessions() as session:
        total = count_face_records(session)
    assert total == len(live) > 0
    seen: list[int] = []
    index, report = rebuild_index(
        registry.sessions, sealer=registry.sealer, kind="twostage",
        path=registry.settings.home / "rebuilt", actor="test", batch=7,
        progress=seen.append,
    )
    assert sum(seen) == total and max(seen) == 7  # really paged
    assert report.entries == total and report.watermark == live.watermark
    probes, _ = _vectors(live)
    _, want = live.search(probes, 1)
    _, got = index.search(probes, 1)
    assert np.array_equal(got, want)
    saved = load_index("exact", registry.settings.home / "rebuilt")
    assert len(saved) == total and saved.watermark == live.watermark
    with registry.sessions() as session:
        actions = session.scalars(select(AuditEvent.action)).all()
        assert "abis.index_rebuilt" in actions
        assert verify_chain(session).ok


def _vectors(index: GalleryIndex) -> tuple[FloatMatrix, IdArray]:
    # the live gallery's own vectors, via its save format
    import tempfile
    from pathlib import Path

    from sanad.abis.index import _load_npz

    with tempfile.TemporaryDirectory() as d:
        index.save(Path(d) / "g")
        _, _, ids, vectors = _load_npz(Path(d) / "g")
    return vectors, ids


@pytest.mark.slow
def test_cli_rebuild(db_env: dict[str, str], registry: Registry) -> None:
    run_demo(registry, people=15, duplicates=0, seed=4)
    done = subprocess.run(
        [*SANAD, "abis", "rebuild", "--backend", "twostage", "--batch", "4"],
        env=db_env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kind"] == "twostage" and report["entries"] >= 15
    assert "rebuilding" in done.stderr  # the progress bar went to stderr
    index = load_index("exact", registry.settings.index_path)
    assert len(index) == report["entries"]
    bad = subprocess.run(
        [*SANAD, "abis", "rebuild", "--backend", "hnsw"],
        env=db_env, capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 1 and "invalid_input" in bad.stderr
    assert "Traceback" not in bad.stderr

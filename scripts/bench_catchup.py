"""Cost of a gallery rebuild with per-record data keys (figures for docs/benchmarks-reliability.md).

Usage: ``.venv/bin/python scripts/bench_catchup.py [PEOPLE]`` — enrols PEOPLE synthetic people
(default 3000) in a temporary SQLite registry, then, as a freshly started process (no cached
data key), times: today's `Gallery.catch_up` (one key query per record); `open_many` (one key
query per 500 records); and, as the baseline, opening with every key already cached.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from sanad.config import Settings
from sanad.registry.demo import run_demo
from sanad.registry.gallery import FACE, Gallery, template_aad
from sanad.registry.models import BiometricRecord
from sanad.registry.runtime import init_registry, open_registry
from sanad.registry.sealing import TemplateSealer


def main() -> None:
    people = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(home=Path(tmp) / "home")
        init_registry(s)
        reg = open_registry(s)
        run_demo(reg, people=people, duplicates=0, seed=3)
        reg.close()
        reg = open_registry(s)
        try:
            sealer = TemplateSealer.from_file(s.template_key_path)
            gallery = Gallery.open(kind=s.index_backend, sealer=sealer, path=None)
            t = time.perf_counter()
            with reg.sessions() as session:
                n = gallery.catch_up(session)
            per_record = time.perf_counter() - t
            sealer = TemplateSealer.from_file(s.template_key_path)
            with reg.sessions() as session:
                rows = session.execute(
                    select(BiometricRecord.id, BiometricRecord.person_id, BiometricRecord.template)
                    .where(BiometricRecord.modality == FACE)
                ).all()
                items = [(r.template, template_aad(r.person_id, FACE)) for r in rows]
                t = time.perf_counter()
                sealer.open_many(items, session=session)
                batched = time.perf_counter() - t
                sealer.prefetch(session, [TemplateSealer.dek_id(r.template) or b"" for r in rows])
                t = time.perf_counter()
                for blob, aad in items:
                    sealer.open(blob, aad=aad, session=session)
                cached = time.perf_counter() - t
        finally:
            reg.close()
    print(json.dumps({
        "records": n, "catch_up_one_query_per_record_s": round(per_record, 3),
        "open_many_s": round(batched, 3), "open_keys_cached_s": round(cached, 3),
        "open_many_vs_cached_ratio": round(batched / cached, 2),
    }))


if __name__ == "__main__":
    main()

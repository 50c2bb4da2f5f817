"""Concurrent audited requests must never fork or break the audit chain.

Found by the soak benchmark: on SQLite, `SELECT … FOR UPDATE` on the chain head is a no-op, so
two deferred transactions read the same head and both append ``seq = n + 1`` — the second
fails with ``UNIQUE constraint failed: audit_events.seq`` (an HTTP 500 for a plain read).
The fix belongs in `sanad/registry/db.py` (BEGIN IMMEDIATE on SQLite); until then this test is
a strict expected failure on SQLite so that it turns red the moment the fix lands (remove the
mark then).
"""

from __future__ import annotations

import threading

from sqlalchemy.exc import IntegrityError, OperationalError

from sanad import audit
from sanad.registry.db import transaction


def _hammer(registry, threads: int = 6, each: int = 15) -> list[BaseException]:
    failures: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(each):
            try:
                with transaction(registry.sessions) as session:
                    audit.record(session, actor=f"t{n}", action="person.read",
                                 subject_type="person", subject_id=f"{n}-{i}")
            except (IntegrityError, OperationalError) as exc:
                failures.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return failures


def test_concurrent_audit_appends_all_succeed(registry, request) -> None:
    failures = _hammer(registry)
    with registry.sessions() as session:
        report = audit.verify_chain(session)
    assert report.ok
    assert failures == []

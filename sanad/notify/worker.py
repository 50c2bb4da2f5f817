"""`sanad worker`: the background loop — webhook/notification delivery and import jobs.

One process, two kinds of work, interleaved so neither starves the other: each round
delivers every due event, then runs one import job to its end, delivering due events between
its batches (a 1.45-million-row import never delays a webhook by more than one batch).
Several workers may run at once: deliveries and jobs are claimed with leases (`FOR UPDATE
SKIP LOCKED` on PostgreSQL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from sanad.notify.delivery import deliver_due, next_due, pending_count, purge_delivered
from sanad.notify.senders import Sender, sender_from_settings
from sanad.registry import idempotency, importer
from sanad.registry.db import transaction, utcnow
from sanad.registry.runtime import Registry
from sanad.registry.sync_models import ImportJob

log = logging.getLogger("sanad.worker")
IDEMPOTENCY_PURGE_SECONDS = 300.0  # expired Idempotency-Key records: a table scan, not per round


@dataclass
class WorkerStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    import_batches: int = 0
    rounds: int = 0


def _import_step(registry: Registry, between_batches: Callable[[], None]) -> bool:
    """Claim one import job and run it to the end; True if there was one."""
    s = registry.settings
    job_id = importer.claim_job(registry.sessions, lease_seconds=s.worker_lease_seconds)
    if job_id is None:
        return False
    importer.run_job(registry.sessions, job_id, batch_rows=s.import_batch_rows,
                     lease_seconds=s.worker_lease_seconds, between_batches=between_batches,
                     biographic_threshold=s.biographic_threshold)
    return True


def _import_work_left(registry: Registry) -> bool:
    with transaction(registry.sessions) as session:
        return session.scalar(select(ImportJob.id).where(
            ImportJob.status.in_(("queued", "running"))).limit(1)) is not None


def run_worker(
    registry: Registry, *, until_idle: bool = False, max_seconds: float | None = None,
    sender: Sender | None = None, client: httpx.Client | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> WorkerStats:
    """Loop until stopped; with `until_idle`, return once nothing is pending any more
    (deliveries backing off or leased by a dead worker are waited for, not abandoned)."""
    settings = registry.settings
    sender = sender or sender_from_settings(settings)
    own_client = client is None
    http = client or httpx.Client()
    stats = WorkerStats()
    started = time.monotonic()
    next_idempotency_purge = started
    def deliver() -> bool:
        report = deliver_due(registry.sessions, settings, sender=sender, client=http)
        stats.delivered += report.delivered
        stats.retried += report.retried
        stats.dead += report.dead
        return bool(report.delivered or report.retried or report.dead)

    def between_batches() -> None:
        stats.import_batches += 1
        deliver()

    try:
        while not should_stop():
            stats.rounds += 1
            delivered = deliver()
            if _import_step(registry, between_batches) or delivered:
                continue
            with transaction(registry.sessions) as session:
                purge_delivered(session,
                                older_than=timedelta(days=settings.outbox_retention_days))
            if time.monotonic() >= next_idempotency_purge:  # issue #5: keys expire
                with transaction(registry.sessions) as session:
                    idempotency.purge_expired(
                        session, retention=timedelta(hours=settings.idempotency_retention_hours))
                next_idempotency_purge = time.monotonic() + IDEMPOTENCY_PURGE_SECONDS
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
            with transaction(registry.sessions) as session:
                pending = pending_count(session)
                due: datetime | None = next_due(session)
            if until_idle and pending == 0 and not _import_work_left(registry):
                break
            wait = settings.worker_poll_seconds
            if due is not None:
                wait = min(wait, max(0.05, (due - utcnow()).total_seconds()))
            time.sleep(wait)
    finally:
        if own_client:
            http.close()
    return stats

"""`sanad sync`: upload queued packets to the centre, batch by batch, resumably.

Upload is the only step (no download precedes it), so it never waits on anything else. Each
batch is acknowledged per packet; a receipted packet is purged at once, in its own transaction,
so a link that drops mid-run loses nothing and the next run continues with what is left.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx

from sanad.errors import SyncUnavailable
from sanad.registry.db import transaction, utcnow
from sanad.registry.runtime import Registry
from sanad.sync.station import apply_results, pending_packets, queue_new_households, set_state

SYNC_PATH = "/sync/packets"


@dataclass
class SyncReport:
    queued_now: int = 0
    sent: int = 0
    receipted: int = 0
    rejected: int = 0
    pending: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"queued_now": self.queued_now, "sent": self.sent, "receipted": self.receipted,
                "rejected": self.rejected, "pending": self.pending, "results": self.results}


def _record_error(registry: Registry, message: str) -> None:
    with transaction(registry.sessions) as session:
        set_state(session, "last_error", f"{utcnow().isoformat()} {message}")


def sync_station(
    registry: Registry, *, client: httpx.Client, url: str, token: str | None
) -> SyncReport:
    """Queue new households, then upload every queued packet once; returns what happened.

    `client` carries the timeout (SANAD_SYNC_TIMEOUT_SECONDS in `sanad sync`).
    Raises `SyncUnavailable` (after recording the last error) when the centre cannot be
    reached or refuses the request; packets not yet receipted stay queued.
    """
    report = SyncReport()
    with transaction(registry.sessions) as session:
        report.queued_now = queue_new_households(session, registry.settings, registry.sealer)
    with transaction(registry.sessions) as session:
        snapshot = [(p.packet_id, p.envelope) for p in pending_packets(session, limit=1_000_000)]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    batch_size = registry.settings.sync_batch_packets
    for start in range(0, len(snapshot), batch_size):
        batch = snapshot[start:start + batch_size]
        body = {"packets": [base64.b64encode(env).decode() for _, env in batch]}
        try:
            resp = client.post(url.rstrip("/") + SYNC_PATH, json=body, headers=headers)
        except httpx.HTTPError as exc:
            message = f"centre unreachable: {type(exc).__name__}: {exc}"
            _record_error(registry, message)
            raise SyncUnavailable(message) from exc
        if resp.status_code != 200:
            try:
                detail = str(resp.json().get("detail", ""))
            except ValueError:
                detail = resp.text[:200]
            message = f"centre answered HTTP {resp.status_code}: {detail}"
            _record_error(registry, message)
            raise SyncUnavailable(message)
        results = list(resp.json().get("results", []))
        with transaction(registry.sessions) as session:
            counts = apply_results(session, results)
        report.sent += len(batch)
        report.receipted += counts["receipted"]
        report.rejected += counts["rejected"]
        report.pending += counts["pending"]
        report.results.extend(
            {k: v for k, v in r.items() if k in {"packet_id", "status", "code", "detail",
                                                 "household_id", "registration_number",
                                                 "replayed", "conflict_id"}}
            for r in results
        )
    with transaction(registry.sessions) as session:
        set_state(session, "last_sync_at", utcnow().isoformat())
        if report.rejected == 0 and report.pending == 0:
            set_state(session, "last_error", "")
        else:
            set_state(session, "last_error",
                      f"{utcnow().isoformat()} {report.rejected} rejected, "
                      f"{report.pending} pending (see `sanad kit status`)")
    return report

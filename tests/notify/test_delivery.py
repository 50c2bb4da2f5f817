"""Outbox → worker → webhooks and notifications: signing, retries, dead letters, and a worker
killed with SIGKILL mid-delivery (a real subprocess) losing nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sanad.notify.delivery import dead_letters, purge_delivered, requeue, verify_signature
from sanad.notify.outbox import emit
from sanad.notify.senders import HttpSmsSender, LoggingSender, render
from sanad.notify.subscriptions import create_subscription
from sanad.notify.worker import run_worker
from sanad.registry.db import transaction
from sanad.registry.runtime import Registry
from sanad.registry.sync_models import Delivery, OutboxEvent
from tests.notify.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _subscribe(registry: Registry, url: str, types: list[str]) -> str:
    with transaction(registry.sessions) as session:
        _, secret = create_subscription(session, name="local-system", url=url,
                                        event_types=types, actor="test")
    return secret


def _emit(registry: Registry, n: int, event_type: str = "card.issued",
          **payload: Any) -> list[str]:
    with transaction(registry.sessions) as session:
        return [str(emit(session, event_type=event_type, subject_id=f"s{i}",
                         payload={"n": i, **payload}).event_id) for i in range(n)]


def test_emit_is_transactional(registry: Registry, receiver: Receiver) -> None:
    _subscribe(registry, receiver.url + "/hook", ["card.*"])
    with pytest.raises(RuntimeError), transaction(registry.sessions) as session:
        emit(session, event_type="card.issued", subject_id="x", payload={})
        raise RuntimeError("the change fails")
    with transaction(registry.sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    _emit(registry, 1)
    _emit(registry, 1, event_type="household.enrolled")  # not subscribed
    with transaction(registry.sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 2
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def test_webhooks_are_signed_and_carry_idempotency_key(
    registry: Registry, receiver: Receiver,
) -> None:
    secret = _subscribe(registry, receiver.url + "/hook", ["*"])
    ids = _emit(registry, 3)
    stats = run_worker(registry, until_idle=True, max_seconds=30)
    assert stats.delivered == 3
    assert sorted(r.headers["Idempotency-Key"] for r in receiver.received) == sorted(ids)
    for r in receiver.received:
        assert verify_signature(secret, r.body, r.headers["X-Sanad-Signature"])
        assert not verify_signature(secret, r.body + b" ", r.headers["X-Sanad-Signature"])
        assert not verify_signature("wrong", r.body, r.headers["X-Sanad-Signature"])
        assert r.json()["event_id"] == r.headers["Idempotency-Key"]


def test_retries_with_backoff_then_dead_letter_and_requeue(
    registry: Registry, receiver: Receiver,
) -> None:
    receiver.status_for = lambda _n: 500
    registry.settings.webhook_max_attempts = 3
    registry.settings.webhook_backoff_seconds = 0.01
    _subscribe(registry, receiver.url + "/hook", ["card.issued"])
    [event_id] = _emit(registry, 1)
    stats = run_worker(registry, until_idle=True, max_seconds=30)
    assert stats.dead == 1 and stats.retried == 2 and len(receiver.received) == 3
    assert {r.headers["Idempotency-Key"] for r in receiver.received} == {event_id}
    with transaction(registry.sessions) as session:
        [dead] = dead_letters(session)
        assert dead["event_id"] == event_id and "HTTP 500" in dead["last_error"]
    receiver.status_for = lambda _n: 204
    with transaction(registry.sessions) as session:
        requeue(session, delivery_id=dead["delivery_id"])
    assert run_worker(registry, until_idle=True, max_seconds=30).delivered == 1
    with transaction(registry.sessions) as session:
        assert dead_letters(session) == []
        assert purge_delivered(session, older_than=timedelta(days=1)) == 0  # too recent
    _emit(registry, 1, event_type="household.enrolled")  # no subscriber: nothing to deliver
    with transaction(registry.sessions) as session:
        assert purge_delivered(session, older_than=timedelta(0)) == 2
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_card_ready_notification_through_senders(registry: Registry, receiver: Receiver) -> None:
    sender = LoggingSender()
    [event_id] = _emit(registry, 1, event_type="card.ready", phone="+962791112223",
                       site="Zaatari", date="2026-12-01")
    _emit(registry, 1, event_type="card.ready")  # no phone: nobody to notify
    run_worker(registry, until_idle=True, max_seconds=30, sender=sender)
    [(to, message, key)] = sender.sent
    assert to == "+962791112223" and key == event_id
    assert "Zaatari" in message and "2026-12-01" in message

    sms = HttpSmsSender(receiver.url + "/sms", token="t0k", timeout=5)
    sms.send(to="+962791112223", message=message, idempotency_key=key)
    [got] = receiver.received
    assert got.json() == {"to": "+962791112223", "message": message}
    assert got.headers["Idempotency-Key"] == key and got.headers["Authorization"] == "Bearer t0k"
    with pytest.raises(Exception, match="notification payload lacks"):
        render("card.ready", {"phone": "+1"})


def test_subscription_api(client: TestClient, admin_headers: dict[str, str]) -> None:
    resp = client.post("/subscriptions", json={"name": "lims", "url": "http://x.example/hook",
                                               "event_types": ["card.*"]},
                       headers=admin_headers)
    assert resp.status_code == 201 and len(resp.json()["secret"]) == 64
    bad = client.post("/subscriptions", json={"name": "b", "url": "ftp://x.example/hook",
                                              "event_types": ["card.*"]}, headers=admin_headers)
    assert bad.status_code == 422
    listed = client.get("/subscriptions", headers=admin_headers).json()
    assert [s["name"] for s in listed] == ["lims"] and "secret" not in listed[0]
    assert client.post(f"/subscriptions/{listed[0]['id']}/deactivate",
                       headers=admin_headers).status_code == 204
    assert client.get("/subscriptions/dead-letters", headers=admin_headers).json() == []
    assert client.get("/subscriptions").status_code == 401


def _worker(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "sanad", "worker", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class _Killed(BaseException):
    """Stands for the process dying: not an error any handler would catch."""


def test_worker_dying_mid_delivery_redelivers_after_lease(
    registry: Registry, receiver: Receiver,
) -> None:
    """Fast in-process variant of the SIGKILL test below (same behaviour, no subprocess)."""
    _subscribe(registry, receiver.url + "/hook", ["*"])
    ids = _emit(registry, 4)
    registry.settings.worker_lease_seconds = 0.5
    real = httpx.Client()
    calls = []

    def transport(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 3:
            raise _Killed  # dies while the third event is on the wire
        resp = real.send(request)
        return httpx.Response(resp.status_code)

    with pytest.raises(_Killed), httpx.Client(transport=httpx.MockTransport(transport)) as dying:
        run_worker(registry, until_idle=True, sender=LoggingSender(), client=dying)
    real.close()
    assert len(receiver.received) == 2
    run_worker(registry, until_idle=True, max_seconds=30)
    keys = [r.headers["Idempotency-Key"] for r in receiver.received]
    assert sorted(keys) == sorted(ids)  # the in-flight one arrives after its lease expired
    assert calls[2].headers["Idempotency-Key"] in keys


@pytest.mark.slow
def test_worker_killed_mid_delivery_loses_nothing(
    registry: Registry, receiver: Receiver, db_env: dict[str, str],
) -> None:
    secret = _subscribe(registry, receiver.url + "/hook", ["*"])
    ids = _emit(registry, 6)
    inflight, release = threading.Event(), threading.Event()

    def hook(n: int) -> None:
        if n == 3:  # the third request hangs until the worker has been killed
            inflight.set()
            release.wait(60)

    receiver.hook = hook
    env = {**db_env, "SANAD_WORKER_LEASE_SECONDS": "1", "SANAD_WORKER_POLL_SECONDS": "0.2"}
    first = _worker(env)
    try:
        assert inflight.wait(120), "the worker never reached the third delivery"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        release.set()
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    with transaction(registry.sessions) as session:
        delivered = session.scalar(select(func.count()).select_from(Delivery)
                                   .where(Delivery.status == "delivered"))
    assert delivered == 2  # the third was in flight: not marked delivered

    second = _worker(env, "--until-idle", "--max-seconds", "120")
    _out, errs = second.communicate(timeout=180)
    assert second.returncode == 0, errs.decode()
    keys = [r.headers["Idempotency-Key"] for r in receiver.received]
    assert set(keys) == set(ids)  # none lost
    [again] = [k for k in set(keys) if keys.count(k) > 1]  # exactly one redelivered...
    bodies = {r.body for r in receiver.received if r.headers["Idempotency-Key"] == again}
    assert len(bodies) == 1  # ...with the same key and the same body
    assert all(verify_signature(secret, r.body, r.headers["X-Sanad-Signature"])
               for r in receiver.received)
    with transaction(registry.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.status != "delivered")) == 0

"""The kit commands end to end: a station (own SANAD_HOME, SQLite) driven through the real
`sanad` CLI in subprocesses, syncing over HTTP to a central app served by a live uvicorn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import func, select

from sanad.app import create_app
from sanad.registry.db import transaction
from sanad.registry.models import Household
from sanad.registry.runtime import Registry

SANAD = [sys.executable, "-m", "sanad"]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SANAD, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def live_centre(registry: Registry) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(registry=registry), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
def test_kit_cli_round_trip(
    tmp_path: Path, registry: Registry, db_env: dict[str, str], live_centre: str,
    admin_headers: dict[str, str],
) -> None:
    key = run(db_env, "kit", "central-key")
    assert key.returncode == 0, key.stderr
    (tmp_path / "central.json").write_text(key.stdout)

    kit_env = {k: v for k, v in os.environ.items() if k != "SANAD_DATABASE_URL"}
    kit_env.update(SANAD_HOME=str(tmp_path / "kit"), SANAD_STATION_MODE="1")
    init = run(kit_env, "kit", "init", "--site", "Azraq", "--station-id", "azraq-1",
               "--central-key", str(tmp_path / "central.json"))
    assert init.returncode == 0, init.stderr
    (tmp_path / "reg.json").write_text(init.stdout)
    assert run(kit_env, "demo", "--people", "6", "--duplicates", "1").returncode == 0
    status = json.loads(run(kit_env, "kit", "status").stdout)
    assert status["station_id"] == "azraq-1" and status["queue_size"] >= 1
    # `kit init` made the kit's SQLite an encrypted (SQLCipher) one; the CLI works on it.
    assert status["database_encrypted"] is True
    assert b"SQLite format 3" not in (tmp_path / "kit" / "sanad.db").read_bytes()[:16]
    exported = run(kit_env, "kit", "export", "--out", str(tmp_path / "usb"))
    assert json.loads(exported.stdout)["exported"] == status["queue_size"]

    # Not yet registered: the centre rejects, the kit keeps its queue and says why.
    token = admin_headers["Authorization"].split()[1]
    refused = run(kit_env, "sync", "--url", live_centre, "--token", token)
    assert refused.returncode == 1
    assert json.loads(run(kit_env, "kit", "status").stdout)["queue_size"] == status["queue_size"]

    assert run(db_env, "kit", "register", str(tmp_path / "reg.json")).returncode == 0
    carried = run(db_env, "kit", "import-packets", str(tmp_path / "usb"))  # by USB first
    assert carried.returncode == 0, carried.stderr
    assert all(json.loads(line)["status"] == "imported" for line in carried.stdout.splitlines())
    synced = run(kit_env, "sync", "--url", live_centre, "--token", token)
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    assert report["receipted"] == status["queue_size"]
    assert all(r["replayed"] for r in report["results"])  # already imported from the USB copy
    after = json.loads(run(kit_env, "kit", "status").stdout)
    assert after["queue_size"] == 0 and after["last_error"] is None
    with transaction(registry.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Household)) == status[
            "queue_size"]
    # No link: the error is reported and kept; the new packet stays queued.
    assert run(kit_env, "demo", "--people", "1", "--duplicates", "0", "--seed", "99"
               ).returncode == 0
    down = run(kit_env, "sync", "--url", "http://127.0.0.1:9", "--token", token)
    assert down.returncode == 1 and "sync_unavailable" in down.stderr
    offline = json.loads(run(kit_env, "kit", "status").stdout)
    assert offline["queue_size"] == 1 and "unreachable" in offline["last_error"]

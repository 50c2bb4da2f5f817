"""``sanad bench api``: load on loopback against a served instance (uvicorn, N workers).

Measured in one run, on one machine, with the same load generator settings:

* baseline: ``GET /healthz`` (no database, no authentication) with wrk;
* ``POST /verify`` with an API key (key lookup, status list, signature check) with wrk, at
  ``connections`` and again at ``low_connections``: wrk keeps every connection busy (a closed
  loop), so by Little's law the mean latency is connections ÷ rate — at 1,000 requests/s,
  32 connections mean 32 ms on average whatever the server does, so the latency goal is
  checked at the lower concurrency too;
* enrolment: ``POST /households`` (1:N dedup, sealing, audit) from a Python client with a few
  concurrent connections, and the same client's ``/healthz`` rate as that load's baseline.

Every rate is also reported as a ratio to its baseline (``*_vs_healthz``), which transfers
between machines better than the raw numbers. wrk and the server share the machine's cores,
so the absolute figures are a floor for a dedicated server. The server's own CPU time per
request (``*_cpu_ms``, from /proc for the uvicorn processes) is the figure least disturbed by
other load on the machine; the load average before and after is recorded with the figures.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from sanad.abis.templates import encode_template
from sanad.bench import BenchmarkParamError, BenchResult
from sanad.biometrics.synthetic import SyntheticPopulation
from sanad.config import Settings

_UNLIMITED = str(10**9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _household(population: SyntheticPopulation, identity: int,
               rng: np.random.Generator) -> dict[str, Any]:
    template = base64.b64encode(encode_template(population.capture(identity, rng))).decode()
    return {
        "province": "Amman", "district": "Marka", "site": "bench", "station": "bench",
        "members": [{
            "given_name": "Bench", "family_name": "Person", "date_of_birth": "1990-01-01",
            "sex": "F", "nationality": "SYR", "relationship_to_head": "head",
            "face": {"template": template, "quality": 0.9},
        }],
    }


def _prepare(settings: Settings, population: SyntheticPopulation) -> tuple[str, str, str]:
    """Initialise a fresh registry; returns (admin token, verifier API key, a card's QR)."""
    from sanad.registry.cards import issue_card
    from sanad.registry.db import transaction
    from sanad.registry.enrolment import EnrolmentContext, enrol_household
    from sanad.registry.runtime import init_registry, open_registry
    from sanad.registry.schemas import HouseholdCreate
    from sanad.registry.users import create_api_key, login

    report = init_registry(settings)
    assert report.created_admin_password
    registry = open_registry(settings)
    try:
        with transaction(registry.sessions) as session:
            token, _, _ = login(session, username="admin", password=report.created_admin_password)
            key, _ = create_api_key(session, name="bench-verifier", roles=["verifier"],
                                    actor="bench", rate_per_minute=10**9)
        data = HouseholdCreate.model_validate(
            _household(population, 10**6, np.random.default_rng(0)))
        result = enrol_household(registry.sessions, registry.gallery, settings, data=data,
                                 ctx=EnrolmentContext(officer="bench"))
        person_id = result.members[0].person_id
        assert person_id is not None
        with transaction(registry.sessions) as session:
            issued = issue_card(session, person_id=person_id, officer="bench",
                                key=registry.issuer_key, sealer=registry.sealer,
                                settings=settings)
            qr = issued.qr
    finally:
        registry.close()
    return token, key, qr


def _serve(settings: Settings, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SANAD_HOME=str(settings.home), SANAD_API_RATE_PER_MINUTE=_UNLIMITED,
               SANAD_API_RATE_BURST=_UNLIMITED)
    if settings.database_url:
        env["SANAD_DATABASE_URL"] = settings.database_url
    else:
        env.pop("SANAD_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "sanad.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
         "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    raise RuntimeError(f"server did not start: {err}")


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its children (uvicorn workers), Linux."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


_LAT_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk(url: str, *, seconds: int, connections: int, threads: int,
         script: Path | None = None) -> dict[str, float]:
    """Run wrk; parse req/s, p50/p99 latency (ms) and errors (socket errors + non-2xx)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    """Figures from wrk's `--latency` report (latencies in ms)."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat: dict[str, float] = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(value) * _LAT_UNITS[unit]
    errors = 0.0
    for m in re.findall(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        out):
        errors += sum(float(x) for x in m)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += float(non2xx.group(1))
    requests = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50_ms": lat.get("50", 0.0), "p99_ms": lat.get("99", 0.0),
            "errors": errors, "requests": requests}


def _client_load(n: int, concurrency: int, call: Callable[[httpx.Client, int], int],
                 ok: set[int]) -> dict[str, float]:
    """`n` calls over `concurrency` keep-alive connections; rate, latency and errors."""
    latencies: list[float] = []
    errors = [0]
    counter = iter(range(n))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                status = call(client, i)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if status not in ok:
                        errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"rps": n / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": float(errors[0])}


def run_api(
    seconds: int = 10,
    connections: int = 32,
    low_connections: int = 8,
    wrk_threads: int = 2,
    workers: int = 2,
    enrolments: int = 300,
    enrol_concurrency: int = 4,
    database_url: str = "",
    seed: int = 7,
) -> BenchResult:
    """Serve a fresh registry and load it (see the module docstring)."""
    if shutil.which("wrk") is None:
        raise BenchmarkParamError("wrk is not installed (apt-get install wrk)")
    if seconds < 1 or min(connections, low_connections, workers) < 1 or enrolments < 10:
        raise BenchmarkParamError("seconds, connections, low_connections, workers ≥ 1 and "
                                  "enrolments ≥ 10")
    population = SyntheticPopulation(seed=seed)
    home = Path(tempfile.mkdtemp(prefix="sanad-bench-api-"))
    settings = Settings(home=home, database_url=database_url or None)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    token, key, qr = _prepare(settings, population)
    proc = _serve(settings, port, workers)
    try:
        script = home / "verify.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps({'qr': qr}))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["X-API-Key"] = "{key}"\n'
        )
        # Warm-up: every worker loads its gallery, keys and status list.
        _wrk(base + "/verify", seconds=2, connections=connections, threads=wrk_threads,
             script=script)
        load_before = os.getloadavg()[0]
        cpu0 = server_cpu_seconds(proc.pid)
        health = _wrk(base + "/healthz", seconds=seconds, connections=connections,
                      threads=wrk_threads)
        cpu1 = server_cpu_seconds(proc.pid)
        verify = _wrk(base + "/verify", seconds=seconds, connections=connections,
                      threads=wrk_threads, script=script)
        cpu2 = server_cpu_seconds(proc.pid)
        verify_low = _wrk(base + "/verify", seconds=seconds, connections=low_connections,
                          threads=min(wrk_threads, low_connections), script=script)
        load_after = os.getloadavg()[0]
        rng = np.random.default_rng(seed)
        payloads = [_household(population, i, rng) for i in range(enrolments)]
        auth = {"Authorization": f"Bearer {token}"}
        client_health = _client_load(
            enrolments, enrol_concurrency,
            lambda c, _i: c.get(base + "/healthz").status_code, {200},
        )
        enrol = _client_load(
            enrolments, enrol_concurrency,
            lambda c, i: c.post(base + "/households", json=payloads[i], headers=auth).status_code,
            {201, 409},
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)
    return BenchResult(
        name="api",
        params={"seconds": seconds, "connections": connections,
                "low_connections": low_connections, "wrk_threads": wrk_threads,
                "workers": workers, "enrolments": enrolments,
                "enrol_concurrency": enrol_concurrency,
                "database": "postgresql" if database_url else "sqlite", "seed": seed},
        figures={
            "healthz_rps": health["rps"],
            "healthz_p99_ms": health["p99_ms"],
            "verify_rps": verify["rps"],
            "verify_p50_ms": verify["p50_ms"],
            "verify_p99_ms": verify["p99_ms"],
            "verify_errors": verify["errors"],
            "verify_requests": verify["requests"],
            "verify_vs_healthz": verify["rps"] / health["rps"],
            "verify_low_rps": verify_low["rps"],
            "verify_low_p50_ms": verify_low["p50_ms"],
            "verify_low_p99_ms": verify_low["p99_ms"],
            "verify_low_errors": verify_low["errors"],
            "healthz_cpu_ms": (cpu1 - cpu0) * 1000 / max(health["requests"], 1),
            "verify_cpu_ms": (cpu2 - cpu1) * 1000 / max(verify["requests"], 1),
            "load_avg_before": load_before,
            "load_avg_after": load_after,
            "client_healthz_rps": client_health["rps"],
            "enrol_per_s": enrol["rps"],
            "enrol_p50_ms": enrol["p50_ms"],
            "enrol_p99_ms": enrol["p99_ms"],
            "enrol_errors": enrol["errors"],
            "enrol_vs_healthz": enrol["rps"] / client_health["rps"],
        },
        notes={
            "method": f"uvicorn --workers {workers} --loop uvloop --http httptools on "
                      f"loopback; wrk -t{wrk_threads} "
                      f"-c{connections} -d{seconds}s for /healthz (baseline) and /verify "
                      f"(API key, status list, Ed25519 signature, audit), /verify again at "
                      f"-c{low_connections} (verify_low_*); enrolment from "
                      f"{enrol_concurrency} Python keep-alive clients, one-member households "
                      "of distinct synthetic identities (gallery grows during the run).",
            "caveat": "load generator and server share the machine's cores",
        },
    )

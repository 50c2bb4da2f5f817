"""Crash safety: SIGKILL a bulk enrolment at random moments, restart, check nothing was lost.

A *driver* subprocess (``python -m sanad.bench.crash --driver …``) enrols synthetic households
through the real enrolment service, writing one ack line (JSON) after each
`enrol_household` call returns — i.e. after the commit — and saving the gallery snapshot every
few households (so kills also land inside snapshot writes). The harness kills it with SIGKILL
after a random delay, then reopens the registry as a restarted server would (`open_registry`,
then the gallery loads its snapshot and catches up) and checks:

* every acknowledged household is present with all its members, and each member's template
  opens (its data key exists);
* no partial household: every household has an enrolment row and members numbered 1..n, each
  with a face record;
* no orphans: no person without household, no record without person, no template without its
  data key, no data key without a template;
* the gallery index equals the database: watermark = highest record id, size = face records;
* the audit hash chain verifies.

Trials accumulate on one database, so later trials also restart from earlier crashes' state.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanad.bench import BenchmarkParamError, BenchResult


@dataclass
class CrashStats:
    """Accumulated outcome of the trials on one database."""

    backend: str
    trials: int = 0
    acked: int = 0
    households: int = 0
    problems: list[str] = field(default_factory=list)
    killed_before_ready: int = 0


def _driver(home: str, db_url: str | None, ack_file: str, start: int, seed: int) -> None:
    import base64

    import numpy as np

    from sanad.abis.templates import encode_template
    from sanad.biometrics.synthetic import SyntheticPopulation
    from sanad.config import Settings
    from sanad.registry.enrolment import EnrolmentContext, enrol_household
    from sanad.registry.runtime import open_registry
    from sanad.registry.schemas import FaceCapture, HouseholdCreate, PersonCreate

    settings = Settings(home=Path(home), database_url=db_url)
    reg = open_registry(settings)
    _ = reg.gallery  # load + catch up, as a restarted server does
    population = SyntheticPopulation(seed=seed)
    rng = np.random.default_rng(start)
    ctx = EnrolmentContext(officer="crash-driver")
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    identity = start
    n = 0
    with open(ack_file, "a", encoding="utf-8") as acks:
        while True:
            size = int(rng.integers(1, 5))
            members = []
            for j in range(size):
                vector = population.capture(identity, rng)
                identity += 1
                # Names must be Latin letters: spell the identity number with a..j.
                name = "".join("abcdefghij"[int(d)] for d in str(identity)).title()
                members.append(PersonCreate(
                    given_name=name, family_name="Crash", date_of_birth="1990-01-01",
                    dob_precision="exact", sex="F", nationality="SYR",
                    relationship_to_head="head" if j == 0 else "child",
                    face=FaceCapture(template=base64.b64encode(encode_template(vector)).decode(),
                                     quality=0.9),
                ))
            data = HouseholdCreate(province="Amman", district="Marka", site="crash",
                                   station="k1", members=members)
            result = enrol_household(reg.sessions, reg.gallery, settings, data=data, ctx=ctx)
            if result.outcome != "duplicate":
                acks.write(json.dumps({
                    "household_id": str(result.household_id), "members": len(result.members),
                    "person_ids": [str(m.person_id) for m in result.members],
                }) + "\n")
                acks.flush()  # the ack is written only after the commit returned
            n += 1
            if n % 5 == 0:
                reg.gallery.save()


def check_registry(settings: Any, acks: list[dict[str, Any]]) -> tuple[list[str], int]:
    """Reopen the registry like a restarted server and list every inconsistency found."""
    from sqlalchemy import func, select

    from sanad.audit import verify_chain
    from sanad.registry.crypto_models import DataKey
    from sanad.registry.gallery import FACE, template_aad
    from sanad.registry.models import BiometricRecord, Enrolment, Household, Person
    from sanad.registry.runtime import open_registry
    from sanad.registry.sealing import SealError, TemplateSealer

    problems: list[str] = []
    reg = open_registry(settings)
    try:
        gallery = reg.gallery  # snapshot + catch-up (what every start does)
        with reg.sessions() as s:
            persons = {p.id: p for p in s.scalars(select(Person))}
            by_household: dict[Any, list[Any]] = {}
            for p in persons.values():
                by_household.setdefault(p.household_id, []).append(p)
            households = set(s.scalars(select(Household.id)))
            enrolled = set(s.scalars(select(Enrolment.household_id)))
            records = list(s.execute(select(BiometricRecord.id, BiometricRecord.person_id,
                                            BiometricRecord.modality, BiometricRecord.template)))
            keys = set(s.scalars(select(DataKey.id)))
            faces = {r.person_id: r for r in records if r.modality == FACE}
            for ack in acks:
                import uuid

                hid = uuid.UUID(ack["household_id"])
                if hid not in households:
                    problems.append(f"acknowledged household {hid} lost")
                elif len(by_household.get(hid, [])) != ack["members"]:
                    problems.append(f"acknowledged household {hid} lost members")
            for hid in households:
                members = sorted(m.member_no for m in by_household.get(hid, []))
                if not members or members != list(range(1, len(members) + 1)):
                    problems.append(f"partial household {hid}: members {members}")
                if hid not in enrolled:
                    problems.append(f"household {hid} has no enrolment row")
            for pid, p in persons.items():
                if p.household_id not in households:
                    problems.append(f"person {pid} without household")
                if pid not in faces:
                    problems.append(f"person {pid} without face template")
            referenced = set()
            for r in records:
                if r.person_id not in persons:
                    problems.append(f"record {r.id} without person")
                dek = TemplateSealer.dek_id(r.template)
                if dek is not None:
                    referenced.add(dek)
                    if dek not in keys:
                        problems.append(f"record {r.id} without its data key")
            for r in faces.values():
                try:
                    reg.sealer.open(r.template, aad=template_aad(r.person_id, FACE), session=s)
                except SealError as exc:
                    problems.append(f"record {r.id} does not open: {exc.code}")
            orphan_keys = keys - referenced
            if orphan_keys:
                problems.append(f"{len(orphan_keys)} data keys without a template")
            db_max = s.scalar(select(func.max(BiometricRecord.id))) or 0
            if gallery.index.watermark != db_max:
                problems.append(f"index watermark {gallery.index.watermark} != db {db_max}")
            if len(gallery.index) != len(faces):
                problems.append(f"index holds {len(gallery.index)} != {len(faces)} faces")
            chain = verify_chain(s)
            if not chain.ok:
                problems.append(f"audit chain broken at {chain.first_broken_seq}: {chain.problem}")
            count = len(households)
    finally:
        reg.close()
    return problems, count


def run_trials(
    settings: Any, *, trials: int, seed: int, min_delay: float, max_delay: float, work: Path,
    backend: str,
) -> CrashStats:
    """Initialise the registry at `settings`, then kill/restart/check `trials` times."""
    from sanad.registry.runtime import init_registry

    init_registry(settings)
    stats = CrashStats(backend=backend)
    ack_file = work / f"acks-{backend}.jsonl"
    ack_file.unlink(missing_ok=True)
    rand = random.Random(seed)
    env = dict(os.environ)
    for trial in range(trials):
        cmd = [sys.executable, "-m", "sanad.bench.crash", "--driver", "--home",
               str(settings.home), "--ack-file", str(ack_file), "--start",
               str(1_000 + trial * 100_000), "--seed", str(seed)]
        if settings.database_url:
            cmd += ["--db-url", settings.database_url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip() == b"READY"
        if not ready:
            proc.kill()
            _, errout = proc.communicate(timeout=30)
            raise RuntimeError(f"crash driver failed to start: {errout.decode()[-2000:]}")
        time.sleep(rand.uniform(min_delay, max_delay))
        if proc.poll() is not None:
            _, errout = proc.communicate(timeout=30)
            raise RuntimeError(f"crash driver died on its own: {errout.decode()[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        acks = [json.loads(line) for line in ack_file.read_text().splitlines() if line.strip()]
        problems, households = check_registry(settings, acks)
        stats.trials += 1
        stats.acked = len(acks)
        stats.households = households
        stats.problems += [f"trial {trial}: {p}" for p in problems]
    return stats


def _pg_database(admin_url: str, name: str, *, drop_only: bool = False) -> str:
    import psycopg

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rpartition("/")[0] + "/" + name


def run_crash(
    trials: int = 50,
    backend: str = "both",
    seed: int = 7,
    min_delay: float = 0.2,
    max_delay: float = 3.0,
    pg_admin_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
) -> BenchResult:
    """`sanad bench crash`: `trials` SIGKILLs per backend (sqlite, postgres or both)."""
    import tempfile

    from sanad.config import Settings

    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    if any(b not in {"sqlite", "postgres"} for b in backends) or trials < 1:
        raise BenchmarkParamError("backend must be sqlite, postgres or both; trials >= 1")
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    for b in backends:
        with tempfile.TemporaryDirectory(prefix=f"sanad-crash-{b}-") as tmp:
            work = Path(tmp)
            db_name = f"sanad_crash_{os.getpid()}"
            url = _pg_database(pg_admin_url, db_name) if b == "postgres" else None
            try:
                started = time.perf_counter()
                stats = run_trials(
                    Settings(home=work / "home", database_url=url), trials=trials, seed=seed,
                    min_delay=min_delay, max_delay=max_delay, work=work, backend=b,
                )
                elapsed = time.perf_counter() - started
            finally:
                if url:
                    _pg_database(pg_admin_url, db_name, drop_only=True)
        figures[f"{b}_trials"] = stats.trials
        figures[f"{b}_acked_households"] = stats.acked
        figures[f"{b}_households_in_db"] = stats.households
        figures[f"{b}_problems"] = len(stats.problems)
        figures[f"{b}_seconds"] = elapsed
        notes[f"{b}_problems"] = "; ".join(stats.problems[:20]) or "none"
    notes["method"] = (
        "each trial: start the enrolment driver, wait a random delay in "
        f"[{min_delay}, {max_delay}] s, SIGKILL, reopen + catch up, check acks/orphans/index/audit"
    )
    return BenchResult(name="crash", params={"trials": trials, "backend": backend, "seed": seed,
                                             "min_delay": min_delay, "max_delay": max_delay},
                       figures=figures, notes=notes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="sanad crash-test enrolment driver")
    parser.add_argument("--driver", action="store_true", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--db-url")
    parser.add_argument("--ack-file", required=True)
    parser.add_argument("--start", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    _driver(args.home, args.db_url, args.ack_file, args.start, args.seed)


if __name__ == "__main__":
    main()

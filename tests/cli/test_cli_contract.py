"""The CLI contract of the walking skeleton, run as a real subprocess on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from sanad.registry.runtime import Registry

SANAD = [sys.executable, "-m", "sanad"]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SANAD, *args], env=env, capture_output=True, text=True, timeout=300)


def test_demo_list_issue_verify_audit(db_env: dict[str, str], registry: Registry) -> None:
    again = run(db_env, "init")  # idempotent on an initialised registry
    assert again.returncode == 0, again.stderr
    assert "one-time password" not in again.stderr

    demo = run(db_env, "demo", "--people", "60", "--duplicates", "6", "--seed", "5")
    assert demo.returncode == 0, demo.stderr
    report = json.loads(demo.stdout)
    assert report["enrolled"] >= 60
    assert report["injected_duplicates"] == 6
    assert report["caught"] == 6
    assert report["false_matches"] == 0

    listed = run(db_env, "person", "list", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 5 and all("id" in r for r in rows)
    active = next(r for r in rows if r["status"] == "active")

    issued = run(db_env, "card", "issue", active["id"])
    assert issued.returncode == 0, issued.stderr
    card = json.loads(issued.stdout)
    assert card["qr"].startswith("SND1:") and len(card["mrz"]) == 3
    assert Path(card["qr_png"]).is_file()
    assert Path(card["qr_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ok = run(db_env, "verify", card["qr"])
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    tampered = card["qr"][:-3] + ("0" if card["qr"][-3] != "0" else "1") + card["qr"][-2:]
    bad = run(db_env, "verify", tampered)
    assert bad.returncode == 1 and json.loads(bad.stdout)["reasons"]
    garbage = run(db_env, "verify", "not a card ☃")
    assert garbage.returncode == 1 and "Traceback" not in garbage.stderr
    assert run(db_env, "verify").returncode == 2

    intact = run(db_env, "audit", "verify")
    assert intact.returncode == 0, intact.stdout
    assert json.loads(intact.stdout)["ok"] is True

    # An UPDATE made directly in SQL is detected and the first broken row named.
    with registry.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    broken = run(db_env, "audit", "verify")
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["first_broken_seq"] == 3


def test_audit_detects_deleted_rows(db_env: dict[str, str], registry: Registry) -> None:
    assert run(db_env, "demo", "--people", "10", "--duplicates", "0", "--seed", "1").returncode == 0
    with registry.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    broken = run(db_env, "audit", "verify")
    assert broken.returncode == 1 and json.loads(broken.stdout)["first_broken_seq"] == 2


def test_errors_are_one_line_without_traceback(db_env: dict[str, str], tmp_path: Path) -> None:
    for args in (("card", "issue", "not-a-uuid"),
                 ("card", "issue", "00000000-0000-0000-0000-000000000000"),
                 ("verify", "x", "--trust", str(tmp_path / "missing.json")),
                 ("bench", "no-such-benchmark")):
        res = run(db_env, *args)
        assert res.returncode == 1, args
        assert "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert res.stderr.startswith("error ["), res.stderr
    env = {**db_env, "SANAD_HOME": str(tmp_path / "empty"), "SANAD_DATABASE_URL": ""}
    env.pop("SANAD_DATABASE_URL")
    res = run(env, "person", "list")
    assert res.returncode == 1 and "not_initialised" in res.stderr


def test_a_held_capture_is_decided_from_the_cli(db_env: dict[str, str],
                                                registry: Registry) -> None:
    """`sanad adjudication decide` on `recapture` cases: the same CLI user cannot make both
    decisions of an acceptance (two-person rule, a one-line error); a rejection resolves the
    case at once."""
    import numpy as np

    from sanad.registry.enrolment import EnrolmentContext
    from sanad.registry.recapture import recapture_person
    from sanad.registry.schemas import BiometricsUpdate
    from tests import factories

    rng = np.random.default_rng(77)
    pid = factories.enrol(registry, factories.alone(factories.member(
        1777, rng))).members[0].person_id
    assert pid is not None

    def hold() -> str:
        held = recapture_person(
            registry.sessions, registry.gallery, registry.settings, person_id=pid,
            data=BiometricsUpdate.model_validate({
                "reason": "appearance_changed", "face": factories.face(1778, rng),
                "request_adjudication": True}),
            ctx=EnrolmentContext(officer="o-1"))
        assert held.held and held.case_id is not None
        return str(held.case_id)

    case, other = hold(), hold()

    first = run(db_env, "adjudication", "decide", case, "--verdict", "same_person",
                "--reason", "same child")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["status"] == "awaiting_second"
    again = run(db_env, "adjudication", "decide", case, "--verdict", "same_person",
                "--reason", "same child")
    assert again.returncode != 0 and "another adjudicator" in again.stderr
    assert "Traceback" not in again.stderr and len(again.stderr.strip().splitlines()) == 1
    rejected = run(db_env, "adjudication", "decide", other, "--verdict", "different_person",
                   "--reason", "another child")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["decision"] == "different_person"


def test_a_sweep_from_the_cli_searches_every_active_face(db_env: dict[str, str],
                                                          registry: Registry) -> None:
    assert run(db_env, "demo", "--people", "30", "--duplicates", "3", "--seed", "4").returncode == 0
    with registry.engine.connect() as conn:
        active_faces = conn.execute(text(
            "SELECT count(*) FROM biometric_records b JOIN persons p ON p.id = b.person_id "
            "WHERE b.modality = 'face' AND p.status = 'active'")).scalar_one()
        cases = conn.execute(text("SELECT count(*) FROM adjudication_cases")).scalar_one()
    assert active_faces > 0
    screened = run(db_env, "abis", "sweep", "--report-only", "--batch", "7")
    assert screened.returncode == 0, screened.stderr
    report = json.loads(screened.stdout)
    assert report["faces_searched"] == active_faces
    assert report["rechecked"] == report["cases_opened"] == 0 and report["case_ids"] == []
    with registry.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM adjudication_cases")).scalar_one() == cases
        assert conn.execute(text(
            "SELECT count(*) FROM audit_events WHERE action = 'abis.sweep'")).scalar_one() == 1
    refused = run(db_env, "abis", "sweep", "--batch", "0")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr

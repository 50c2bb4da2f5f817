"""The card, keys, verify and mrz commands through `sanad.cli.main` (in process: the CLI's
start-up cost would make subprocesses slow), plus one real subprocess proving the checkpoint
side runs with no database at all: only the exported trust bundle."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sanad.biometrics.face import extract_template
from sanad.credentials.card import issue_qr
from sanad.credentials.keys import IssuerKey, TrustList
from sanad.registry.runtime import Registry
from tests.cards.helpers import enrol
from tests.credentials.cards import random_claims

SANAD = [sys.executable, "-m", "sanad"]
FACES = Path(__file__).parents[1] / "data" / "faces"


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run `sanad ARGS` in process with exactly the SANAD_* variables of `env`."""
    from sanad.cli import main

    def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        import os

        for key in [k for k in os.environ if k.startswith("SANAD_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("SANAD_"):
                monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "argv", ["sanad", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return _run


def _checkpoint_env(db_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A machine with no registry: empty home, unreachable database."""
    env = dict(db_env)
    env["SANAD_HOME"] = str(tmp_path / "checkpoint-home")
    env["SANAD_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    return env


@pytest.mark.slow
def test_issue_export_verify_rotate_revoke(run, db_env: dict[str, str], registry: Registry,
                                           tmp_path: Path) -> None:
    pid, child = enrol(registry, [801, 802], 11)
    issued = run(db_env, "card", "issue", str(pid))
    assert issued.returncode == 0, issued.stderr
    card = json.loads(issued.stdout)

    pdf = tmp_path / "card.pdf"
    made = run(db_env, "card", "pdf", str(pid), "--out", str(pdf))
    assert made.returncode == 0, made.stderr
    assert pdf.read_bytes().startswith(b"%PDF-")

    bundle = tmp_path / "trust.json"
    exported = run(db_env, "keys", "export-trust", "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stdout)
    assert summary["status_list_version"] >= 1

    checkpoint = _checkpoint_env(db_env, tmp_path)
    # A real process on a machine without the registry: nothing but the bundle.
    ok = subprocess.run([*SANAD, "verify", "--trust", str(bundle), "--root-sha256",
                         summary["root_sha256"], card["qr"]],
                        env=checkpoint, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["claims"]["card_number"] == card["card_number"]

    before = run(checkpoint, "verify", "--trust", str(bundle), "--at", "2000-01-01", card["qr"])
    assert before.returncode == 1 and json.loads(before.stdout)["reasons"] == ["not_yet_valid"]
    pinned = run(checkpoint, "verify", "--trust", str(bundle), "--root-sha256", "00" * 32,
                 card["qr"])
    assert pinned.returncode == 1 and "invalid_trust_list" in pinned.stderr

    # Rotate: new cards get the new kid, the old card still verifies with the new bundle.
    rotated = run(db_env, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new_kid = json.loads(rotated.stdout)["kid"]
    other = json.loads(run(db_env, "card", "issue", str(child)).stdout)
    assert other["qr"] != card["qr"]
    revoked = run(db_env, "card", "revoke", card["card_id"], "--reason", "lost")
    assert revoked.returncode == 0, revoked.stderr
    assert run(db_env, "keys", "export-trust", "--out", str(bundle)).returncode == 0
    trust = json.loads(bundle.read_text())["bundle"]
    assert new_kid in {k["kid"] for k in trust["jwks"]["keys"]}
    assert len(trust["signer_certificates"]) == 2
    gone = run(checkpoint, "verify", "--trust", str(bundle), card["qr"])
    assert gone.returncode == 1 and json.loads(gone.stdout)["reasons"] == ["revoked"]
    fine = run(checkpoint, "verify", "--trust", str(bundle), other["qr"])
    assert fine.returncode == 0, fine.stdout
    assert json.loads(fine.stdout)["kid"] == new_kid

    # The status list as its own file, and a checkpoint that has not updated for too long.
    stale_env = {**checkpoint, "SANAD_STATUS_MAX_AGE_HOURS": "0.00001"}
    stale = run(stale_env, "verify", "--trust", str(bundle), other["qr"])
    assert json.loads(stale.stdout)["reasons"] == ["status_stale"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(trust["jwks"]))
    unknown = run(checkpoint, "verify", "--trust", str(jwks), other["qr"])
    assert json.loads(unknown.stdout)["reasons"] == ["status_unknown"]
    status_file = tmp_path / "status.cose"
    status_file.write_bytes(base64.b64decode(trust["status_list"]))
    with_file = run(checkpoint, "verify", "--trust", str(jwks), "--status", str(status_file),
                    card["qr"])
    assert json.loads(with_file.stdout)["reasons"] == ["revoked"]
    status_file.write_bytes(b"garbage")
    broken = run(checkpoint, "verify", "--trust", str(jwks), "--status", str(status_file),
                 card["qr"])
    assert broken.returncode == 1 and broken.stderr.startswith("error [invalid_status_list]")


@pytest.mark.slow
def test_batch_print_and_queue(run, db_env: dict[str, str], registry: Registry,
                               tmp_path: Path) -> None:
    people = enrol(registry, [811, 812, 813], 12)
    for pid in people:
        assert run(db_env, "card", "issue", str(pid)).returncode == 0
    out = tmp_path / "batch.pdf"
    printed = run(db_env, "card", "print", "--batch", str(out))
    assert printed.returncode == 0, printed.stderr
    report = json.loads(printed.stdout)
    assert report["cards"] == 3 and out.read_bytes().startswith(b"%PDF-")
    jobs = [json.loads(line) for line in
            run(db_env, "card", "queue", "--state", "printed").stdout.splitlines()]
    assert {j["state"] for j in jobs} == {"printed"} and len(jobs) == 3
    empty = run(db_env, "card", "print", "--batch", str(out))
    assert empty.returncode == 1 and "card_state_conflict" in empty.stderr
    collected = run(db_env, "card", "collected", jobs[0]["id"], "--by", "holder",
                    "--proof", "fingerprint match")
    assert collected.returncode == 0 and json.loads(collected.stdout)["state"] == "collected"


MRZ_CASES = [
    (["I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6",
      "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"], "TD1"),
    (["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6"], "TD2"),
    (["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
      "L898902C36UTO7408122F1204159ZE184226B<<<<<10"], "TD3"),
]


@pytest.mark.parametrize(("lines", "fmt"), MRZ_CASES, ids=[f for _, f in MRZ_CASES])
def test_mrz_check(run, lines: list[str], fmt: str) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    ok = run(env, "mrz", "check", *lines)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["valid"] is True and report["format"] == fmt
    assert report["fields"]["surname"] == "ERIKSSON"
    # Change the birth date's check digit only.
    bad = list(lines)
    row, col = (1, 6) if fmt == "TD1" else (1, 19)
    digit = bad[row][col]
    bad[row] = bad[row][:col] + str((int(digit) + 1) % 10) + bad[row][col + 1:]
    failed = run(env, "mrz", "check", *bad)
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["valid"] is False
    assert [c["check"] for c in report["failed_checks"]] == ["date_of_birth", "composite"]
    assert report["failed_checks"][0]["found"] == str((int(digit) + 1) % 10)
    assert report["failed_checks"][0]["expected"] == digit


def test_mrz_check_rejects_what_is_not_an_mrz(run) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    for args in (("short", "lines"), ("a" * 30, "b" * 30, "c" * 30), ("X" * 44, "Y" * 36)):
        res = run(env, "mrz", "check", *args)
        assert res.returncode == 1 and res.stderr.startswith("error [invalid_mrz]"), args


def test_verify_with_a_photo_of_the_holder(run, tmp_path: Path) -> None:
    """The 1:1 face check with the real face model: the card carries the int8 template of
    one photo; another photo of the same person matches, a photo of someone else does not."""
    enrolled = extract_template((FACES / "obama.jpg").read_bytes())
    template = np.rint(enrolled / np.linalg.norm(enrolled) * 127).astype(np.int8).tobytes()
    key = IssuerKey.generate()
    now = datetime.now(UTC)
    qr = issue_qr(random_claims(face_template=template, status_index=None, issued_at=now,
                                not_before=now, expires_at=now + timedelta(days=1)), key)
    trust = tmp_path / "jwks.json"
    TrustList.from_keys([key]).save(trust)
    env = {"SANAD_HOME": str(tmp_path / "home")}
    same = run(env, "verify", "--trust", str(trust), "--photo", str(FACES / "obama2.jpg"), qr)
    assert same.returncode == 0, same.stdout + same.stderr
    assert json.loads(same.stdout)["face_score"] > 0.5
    other = run(env, "verify", "--trust", str(trust), "--photo", str(FACES / "biden.jpg"), qr)
    assert other.returncode == 1
    assert json.loads(other.stdout)["reasons"] == ["face_mismatch"]
    nobody = run(env, "verify", "--trust", str(trust), "--photo", str(FACES / "coffee.jpg"), qr)
    assert nobody.returncode == 1 and nobody.stderr.startswith("error ["), nobody.stderr

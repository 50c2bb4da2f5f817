"""`sanad biometrics template|compare` (no database needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from sanad.cli import app

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"


def run(*args: str):
    return CliRunner().invoke(app, ["biometrics", *args])


def test_template_accepts_and_rejects() -> None:
    ok = run("template", str(FACES / "obama.jpg"))
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert body["accepted"] is True and body["reasons"] == [] and body["dim"] == 128
    assert 0 < body["quality"] <= 1
    rejected = run("template", str(FACES / "coffee.jpg"))
    assert rejected.exit_code == 1
    assert json.loads(rejected.stdout)["reasons"] == ["no_face"]


def test_compare_same_and_different_people() -> None:
    same = run("compare", str(FACES / "obama.jpg"), str(FACES / "obama3.jpg"))
    assert same.exit_code == 0, same.output
    body = json.loads(same.stdout)
    assert body["same"] is True and body["score"] >= body["threshold"]
    other = json.loads(run("compare", str(FACES / "obama.jpg"), str(FACES / "biden.jpg")).stdout)
    assert other["same"] is False and other["score"] < other["threshold"]


def test_bad_files_raise_domain_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    for args, code in (
        (("template", str(text)), "invalid_image"),
        (("template", str(tmp_path / "missing.jpg")), "invalid_input"),
        (("compare", str(FACES / "obama.jpg"), str(FACES / "chelsea.jpg")), "face_rejected"),
    ):
        done = run(*args)
        assert done.exception is not None and getattr(done.exception, "code", None) == code


def test_a_real_subprocess_prints_one_line_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    done = subprocess.run(
        [sys.executable, "-m", "sanad", "biometrics", "template", str(text)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error [invalid_image]") and "Traceback" not in done.stderr

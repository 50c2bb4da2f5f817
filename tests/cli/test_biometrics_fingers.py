"""`sanad biometrics synth-fingers` and `sanad biometrics fingers` (no database needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sanad.biometrics.finger import (
    FingerPosition,
    compare_fingers,
    decode_record,
    prepare_fingers,
)
from sanad.cli import app, main


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["biometrics", *args])


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int | str | None, str, str]:
    """The `sanad` entry point in-process: exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["sanad", "biometrics", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def synth(out: Path, *args: str) -> dict[str, object]:
    done = run("synth-fingers", str(out), *args)
    assert done.exit_code == 0, done.output
    body: dict[str, object] = json.loads(done.stdout)
    return body


def test_synth_writes_a_record_with_the_asked_fingers(tmp_path: Path) -> None:
    out = tmp_path / "p3.fmr"
    body = synth(out, "--person", "3", "--capture", "2", "--fingers", "7,1,2,6")
    data = out.read_bytes()
    assert body == {"path": str(out), "person": 3, "capture": 2, "seed": 19794,
                    "positions": [7, 1, 2, 6], "bytes": len(data)}
    record = decode_record(data)
    assert [int(v.position) for v in record.views] == [7, 1, 2, 6]
    assert all(len(v.minutiae) > 0 for v in record.views)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p3.fmr"]  # no temp file left


def test_default_is_all_ten_fingers_and_output_is_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.fmr", tmp_path / "b.fmr", tmp_path / "c.fmr"
    assert synth(a, "--person", "5")["positions"] == list(range(1, 11))
    synth(b, "--person", "5", "--capture", "1")
    synth(c, "--person", "5", "--seed", "8")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()  # the seed picks another population
    assert [int(v.position) for v in decode_record(a.read_bytes()).views] == list(range(1, 11))


def test_a_second_capture_matches_the_same_fingers_not_another_person(tmp_path: Path) -> None:
    fingers = ("--fingers", "1,2,6,7")
    files = {name: tmp_path / f"{name}.fmr" for name in ("first", "again", "other")}
    synth(files["first"], "--person", "3", "--capture", "1", *fingers)
    synth(files["again"], "--person", "3", "--capture", "2", *fingers)
    synth(files["other"], "--person", "4", "--capture", "1", *fingers)
    assert files["first"].read_bytes() != files["again"].read_bytes()
    prepared = {name: prepare_fingers([path.read_bytes()]) for name, path in files.items()}
    mate = compare_fingers(prepared["first"], prepared["again"]).scores
    other = compare_fingers(prepared["first"], prepared["other"]).scores
    assert set(mate) == set(other) == {FingerPosition(c) for c in (1, 2, 6, 7)}
    # Not every finger: capture 1's right thumb is a partial print (10 minutiae), as happens.
    assert sorted(mate.values())[-3] > max(other.values()), (mate, other)
    assert sum(mate.values()) > 2 * sum(other.values()), (mate, other)


def test_fingers_prints_the_views(tmp_path: Path) -> None:
    out = tmp_path / "p3.fmr"
    synth(out, "--person", "3", "--fingers", "2,7")
    done = run("fingers", str(out))
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    record = decode_record(out.read_bytes())
    assert body["edition"] == "ISO/IEC 19794-2:2005"
    assert (body["image_width"], body["image_height"]) == (320, 400)
    assert body["bytes"] == out.stat().st_size
    assert [(v["position"], v["finger"]) for v in body["views"]] == [
        (2, "right_index"), (7, "left_index")]
    assert [v["minutiae"] for v in body["views"]] == [len(v.minutiae) for v in record.views]
    assert [v["quality"] for v in body["views"]] == [v.quality for v in record.views]


def test_fingers_names_an_unknown_position_null(tmp_path: Path) -> None:
    out = tmp_path / "p1.fmr"
    synth(out, "--person", "1", "--fingers", "2")
    data = bytearray(out.read_bytes())
    data[24] = 0  # the first view's finger position byte, right after the 24-byte header
    out.write_bytes(bytes(data))
    view = json.loads(run("fingers", str(out)).stdout)["views"][0]
    assert view["position"] == 0 and view["finger"] is None


def test_bad_records_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.fmr"
    synth(good, "--person", "2", "--fingers", "2,7")
    data = good.read_bytes()
    cases = {
        "garbage.fmr": b"\x89PNG\r\n\x1a\n" + bytes(range(40)),
        "cut.fmr": data[:-7],  # the length field no longer matches
        "header.fmr": data[:15],  # not even a whole header
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        status, out, err = run_main(monkeypatch, capsys, "fingers", str(tmp_path / name))
        assert status == 1 and out == "", (name, out, err)
        assert err.startswith("error [invalid_finger_template]: "), (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (name, err)
    status, _, err = run_main(monkeypatch, capsys, "fingers", str(tmp_path / "missing.fmr"))
    assert status == 1 and err.startswith("error [invalid_input]: cannot read")


@pytest.mark.parametrize("codes", ["0", "11", "2,x", "2,,7", "-1", "2,2", "", "2²"])
def test_bad_finger_codes_are_one_line_errors(
    codes: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "x.fmr"
    status, _, err = run_main(
        monkeypatch, capsys, "synth-fingers", str(out), "--person", "1", f"--fingers={codes}"
    )
    assert status == 1 and err.startswith("error [invalid_input]: "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_an_unwritable_destination_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for target in (tmp_path / "no-such-dir" / "x.fmr", tmp_path):
        status, _, err = run_main(monkeypatch, capsys, "synth-fingers", str(target),
                                  "--person", "1")
        assert status == 1 and err.startswith("error [invalid_input]: cannot write"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the failed write left nothing


def test_a_real_subprocess_prints_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.fmr"
    junk.write_bytes(b"FMR\x00 20\x00" + b"\x00" * 3)
    done = subprocess.run(
        [sys.executable, "-m", "sanad", "biometrics", "fingers", str(junk)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error [invalid_finger_template]: finger template truncated")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr

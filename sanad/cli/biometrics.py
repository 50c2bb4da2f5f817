"""`sanad biometrics …`: face photos and fingerprint minutiae records from files (no database)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from sanad.cli._common import group, print_json, settings
from sanad.errors import InvalidInput

biometrics_app = group(
    "biometrics",
    "Face quality checks and templates from image files; ISO/IEC 19794-2 fingerprint minutiae "
    "records (inspect, synthesise).",
)

ImageArg = Annotated[Path, typer.Argument(help="Image file (JPEG, PNG, ...).")]

# Default seed of `synth-fingers`. Not `sanad demo`'s default (7), so synthetic people made
# here are not the fingers of the people a default demo run enrolled.
SYNTH_FINGERS_SEED = 19794


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field=field) from None


def _write_atomic(path: Path, data: bytes, field: str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}", field=field) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # synthetic, not personal data: mkstemp's 0600 would only hinder
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {path}: {exc.strerror}", field=field) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finger_codes(text: str) -> tuple[int, ...]:
    """Parse ``--fingers``: distinct ISO finger codes 1..10, comma-separated."""
    codes: list[int] = []
    for part in text.split(","):
        item = part.strip()
        if not item.isdecimal() or not 1 <= int(item) <= 10:
            raise InvalidInput(
                f"finger codes are 1..10 separated by commas, got {item!r} in {text!r}",
                field="fingers",
            )
        if int(item) in codes:
            raise InvalidInput(f"finger {item} is listed twice in {text!r}", field="fingers")
        codes.append(int(item))
    return tuple(codes)


@biometrics_app.command("template")
def template(image: ImageArg) -> None:
    """Check a face photo; prints JSON (accepted, quality, reasons, dim, measures).

    Exit 0 when a template can be made, 1 when the photo is rejected (reasons say why).
    """
    from sanad.biometrics.face import default_extractor

    extractor = default_extractor()
    result = extractor.analyse(_read(image, "image"))
    print_json({**result.to_json(), "extractor": extractor.identifier})
    raise typer.Exit(0 if result.accepted else 1)


@biometrics_app.command("compare")
def compare(image1: ImageArg, image2: ImageArg) -> None:
    """Compare the faces of two photos; prints JSON (score, same, threshold).

    ``same`` applies SANAD_VERIFY_FACE_THRESHOLD (the 1:1 threshold). A photo without an
    acceptable face is an error (`face_rejected`, with the reasons).
    """
    from sanad.biometrics.face import extract_template, similarity

    threshold = settings().verify_face_threshold
    a = extract_template(_read(image1, "image1"))
    b = extract_template(_read(image2, "image2"))
    score = similarity(a, b)
    print_json({"score": round(score, 4), "same": score >= threshold, "threshold": threshold})


@biometrics_app.command("fingers")
def fingers(
    file: Annotated[
        Path, typer.Argument(help="ISO/IEC 19794-2:2005 finger minutiae record (binary).")
    ],
) -> None:
    """Inspect a fingerprint minutiae record; prints JSON (edition, image size, views).

    Each view gives its ISO finger position code, the finger's name (null for 0, unknown),
    the number of minutiae and the finger quality (0..100, 0 = not reported). A file that is
    not a valid record is an error (`invalid_finger_template`, naming the bad field).
    """
    from sanad.biometrics.finger import EDITION, FingerPosition, decode_record

    data = _read(file, "file")
    record = decode_record(data)
    views: list[dict[str, Any]] = [
        {
            "position": int(v.position),
            "finger": None if v.position == FingerPosition.UNKNOWN else v.position.name.lower(),
            "minutiae": len(v.minutiae),
            "quality": v.quality,
            "view_number": v.view_number,
            "impression_type": v.impression_type,
        }
        for v in record.views
    ]
    print_json(
        {
            "edition": EDITION,
            "bytes": len(data),
            "image_width": record.image_width,
            "image_height": record.image_height,
            "resolution_ppcm": [record.resolution_x, record.resolution_y],
            "views": views,
        }
    )


@biometrics_app.command("synth-fingers")
def synth_fingers(
    out: Annotated[Path, typer.Argument(help="Record file to write (replaced if it exists).")],
    person: Annotated[
        int, typer.Option(min=0, help="Synthetic person: which set of ten fingers.")
    ],
    capture: Annotated[
        int, typer.Option(min=1, help="Capture number: which impression of those fingers.")
    ] = 1,
    finger_codes: Annotated[
        str | None,
        typer.Option(
            "--fingers",
            help="ISO finger codes 1..10, comma-separated (1 right thumb, 2 right index, "
            "6 left thumb, 7 left index, ...). Default: all ten.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the synthetic population.")
    ] = SYNTH_FINGERS_SEED,
) -> None:
    """Write a synthetic ISO/IEC 19794-2:2005 fingerprint record; prints JSON (path, bytes, ...).

    One record with a view per finger, for demos, training and integration tests. The same
    --person, --capture and --seed always give the same bytes. The same --person with another
    --capture is a fresh impression of the same synthetic fingers (what a re-enrolment attempt
    would give), so deduplication can be tried in the web enrolment form; another --person has
    other fingers. `--seed 7` gives the fingers of the people a default `sanad demo` enrolled
    (persons 0 .. people-1).
    """
    import numpy as np

    from sanad.biometrics.finger import TEN_FINGERS, encode_record
    from sanad.biometrics.finger.synthetic import SyntheticFingers

    if finger_codes is None:
        codes = tuple(int(f) for f in TEN_FINGERS)
    else:
        codes = _finger_codes(finger_codes)
    rng = np.random.default_rng([seed, person, capture])
    record = SyntheticFingers(seed).capture_record(person, codes, rng)
    data = encode_record(record)
    _write_atomic(out, data, "out")
    print_json(
        {
            "path": str(out),
            "person": person,
            "capture": capture,
            "seed": seed,
            "positions": list(codes),
            "bytes": len(data),
        }
    )

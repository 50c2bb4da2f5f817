"""`sanad biometrics …`: face quality and templates from image files (no database needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sanad.cli._common import group, print_json, settings
from sanad.errors import InvalidInput

biometrics_app = group("biometrics", "Face quality checks and templates from image files.")

ImageArg = Annotated[Path, typer.Argument(help="Image file (JPEG, PNG, ...).")]


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field=field) from None


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

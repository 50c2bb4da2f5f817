"""The real face model (YuNet + SFace) on real photographs shipped in tests/data/faces."""

from __future__ import annotations

import shutil
import threading
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest

from sanad.abis.templates import TemplateError, decode_template, encode_template
from sanad.biometrics.face import (
    MODEL_SHA256,
    SFACE_DIM,
    SFACE_FILE,
    FaceAnalysis,
    FaceExtractor,
    FaceModelUnavailable,
    FaceRejected,
    InvalidImage,
    SFaceExtractor,
    default_extractor,
    extract_template,
    model_dir,
    similarity,
    verified_model_files,
)
from sanad.biometrics.quality import Reason
from sanad.config import Settings

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"
OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face2.jpg")
OTHERS = ("biden.jpg", "astronaut.jpg")


def photo(name: str) -> bytes:
    return (FACES / name).read_bytes()


def pixels(name: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(photo(name), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def extractor() -> SFaceExtractor:
    return default_extractor()


@pytest.fixture(scope="module")
def templates(extractor: SFaceExtractor) -> dict[str, np.ndarray]:
    return {name: extract_template(photo(name), extractor=extractor) for name in OBAMA + OTHERS}


def test_extractor_satisfies_the_protocol(extractor: SFaceExtractor) -> None:
    as_protocol: FaceExtractor = extractor
    assert as_protocol.dim == SFACE_DIM == 128
    assert "sface" in as_protocol.identifier and "yunet" in as_protocol.identifier


def test_templates_are_unit_float32(templates: dict[str, np.ndarray]) -> None:
    for t in templates.values():
        assert t.dtype == np.float32 and t.shape == (SFACE_DIM,)
        assert np.linalg.norm(t) == pytest.approx(1.0, abs=1e-5)


def test_same_person_scores_above_and_strangers_below_the_thresholds(
    templates: dict[str, np.ndarray],
) -> None:
    s = Settings()
    genuine = [similarity(templates[a], templates[b]) for a, b in combinations(OBAMA, 2)]
    people = [OBAMA[0], *OTHERS]
    impostor = [similarity(templates[a], templates[b]) for a, b in combinations(people, 2)]
    impostor += [similarity(templates[o], templates[x]) for o in OBAMA for x in OTHERS]
    assert min(genuine) >= max(s.dedup_match_threshold, s.verify_face_threshold)
    assert max(impostor) < s.dedup_review_threshold
    # SFace templates are not centred: strangers average well above zero (docs/abis.md).
    assert 0.05 < float(np.mean(impostor)) < 0.25


def test_analysis_is_deterministic_and_thread_safe(extractor: SFaceExtractor) -> None:
    want = extract_template(photo("obama.jpg"), extractor=extractor)
    got: list[np.ndarray] = []

    def work() -> None:
        got.append(extract_template(photo("obama.jpg"), extractor=extractor))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3
    assert all(np.allclose(g, want, atol=1e-6) for g in got)


def test_grey_png_of_a_colour_photo_is_still_the_same_person(
    extractor: SFaceExtractor, templates: dict[str, np.ndarray]
) -> None:
    grey = cv2.cvtColor(pixels("obama.jpg"), cv2.COLOR_BGR2GRAY)
    t = extract_template(png(grey), extractor=extractor)
    assert similarity(t, templates["obama.jpg"]) > 0.85


def test_accepted_analysis_json(extractor: SFaceExtractor) -> None:
    result = extractor.analyse(photo("obama.jpg"))
    assert isinstance(result, FaceAnalysis) and result.accepted
    body = result.to_json()
    assert body["reasons"] == [] and body["dim"] == 128
    assert 0 < body["quality"] <= 1
    assert body["measures"]["faces"] == 1 and body["measures"]["face_px"] > 60


def reasons(extractor: SFaceExtractor, image: bytes) -> tuple[Reason, ...]:
    result = extractor.analyse(image)
    assert (result.template is None) == bool(result.reasons)
    return result.reasons


@pytest.mark.parametrize("name", ["coffee.jpg", "chelsea.jpg"])
def test_no_face(extractor: SFaceExtractor, name: str) -> None:
    assert reasons(extractor, photo(name)) == (Reason.NO_FACE,)


def test_two_faces(extractor: SFaceExtractor) -> None:
    a, b = pixels("obama.jpg"), pixels("astronaut.jpg")
    b = cv2.resize(b, (round(b.shape[1] * a.shape[0] / b.shape[0]), a.shape[0]))
    assert Reason.MULTIPLE_FACES in reasons(extractor, png(np.hstack([a, b])))


def test_face_too_small(extractor: SFaceExtractor) -> None:
    small = cv2.resize(pixels("obama.jpg"), None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    assert Reason.FACE_TOO_SMALL in reasons(extractor, png(small))


@pytest.mark.parametrize("name", ["obama.jpg", "astronaut.jpg"])
def test_blurred(extractor: SFaceExtractor, name: str) -> None:
    blurred = cv2.GaussianBlur(pixels(name), (0, 0), 3)
    assert Reason.BLURRED in reasons(extractor, png(blurred))


def test_too_dark(extractor: SFaceExtractor) -> None:
    dark = (pixels("obama.jpg") * 0.25).astype(np.uint8)
    assert Reason.TOO_DARK in reasons(extractor, png(dark))


def test_too_bright(extractor: SFaceExtractor) -> None:
    bright = np.clip(pixels("obama.jpg").astype(np.int32) * 2 + 80, 0, 255).astype(np.uint8)
    assert Reason.TOO_BRIGHT in reasons(extractor, png(bright))


def test_strong_pose(extractor: SFaceExtractor) -> None:
    # The cameraman looks down into his camera, head turned: a three-quarter view.
    result = extractor.analyse(photo("camera.jpg"))
    assert result.reasons == (Reason.STRONG_POSE,)
    assert result.measures is not None and abs(result.measures.yaw) > 0.35


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"\xff\xd8\xff" + b"x" * 10],
)
def test_not_an_image(extractor: SFaceExtractor, data: bytes) -> None:
    with pytest.raises(InvalidImage) as info:
        extractor.analyse(data)
    assert info.value.code == "invalid_image"


def test_truncated_jpeg_is_rejected_not_crashing(extractor: SFaceExtractor) -> None:
    data = photo("obama.jpg")[:200]
    with pytest.raises(InvalidImage):
        extractor.analyse(data)


def test_extract_template_raises_with_reasons(extractor: SFaceExtractor) -> None:
    with pytest.raises(FaceRejected) as info:
        extract_template(photo("coffee.jpg"), extractor=extractor)
    assert info.value.code == "face_rejected"
    assert info.value.reasons == (Reason.NO_FACE,)
    assert "no_face" in info.value.message


def test_truncated_and_wrong_dimension_templates(templates: dict[str, np.ndarray]) -> None:
    raw = encode_template(templates["obama.jpg"])
    assert np.array_equal(decode_template(raw, SFACE_DIM), templates["obama.jpg"])
    with pytest.raises(TemplateError):
        decode_template(raw[:-4], SFACE_DIM)
    with pytest.raises(TemplateError):
        decode_template(raw + raw[:4], SFACE_DIM)
    with pytest.raises(ValueError, match="length"):
        similarity(templates["obama.jpg"], templates["obama.jpg"][:64])
    with pytest.raises(ValueError):
        similarity(np.zeros(128), templates["obama.jpg"])


def test_model_files_are_checked_against_pinned_digests(tmp_path: Path) -> None:
    files = verified_model_files()
    assert set(files) == set(MODEL_SHA256)
    copy = tmp_path / "models"
    shutil.copytree(model_dir(), copy)
    tampered = copy / SFACE_FILE
    data = bytearray(tampered.read_bytes())
    data[1000] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(FaceModelUnavailable, match="sha256"):
        SFaceExtractor(models=copy)
    tampered.unlink()
    with pytest.raises(FaceModelUnavailable, match="missing"):
        SFaceExtractor(models=copy)

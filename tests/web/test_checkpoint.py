"""The checkpoint page in Debian's Chromium: upload a photo of a card (decoded server-side),
and scan with the camera (Chromium's fake camera plays a video of the card; jsQR decodes it
in the page, loaded from /static/vendor)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from sanad.registry.db import transaction
from sanad.registry.runtime import Registry
from sanad.registry.users import create_user
from tests import factories
from tests.web.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

PASSWORD = "pw-checkpoint-officer-1"


def _card(client: TestClient, headers: dict[str, str], identity: int) -> dict[str, str]:
    payload = factories.household([identity], np.random.default_rng(identity))
    pid = client.post("/households", json=payload, headers=headers).json()["members"][0][
        "person_id"]
    card = client.post(f"/persons/{pid}/cards", headers=headers)
    assert card.status_code == 201, card.text
    return dict(card.json())


def _back_png(client: TestClient, headers: dict[str, str], card_id: str) -> bytes:
    resp = client.get(f"/cards/{card_id}/preview.png?side=back&dpi=300", headers=headers)
    assert resp.status_code == 200
    png: bytes = resp.content
    return png


def _verifier(registry: Registry) -> None:
    with transaction(registry.sessions) as s:
        create_user(s, username="checkpoint-1", password=PASSWORD, roles=["verifier"],
                    actor="test")


def _sign_in(page: Page, live_url: str) -> None:
    page.goto(live_url + "/login")
    page.get_by_label("Username").fill("checkpoint-1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(live_url + "/checkpoint")
    expect(page.get_by_role("heading", name="Checkpoint", exact=True)).to_be_visible()


@pytest.mark.browser
def test_upload_a_photo_of_the_card(
    browser: Browser, live_url: str, client: TestClient, admin_headers: dict[str, str],
    registry: Registry, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    card = _card(client, admin_headers, 901)
    photo = tmp_path / "card-back.png"
    # A phone photo is not a clean render: shrink it and add noise.
    image = Image.open(io.BytesIO(_back_png(client, admin_headers, card["id"]))).convert("L")
    image = image.resize((image.width * 2 // 3, image.height * 2 // 3))
    noisy = np.asarray(image, dtype=np.int16) + np.random.default_rng(1).integers(
        -25, 25, size=(image.height, image.width))
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(photo)
    _verifier(registry)
    page = browser.new_page()
    try:
        _sign_in(page, live_url)
        assert page.evaluate("typeof jsQR") == "function"  # the vendored decoder loaded
        page.set_input_files("#card-image", str(photo))
        page.get_by_role("button", name="Verify picture").click()
        expect(page.locator("#verdict-title")).to_have_text("VALID")
        expect(page.locator("#claim-card-number")).to_have_text(card["card_number"])
        expect(page.locator("#claim-family-name")).to_have_text("Al-Rashid")
        expect(page.locator("#claim-name-ar")).to_contain_text("محمد")
        ARTIFACTS.mkdir(exist_ok=True)
        backend = request.node.callspec.params["settings"]
        page.screenshot(path=str(ARTIFACTS / f"checkpoint-{backend}.png"), full_page=True)

        revoked = client.post(f"/cards/{card['id']}/revoke", json={"reason": "lost"},
                              headers=admin_headers)
        assert revoked.status_code == 200
        page.set_input_files("#card-image", str(photo))
        page.get_by_role("button", name="Verify picture").click()
        expect(page.locator("#verdict-title")).to_have_text("NOT VALID")
        expect(page.locator("[data-reason=revoked]")).to_be_visible()
        expect(page.locator("#claim-card-number")).to_have_text(card["card_number"])

        blank = tmp_path / "blank.png"
        Image.new("L", (200, 200), 255).save(blank)
        page.set_input_files("#card-image", str(blank))
        page.get_by_role("button", name="Verify picture").click()
        expect(page.locator("#cp-error")).to_contain_text("no QR code")

        page.get_by_label("Scanner output or pasted code").fill(card["qr"][:-4] + "AAAA")
        page.get_by_role("button", name="Verify code").click()
        expect(page.locator("#verdict-title")).to_have_text("NOT VALID")
    finally:
        page.close()


def _y4m(frame: Image.Image, path: Path, frames: int = 10) -> None:
    """A tiny YUV4MPEG2 video of one still frame (what Chromium's fake camera plays)."""
    rgb = np.asarray(frame.convert("RGB"), dtype=np.float32)
    y = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)
    h, w = y.shape
    chroma = np.full((h // 2, w // 2), 128, np.uint8).tobytes()
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + y.tobytes() + chroma + chroma)


@pytest.mark.browser
def test_scan_with_the_camera(
    browser: Browser, live_url: str, client: TestClient, admin_headers: dict[str, str],
    registry: Registry, tmp_path: Path,
) -> None:
    card = _card(client, admin_headers, 911)
    back = Image.open(io.BytesIO(_back_png(client, admin_headers, card["id"])))
    qr_side = back.crop((0, 0, back.height * 2 // 3, back.height * 2 // 3)).resize((640, 640))
    frame = Image.new("RGB", (800, 720), "white")
    frame.paste(qr_side, (80, 40))
    video = tmp_path / "camera.y4m"
    _y4m(frame, video)
    _verifier(registry)
    camera_browser = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream",
              "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"],
    )
    try:
        context = camera_browser.new_context(permissions=["camera"])
        page = context.new_page()
        _sign_in(page, live_url)
        page.get_by_role("button", name="Start camera").click()
        expect(page.locator("#verdict-title")).to_have_text("VALID", timeout=20_000)
        expect(page.locator("#claim-card-number")).to_have_text(card["card_number"])
        expect(page.locator("#verdict")).to_contain_text("from camera")
    finally:
        camera_browser.close()

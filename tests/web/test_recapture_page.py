"""Re-capture on the person page, in Chromium: a registration officer adds a new photo and the
fingerprint that was bandaged at enrolment (stored: it is the same face), then tries someone
else's photo (refused, nothing changes). Card officers have no such form."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from sanad.biometrics.finger import encode_record
from sanad.registry.models import BiometricRecord, Role
from sanad.registry.runtime import Registry
from tests import factories
from tests.factories import count_rows
from tests.web.conftest import role_users, shot, sign_in

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"
SLOW = 30_000  # the face model on a shared 2-core machine


@pytest.mark.browser
def test_an_officer_captures_a_person_again(
    browser: Browser, live_url: str, registry: Registry, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["settings"]
    role_users(registry)
    photo = base64.b64encode((FACES / "obama.jpg").read_bytes()).decode()
    result = factories.enrol(registry, factories.alone(factories.member(
        801, np.random.default_rng(8), face={"photo": photo},
        missing_biometrics=[{"modality": "finger:2", "reason": "bandaged"}])))
    person = f"{live_url}/people/{result.members[0].person_id}"

    ctx, page = sign_in(browser, live_url, Role.REGISTRATION_OFFICER)
    page.goto(person)
    expect(page.locator('td[data-finger="2"]')).to_contain_text("bandaged")
    expect(page.locator("#recapture-form")).not_to_be_visible()  # folded until needed
    page.locator("#recapture summary").click()
    page.get_by_label("Why").select_option("previously_missing")
    page.locator("#recap-photo").set_input_files(str(FACES / "obama2.jpg"))
    record = factories.FINGERS.capture_record(801, (2,), np.random.default_rng(81))
    page.locator("#recap-fingers").set_input_files([{
        "name": "right-index.fmr", "mimeType": "application/octet-stream",
        "buffer": encode_record(record)}])
    page.get_by_label("Note").fill("bandage removed")
    shot(page, "person-recapture-form", backend)
    page.get_by_role("button", name="Verify and store").click()

    expect(page.locator("#recapture-notice")).to_contain_text("matched the enrolled face",
                                                              timeout=SLOW)
    expect(page.locator('td[data-finger="2"]')).to_have_attribute("data-state", "captured")
    expect(page.locator("#biometrics caption")).to_have_text("Fingerprints: 1/10")
    stored = count_rows(registry, BiometricRecord)

    # Someone else's photo: refused with the reason, nothing stored.
    page.locator("#recapture summary").click()
    page.locator("#recap-photo").set_input_files(str(FACES / "biden.jpg"))
    page.get_by_role("button", name="Verify and store").click()
    expect(page.locator("p.error[role=alert]")).to_contain_text("does not match", timeout=SLOW)
    shot(page, "person-recapture-refused", backend)
    assert count_rows(registry, BiometricRecord) == stored
    ctx.close()

    ctx, page = sign_in(browser, live_url, Role.CARD_OFFICER)
    page.goto(person)
    expect(page.locator("#identity")).to_be_visible()
    expect(page.locator("#recapture")).to_have_count(0)
    ctx.close()

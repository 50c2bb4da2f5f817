"""Fingerprints and biometric exceptions in Chromium: an officer attaches the scanner's ISO/IEC
19794-2 file and marks an amputated finger for one member, and enrols another whose face cannot
be photographed on fingerprints alone; the person page shows what was captured and what was
not; the adjudicator sees why the fingerprint-only member is in the queue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, FilePayload, expect

from sanad.biometrics.finger import encode_record
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from tests import factories
from tests.web.conftest import role_users, shot, sign_in

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"
SLOW = 30_000  # the face model on a shared 2-core machine


def _scan(identity: int, positions: tuple[int, ...]) -> FilePayload:
    """A multi-view ISO record as a Playwright file payload."""
    record = factories.FINGERS.capture_record(identity, positions,
                                              np.random.default_rng(identity))
    return {"name": f"scan-{identity}.fmr", "mimeType": "application/octet-stream",
            "buffer": encode_record(record)}


@pytest.mark.browser
def test_fingers_exceptions_and_a_face_exception_case(
    browser: Browser, live_url: str, registry: Registry, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["settings"]
    role_users(registry)

    ctx, page = sign_in(browser, live_url, Role.REGISTRATION_OFFICER)
    page.goto(live_url + "/enrol?members=2")
    page.get_by_label("Province").fill("Irbid")
    page.get_by_label("District").fill("Ramtha")
    for i, (given, family, dob, sex) in enumerate(
        [("Samir", "Haddad", "1979-02-11", "M"), ("Layla", "Haddad", "1983-07-30", "F")]
    ):
        page.locator(f"#m{i}_given_name").fill(given)
        page.locator(f"#m{i}_family_name").fill(family)
        page.locator(f"#m{i}_date_of_birth").fill(dob)
        page.locator(f"#m{i}_sex").select_option(sex)
    page.locator("#m1_relationship_to_head").select_option("spouse")

    # Member 1: photo, the scanner's file with three fingers, the left index amputated.
    page.locator("#m0_photo").set_input_files(str(FACES / "obama.jpg"))
    expect(page.locator("#m0_photo-feedback")).to_contain_text("Photo quality is good",
                                                               timeout=SLOW)
    bio = page.locator("#m0-biometrics")
    expect(page.locator("#m0_fingers")).not_to_be_visible()  # folded until needed
    bio.locator("summary").click()
    # The page says at once what a file holds, or why it is refused.
    not_a_scan: FilePayload = {"name": "photo.jpg", "mimeType": "image/jpeg",
                               "buffer": (FACES / "obama.jpg").read_bytes()}
    page.locator("#m0_fingers").set_input_files([not_a_scan])
    expect(page.locator("#m0_fingers-feedback .error")).to_contain_text(
        "not an ISO/IEC 19794-2 finger minutiae record")
    page.locator("#m0_fingers").set_input_files([_scan(701, (1, 2, 6))])
    expect(page.locator("#m0_fingers-feedback .ok")).to_contain_text(
        "scan-701.fmr: Right thumb (")
    expect(page.locator("#m0_fingers-feedback .ok")).to_contain_text("Left thumb (")
    page.get_by_label("Left index").first.select_option("amputated")

    # Member 2: a bandaged face, enrolled on thumbs and index fingers.
    page.locator("#m1-biometrics summary").click()
    page.locator("#m1_fingers").set_input_files([_scan(702, (1, 2, 6, 7))])
    page.locator("#m1_face_missing").select_option("bandaged")
    shot(page, "enrol-biometrics-form", backend)
    page.get_by_role("button", name="Enrol household").click()
    expect(page.locator("#result")).to_have_attribute("data-outcome", "adjudicate",
                                                      timeout=SLOW)
    expect(page.locator("#members tbody tr").nth(0)).to_contain_text("no match")
    expect(page.locator("#members tbody tr").nth(1)).to_contain_text("adjudicat")

    # The person page says what was captured and what was not.
    page.get_by_role("link", name="Samir Haddad").click()
    section = page.locator("#biometrics")
    expect(section.locator("caption")).to_have_text("Fingerprints: 3/10")
    expect(section.locator('td[data-finger="7"]')).to_contain_text("amputated")
    expect(section.locator('td[data-finger="1"]')).to_contain_text("captured")
    expect(section.locator('td[data-finger="3"]')).to_have_attribute("data-state", "none")
    expect(page.locator("#bio-face")).to_contain_text("captured")
    shot(page, "person-biometrics", backend)
    samir = page.url
    ctx.close()

    # A card officer reads the same record without the capture details (least privilege).
    ctx, page = sign_in(browser, live_url, Role.CARD_OFFICER)
    page.goto(samir)
    expect(page.locator("#identity")).to_contain_text("Samir")
    expect(page.locator("#biometrics")).to_have_count(0)
    ctx.close()

    # The adjudicator sees that the case exists because the face could not be captured.
    ctx, page = sign_in(browser, live_url, Role.ADJUDICATOR)
    page.get_by_role("link", name="Adjudication").click()
    row = page.locator("#cases tr", has_text="Layla Haddad")
    expect(row).to_contain_text("face exception")
    row.get_by_role("link", name="Layla Haddad").click()
    expect(page.locator("#case-kind")).to_have_text("face exception")
    expect(page.locator(".captures").first).to_contain_text("not captured (bandaged)")
    expect(page.locator(".captures").first).to_contain_text("Fingerprints: 4/10")
    shot(page, "case-face-exception", backend)
    ctx.close()

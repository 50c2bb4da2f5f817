"""Re-capture on the person page, in Chromium: a registration officer adds a new photo and the
fingerprint that was bandaged at enrolment (stored: it is the same face), then tries someone
else's photo (refused, nothing changes). Card officers have no such form."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, FilePayload, expect
from sqlalchemy import select

from sanad.biometrics.finger import encode_record
from sanad.registry.models import (
    AdjudicationCase,
    BiometricRecord,
    Card,
    HeldCapture,
    Person,
    Role,
)
from sanad.registry.runtime import Registry
from tests import factories
from tests.cards.helpers import issue
from tests.factories import count_rows, import_legacy, legacy_row
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
    pid = result.members[0].person_id
    assert pid is not None
    person = f"{live_url}/people/{pid}"
    card = issue(registry, pid).card  # the card in hand carries the enrolment face

    ctx, page = sign_in(browser, live_url, Role.REGISTRATION_OFFICER)
    page.goto(person)
    expect(page.locator('td[data-finger="2"]')).to_contain_text("bandaged")
    expect(page.locator("#recapture-form")).not_to_be_visible()  # folded until needed
    page.locator("#recapture summary").click()
    page.get_by_label("Why").select_option("previously_missing")
    page.locator("#recap-photo").set_input_files(str(FACES / "obama2.jpg"))
    record = factories.FINGERS.capture_record(801, (2,), np.random.default_rng(81))
    scan: FilePayload = {"name": "right-index.fmr", "mimeType": "application/octet-stream",
                         "buffer": encode_record(record)}
    page.locator("#recap-fingers").set_input_files([scan])
    page.get_by_label("Note").fill("bandage removed")
    shot(page, "person-recapture-form", backend)
    page.get_by_role("button", name="Verify and store").click()

    expect(page.locator("#recapture-notice")).to_contain_text("matched the enrolled face",
                                                              timeout=SLOW)
    expect(page.locator("#card-outdated")).to_contain_text("re-issue it")
    expect(page.locator('#cards tr[data-outdated="true"]')).to_contain_text(card.card_number)
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
    # The card desk flags the card and re-issues it as an update; then nothing is out of date.
    with registry.sessions() as s:
        number = s.scalar(select(Person.registration_number).where(Person.id == pid))
    page.goto(f"{live_url}/card-desk")
    expect(page.locator("#reissue-due")).to_contain_text(card.card_number)
    page.locator("#reissue-due").get_by_role("link", name=card.card_number).click()
    expect(page).to_have_url(f"{live_url}/card-desk?q={number}")
    expect(page.locator('tr[data-outdated="true"]')).to_contain_text("earlier face")
    page.get_by_role("button", name="Re-issue").click()
    expect(page.locator("#issued")).to_be_visible(timeout=SLOW)
    expect(page.locator('tr[data-outdated="true"]')).to_have_count(0)
    page.goto(f"{live_url}/card-desk")
    expect(page.locator("#reissue-due")).to_have_count(0)
    page.goto(person)
    expect(page.locator("#card-outdated")).to_have_count(0)
    with registry.sessions() as s:
        reasons = s.scalars(select(Card.issue_reason).where(Card.person_id == pid)
                            .order_by(Card.issued_at, Card.issue_reason)).all()
    assert sorted(reasons) == ["new", "update"]
    ctx.close()


@pytest.mark.browser
def test_an_officer_takes_an_imported_person_s_first_biometrics(
    browser: Browser, live_url: str, registry: Registry, request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """A record imported from a legacy register has no biometrics: the form says the capture
    is searched against everyone; a photo resembling no one makes the person active."""
    backend = request.node.callspec.params["settings"]
    role_users(registry)
    pid = import_legacy(registry, tmp_path, [legacy_row("W1", "Jamal")])["Jamal"]

    ctx, page = sign_in(browser, live_url, Role.REGISTRATION_OFFICER)
    page.goto(f"{live_url}/people/{pid}")
    expect(page.locator("#bio-face")).to_have_text("none on record")
    expect(page.locator("#recapture")).to_have_attribute("data-first", "true")
    page.locator("#recapture summary").click()
    expect(page.locator("#recapture .hint")).to_contain_text("searched against everyone")
    page.get_by_label("Why").select_option("previously_missing")
    page.locator("#recap-photo").set_input_files(str(FACES / "obama.jpg"))
    shot(page, "person-first-capture-form", backend)
    page.get_by_role("button", name="Search and store").click()

    expect(page.locator("#recapture-notice")).to_contain_text("resembles no one registered",
                                                              timeout=SLOW)
    expect(page.locator("#bio-face")).to_contain_text("captured")
    expect(page.locator("#household tr.current")).to_contain_text("active")
    # Captured once, the form is the ordinary re-capture, which verifies.
    expect(page.locator("#recapture summary")).to_have_text("Capture biometrics again")
    shot(page, "person-first-capture-done", backend)
    ctx.close()


@pytest.mark.browser
def test_a_capture_that_does_not_match_is_held_and_an_adjudicator_discards_it(
    browser: Browser, live_url: str, registry: Registry, request: pytest.FixtureRequest,
) -> None:
    backend = request.node.callspec.params["settings"]
    role_users(registry)
    photo = base64.b64encode((FACES / "obama.jpg").read_bytes()).decode()
    result = factories.enrol(registry, factories.alone(factories.member(
        802, np.random.default_rng(9), face={"photo": photo})))
    pid = result.members[0].person_id
    assert pid is not None
    stored = count_rows(registry, BiometricRecord)

    ctx, page = sign_in(browser, live_url, Role.REGISTRATION_OFFICER)
    page.goto(f"{live_url}/people/{pid}")
    page.locator("#recapture summary").click()
    page.get_by_label("Why").select_option("appearance_changed")
    page.locator("#recap-photo").set_input_files(str(FACES / "biden.jpg"))
    page.locator("#recap-adjudicate").check()
    page.get_by_role("button", name="Verify and store").click()
    expect(page.locator("#recapture-notice")).to_contain_text("held for an adjudicator",
                                                              timeout=SLOW)
    expect(page.locator('#open-cases li[data-kind="recapture"]')).to_contain_text("open")
    assert count_rows(registry, BiometricRecord) == stored
    ctx.close()

    with registry.sessions() as s:
        case_id = s.scalar(select(AdjudicationCase.id).where(
            AdjudicationCase.person_id == pid, AdjudicationCase.kind == "recapture"))
    ctx, page = sign_in(browser, live_url, Role.ADJUDICATOR)
    page.goto(f"{live_url}/cases/{case_id}")
    expect(page.locator("#case-kind")).to_have_text("recapture")
    expect(page.locator("#held img.portrait")).to_be_visible()
    expect(page.locator("#held-why")).to_contain_text("does not match")
    shot(page, "case-held-capture", backend)
    page.locator('input[value="different_person"]').check()
    page.get_by_label("Reason").fill("another man's photo")
    page.locator("#decision button[type=submit]").click()
    expect(page.locator("#decided")).to_contain_text("different person")
    expect(page.locator("#held")).to_have_count(0)
    page.goto(f"{live_url}/people/{pid}")
    expect(page.locator("#open-cases")).to_have_count(0)
    assert count_rows(registry, BiometricRecord) == stored
    assert count_rows(registry, HeldCapture) == 0
    ctx.close()

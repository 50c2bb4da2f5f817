"""The whole story in Chromium: an officer enrols a household with photos → a re-enrolment is
refused, then sent to adjudication → an adjudicator resolves it → a card officer issues and
prints a card → a verifier checks it → an auditor sees every step. Screenshots of each page go
to tests/artifacts/ (one set per database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from sanad.registry.models import Card, Person, Role
from sanad.registry.runtime import Registry
from tests.web.conftest import ARTIFACTS, role_users, shot, sign_in

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"
# The face model runs on a shared 2-core machine: allow for a slow first photo check.
SLOW = 30_000


def _member(page: Page, i: int, *, given: str, family: str, given_ar: str, family_ar: str,
            dob: str, precision: str, sex: str, relation: str, photo: str) -> None:
    page.locator(f"#m{i}_given_name").fill(given)
    page.locator(f"#m{i}_family_name").fill(family)
    page.locator(f"#m{i}_given_name_ar").fill(given_ar)
    page.locator(f"#m{i}_family_name_ar").fill(family_ar)
    page.locator(f"#m{i}_date_of_birth").fill(dob)
    page.locator(f"#m{i}_dob_precision").select_option(precision)
    page.locator(f"#m{i}_sex").select_option(sex)
    page.locator(f"#m{i}_relationship_to_head").select_option(relation)
    page.locator(f"#m{i}_photo").set_input_files(str(FACES / photo))
    # Quality feedback arrives before submitting.
    expect(page.locator(f"#m{i}_photo-feedback")).to_contain_text("Photo quality is good",
                                                                  timeout=SLOW)


@pytest.mark.browser
def test_enrol_adjudicate_issue_verify_audit(
    browser: Browser, live_url: str, registry: Registry, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["settings"]
    role_users(registry)

    # 1. A registration officer enrols a household of two, with photos.
    ctx, page = sign_in(browser, live_url, Role.REGISTRATION_OFFICER)
    page.get_by_role("link", name="Enrol household").click()
    page.get_by_role("link", name="Add a member").click()
    expect(page.locator("fieldset.member")).to_have_count(2)
    page.get_by_label("Province").fill("Amman")
    page.get_by_label("District").fill("Marka")
    _member(page, 0, given="Barack", family="Hussein", given_ar="باراك", family_ar="حسين",
            dob="1961-08-04", precision="exact", sex="M", relation="head", photo="obama.jpg")
    _member(page, 1, given="Eileen", family="Collins", given_ar="آيلين", family_ar="كولينز",
            dob="1956-01-01", precision="estimated", sex="F", relation="spouse",
            photo="astronaut.jpg")
    expect(page.locator("#m0_given_name_ar")).to_have_attribute("dir", "auto")
    shot(page, "enrol-form", backend)
    page.get_by_role("button", name="Enrol household").click()
    expect(page.locator("#result")).to_have_attribute("data-outcome", "no_match", timeout=SLOW)
    household_number = page.locator("#household-number").inner_text()
    shot(page, "enrol-result", backend)

    # A photo without a face is refused before submitting.
    page.goto(live_url + "/enrol")
    page.locator("#m0_photo").set_input_files(str(FACES / "coffee.jpg"))
    expect(page.locator("#m0_photo-feedback")).to_contain_text("no_face", timeout=SLOW)

    # 2. The same man comes back under another name: refused, then sent to an adjudicator.
    page.goto(live_url + "/enrol")
    page.get_by_label("Province").fill("Zarqa")
    page.get_by_label("District").fill("Russeifa")
    _member(page, 0, given="Barry", family="Soetoro", given_ar="باري", family_ar="سويتورو",
            dob="1961-01-01", precision="year", sex="M", relation="head", photo="obama2.jpg")
    page.get_by_role("button", name="Enrol household").click()
    expect(page.locator("#result")).to_have_attribute("data-outcome", "duplicate",
                                                      timeout=SLOW)
    shot(page, "enrol-duplicate", backend)
    page.get_by_role("button", name="Send to adjudication instead").click()
    expect(page.locator("#result")).to_have_attribute("data-outcome", "adjudicate",
                                                      timeout=SLOW)
    ctx.close()

    # 3. An adjudicator compares the photos side by side and decides.
    ctx, page = sign_in(browser, live_url, Role.ADJUDICATOR)
    page.get_by_role("link", name="Adjudication").click()
    page.locator("#cases").get_by_role("link", name="Barry Soetoro").click()
    expect(page.locator(".candidate .score").first).to_be_visible()
    expect(page.locator("img.portrait")).to_have_count(2)
    expect(page.locator("table.diff")).to_contain_text("given_name")
    shot(page, "adjudication-case", backend)
    page.get_by_label("Same person").check()
    page.get_by_label("Reason for the decision").fill("Same face; he confirmed his first "
                                                      "registration in Amman")
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator("#decided")).to_contain_text("same person")
    page.goto(live_url + "/cases")
    expect(page.locator("#cases")).to_contain_text("No cases waiting")
    ctx.close()

    # 4. A card officer issues and prints the head's card.
    with registry.sessions() as s:
        head = s.scalar(select(Person).where(Person.given_name == "Barack"))
        assert head is not None
    ctx, page = sign_in(browser, live_url, Role.CARD_OFFICER)
    page.get_by_role("link", name="Card desk").click()
    page.get_by_label("Search by name or registration number").fill(head.registration_number)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Issue card").click()
    expect(page.locator("#issued")).to_contain_text("Card issued", timeout=SLOW)
    card_number = page.locator("#issued .mono").inner_text()
    expect(page.locator("img.card-preview")).to_be_visible()
    shot(page, "card-desk", backend)
    pdf_link = page.get_by_role("link", name="Print (PDF)")
    pdf = page.request.get(live_url + str(pdf_link.get_attribute("href")))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    (ARTIFACTS / f"card-{backend}.pdf").write_bytes(pdf.body())
    ctx.close()

    # 5. A verifier checks the card.
    with registry.sessions() as s:
        card = s.scalar(select(Card).where(Card.card_number == card_number))
        assert card is not None
    ctx, page = sign_in(browser, live_url, Role.VERIFIER)
    page.get_by_role("link", name="Checkpoint").click()
    page.get_by_label("Scanner output or pasted code").fill(card.qr)
    page.locator("#holder-photo-text").set_input_files(str(FACES / "obama3.jpg"))
    page.get_by_role("button", name="Verify code").click()
    expect(page.locator("#verdict-title")).to_have_text("VALID", timeout=SLOW)
    shot(page, "checkpoint", backend)
    ctx.close()

    # 6. An auditor sees every step on the person records.
    ctx, page = sign_in(browser, live_url, Role.AUDITOR)
    page.goto(live_url + "/people?q=" + household_number[:0] + "Barack")
    page.get_by_role("link", name=head.registration_number).click()
    trail = page.locator("#trail")
    for action in ("household.enrol", "person.create", "person.photo_read", "card.issue",
                   "card.render"):
        expect(trail).to_contain_text(action)
    expect(page.locator("#household")).to_contain_text("~1956")
    shot(page, "person-record", backend)
    page.goto(live_url + "/people?q=Soetoro")
    page.locator("#people a").first.click()
    for action in ("adjudication.open", "adjudication.decide", "person.link"):
        expect(page.locator("#trail")).to_contain_text(action)
    ctx.close()

    # The dashboard, in English and in Urdu (right to left).
    ctx, page = sign_in(browser, live_url, Role.AUDITOR)
    expect(page.locator("#count-persons")).to_have_text("3")
    expect(page.locator("#ch-province")).to_be_visible()
    shot(page, "dashboard", backend)
    page.get_by_label("Language").select_option("ur")
    page.locator("form.lang button").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("h1")).to_have_text("آبادی")
    shot(page, "dashboard-ur", backend)
    ctx.close()

    # User administration, as an admin.
    ctx, page = sign_in(browser, live_url, Role.ADMIN)
    page.get_by_role("link", name="Users").click()
    expect(page.locator("#users")).to_contain_text("auditor.1")
    shot(page, "users", backend)
    ctx.close()


@pytest.mark.browser
def test_webcam_capture_feeds_the_quality_check(
    browser: Browser, live_url: str, registry: Registry, request: pytest.FixtureRequest
) -> None:
    """getUserMedia → canvas → the photo field → quality feedback (Chromium's fake camera
    shows a test pattern, so the honest answer is `no_face`)."""
    role_users(registry)
    ctx, page = sign_in(browser, live_url, Role.REGISTRATION_OFFICER)
    ctx.grant_permissions(["camera"])
    page.goto(live_url + "/enrol")
    page.locator("#member-0 .use-camera").click()
    expect(page.locator("#member-0 video")).to_be_visible()
    # A locator poll, not wait_for_function: the page's CSP forbids the eval that needs.
    video = page.locator("#member-0 video")
    expect(video).to_be_visible()
    for _ in range(100):
        if video.evaluate("v => v.videoWidth") > 0:
            break
        page.wait_for_timeout(100)
    assert video.evaluate("v => v.videoWidth") > 0
    page.locator("#member-0 .snap").click()
    expect(page.locator("#m0_photo-feedback")).to_contain_text("no_face", timeout=SLOW)
    assert page.evaluate("document.querySelector('#m0_photo').files.length") == 1
    ctx.close()

"""The home page in a real browser: sign in, see population counts and the latest enrolment."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from sanad.config import Settings
from tests import factories
from tests.web.conftest import ARTIFACTS


@pytest.mark.browser
def test_sign_in_and_see_the_population(
    browser: Browser, live_url: str, client: TestClient, admin_headers: dict[str, str],
    initialised: tuple[Settings, str], request: pytest.FixtureRequest,
) -> None:
    rng = np.random.default_rng(11)
    enrolled = client.post("/households", json=factories.household([1, 2, 3], rng),
                           headers=admin_headers).json()
    page = browser.new_page()
    try:
        page.goto(live_url + "/")
        expect(page).to_have_url(live_url + "/login")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(initialised[1])
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(live_url + "/")
        expect(page.locator("#count-persons")).to_have_text("3")
        expect(page.locator("#count-households")).to_have_text("1")
        expect(page.locator("#latest")).to_contain_text(enrolled["registration_number"])
        expect(page.locator("#by-province")).to_contain_text("Amman")
        cookie = next(c for c in page.context.cookies() if c["name"] == "sanad_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        ARTIFACTS.mkdir(exist_ok=True)
        backend = request.node.callspec.params["settings"]
        page.screenshot(path=str(ARTIFACTS / f"home-{backend}.png"), full_page=True)
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(live_url + "/login")
        page.goto(live_url + "/")
        expect(page).to_have_url(live_url + "/login")
    finally:
        page.close()


def test_login_form_rejects_a_missing_csrf_token(client: TestClient) -> None:
    resp = client.post("/login", data={"username": "admin", "password": "x", "csrf": "forged"})
    assert resp.status_code == 400

"""A live server (uvicorn in a thread) and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from sanad.app import create_app
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.users import create_user

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # A synthetic camera (test pattern) so getUserMedia capture runs without hardware.
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]


ROLE_PASSWORD = "story-password-1"


def role_users(registry: Registry) -> None:
    """One user per role, named ``<role>.1`` (e.g. ``adjudicator.1``)."""
    with transaction(registry.sessions) as session:
        for role in Role:
            create_user(session, username=role.value + ".1", password=ROLE_PASSWORD,
                        roles=[role.value], actor="test")


def sign_in(browser: Browser, live_url: str, role: Role) -> tuple[BrowserContext, Page]:
    """A fresh browser context signed in as ``<role>.1`` on the dashboard."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_url + "/login")
    page.get_by_label("Username").fill(role.value + ".1")
    page.get_by_label("Password").fill(ROLE_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_url + "/")
    return context, page


def shot(page: Page, name: str, backend: str) -> None:
    """A full-page screenshot in tests/artifacts/ (one per database backend)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{backend}.png"), full_page=True)


def web_login(client: TestClient, username: str, password: str) -> None:
    """Sign ``client`` in through the login page (session cookie + CSRF cookie)."""
    client.get("/login")
    resp = client.post("/login", data={"username": username, "password": password,
                                       "csrf": client.cookies["sanad_csrf"]},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_url(registry: Registry) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(registry=registry), host="127.0.0.1", port=port,
                       log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `make system-deps` (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()

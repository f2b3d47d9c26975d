"""``/unsubscribe``: opening the link changes nothing; the one-click POST (RFC 8058) does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from journeys.config import PreferenceSettings
from journeys.consent import Preferences, sign_unsubscribe
from tests.browser import SCREENSHOTS
from tests.conftest import SIGNING_SECRET
from tests.helpers import Engine
from tests.test_server import Api, serve

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
async def api(engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    async for served in serve(engine, tmp_path):
        yield served


async def prefs(api: Api, person: str) -> Preferences:
    return await api.engine.client.preferences(person)


async def test_opening_the_link_shows_a_page_and_changes_nothing(api: Api) -> None:
    token = sign_unsubscribe(SIGNING_SECRET, "o1", '<script>"news"&</script>')
    async with api.http() as anonymous:
        page = await anonymous.get("/unsubscribe", params={"token": token}, headers=BROWSER)
        head = await anonymous.head("/unsubscribe", params={"token": token})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert "&lt;script&gt;&quot;news&quot;&amp;&lt;/script&gt;" in html
    assert "<script" not in html and "src=" not in html and "href=" not in html
    assert '<form method="post">' in html  # to the page's own URL, token included
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in html
    assert head.status_code == 405
    assert await prefs(api, "o1") == Preferences("o1")


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("form-urlencoded", {"data": ONE_CLICK}),
        ("multipart/form-data", {"files": {"List-Unsubscribe": (None, "One-Click")}}),
    ],
)
async def test_one_click_post_unsubscribes(api: Api, what: str, body: dict[str, Any]) -> None:
    token = sign_unsubscribe(SIGNING_SECRET, "c1")  # no topic: all marketing
    async with api.http() as anonymous:
        done = await anonymous.post("/unsubscribe", params={"token": token}, **body)
    assert done.status_code == 200, done.text
    assert "You are unsubscribed from all marketing messages" in done.text
    assert (await prefs(api, "c1")).unsubscribed is True


@pytest.mark.parametrize(
    ("what", "body", "status", "field"),
    [
        ("no body (a scanner's bare POST)", {}, 422, "List-Unsubscribe"),
        ("another value", {"data": {"List-Unsubscribe": "yes"}}, 422, "List-Unsubscribe"),
        ("JSON", {"json": ONE_CLICK}, 415, "content-type"),
        ("text", {"content": b"List-Unsubscribe=One-Click"}, 415, "content-type"),
    ],
)
async def test_a_post_without_one_click_changes_nothing(
    api: Api, what: str, body: dict[str, Any], status: int, field: str
) -> None:
    token = sign_unsubscribe(SIGNING_SECRET, "n1", "news")
    async with api.http() as anonymous:
        refused = await anonymous.post("/unsubscribe", params={"token": token}, **body)
    assert refused.status_code == status
    assert refused.json()["errors"][0]["field"] == field
    assert await prefs(api, "n1") == Preferences("n1")


@pytest.mark.parametrize(
    ("what", "token"),
    [
        ("altered", sign_unsubscribe(SIGNING_SECRET, "t1", "news")[:-2] + "xx"),
        ("cut short", sign_unsubscribe(SIGNING_SECRET, "t1", "news")[:20]),
        ("signed elsewhere", sign_unsubscribe("another-secret", "t1")),
        ("not base64", "%%%.!!!"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_bad_link_is_a_400_page_for_people_and_json_for_programs(
    api: Api, what: str, token: str, method: str
) -> None:
    async with api.http() as anonymous:
        page = await anonymous.request(
            method, "/unsubscribe", params={"token": token}, headers=BROWSER, data=ONE_CLICK
        )
        program = await anonymous.request(
            method, "/unsubscribe", params={"token": token}, data=ONE_CLICK
        )
    assert page.status_code == program.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "This unsubscribe link is not valid" in page.text
    assert program.json()["errors"][0]["field"] == "token"
    assert await prefs(api, "t1") == Preferences("t1")


async def test_without_a_signing_secret_a_browser_gets_a_404_page(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.engine.client, "signing_secret", None)
    async with api.http() as anonymous:
        page = await anonymous.get("/unsubscribe", params={"token": "a.b"}, headers=BROWSER)
    assert page.status_code == 404
    assert "not enabled on this server" in page.text


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("https://acme.example/unsubscribe", False),
        ("http://acme.example/unsubscribe", True),
        ("HTTP://10.0.0.5:8080/unsubscribe?x=1", True),
        ("http://localhost:8080/unsubscribe", False),
        ("http://app.localhost/unsubscribe", False),
        ("http://127.0.0.1:8080/unsubscribe", False),
        ("http://[::1]:8080/unsubscribe", False),
        (None, False),
    ],
)
def test_a_plain_http_link_outside_development_is_warned_about(
    url: str | None, warned: bool
) -> None:
    warning = PreferenceSettings(unsubscribe_url=url).link_warning()
    assert (warning is not None) == warned
    if warning:
        assert warning.startswith(f"[preferences] unsubscribe_url ({url}) is not https://")


async def test_the_server_and_the_worker_warn_at_start(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    from journeys.server import create_app
    from workers.worker import running_worker

    engine = api.engine
    plain = engine.settings.model_copy(
        update={"preferences": PreferenceSettings(unsubscribe_url="http://acme.example/u")}
    )
    caplog.set_level(logging.WARNING)
    app = create_app(plain, engine.client)
    async with app.router.lifespan_context(app):
        pass
    async with running_worker(
        plain, client=engine.temporal, task_queue="warn-at-start", activities=engine.activities
    ):
        pass
    lines = [(r.name, r.getMessage()) for r in caplog.records if "unsubscribe_url" in r.msg]
    assert [name for name, _ in lines] == ["journeys.server", "journeys.worker"]
    assert all("(http://acme.example/u) is not https://" in text for _, text in lines)


async def test_in_a_browser_the_link_asks_and_the_button_unsubscribes(
    api: Api, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.wait import WebDriverWait

    token = sign_unsubscribe(SIGNING_SECRET, "b1", "product news")
    link = str(httpx.URL(f"{api.url}/unsubscribe", params={"token": token}))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def heading(text: str) -> None:
        WebDriverWait(browser, 20).until(
            shown.text_to_be_present_in_element((By.TAG_NAME, "h1"), text)
        )

    def shot(name: str) -> str:
        """Keep the page's card as the README's screenshot; its text."""
        card = browser.find_element(By.TAG_NAME, "main")
        card.screenshot(str(SCREENSHOTS / name))
        return str(card.text)

    def open_link() -> str:
        # The server's certificate is from a test CA; the page works with JavaScript off.
        browser.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": True})
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
        browser.get(link)
        heading("Unsubscribe?")
        return shot("unsubscribe.png")

    def press_the_button() -> str:
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        heading("You are unsubscribed")
        return shot("unsubscribe-done.png")

    def reset() -> None:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
        browser.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": False})

    try:
        asked = await asyncio.to_thread(open_link)
        assert "You will stop receiving messages about product news" in asked
        assert await prefs(api, "b1") == Preferences("b1")  # opening changed nothing
        done = await asyncio.to_thread(press_the_button)
    finally:
        await asyncio.to_thread(reset)
    assert "You are unsubscribed from messages about product news" in done
    assert (await prefs(api, "b1")).topics == {"product news": False}

"""The developer inbox page in headless Chromium: each message as its recipient sees it.

Skipped, saying why, where Chromium is not installed (``tests/browser.py``); CI installs it.
The screenshot in the README (``docs/screenshots/inbox.png``) comes from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from journeys.dev.inbox import Inbox, Origin
from journeys.dev.page import InboxPage
from journeys.devserver import free_port
from tests.browser import SCREENSHOTS

WELCOME_HTML = """<div style="font-family:Georgia,serif;max-width:520px;margin:auto">
<h1 style="color:#0b5cad">Welcome, Ana!</h1>
<p>Your <strong>pro</strong> account is ready.</p>
<script>document.body.innerHTML = "scripts ran"</script>
</div>"""


@pytest.fixture
def page(tmp_path: Path) -> Iterator[InboxPage]:
    inbox = Inbox(tmp_path / "inbox.db")
    run = "onboarding/u42/01a2-run"
    inbox.add(
        "webhook",
        "https://crm.example.com/hooks/onboarding",
        "POST https://crm.example.com/hooks/onboarding",
        {
            "url": "https://crm.example.com/hooks/onboarding",
            "method": "POST",
            "headers": {"content-type": "application/json", "webhook-id": "msg_5f1c"},
            "body": {"event": "onboarded", "customer": {"id": "u42", "plan": "pro"}},
        },
        message_id=f"{run}/crm_note/webhook",
        origin=Origin("onboarding", "crm_note", "u42"),
    )
    inbox.add(
        "push",
        "fcm-token-1",
        "Welcome to Acme",
        {"token": "fcm-token-1", "title": "Welcome to Acme", "body": "Your pro account is ready.",
         "data": {"screen": "home"}},
        message_id=f"{run}/nudge/push",
        origin=Origin("onboarding", "nudge", "u42"),
    )  # fmt: skip
    inbox.add(
        "sms",
        "+14155550100",
        "Welcome to Acme, Ana! Reply STOP to opt out.",
        {"from": "+15005550006", "to": "+14155550100",
         "body": "Welcome to Acme, Ana! Reply STOP to opt out."},
        message_id=f"{run}/hello_sms/sms",
        origin=Origin("onboarding", "hello_sms", "u42"),
    )  # fmt: skip
    inbox.add(
        "email",
        "ana@example.com",
        "Welcome to Acme, Ana!",
        {
            "from": "Acme <hello@acme.example>",
            "to": "ana@example.com",
            "subject": "Welcome to Acme, Ana!",
            "text": "Welcome, Ana!\nYour pro account is ready.\n",
            "html": WELCOME_HTML,
            "headers": [["Subject", "Welcome to Acme, Ana!"], ["To", "ana@example.com"]],
        },
        message_id=f"{run}/welcome/email",
        origin=Origin("onboarding", "welcome", "u42"),
    )
    served = InboxPage(inbox, port=free_port()).start()
    try:
        yield served
    finally:
        served.stop()


def _text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def test_the_inbox_page_shows_each_message_as_the_recipient_sees_it(
    browser: Any, page: InboxPage
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(page.url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#list a")
    assert [r.get_attribute("data-number") for r in rows] == ["4", "3", "2", "1"]  # newest first
    assert "4 messages" in _text(browser, "#count")
    # The newest, an email: subject, where it came from, the text part and the HTML.
    assert _text(browser, "#subject") == "Welcome to Acme, Ana!"
    facts = _text(browser, "#message dl")
    for fact in ("onboarding", "welcome", "u42", "onboarding/u42/01a2-run/welcome/email"):
        assert fact in facts
    assert _text(browser, "#text") == "Welcome, Ana!\nYour pro account is ready."
    frame = browser.find_element(By.CSS_SELECTOR, "iframe#html")
    assert frame.get_attribute("sandbox") == ""  # no scripts, no forms, its own origin
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "inbox.png"))
    browser.switch_to.frame(frame)
    try:
        assert browser.find_element(By.TAG_NAME, "h1").text == "Welcome, Ana!"
        assert "Your pro account is ready." in browser.find_element(By.TAG_NAME, "body").text
        assert "scripts ran" not in browser.find_element(By.TAG_NAME, "body").text
    finally:
        browser.switch_to.default_content()

    browser.find_element(By.CSS_SELECTOR, '#list a[data-number="3"]').click()  # the SMS
    assert _text(browser, "#sms") == "Welcome to Acme, Ana! Reply STOP to opt out."
    assert "from +15005550006 to +14155550100" in _text(browser, "#message")

    browser.find_element(By.CSS_SELECTOR, '#list a[data-number="2"]').click()  # the push
    assert "Welcome to Acme" in _text(browser, "#push")
    assert "Your pro account is ready." in _text(browser, "#push")
    assert "screen" in _text(browser, "#message table")

    browser.find_element(By.CSS_SELECTOR, '#list a[data-number="1"]').click()  # the webhook
    assert "POST https://crm.example.com/hooks/onboarding" in _text(browser, "#message h2")
    assert '"plan": "pro"' in _text(browser, "#webhook-body")
    assert "msg_5f1c" in _text(browser, "#message table")


def test_an_empty_inbox_says_so(browser: Any, tmp_path: Path) -> None:
    served = InboxPage(Inbox(tmp_path / "inbox.db"), port=free_port()).start()
    try:
        browser.get(served.url)
        assert "Nothing caught yet" in _text(browser, "main")
        assert "0 messages" in _text(browser, "#count")
    finally:
        served.stop()

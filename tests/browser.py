"""Headless Chromium for the tests of the pages journeys serves.

Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium``,
``/usr/bin/chromedriver``), driven with Selenium. Where either is missing the tests that
need a browser are skipped, saying so.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["SCREENSHOTS", "browser", "chromium_missing"]

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
"""Where a test that shows a page keeps its screenshot for the README."""


def chromium_missing() -> str | None:
    """Why no browser test can run here, or None when Chromium and its driver are installed."""
    if not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()):
        return "no browser: install Debian's chromium and chromium-driver packages"
    if not (shutil.which("chromedriver") or Path("/usr/bin/chromedriver").exists()):
        return "no chromedriver: install Debian's chromium-driver package"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (a ``selenium.webdriver.Chrome``) shared by the session."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()

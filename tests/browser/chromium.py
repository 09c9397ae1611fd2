"""Headless Chromium for the browser tests: Debian's `chromium` driven by its `chromedriver` (Selenium).

The binaries come from `scripts/ensure-chromium` (called by `make setup`); Selenium is pointed at them
so it never tries to download a browser or driver of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def start_chromium(downloads: Path) -> Any:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("browser tests need Debian's chromium and chromium-driver: run scripts/ensure-chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,900", f"--user-data-dir={downloads / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """The first true value of `check` (exceptions count as not yet), else fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the page is still rendering
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))

"""Browser-test plumbing: headless Chromium through Selenium, and servers on an event loop in a background thread.

Selenium's calls block, so the daemon, the emulator and any fake app run on their own loop in a thread
(``LoopThread``) while the test drives the browser synchronously. Chromium runs with a fresh profile, no sandbox
(containers), and a host resolver that maps every name but 127.0.0.1 to "not found": it cannot reach the network.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


def chromium(profile: Path, *, width: int = 1280, height: int = 800, lang: str = "en-US") -> WebDriver:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/debian-packages.txt)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--lang={lang}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})  # headless ignores --lang for requests
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver


def wait_until(driver: WebDriver, predicate: Callable[[WebDriver], T], timeout: float, what: str) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    wait = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    result: T = wait.until(predicate, message=f"waiting for {what}")
    return result


def forget_session(driver: WebDriver) -> None:
    """Leave the open page, then clear every cookie.

    Clearing cookies under an open console races its live reads: one sent after the cookie is gone is refused with
    401 and logged as a browser error. about:blank stops the page first; CDP clears cookies of every origin, which
    WebDriver's delete_all_cookies (current document only) cannot do from about:blank.
    """
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})  # type: ignore[attr-defined]


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and returns its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="browser-test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30) -> T:
        async def call() -> T:
            return fn()

        return self.run(call(), timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

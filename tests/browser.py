"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the serve page.

Used by tests/test_serve_browser.py and tools/screenshot_serve.py. ``missing()`` says why
no browser can run here (None when one can).
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage",
         # the drawing canvas is WebGL: software rendering, which Chromium no longer falls back to by itself
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader")


def _which(names) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


def missing() -> str | None:
    """Why a browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if _which(CHROMIUM_NAMES) is None:
        return "no chromium on PATH (Debian: apt-get install chromium chromium-driver)"
    if _which(DRIVER_NAMES) is None:
        return "no chromedriver on PATH (Debian: apt-get install chromium-driver)"
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900):
    """A headless Chromium WebDriver with a fresh profile; quit and removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="img2img-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = _which(CHROMIUM_NAMES)
    for flag in FLAGS + (f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(_which(DRIVER_NAMES)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, timeout: float = 60.0, what: str = "the page"):
    """Poll ``condition(driver)`` until it returns something truthy; fail naming ``what``."""
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: condition(d), message=f"timed out after {timeout:g} s waiting for {what}")


def open_page(driver, url: str, ready_css: str, timeout: float = 60.0):
    """Load ``url`` and wait until an element matching ``ready_css`` is there; return it."""
    from selenium.webdriver.common.by import By
    driver.get(url)
    return wait(driver, lambda d: (d.find_elements(By.CSS_SELECTOR, ready_css) or [None])[0], timeout,
                f"{ready_css} on {url}")


def draw(driver, canvas, strokes) -> None:
    """Draw strokes with the mouse: each stroke a list of (x, y) offsets from the canvas element's
    centre in CSS pixels; press at the first point, move through the rest, release.

    Few points per stroke: under software WebGL each pointer move costs about a second here."""
    from selenium.webdriver.common.action_chains import ActionChains
    for stroke in strokes:
        chain = ActionChains(driver, duration=20).move_to_element_with_offset(canvas, *stroke[0]).click_and_hold()
        for x, y in stroke[1:]:
            chain.move_to_element_with_offset(canvas, x, y)
        chain.release().perform()


def image_size(driver, css: str, timeout: float = 60.0, previous_src: str | None = None):
    """Wait for a loaded <img> under ``css`` (with a src other than ``previous_src``);
    return (natural width, natural height, src)."""
    from selenium.webdriver.common.by import By

    def loaded(d):
        for img in d.find_elements(By.CSS_SELECTOR, f"{css} img"):
            info = d.execute_script("const i = arguments[0]; return i.complete && i.naturalWidth > 0 ? "
                                    "[i.naturalWidth, i.naturalHeight, i.src] : null", img)
            if info and info[2] != previous_src:
                return tuple(info)
        return None
    return wait(driver, loaded, timeout, f"an image in {css}")


def text_appears(driver, needle: str, timeout: float = 30.0) -> str:
    """Wait until ``needle`` is in the page's visible text; return that text."""
    from selenium.webdriver.common.by import By

    def shown(d):
        text = d.find_element(By.TAG_NAME, "body").text
        return text if needle in text else None
    return wait(driver, shown, timeout, repr(needle))


def settle(seconds: float = 0.5) -> None:
    time.sleep(seconds)


def save_screenshot(driver, path: str | Path, full_page: bool = False) -> Path:
    """Write a PNG of the window; ``full_page``: first make the window tall enough for the whole
    page, scrolled to the top."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if full_page:
        width, chrome, page = driver.execute_script(
            "return [window.outerWidth, window.outerHeight - window.innerHeight, "
            "document.documentElement.scrollHeight]")
        driver.set_window_size(width, page + chrome)
        driver.execute_script("window.scrollTo(0, 0)")
        settle(0.5)
    driver.save_screenshot(str(path))
    return path

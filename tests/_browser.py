"""Open a results page in a real headless Chromium (selenium) and check what a user would see.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without them the
browser tests are skipped, except under CI (``CI=true``), where a missing browser fails the test:
``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

CHROME_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "chromium is not installed (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def require_browser() -> None:
    """Skip the test without a browser; under CI, fail instead."""
    why = _missing()
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser test cannot run under CI: {why}")
        pytest.skip(why)


def browser_available() -> bool:
    """Whether the browser can run; under CI a missing browser fails the test instead."""
    why = _missing()
    if why and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run under CI: {why}")
    return why is None


def start_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="primo-test-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for a in CHROME_ARGS + (f"--user-data-dir={profile}", "--window-size=1200,900"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    return drv, profile


def check_page(page, query_ids, *, expect_images: bool = True) -> dict:
    """Open ``page``; assert every image loads, each query has its section, no console error.

    Returns what the page showed: ``images`` (src, naturalWidth), ``sections``, ``logs``.
    """
    require_browser()
    drv, profile = start_browser()
    try:
        drv.get(Path(page).resolve().as_uri())
        deadline = time.time() + 20
        while time.time() < deadline:
            done = drv.execute_script(
                "return document.readyState === 'complete' && "
                "Array.from(document.images).every(i => i.complete)")
            if done:
                break
            time.sleep(0.1)
        images = drv.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
        sections = drv.execute_script(
            "return Array.from(document.querySelectorAll('section.query'))"
            ".map(s => s.dataset.query)")
        logs = drv.get_log("browser")
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
    broken = [src for src, w in images if not w]
    assert not broken, f"images that did not load: {broken[:5]}"
    if expect_images:
        assert images, "the page shows no image"
    assert sorted(sections) == sorted(str(q) for q in query_ids), sections
    severe = [entry for entry in logs if entry.get("level") == "SEVERE"]
    assert not severe, severe
    return {"images": images, "sections": sections, "logs": logs}

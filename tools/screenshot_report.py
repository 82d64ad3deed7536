#!/usr/bin/env python
"""Render a primo results page (report.html) to a PNG with headless Chromium.

    python tools/screenshot_report.py demo-out/report.html -o docs/report.png
    python tools/screenshot_report.py demo-out/report.html -o shot.png --section 1 --width 1100

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``)
and ``selenium`` (``pip install -e '.[test]'``). Runs offline: the browser starts with a fresh
profile, no network services, no GPU.

``--section N`` crops the screenshot to the N-th query section (1 = the first); ``--max-height``
cuts a long page. The PNG is reduced to a palette of ``--colors`` colours to stay small (README).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from pathlib import Path

CHROME_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars")


def find_browser():
    """(chromium binary, chromedriver binary) or (None, None)."""
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    return browser, driver


def start_browser(width: int = 1200, height: int = 900):
    """A headless Chromium driven by selenium (caller quits it; its profile folder is returned)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    if browser is None or driver is None:
        raise RuntimeError("chromium and chromedriver are needed: apt-get install chromium "
                           "chromium-driver")
    profile = tempfile.mkdtemp(prefix="primo-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in CHROME_ARGS + (f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts), profile


def screenshot(page, out, width: int = 1100, section: int | None = None,
               max_height: int = 2400, colors: int = 128) -> Path:
    from PIL import Image

    page = Path(page).resolve()
    drv, profile = start_browser(width, 900)
    try:
        drv.get(page.as_uri())
        drv.execute_script("return document.readyState")
        height = int(drv.execute_script("return document.documentElement.scrollHeight"))
        drv.set_window_size(width, min(max(height, 600), 16000))
        top, bottom = 0, None
        if section:
            box = drv.execute_script(
                "const s = document.querySelectorAll('section.query')[arguments[0]];"
                "if (!s) return null; const r = s.getBoundingClientRect();"
                "return [r.top + window.scrollY, r.bottom + window.scrollY];", section - 1)
            if box is None:
                raise SystemExit(f"the page has no query section {section}")
            top, bottom = int(box[0]) - 8, int(box[1]) + 8
        png = drv.get_screenshot_as_png()
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
    im = Image.open(io.BytesIO(png)).convert("RGB")
    bottom = im.height if bottom is None else min(bottom, im.height)
    bottom = min(bottom, top + max_height)
    im = im.crop((0, max(top, 0), im.width, bottom))
    im = im.quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
    out = Path(out)
    im.save(out, optimize=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", help="report.html")
    ap.add_argument("-o", "--output", required=True, help="PNG to write")
    ap.add_argument("--width", type=int, default=1100)
    ap.add_argument("--section", type=int, default=None, help="only this query section (1-based)")
    ap.add_argument("--max-height", type=int, default=2400)
    ap.add_argument("--colors", type=int, default=128)
    a = ap.parse_args(argv)
    if not Path(a.page).is_file():
        print(f"screenshot_report: {a.page} does not exist", file=sys.stderr)
        return 2
    p = screenshot(a.page, a.output, a.width, a.section, a.max_height, a.colors)
    print(f"wrote {p} ({p.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

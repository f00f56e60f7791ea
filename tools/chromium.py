"""Headless Chromium driven by Selenium, for the browser tests and the screenshot scripts.

Uses Debian's `chromium` and `chromium-driver` (installed by `.ci/system-deps.sh`); nothing is
downloaded (Selenium Manager is never asked for a browser or a driver). The flags suit a
container where the tests run as root with no network: no sandbox, no GPU, no background
requests, a fresh profile each time.
"""
from __future__ import annotations

import base64
import contextlib
import shutil
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
    "--force-device-scale-factor=1", "--lang=en-GB",
]


def missing() -> str | None:
    """Why Chromium cannot be started here, or None when it can."""
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not (Path(exe).exists() or shutil.which(Path(exe).name)):
            return (f"{exe} is missing: install Debian's chromium and chromium-driver "
                    "(`bash .ci/system-deps.sh` as root, which `make test` runs)")
    return None


def _exe(path: str) -> str:
    return path if Path(path).exists() else shutil.which(Path(path).name) or path


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900):
    """A Selenium WebDriver for a fresh headless Chromium; it is closed on exit.

    Browser console messages (`driver.get_log("browser")`) and network events
    (`driver.get_log("performance")`) are recorded.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    reason = missing()
    if reason:
        raise RuntimeError(reason)
    profile = tempfile.mkdtemp(prefix="dlcourse-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = _exe(CHROMIUM)
    for flag in FLAGS + [f"--window-size={width},{height}", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(_exe(CHROMEDRIVER)), options=options)
    try:
        # The page's viewport is exactly width x height (the window's frame would take some).
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver, path: Path, *, full_page: bool = True, tile_height: int = 12000) -> list[Path]:
    """Save PNGs of the page: the window, or the whole scrollable page in tiles of at most
    tile_height pixels (`name.png`, then `name-2.png`, `name-3.png`, ... for a long page). The tiles
    of a page share its height equally, so that none is a thin, almost empty strip."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"{path.stem}-[0-9]*.png"):
        old.unlink()
    if not full_page:
        driver.save_screenshot(str(path))
        return [path]
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width = driver.execute_script("return document.documentElement.clientWidth")
    height = int(size["height"])
    paths = []
    tiles = max(1, -(-height // tile_height))
    tile_height = max(1, -(-height // tiles))
    for i, top in enumerate(range(0, height, tile_height)):
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": top, "width": width, "height": min(tile_height, height - top), "scale": 1},
        })
        tile = path if i == 0 else path.with_name(f"{path.stem}-{i + 1}.png")
        tile.write_bytes(base64.b64decode(shot["data"]))
        paths.append(tile)
    return paths

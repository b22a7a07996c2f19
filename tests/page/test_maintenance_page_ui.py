"""The Maintenance page in a real headless Chromium (Debian ``chromium``) driven by Playwright.

Against the real Airflow API server of ``conftest.py`` (``airflow api-server`` on 127.0.0.1, as
``airflow standalone`` runs it but without the log servers that bind every interface; see there):
log in through Airflow's own login page, open "Maintenance" from the navigation, see the calendar
rows, the incidents, SLOs, the recovery-time chart and the notifications, and save a screenshot as a
test artifact. The artifact directory is printed (``SANVI_UI_ARTIFACTS`` overrides it; default a
``ui-artifacts`` folder in pytest's temp dir). ``docs/maintenance-page.png`` in the README is such a
screenshot: ``SANVI_UI_SCREENSHOT=docs/maintenance-page.png`` writes it again.

Chromium comes from Debian (``make tools`` installs it); Playwright never downloads a browser here
(``executable_path``). Without ``/usr/bin/chromium`` the test fails in CI (``CI=true``) and is
skipped elsewhere, saying why. Chromium runs with a fresh profile and without background
networking, component updates, sync or first-run work, so it talks to nothing but 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.page.conftest import AirflowUI

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("SANVI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _need_chromium() -> None:
    if Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"{CHROMIUM} not found: install Debian's chromium (make tools)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("SANVI_UI_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("ui-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nUI test artifacts: {path}")
    return path


# 90 s for the browser part; the shared server fixture has deadlines of its own (conftest.py).
@pytest.mark.timeout(90, func_only=True)
def test_log_in_open_the_maintenance_page_see_the_rows(airflow_ui: AirflowUI, artifacts: Path) -> None:
    _need_chromium()
    from playwright.sync_api import expect, sync_playwright

    from sanvi_ops.core.config import load_config
    from sanvi_ops.page import all_dag_ids

    profile = tempfile.mkdtemp(prefix="sanvi-chromium-")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1440, "height": 1000},
            )
            try:
                page = browser.new_page()
                # Only 127.0.0.1: any other request is a defect of the page (a CDN, a font, ...).
                outside: list[str] = []
                page.on(
                    "request",
                    lambda r: (
                        None
                        if r.url.startswith(("http://127.0.0.1:", "data:", "blob:"))
                        else outside.append(r.url)
                    ),
                )
                page.set_default_timeout(20_000)

                page.goto(airflow_ui.url + "/")
                expect(page).to_have_url(re.compile(r"/auth/login"))
                page.locator("input[name=username]").fill("admin")
                page.locator("input[name=password]").fill(airflow_ui.passwords["admin"])
                page.get_by_role("button", name="Sign in").click()
                nav = page.get_by_role("link", name="Maintenance")
                nav.click()
                expect(page).to_have_url(re.compile(r"/plugin/maintenance$"))

                frame = page.frame_locator("iframe")
                expect(frame.get_by_role("heading", name="Maintenance", exact=True)).to_be_visible()
                for title in ("Daily Tasks", "Weekly Tasks", "Monthly Tasks", "Quarterly Tasks"):
                    expect(frame.get_by_role("heading", name=title)).to_be_visible()
                health = frame.locator('tr[data-dag="system_health_check"]')
                expect(health).to_contain_text("System Health Check")
                expect(health.locator(".s")).to_have_text(re.compile(r"^(ok|warning|error|critical)$"))
                expect(frame.locator("table.calendar tr[data-dag]")).to_have_count(
                    len(all_dag_ids(load_config()))
                )
                expect(frame.locator("#incidents")).to_contain_text("Open incidents")
                expect(frame.locator("table.slos")).to_contain_text("Availability")
                expect(frame.locator("svg.chart circle.point").first).to_be_attached()
                expect(frame.locator("#notifications")).to_contain_text("pending")
                expect(frame.locator("table.silences")).to_contain_text("noisy deploy of the backend")

                # The page on its own, full length (same browser session, so the same cookie).
                alone = browser.new_page()
                alone.goto(airflow_ui.url + "/sanvi-ops/maintenance/")
                expect(alone.locator('tr[data-dag="system_health_check"]')).to_be_visible()
                alone.screenshot(path=str(artifacts / "maintenance-page-alone.png"), full_page=True)
                height = int(alone.evaluate("document.documentElement.scrollHeight"))
                alone.close()
                # The page inside Airflow (nav and all), the window as tall as the page: the README shot.
                page.set_viewport_size({"width": 1440, "height": min(max(height + 24, 1000), 4000)})
                page.wait_for_timeout(300)  # let the frame re-lay out at the new size
                shot = artifacts / "maintenance-page.png"
                page.screenshot(path=str(shot))
                print(f"screenshot: {shot}")
                assert shot.stat().st_size > 10_000
                if target := os.environ.get("SANVI_UI_SCREENSHOT"):
                    from PIL import Image  # Pillow comes with matplotlib

                    # 128 colours: a UI screenshot stays sharp at a third of the size in git.
                    with Image.open(shot) as im:
                        im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
                            target, optimize=True
                        )
                assert outside == [], f"the UI asked for something beyond 127.0.0.1: {outside}"
            finally:
                browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)

"""The upload page in a real headless Chromium (Debian's, driven by playwright)."""

import sys

import pytest

from ptdeploy import system_packages
from ptdeploy.paths import CAT_JPG
from ptdeploy.tools import processes

# Debian's Chromium, installed by `make test` (system-packages.txt); never `playwright install`.
CHROMIUM = system_packages.find("chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs chromium: `make system-packages-tests` (run by `make test`)"
)
def test_upload_page_classifies_the_cat():
    from playwright.sync_api import expect, sync_playwright

    proxy = [sys.executable, "-m", "ptdeploy.serving.proxy"]  # `make serve`: nginx + gunicorn
    with processes.running(proxy, env={"PTDEPLOY_LOG_LEVEL": "warning"}, timeout=300) as server:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page()
                external = []  # the page must not fetch anything from outside the server
                page.on("request", lambda r: r.url.startswith(server.url) or external.append(r.url))
                page.goto(server.url + "/")
                page.set_input_files("#file", str(CAT_JPG))
                expect(page.locator("#preview")).to_be_visible()
                page.click("#submit")
                expect(page.locator("#status")).to_contain_text("Egyptian_cat", timeout=60_000)
                expect(page.locator("#bars .row")).to_have_count(5)
                assert page.locator("#bars .row").first.inner_text().startswith("Egyptian_cat")
                assert not [u for u in external if not u.startswith(("blob:", "data:"))]
            finally:
                browser.close()

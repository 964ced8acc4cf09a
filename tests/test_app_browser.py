"""`ingest app` in a real browser: Debian's Chromium driven by Playwright against a real
`ingest app --no-browser` on a free port. Every request the browser makes is recorded, and
anything not for 127.0.0.1 is refused and fails the test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app_helpers import screenshot, whatsapp_export

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
INGEST = str(Path(sys.executable).parent / "ingest")
PAGES = ["/", "/add", "/diary", "/timeline", "/people", "/handover", "/settings"]

if not CHROMIUM.exists():
    print("test_app_browser: skipped, /usr/bin/chromium is absent (./quickstart test installs it)")
    pytest.skip("Debian's chromium is not installed (./quickstart test installs it)", allow_module_level=True)


class Neutral(BaseHTTPRequestHandler):
    """The 'ordinary website' the quick exit goes to, served on 127.0.0.1 for the test."""

    def do_GET(self):
        body = b"<!doctype html><title>Weather</title><p>Sunny spells.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def neutral_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Neutral)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/weather"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def app(case_dir, tmp_path, neutral_site):
    """A real `ingest app` on a free port; yields its tokened address."""
    config = tmp_path / "config" / "ingest"
    config.mkdir(parents=True)
    (config / "app.json").write_text(json.dumps({"exit_site": neutral_site}))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    process = subprocess.Popen([INGEST, "app", "--case", str(case_dir), "--no-browser"], stdout=subprocess.PIPE,
                               text=True, env=env)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def page(browser, app):
    """A browser tab that opened the app's address; every request it makes is checked on the way out."""
    context = browser.new_context(accept_downloads=True)
    seen: list[str] = []

    def only_loopback(route):
        seen.append(route.request.url)
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_loopback)
    tab = context.new_page()
    tab.goto(app)
    yield tab
    context.close()
    outside = [url for url in seen if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    assert seen, "the route recorded nothing"


def origin(page) -> str:
    parts = urlsplit(page.url)
    return f"{parts.scheme}://{parts.netloc}"


def test_upload_a_whatsapp_export_and_a_screenshot_and_see_them(page, tmp_path):
    page.goto(origin(page) + "/add")
    page.set_input_files("#files", [str(whatsapp_export(tmp_path)), str(screenshot(tmp_path))])
    page.click("#upload-button")
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"))
    page.wait_for_selector("text=Kept 2 new original(s)", timeout=120_000)
    page.click("text=See the timeline")
    rows = page.inner_text("table.records")
    assert "I saw your car at the station" in rows
    assert "\tscreenshot\t" in rows and "Answer the door" in rows        # read from the picture
    page.click("tr:has-text('Please stop contacting me') a")
    assert "SHA-256" in page.inner_text("main")


def test_a_file_dropped_on_the_drop_zone_keeps_its_own_date(page):
    page.goto(origin(page) + "/add")
    dropped = page.evaluate_handle("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(["I will be waiting when you get home."], "letter.txt",
                                    {type: "text/plain", lastModified: 1709372700000}));
        return transfer; }""")
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})
    page.wait_for_selector("text=Kept 1 new original(s)", timeout=120_000)
    page.goto(origin(page) + "/timeline?kind=file")
    assert "2024-03-02T09:45:00+00:00" in page.inner_text("table.records")


def test_diary_entry_with_a_photo(page, tmp_path):
    page.goto(origin(page) + "/diary")
    page.fill("#diary-date", "2024-03-02")
    page.fill("#diary-time", "21:40")
    page.fill("#diary-where", "Outside home")
    page.fill("#diary-what", "Grey car parked opposite the house for an hour")
    page.fill("#diary-plate", "AB12 CDE")
    page.set_input_files("#diary-files", str(screenshot(tmp_path)))
    page.click("text=Keep this entry")
    page.wait_for_url(re.compile(r"/records/[0-9a-f]+$"))
    main = page.inner_text("main")
    assert "2024-03-02T21:40:00+00:00" in main and "AB12 CDE" in main and "Outside home" in main
    assert "screenshot: Screenshot_20240313-081530.png" in main


def test_link_a_person(page, tmp_path, ingest):
    ingest("run", "--source", "files", whatsapp_export(tmp_path))
    page.goto(origin(page) + "/people")
    page.fill("#add-name", "Jordan Pike")
    page.fill("#add-phones", "07700 900123")
    page.click("text=Add this person")
    page.select_option("#link-name", "Jordan Pike")
    page.fill("#link-aliases", "Jordan")
    page.click("text=Link these")
    assert "Jordan" in page.inner_text("table.records tbody td:nth-child(4)")
    page.click("text=Jordan Pike")          # the person's own timeline
    rows = page.inner_text("table.records tbody")
    assert "I know you moved" in rows and "I saw your car at the station" in rows


def test_hand_over_and_verify_the_downloaded_bundle(page, tmp_path):
    page.goto(origin(page) + "/add")
    page.set_input_files("#files", str(whatsapp_export(tmp_path)))
    page.click("#upload-button")
    page.wait_for_selector("text=Kept 1 new original(s)", timeout=120_000)
    page.goto(origin(page) + "/handover")
    fingerprint = page.inner_text("code.code")
    page.click("text=Make the bundle")
    page.wait_for_selector("text=The bundle is ready", timeout=120_000)
    assert fingerprint in page.inner_text("main")
    shown_fingerprint, seal = page.locator("dl.codes code").all_inner_texts()   # what the person reads out or texts
    assert shown_fingerprint == fingerprint and re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", seal)
    with page.expect_download() as download:
        page.click("text=The bundle (bundle.zip)")
    bundle = tmp_path / "from-the-browser.zip"
    download.value.save_as(bundle)
    # the officer's check, with what they were told: the fingerprint and the seal
    result = subprocess.run([INGEST, "verify", str(bundle), "--fingerprint", fingerprint, "--seal", seal],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    forged = subprocess.run([INGEST, "verify", str(bundle), "--fingerprint", "0000 " + fingerprint[5:]],
                            capture_output=True, text=True)
    assert forged.returncode == 1


@pytest.mark.parametrize("how", ["Escape", "button"])
def test_quick_exit_replaces_the_page(browser, app, neutral_site, how):
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(neutral_site)                      # where the person was before opening the app
    tab.goto(app)
    tab.goto(origin(tab) + "/timeline")
    if how == "Escape":
        tab.keyboard.press("Escape")
    else:
        tab.click("#leave-now")
    tab.wait_for_url(neutral_site)
    tab.go_back()
    # Back does not return to the page that was left: it was replaced in the history
    assert not tab.url.endswith("/timeline")
    context.close()


def test_every_page_passes_axe(page, tmp_path, ingest):
    """No serious or critical accessibility violation on any page, with content on it."""
    from axe_playwright_python.sync_playwright import Axe

    ingest("run", "--source", "files", whatsapp_export(tmp_path))
    ingest("note", "A grey car outside again", "--at", "2024-03-05 10:00", "--where", "Home")
    page.goto(origin(page) + "/timeline")
    record = page.get_attribute("table.records a", "href")
    page.goto(origin(page) + "/handover")
    page.click("text=Make the bundle")
    page.wait_for_selector("text=The bundle is ready", timeout=120_000)
    job = urlsplit(page.url).path
    axe = Axe()
    failures = {}
    for path in [*PAGES, record, job, "/timeline?q=car", "/nowhere"]:
        page.goto(origin(page) + path)
        violations = axe.run(page).response["violations"]
        serious = [f"{item['id']}: {item['help']} ({len(item['nodes'])})" for item in violations
                   if item["impact"] in ("serious", "critical")]
        if serious:
            failures[path] = serious
    assert failures == {}

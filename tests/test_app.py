"""`ingest app`, request by request (Starlette's TestClient): each security refusal, then
every page over a real case. Browser flows are in test_app_browser.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app_helpers import SCREENSHOT_NAME, screenshot, wait_for, whatsapp_export
from ingest.case import Case
from ingest.features.app import AppState, create_app
from ingest.features.app.forms import unique_path
from ingest.features.app.security import CSP, csrf_token
from ingest.features.app.server import bind
from ingest.features.bundle_verify import verify_bundle

PORT = 8765
TOKEN = "launch-token-for-tests-0123456789abcdef"
ORIGIN = f"http://127.0.0.1:{PORT}"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def own_settings(tmp_path, monkeypatch):
    """The quick-exit setting lives in the user's config folder: a fresh one per test."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def state(case_dir, tmp_path) -> AppState:
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    return AppState(case_dir=case_dir, token=TOKEN, port=PORT, workdir=workdir)


@pytest.fixture
def raw(state) -> TestClient:
    """A browser that has not been given the launch token."""
    return TestClient(create_app(state), base_url=ORIGIN, follow_redirects=False)


@pytest.fixture
def client(raw) -> TestClient:
    """A browser that opened the tokened address."""
    assert raw.get(f"/?token={TOKEN}").status_code == 303
    raw.follow_redirects = True
    return raw


def csrf() -> str:
    return csrf_token(TOKEN)


def finished_job(client: TestClient, response) -> dict:
    job_id = re.search(r"/jobs/([0-9a-f]+)", str(response.url)).group(1)
    wait_for(lambda: client.get(f"/jobs/{job_id}/progress").json()["finished"])
    return {"id": job_id, "page": client.get(f"/jobs/{job_id}").text}


def record_ids(page: str) -> list[str]:
    return re.findall(r'href="/records/([0-9a-f]+)"', page)


# --- the launch token -------------------------------------------------------------------------
def test_no_token_is_refused(raw):
    for path in ("/", "/timeline", "/static/app.js", "/add"):
        response = raw.get(path)
        assert response.status_code == 403, path
        assert response.text == "Open the app from the address ingest printed when it started.\n"


def test_wrong_token_is_refused_and_sets_no_cookie(raw):
    response = raw.get("/?token=guessed")
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert raw.get("/").status_code == 403


def test_wrong_cookie_is_refused(raw):
    raw.cookies.set(f"ingest-{PORT}", "guessed")
    assert raw.get("/").status_code == 403
    raw.cookies.set(f"ingest-{PORT - 1}", TOKEN)      # another launch's cookie name
    assert raw.get("/").status_code == 403


def test_tokened_address_sets_a_strict_cookie_and_drops_the_token(raw):
    response = raw.get(f"/timeline?token={TOKEN}&kind=sms")
    assert response.status_code == 303
    assert response.headers["location"] == "/timeline?kind=sms"
    assert response.headers["set-cookie"] == f"ingest-{PORT}={TOKEN}; Path=/; HttpOnly; SameSite=Strict"
    assert raw.get("/").status_code == 200


# --- DNS rebinding ------------------------------------------------------------------------------
def test_foreign_host_header_is_refused_even_with_the_cookie(client):
    for host in ("evil.example:8765", f"127.0.0.1:{PORT + 1}", "127.0.0.1", f"rebind.attacker.test:{PORT}"):
        response = client.get("/", headers={"host": host})
        assert response.status_code == 421, host
        assert "not the app's own" in response.text
    assert client.get("/", headers={"host": f"localhost:{PORT}"}).status_code == 200


def test_foreign_host_is_refused_before_the_token_is_looked_at(raw):
    response = raw.get(f"/?token={TOKEN}", headers={"host": "evil.example:8765"})
    assert response.status_code == 421
    assert "set-cookie" not in response.headers


# --- CSRF and origin ---------------------------------------------------------------------------
def test_form_without_csrf_token_is_refused_and_nothing_is_written(client, case_dir):
    before = (case_dir / "custody.jsonl").read_bytes()
    for data in ({"date": "2024-03-01", "what": "followed home"},
                 {"date": "2024-03-01", "what": "followed home", "csrf": "forged"}):
        response = client.post("/diary", data=data)
        assert response.status_code == 403
        assert "did not come from the app" in response.text
    assert client.post("/settings", data={"exit_site": "https://example.org/"}).status_code == 403
    assert (case_dir / "custody.jsonl").read_bytes() == before


def test_upload_without_csrf_token_keeps_nothing(client, state, case_dir, tmp_path):
    before = (case_dir / "custody.jsonl").read_bytes()
    response = client.post("/add/upload", files=[("file", ("letter.txt", b"I know where you live"))])
    assert response.status_code == 403
    assert (case_dir / "custody.jsonl").read_bytes() == before
    assert list(state.workdir.iterdir()) == []


def test_cross_origin_post_is_refused_even_with_token_and_cookie(client):
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}, {"origin": "null"},
                    {"origin": f"http://127.0.0.1:{PORT + 1}"}):
        response = client.post("/settings", data={"csrf": csrf(), "exit_site": "https://evil.example/"},
                               headers=headers)
        assert response.status_code == 403, headers
    assert 'href="https://www.bbc.co.uk/weather"' in client.get("/").text


# --- headers on everything ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/app.css", "/timeline", "/nowhere"])
def test_every_response_is_uncached_and_locked_down(client, raw, path):
    for response in (client.get(path), TestClient(raw.app, base_url=ORIGIN).get(path)):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_pages_load_nothing_from_outside_and_nothing_inline(client, case_dir):
    pages = ["/", "/add", "/diary", "/timeline", "/people", "/handover", "/settings"]
    for path in pages:
        html = client.get(path).text
        assert re.findall(r'(?:src|href)="(https?:)?//', html.replace('href="https://www.bbc.co.uk/weather"', "")) == []
        assert "<script>" not in html and "style=" not in html and "<style" not in html, path
        assert html.count('name="csrf"') == html.count("<form") - html.count('method="get"'), path


# --- binding and the command --------------------------------------------------------------------
def test_binds_loopback_only():
    sock = bind(0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


INGEST = str(Path(sys.executable).parent / "ingest")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_ingest_app_prints_a_tokened_loopback_address_and_stops_cleanly(case_dir, tmp_path, stop):
    import httpx2 as httpx

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "TMPDIR": str(scratch)}
    process = subprocess.Popen([INGEST, "app", "--case", str(case_dir), "--no-browser"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = process.stdout.readline().strip()
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{43})", url)
        assert match, url
        with httpx.Client(follow_redirects=True) as browser:
            assert "Your case: Test case" in browser.get(url).text
            assert browser.get(f"http://127.0.0.1:{match.group(1)}/timeline").status_code == 200
        with httpx.Client() as stranger:
            assert stranger.get(f"http://127.0.0.1:{match.group(1)}/").status_code == 403
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
        assert "Traceback" not in process.stderr.read()
        assert list(scratch.iterdir()) == []         # the scratch folder went with it
    finally:
        if process.poll() is None:
            process.kill()


def test_a_taken_port_is_one_plain_line(ingest):
    sock = bind(0)
    port = sock.getsockname()[1]
    try:
        result = ingest("app", "--no-browser", "--port", port)
    finally:
        sock.close()
    assert result.exit_code == 2
    assert result.output.startswith(f"ingest: Cannot use port {port} (Address already in use).")


# --- adding evidence ---------------------------------------------------------------------------
def test_upload_is_detected_by_content_kept_and_the_copies_removed(client, state, case_dir, tmp_path):
    export, shot = whatsapp_export(tmp_path), screenshot(tmp_path)
    letter = tmp_path / "letter.txt"
    letter.write_text("I will be waiting when you get home.\n")
    response = client.post("/add/upload", data={"csrf": csrf(), "mtime": ["1709372700000"]},
                           files=[("file", ("evidence/letter.txt", letter.read_bytes())),
                                  ("file", (export.name, export.read_bytes())),
                                  ("file", (f"phone/{SCREENSHOT_NAME}", shot.read_bytes()))])
    job = finished_job(client, response)
    assert "Kept 3 new original(s)" in job["page"]
    assert [path for path in state.workdir.rglob("*") if path.is_file()] == []
    with Case.open(case_dir, writable=False) as case:
        kinds = sorted(record["kind"] for record in case.index.records())
        letter_record = next(case.index.records(kinds=["file"]))
    # the letter, the export's own record and its three messages, the screenshot
    assert kinds == ["file", "file", "screenshot", "whatsapp", "whatsapp", "whatsapp"]
    # the mtime field travelled with the letter: it is dated when it was written, not uploaded
    assert letter_record["occurred_at"] == "2024-03-02T09:45:00+00:00"
    assert letter_record["occurred_at_source"] == "file:mtime"
    # known by where it sat in the upload, not by the scratch copy's path (gone now)
    assert letter_record["source"]["key"] == "upload/evidence/letter.txt"
    assert str(state.workdir) not in (case_dir / "custody.jsonl").read_text()
    timeline = client.get("/timeline").text
    assert "I saw your car at the station" in timeline and "screenshot" in timeline


def test_what_could_not_be_read_is_said(client):
    cut_short = b'<?xml version="1.0" encoding="UTF-8"?>\n<smses count="3">\n<sms protocol="0" address="07700900123" da'
    response = client.post("/add/upload", data={"csrf": csrf()}, files=[("file", ("sms-20240301.xml", cut_short))])
    page = finished_job(client, response)["page"]
    assert "Kept 1 new original(s)" in page
    assert "sms-20240301.xml: the source says 3; the case now holds 0." in page
    assert "What could not be read" in page
    assert "it looks cut short" in page


def test_upload_with_no_file_says_so(client):
    response = client.post("/add/upload", data={"csrf": csrf()}, files=[("file", ("", b""))])
    assert response.status_code == 400
    assert "No file was chosen." in response.text


def test_uploaded_names_cannot_leave_the_upload_folder(tmp_path):
    folder = tmp_path / "up"
    for hostile in ("../../etc/passwd", "/etc/passwd", "..\\..\\win.ini", "a/../../b", "..", "\x00\x01"):
        path = unique_path(folder, hostile)
        assert path.resolve().is_relative_to(folder.resolve()), hostile
    assert unique_path(folder, "../../etc/passwd") == folder / "etc" / "passwd"
    assert unique_path(folder, "..") == folder / "upload"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "a.txt").write_text("first")
    assert unique_path(folder, "x/a.txt") == folder / "x" / "a (2).txt"


def test_imap_password_is_used_once_and_never_stored(client, state, case_dir):
    password = "correct-horse-battery-staple-1729"
    closed = bind(0)
    port = closed.getsockname()[1]
    closed.close()                      # nothing listens there now
    response = client.post("/add/imap", data={"csrf": csrf(), "host": "127.0.0.1", "port": str(port),
                                              "user": "sam@example.org", "password": password,
                                              "security": "none"})
    page = finished_job(client, response)["page"]
    assert f"Could not connect to the mail server 127.0.0.1:{port}" in page
    for path in [*case_dir.rglob("*"), *state.workdir.rglob("*")]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert password not in page


def test_a_mailbox_is_kept_over_imap_read_only_and_the_password_is_not(client, state, case_dir):
    """A real Dovecot on 127.0.0.1: the app's form keeps its messages, leaves them unread,
    and the password is in no file afterwards."""
    from imap_server import Dovecot

    message = (b"From: Jordan <jordan@example.org>\r\nTo: sam@example.org\r\nSubject: I know where you are\r\n"
               b"Date: Fri, 01 Mar 2024 21:41:05 +0000\r\nMessage-ID: <1@example.org>\r\n\r\n"
               b"I saw you at the station.\r\n")
    with Dovecot() as server:
        user = server.add_user("app-sam")
        server.add_messages(user, [message])
        response = client.post("/add/imap", data={"csrf": csrf(), "host": "127.0.0.1", "port": str(server.plain_port),
                                                  "user": user.name, "password": user.password, "security": "none",
                                                  "folders": "INBOX"})
        page = finished_job(client, response)["page"]
        assert "Kept 1 new original(s)" in page
        assert [path.name.endswith(":2,") for path in (user.maildir / "cur").iterdir()] == [True]   # still unread
    assert "I know where you are" in client.get("/timeline", params={"kind": "email"}).text
    for path in [*case_dir.rglob("*"), *state.workdir.rglob("*")]:
        if path.is_file():
            assert user.password.encode() not in path.read_bytes(), path


def test_imap_form_needs_the_password(client):
    response = client.post("/add/imap", data={"csrf": csrf(), "host": "imap.example.org", "user": "sam"})
    assert response.status_code == 400
    assert "The mail server, your login and the password are all needed." in response.text


# --- the diary -----------------------------------------------------------------------------
def test_diary_entry_with_details_and_a_photo_then_a_correction(client, case_dir, tmp_path):
    shot = screenshot(tmp_path)
    response = client.post("/diary", data={"csrf": csrf(), "date": "2024-03-02", "time": "21:40", "about": "1",
                                           "where": "Outside home", "who": "man in a grey coat",
                                           "what": "Car parked opposite for an hour", "vehicle_make": "Ford Focus",
                                           "vehicle_colour": "grey", "vehicle_plate": "AB12 CDE",
                                           "appearance": "shouted my name"},
                           files=[("file", ("photo of the car.png", shot.read_bytes()))])
    assert response.status_code == 200
    note_id = re.search(r"/records/([0-9a-f]+)$", str(response.url)).group(1)
    page = response.text
    for shown in ("2024-03-02T21:40:00+00:00", "Outside home", "AB12 CDE", "Ford Focus", "shouted my name",
                  "Time approximate", "photo of the car.png"):
        assert shown in page, shown
    with Case.open(case_dir, writable=False) as case:
        note = case.index.record(note_id)
        photo, = case.index.children(note_id)
    assert note["metadata"]["details"] == {"who": "man in a grey coat", "vehicle_make": "Ford Focus",
                                           "vehicle_colour": "grey", "vehicle_plate": "AB12 CDE",
                                           "appearance": "shouted my name", "time_approximate": True}
    assert note["metadata"]["where"] == "Outside home"
    assert photo["kind"] == "screenshot" and photo["parent"] == note_id

    correction = client.post("/diary", data={"csrf": csrf(), "supersedes": note_id,
                                             "what": "It was a Vauxhall Astra, not a Ford Focus"})
    new_id = re.search(r"/records/([0-9a-f]+)$", str(correction.url)).group(1)
    assert f'This entry corrects\n<a href="/records/{note_id}">' in correction.text
    old_page = client.get(f"/records/{note_id}").text
    assert "This entry was corrected later by" in old_page and new_id[:12] in old_page
    with Case.open(case_dir, writable=False) as case:
        assert case.index.record(new_id)["occurred_at"] == "2024-03-02T21:40:00+00:00"   # same incident
        assert case.index.record(note_id)["text"] == "Car parked opposite for an hour"      # never edited


def test_diary_refuses_an_empty_entry_and_a_future_date(client):
    empty = client.post("/diary", data={"csrf": csrf(), "date": "2024-03-02", "what": "  "})
    assert empty.status_code == 400 and "The note is empty." in empty.text
    future = client.post("/diary", data={"csrf": csrf(), "date": "2999-01-01", "what": "later"})
    assert future.status_code == 400 and "is in the future" in future.text


# --- the timeline -------------------------------------------------------------------------------
def long_chat(folder: Path, messages: int) -> Path:
    path = folder / "WhatsApp Chat with Jordan.txt"
    lines = [f"{1 + n // 1440:02d}/03/2024, {n // 60 % 24:02d}:{n % 60:02d} - Jordan: message number {n}"
             for n in range(messages)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_timeline_pages_forward_and_back(client, ingest, tmp_path):
    ingest("run", "--source", "whatsapp", long_chat(tmp_path, 250))
    first = client.get("/timeline").text
    assert "251 record(s)." in first                     # 250 messages and the export's own record
    assert "message number 99<" in first and "message number 100<" not in first
    later = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(later).text
    assert "message number 99<" not in second and "message number 100<" in second
    assert "message number 199<" in second and "message number 200<" not in second
    earlier = re.search(r'href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")
    assert record_ids(client.get(earlier).text) == record_ids(first)
    last = client.get(re.search(r'href="([^"]+)" rel="next"', second).group(1).replace("&amp;", "&")).text
    assert 'rel="next"' not in last and "message number 249<" in last


def test_timeline_stops_counting_past_the_limit(client, ingest, tmp_path, monkeypatch):
    from ingest.features.app import routes

    ingest("run", "--source", "whatsapp", long_chat(tmp_path, 150))
    monkeypatch.setattr(routes, "COUNT_LIMIT", 100)
    assert "More than 100 record(s)." in client.get("/timeline").text
    assert "1 record(s) match." in client.get("/timeline", params={"kind": "file"}).text     # under it: exact
    assert "More than 100 record(s) match." in client.get("/timeline", params={"q": "number"}).text


def test_timeline_filters_and_search(client, ingest, tmp_path):
    ingest("run", "--source", "whatsapp", long_chat(tmp_path, 50))
    ingest("note", "A grey car outside again", "--at", "2024-03-05 10:00")
    notes = client.get("/timeline", params={"kind": "note"}).text
    assert "1 record(s) match." in notes and "A grey car outside again" in notes
    found = client.get("/timeline", params={"q": '"number 42"'}).text
    assert "1 record(s) match." in found and "message number 42" in found
    by_date = client.get("/timeline", params={"since": "2024-03-05", "until": "2024-03-05"}).text
    assert "1 record(s) match." in by_date
    ingest("party", "add", "Jordan Pike", "--alias", "Jordan")
    person = client.get("/timeline", params={"party": "Jordan Pike", "kind": "whatsapp"}).text
    assert "50 record(s) match." in person and "<td>Jordan Pike</td>" in person
    unknown = client.get("/timeline", params={"party": "Nobody"})
    assert unknown.status_code == 400 and "There is no party called &#39;Nobody&#39;." in unknown.text
    bad = client.get("/timeline", params={"q": '"unclosed'})
    assert bad.status_code == 400 and "Cannot search for" in bad.text


def test_record_page_shows_the_hashes_and_the_original_downloads(client, ingest, tmp_path, case_dir):
    export = whatsapp_export(tmp_path)
    ingest("run", "--source", "files", export)
    with Case.open(case_dir, writable=False) as case:
        message = next(case.index.records(kinds=["whatsapp"]))
    page = client.get(f"/records/{message['id']}").text
    assert message["original"]["sha256"] in page and message["original"]["blake3"] in page
    assert "I know you moved" in page
    download = client.get(f"/records/{message['id']}/original")
    assert download.content == export.read_bytes()
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert client.get("/records/ffff0000").status_code == 404


# --- hand over, people, settings, start -----------------------------------------------------------
def test_hand_over_makes_a_bundle_that_verifies(client, ingest, tmp_path, case_dir):
    ingest("run", "--source", "files", whatsapp_export(tmp_path))
    with Case.open(case_dir, writable=False) as case:
        from ingest.features.app.routes import fingerprint
        key = fingerprint(case)
    assert key in client.get("/handover").text
    job = finished_job(client, client.post("/handover", data={"csrf": csrf()}))
    assert "The bundle is ready: 4 record(s) and 1 original(s)" in job["page"] and key in job["page"]
    assert re.search(r'<dt>Seal code</dt><dd><code class="code">[A-Z2-7]{4}(-[A-Z2-7]{4}){3}</code>', job["page"])
    bundle = tmp_path / "downloaded.zip"
    bundle.write_bytes(client.get(f"/handover/{job['id']}/bundle.zip").content)
    assert verify_bundle(bundle).ok
    with zipfile.ZipFile(bundle) as archive:
        report = next(name for name in archive.namelist() if name.endswith("/report.html"))
        assert client.get(f"/handover/{job['id']}/report.html").content == archive.read(report)
    assert client.get(f"/handover/{job['id']}/custody.jsonl").status_code == 404
    assert f"/handover/{job['id']}/bundle.zip" in client.get("/handover").text


def test_people_add_link_accept_a_suggestion_and_mark(client, ingest, tmp_path, case_dir):
    calls = tmp_path / "calls.csv"
    calls.write_text("Number,Name,Date,Time,Duration,Type\n"
                     "07700 900123,Mark Ellis,01/03/2024,21:00,0:30,Incoming\n"
                     "07700 900123,Jordan,02/03/2024,21:00,0:10,Missed\n")
    ingest("run", "--source", "calls", calls)
    page = client.get("/people").text
    assert "No one yet." in page
    assert "The number +447700900123 appears under 2 names: &#39;Jordan&#39; (1), &#39;Mark Ellis&#39; (1)." in page
    # accept the suggestion, naming the person
    client.post("/people/add", data={"csrf": csrf(), "name": "Mark Ellis", "phones": "+447700900123",
                                     "aliases": "Jordan\nMark Ellis"})
    client.post("/people/link", data={"csrf": csrf(), "name": "Mark Ellis", "emails": "mark@example.org"})
    page = client.get("/people").text
    assert "<td>+447700900123</td><td>mark@example.org</td><td>Jordan, Mark Ellis</td>" in page
    assert "Suggestions" not in page
    with Case.open(case_dir, writable=False) as case:
        call = next(case.index.records(kinds=["call"]))
    marked = client.post(f"/records/{call['id']}/mark", data={"csrf": csrf(), "as": "reported-to-police",
                                                              "reference": "CR/1234/24"})
    assert "<dt>Marked</dt><dd>reported-to-police (CR/1234/24)," in marked.text
    assert "<dt>People</dt><dd>Mark Ellis</dd>" in marked.text
    assert '<span class="flag">reported-to-police</span>' in client.get("/timeline").text
    again = client.post(f"/records/{call['id']}/mark", data={"csrf": csrf(), "as": "reported-to-police"})
    assert again.status_code == 400 and "is already marked reported-to-police" in again.text
    assert client.post("/people/remove", data={"csrf": csrf(), "name": "Mark Ellis"}).status_code == 404


def test_owner_numbers_from_the_start_page(client, case_dir):
    client.post("/case/owner", data={"csrf": csrf(), "name": "Sam", "phones": "07700 900999", "emails": ""})
    client.post("/case/owner", data={"csrf": csrf(), "emails": "sam@example.org"})
    assert "Known now: +447700900999, sam@example.org." in client.get("/").text
    from ingest.features.parties import list_parties
    with Case.open(case_dir, writable=False) as case:
        assert list_parties(case)[0] | {"added_at": None} == {
            "name": "Sam", "me": True, "note": None, "added_at": None, "phones": ["+447700900999"],
            "emails": ["sam@example.org"], "aliases": [], "handles": []}


def test_quick_exit_site_is_a_setting(client):
    assert 'id="leave-now" class="leave" href="https://www.bbc.co.uk/weather"' in client.get("/").text
    client.post("/settings", data={"csrf": csrf(), "exit_site": "https://www.example.org/recipes"})
    assert 'href="https://www.example.org/recipes"' in client.get("/timeline").text
    refused = client.post("/settings", data={"csrf": csrf(), "exit_site": "javascript:alert(1)"})
    assert refused.status_code == 400 and "is not a web address" in refused.text
    assert 'href="https://www.example.org/recipes"' in client.get("/").text


def test_start_makes_a_case_with_the_systems_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    workdir = tmp_path / "work"
    workdir.mkdir()
    folder = tmp_path / "new-case"
    state = AppState(case_dir=folder, token=TOKEN, port=PORT, workdir=workdir)
    browser = TestClient(create_app(state), base_url=ORIGIN)
    page = browser.get(f"/?token={TOKEN}").text
    assert 'value="America/New_York"' in page and 'value="US"' in page
    assert browser.get("/timeline").url.path == "/"        # no case yet: the start page
    made = browser.post("/case/new", data={"csrf": csrf(), "folder": str(folder), "name": "My case",
                                           "timezone": "America/New_York", "region": "US"})
    assert "Your case: My case" in made.text
    assert Case.open(folder, writable=False).config.timezone == "America/New_York"
    other = browser.post("/case/open", data={"csrf": csrf(), "folder": str(tmp_path / "nothing")})
    assert other.status_code == 400 and "There is no case at" in other.text


def test_demo_case_opens_in_the_app(tmp_path, monkeypatch, ingest, case_dir):
    """Every example the demo keeps, then every page and every record's page."""
    for folder in sorted((REPO / "examples").iterdir()):
        assert ingest("run", "--source", folder.name, folder).exit_code == 0, folder
    ingest("note", "Grey Ford Focus, number plate AB12 CDE", "--at", "2024-03-02 21:40", "--where", "Outside home")
    state = AppState(case_dir=case_dir, token=TOKEN, port=PORT, workdir=tmp_path)
    browser = TestClient(create_app(state), base_url=ORIGIN)
    browser.get(f"/?token={TOKEN}")
    for path in ("/", "/add", "/diary", "/people", "/handover", "/settings"):
        assert browser.get(path).status_code == 200, path
    with Case.open(case_dir, writable=False) as case:
        total = case.index.count_records()
        ids = [record["id"] for record in case.index.records()]
    timeline = browser.get("/timeline").text
    assert f"{total} record(s)." in timeline and "Jordan" in timeline
    assert record_ids(timeline) == ids[:100]
    for record_id in ids:
        assert browser.get(f"/records/{record_id}").status_code == 200, record_id

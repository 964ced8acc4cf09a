"""`ingest report`: one self-contained HTML file, checked in a real headless Chromium."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from handoff_helpers import build_mixed, screenshot

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with nothing that could reach the network, and a fresh profile."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """What the page said on its console, and what the browser refused to load."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Refused to" in line
            or "net::ERR" in line]


@pytest.fixture
def report(ingest, case_dir, tmp_path):
    """The report of a case of every kind at hand: files, SMS, email with a photo, notes (one corrected)
    and a screenshot whose text is read by OCR."""
    build_mixed(ingest, tmp_path / "evidence")
    shots = tmp_path / "shots"
    shots.mkdir()
    screenshot(shots / "Screenshot_20240216.png", "I AM WATCHING YOU", "2024-02-16T22:05:00")
    assert ingest.json("run", "--source", "files", shots, "--json")["failed"] == 0
    first = ingest.json("note", "A grey car outside", "--at", "2024-02-17 19:00", "--json")
    ingest.json("note", "It was <b>blue</b> & parked <script>alert(1)</script>", "--supersedes", first["id"], "--json")
    out = tmp_path / "out" / "report.html"
    result = ingest("report", "--out", out)
    assert result.exit_code == 0, result.output
    records = ingest.json("list", "--json")
    assert result.stdout == f"Wrote the report of {len(records)} record(s) to {out}\n"
    return out, records


def test_report_is_self_contained_and_complete(report, case_dir):
    out, records = report
    html = out.read_text(encoding="utf-8")
    assert len(records) == 12
    for record in records:
        assert f'id="r-{record["id"]}"' in html
        assert record["original"]["sha256"] in html and record["original"]["blake3"] in html
    assert html.count("<article ") == len(records)
    # offline: nothing to fetch, and the page forbids fetching anything
    assert not re.search(r'(?:src|href)\s*=\s*"(?!data:|#)', html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"url\((?!#pat-[a-z-]+\))", html)     # only the page's own chart patterns
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:;' in html
    # typed text is shown, never run
    assert "It was &lt;b&gt;blue&lt;/b&gt; &amp; parked &lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the screenshot: thumbnail embedded, OCR text shown
    assert html.count('<img class="thumb" src="data:image/') == 2          # the screenshot and the emailed photo
    # the screenshot's text is what OCR read from it: shown once, not again as an OCR snippet
    assert len(re.findall(r"WATCHING YOU", html)) == 1 and "Text read from the image:" not in html
    # counts, both times, the custody log and how to verify
    assert ('<td><svg class="key" viewBox="0 0 16 12" aria-hidden="true" xmlns="http://www.w3.org/2000/svg">'
            '<rect width="16" height="12" fill="#2ca02c"/><rect width="16" height="12" fill="url(#pat-diagonal)"/>'
            '</svg>sms</td><td class="num">3</td>') in html
    assert "Happened</dt><dd>2024-02-11T09:00:00+00:00 · from sms:date · time as written: <code>1707642000000</code>" in html
    assert "Corrected later by" in html and "Corrects <a href=" in html
    custody_lines = (case_dir / "custody.jsonl").read_text().splitlines()
    report_line = json.loads(custody_lines[-1])
    assert report_line["action"] == "report"
    assert report_line["detail"]["records"] == len(records)
    assert report_line["detail"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    custody_table = html[html.index('<table class="custody">'):]
    assert custody_table.count("<tr><td class=\"num\">") == len(custody_lines) - 1   # all lines before the report's own
    assert "sha256sum FILE" in html and "openssl pkeyutl -verify" in html
    assert "@media print" in html


def test_chart_counts_incidents_per_week_by_kind(report):
    out, _records = report
    html = out.read_text(encoding="utf-8")
    titles = re.findall(r"<g><title>([^<]*)</title>", html)
    # the SMS backup and the email's photo are not incidents of their own; the correction is one more note
    assert titles == [
        "Week of 05 Feb 2024: 1 file, 1 note, 2 sms",
        "Week of 12 Feb 2024: 1 email, 3 note, 1 screenshot, 1 sms",
    ]
    assert "2 week(s) from 05 Feb 2024 to 18 Feb 2024; the busiest week had 6." in " ".join(html.split())
    assert html.count('<rect x=') == 2 * 7        # each segment: its colour, then its pattern over it


@needs_chromium
def test_report_renders_in_headless_chromium(report, tmp_path):
    out, records = report
    png = tmp_path / "report.png"
    shot = chromium(tmp_path, out, f"--screenshot={png}", "--window-size=1100,3000")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert console_messages(shot.stderr) == []
    dom = chromium(tmp_path, out, "--dump-dom")
    assert dom.returncode == 0
    assert console_messages(dom.stderr) == []
    for record in records:
        assert f'id="r-{record["id"]}"' in dom.stdout
    assert dom.stdout.count('<img class="thumb" src="data:image/') == 2
    pdf = tmp_path / "report.pdf"
    printed = chromium(tmp_path, out, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert printed.returncode == 0 and pdf.read_bytes()[:5] == b"%PDF-"


@needs_chromium
def test_console_errors_would_be_caught(tmp_path):
    """The check above is real: a page that logs an error or loads from elsewhere is caught."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("broken")</script>'
                    '<img src="http://127.0.0.1:9/x.png"></body></html>')
    result = chromium(tmp_path, page, "--dump-dom")
    assert any("broken" in line for line in console_messages(result.stderr))


def test_empty_case_report(ingest, tmp_path):
    out = tmp_path / "empty.html"
    result = ingest("report", "--out", out)
    assert result.exit_code == 0 and result.stdout == f"Wrote the report of 0 record(s) to {out}\n"
    html = out.read_text()
    assert "The case holds no records yet." in html and "There are no items to chart yet." in html


def test_report_onto_a_folder_is_refused(ingest, tmp_path):
    result = ingest("report", "--out", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"ingest: {tmp_path} is a folder. Give a file name for the report, e.g. --out report.html."


def test_other_parsers_metadata_does_not_confuse_the_note_fields(case, tmp_path):
    """`attachments`, `where` and `supersedes` mean something else to other parsers (a count, say)."""
    import io

    from ingest.kit.adapter import Parser, Source
    from ingest.pipeline import run
    from ingest.model.records import Original, Record
    from ingest.features.report import write_report

    class OneMessage(Source):
        name = "test"

        def originals(self, ctx):
            yield Original(stream=io.BytesIO(b"hello"), source_key="test://1", filename="one.txt")

    class CountingParser(Parser):
        name, version = "counting", "1"

        def parse(self, stored, ctx):
            yield Record(kind="mms", text="see attached", metadata={"attachments": 2, "where": 5, "supersedes": 1})

    run(case, OneMessage(), CountingParser())
    out = tmp_path / "r.html"
    assert write_report(case, out) == 1
    html = out.read_text()
    assert "see attached" in html and "Attached</dt>" not in html and "Where:" not in html and "Corrects" not in html

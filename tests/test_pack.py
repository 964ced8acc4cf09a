"""The officer's pack in every bundle: exhibits.csv, statement.txt, the Timesketch timeline,
case.jsonld (checked by case_validate) and report.pdf (checked by pdfinfo and pdftotext)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from handoff_helpers import build_mixed

CASE_VALIDATE = str(Path(sys.executable).parent / "case_validate")


def run(*argv, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(list(map(str, argv)), cwd=cwd, capture_output=True, text=True, timeout=600)


def pdf_pages(path: Path) -> int:
    info = run("pdfinfo", path)
    assert info.returncode == 0, info.stderr
    return int(re.search(r"^Pages:\s+(\d+)$", info.stdout, re.M).group(1))


def page_text(path: Path, page: int) -> str:
    return run("pdftotext", "-layout", "-f", page, "-l", page, path, "-").stdout


@pytest.fixture
def packed(ingest, tmp_path):
    build_mixed(ingest, tmp_path / "evidence")
    out = tmp_path / "bundle"
    result = ingest("export", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_exhibits_csv_matches_the_originals_and_stays_across_exports(packed, ingest, tmp_path):
    data = packed / "data"
    rows = list(csv.DictReader((data / "exhibits.csv").open(encoding="utf-8")))
    assert [row["mark"] for row in rows] == ["T/1", "T/2", "T/3", "T/4", "T/5"]
    manifest = json.loads((data / "manifest.json").read_text())
    files = {record["original"]["blake3"]: record["file"] for record in manifest["records"]}
    for row in rows:
        copy = (data / files[row["blake3"]]).read_bytes()
        assert hashlib.sha256(copy).hexdigest() == row["sha256"] and len(copy) == int(row["size"])
    assert rows[2]["description"] == "SMS backup, 3 text messages" and rows[2]["items"] == "4"
    # a second export gives the same marks to the same originals
    again = tmp_path / "again"
    assert ingest("export", "--out", again, "--no-pdf").exit_code == 0
    second = list(csv.DictReader((again / "data" / "exhibits.csv").open(encoding="utf-8")))
    assert [(r["mark"], r["blake3"]) for r in second] == [(r["mark"], r["blake3"]) for r in rows]
    assert not (again / "data" / "report.pdf").exists()
    # a selection lists only the exhibits it holds records of, with their own marks
    sms = tmp_path / "sms"
    assert ingest("export", "--out", sms, "--kind", "sms", "--no-pdf").exit_code == 0
    chosen = list(csv.DictReader((sms / "data" / "exhibits.csv").open(encoding="utf-8")))
    assert [(r["mark"], r["description"]) for r in chosen] == [("T/3", "SMS backup, 3 text messages")]


def test_statement_names_every_mark_and_hash(packed):
    data = packed / "data"
    statement = (data / "statement.txt").read_text(encoding="utf-8")
    rows = list(csv.DictReader((data / "exhibits.csv").open(encoding="utf-8")))
    for row in rows:
        assert f"{row['mark']}: " in statement and f"SHA-256 at capture: {row['sha256']}" in statement
        assert f"BLAKE3 at capture:  {row['blake3']}" in statement
        assert f"SHA-256 at export:  {row['sha256']}" in statement
    custody = (data / "custody.jsonl").read_text().splitlines()
    assert f"the log had {len(custody)} line(s)" in " ".join(statement.split())
    seal = re.search(r"Seal code of the custody log at line \d+: ([A-Z2-7-]+)\.", " ".join(statement.split()))
    assert seal and seal.group(1) in (packed / "README.txt").read_text()
    assert "Copied from the file evidence/sms-backup.xml, opened for reading only" in " ".join(statement.split())
    assert "Written into the case by the operator with `ingest note`." in statement
    for conclusion in ("guilty", "harass", "offence", "stalking"):
        assert conclusion not in statement.lower()


def test_timesketch_fields_on_every_line(packed):
    data = packed / "data"
    records = json.loads((data / "manifest.json").read_text())["records"]
    lines = [json.loads(line) for line in (data / "timeline.jsonl").read_text().splitlines()]
    assert len(lines) == len(records)
    for line in lines:
        assert line["message"] and line["timestamp_desc"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", line["datetime"])
        assert {"kind", "parties", "exhibit", "record_id"} <= set(line)
    sms = [line for line in lines if line["kind"] == "sms"]
    assert [(s["datetime"], s["timestamp_desc"], s["exhibit"]) for s in sms] == [
        ("2024-02-05T09:00:00+00:00", "Message received", "T/3"),
        ("2024-02-11T09:00:00+00:00", "Message received", "T/3"),
        ("2024-02-12T09:00:00+00:00", "Message sent", "T/3")]
    assert sms[2]["message"] == "sms outgoing from me to +447700900123: Please stop contacting me"
    with (data / "timeline.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["record_id"] for row in rows] == [line["record_id"] for line in lines]
    assert list(rows[0])[:3] == ["message", "datetime", "timestamp_desc"]


def test_case_jsonld_passes_case_validate(packed):
    document = json.loads((packed / "data" / "case.jsonld").read_text())
    types = [node["@type"] for node in document["@graph"]]
    assert types.count("observable:File") == types.count("case-investigation:InvestigativeAction") == 5
    assert types.count("case-investigation:ProvenanceRecord") == 5
    numbers = [n["case-investigation:exhibitNumber"] for n in document["@graph"]
               if n["@type"] == "case-investigation:ProvenanceRecord"]
    assert numbers == ["T/1", "T/2", "T/3", "T/4", "T/5"]
    checked = run(CASE_VALIDATE, packed / "data" / "case.jsonld")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Conforms: True" in checked.stdout


def test_pdf_pages_carry_their_number_the_case_and_the_list_hash(packed):
    pdf = packed / "data" / "report.pdf"
    pages = pdf_pages(pdf)
    assert pages >= 2
    listed = run("sh", "-c", "grep '  data/' SHA256SUMS | grep -v '  data/report.pdf$' | LC_ALL=C sort | sha256sum",
                 cwd=packed).stdout[:16]
    for page in range(1, pages + 1):
        text = page_text(pdf, page)
        assert f"Page {page} of {pages}" in text
        assert "Test case" in text and f"list of files {listed}" in text
    first = " ".join(page_text(pdf, 1).split())
    assert "Summary: Test case" in first and "Produced by Tester" in first
    assert re.search(r"Seal code [A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", first)
    assert "Incidents per week" in first
    index = page_text(pdf, 2)
    assert "Incident index" in index and "I know where you live now" in index and "T/3" in index
    # the list-of-files hash changes when any other file does: here, the statement
    assert "list of files" in (packed / "README.txt").read_text()


def test_three_thousand_sms_print_in_at_most_80_pages(ingest, tmp_path, capsys):
    backup = tmp_path / "big" / "sms-3000.xml"
    backup.parent.mkdir()
    start = 1704067200000      # 2024-01-01 00:00 UTC
    rows = "".join(f'  <sms protocol="0" address="07700 900{n % 7:03d}" date="{start + n * 1_800_000}" type="1" '
                   f'body="Message {n}: where are you now, I can see your car outside again" read="1" />\n'
                   for n in range(3000))
    backup.write_text(f"<?xml version='1.0' encoding='UTF-8'?>\n<smses count=\"3000\">\n{rows}</smses>\n")
    summary = ingest.json("run", "--source", "sms", backup.parent, "--json")
    assert summary["records"] == 3001
    out = tmp_path / "bundle"
    assert ingest("export", "--out", out).exit_code == 0
    pages = pdf_pages(out / "data" / "report.pdf")
    with capsys.disabled():
        print(f"\n3,000 SMS: report.pdf has {pages} pages")
    assert pages <= 80
    last = page_text(out / "data" / "report.pdf", pages)
    assert "Message 2999" in " ".join(page_text(out / "data" / "report.pdf", pages - 1).split() + last.split())


def test_a_selection_keeps_whole_conversations_and_lists_what_it_left_out(ingest, tmp_path):
    build_mixed(ingest, tmp_path / "evidence")
    out = tmp_path / "selection"
    # only the SMS of 11 February matches; its conversation (both sides, the reply included) goes whole
    result = ingest("export", "--out", out, "--since", "2024-02-11 00:00", "--until", "2024-02-11 23:00", "--no-pdf")
    assert result.exit_code == 0, result.output
    data = out / "data"
    records = json.loads((data / "manifest.json").read_text())["records"]
    assert sorted((r["kind"], r.get("text")) for r in records if r["kind"] == "sms") == [
        ("sms", "I know where you live now"), ("sms", "Please stop contacting me"), ("sms", "Why are you ignoring me?")]
    with (data / "left_out.csv").open(encoding="utf-8") as handle:
        left = list(csv.reader(handle))
    assert left[0] == ["kind", "party", "records left out", "why"]
    why = "outside the selection (since 2024-02-11T00:00:00Z; until 2024-02-11T23:00:00Z)"
    kept = {r["id"] for r in records}
    every = ingest.json("list", "--json")
    expected: dict[str, int] = {}
    for record in every:
        if record["id"] not in kept:
            expected[record["kind"]] = expected.get(record["kind"], 0) + 1
    assert {(row[0], int(row[2])) for row in left[1:]} == set(expected.items())
    assert {row[3] for row in left[1:]} == {why}
    text = (data / "left_out.csv").read_text()
    assert "lovely" not in text and "Grey Ford" not in text     # counts only, never content
    assert "data/left_out.csv" in (out / "README.txt").read_text()
    code = ingest("verify", out)
    assert code.exit_code == 0, code.output


def test_a_split_bundle_verifies_volume_by_volume(ingest, tmp_path):
    import os
    import zipfile

    from ingest.features.volumes import parse_size

    assert (parse_size("4G"), parse_size("700M"), parse_size("1.5k"), parse_size("12")) == (4 << 30, 700 << 20, 1536, 12)
    folder = tmp_path / "videos"
    folder.mkdir()
    for number in range(3):
        (folder / f"clip{number}.bin").write_bytes(os.urandom(1_200_000))    # incompressible
    ingest.json("run", "--source", "files", folder, "--json")
    refused = ingest("export", "--out", tmp_path / "small.zip", "--max-file-size", "1500K", "--no-pdf")
    assert refused.exit_code == 2
    assert refused.stderr.startswith("ingest: Exhibit T/1 alone needs about 1.2 MB, more than --max-file-size allows.")
    assert ingest("export", "--out", tmp_path / "x.zip", "--max-file-size", "lots").exit_code == 2

    result = ingest("export", "--out", tmp_path / "bundle.zip", "--max-file-size", "3M", "--no-pdf")
    assert result.exit_code == 0, result.output
    assert "The bundle is in 3 volumes; each one can be checked on its own." in result.stdout
    marks = []
    for number in (1, 2, 3):
        volume = tmp_path / f"bundle-vol{number}.zip"
        assert volume.stat().st_size <= 3 << 20
        checked = ingest("verify", volume)
        assert checked.exit_code == 0, checked.output
        target = tmp_path / f"unzipped{number}"
        with zipfile.ZipFile(volume) as archive:
            archive.extractall(target)
        root = target / f"bundle-vol{number}"
        sums = run("sha256sum", "-c", "SHA256SUMS", cwd=root)
        assert sums.returncode == 0, sums.stdout
        signed = run("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "public_key.pem", "-rawin", "-in",
                     "SHA256SUMS", "-sigfile", "SHA256SUMS.sig", cwd=root)
        assert signed.stdout.strip() == "Signature Verified Successfully"
        assert f"volume {number} of 3, exhibits T/{number}" in " ".join((root / "README.txt").read_text().split())
        marks += [row["mark"] for row in csv.DictReader((root / "data" / "exhibits.csv").open(encoding="utf-8"))]
    assert marks == ["T/1", "T/2", "T/3"]
    assert not (tmp_path / "bundle.zip").exists()


def test_the_bundle_report_links_originals_and_says_plainly_what_machines_read(ingest, tmp_path):
    from email.message import EmailMessage

    from ingest.features.handover import duration

    assert [duration(s) for s in (0, 5, 65, 3600, 3725.4, None)] == ["0 s", "5 s", "1 min 5 s", "1 h 0 min 0 s",
                                                                      "1 h 2 min 5 s", ""]
    build_mixed(ingest, tmp_path / "evidence")
    calls = tmp_path / "calls" / "calls-2024.xml"
    calls.parent.mkdir()
    calls.write_text("<?xml version='1.0' encoding='UTF-8'?>\n<calls count=\"1\">\n"
                     '  <call number="+447700900123" duration="65" date="1707800000000" type="1" contact_name="J Smith" />\n'
                     "</calls>\n")
    assert ingest.json("run", "--source", "calls", calls.parent, "--json")["records"] == 2
    mail = EmailMessage()
    mail["From"] = "J Smith <j.smith@example.com>"
    mail["To"] = "alex@example.org"
    mail["Subject"] = "Checked"
    mail["Date"] = "Thu, 15 Feb 2024 10:00:00 +0000"
    mail["Authentication-Results"] = "mx.example.org; spf=pass smtp.mailfrom=example.com; dkim=fail header.d=example.com; dmarc=fail"
    mail.set_content("Did you get my letter?\n")
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "checked.eml").write_bytes(bytes(mail))
    ingest.json("run", "--source", "eml", tmp_path / "mail", "--json")
    out = tmp_path / "bundle"
    assert ingest("export", "--out", out, "--no-pdf").exit_code == 0
    html = (out / "data" / "report.html").read_text()
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    photo = next(r for r in manifest["records"] if r["original"]["filename"] == "outside.png")
    # the picture is the bundle's own copy, and every record links to its original there
    assert f'<img class="picture" src="{photo["file"]}"' in html and (out / "data" / photo["file"]).is_file()
    for record in manifest["records"]:
        assert f'<a href="{record["file"]}">' in html
    assert "call · incoming · 1 min 5 s" in html
    assert ("<dt>Mail checks</dt><dd>spf=pass, dkim=fail, dmarc=fail (as recorded by mx.example.org in "
            "Authentication-Results)</dd>") in html
    # summary, incident index, then details
    assert html.index('id="summary"') < html.index('id="index"') < html.index('id="timeline"')
    index = html.split('<section id="index">')[1].split("</section>")[0]
    assert "Please stop contacting me" in index and "<td>T/3</td>" in index


def test_parties_and_requests_to_stop_reach_the_pdf_and_the_timeline(ingest, tmp_path):
    build_mixed(ingest, tmp_path / "evidence")
    assert ingest("party", "add", "J Smith", "--phone", "07700 900123", "--email", "j.smith@example.com").exit_code == 0
    stop = next(r for r in ingest.json("list", "--json") if r.get("text") == "Please stop contacting me")
    assert ingest("mark", stop["id"], "--as", "request-to-stop").exit_code == 0
    out = tmp_path / "bundle"
    assert ingest("export", "--out", out).exit_code == 0
    first = " ".join(page_text(out / "data" / "report.pdf", 1).split())
    assert "Contacts per party" in first and "J Smith 3 " in first
    assert "12 Feb 2024 09:00: 1 contact(s) after it" in first
    lines = [json.loads(line) for line in (out / "data" / "timeline.jsonl").read_text().splitlines()]
    assert {line["parties"] for line in lines if line["kind"] in ("sms", "email")} == {"J Smith"}


def test_the_statement_says_how_mail_was_fetched():
    from ingest.features.handover import Acquisition, capture_sentence

    peer = {"host": "127.0.0.1", "port": 9993, "protocol": "IMAP over TLS", "tls_cert_sha256": "AB:CD:EF"}
    mail = Acquisition("2024-03-01T09:00:00Z", "Sam", "ingest 0.1.0", 7, "imap", "email 1",
                       "imap://sam@127.0.0.1/INBOX;UIDVALIDITY=1;UID=4", "00" * 32, peer)
    assert capture_sentence(mail) == (
        "Downloaded from the mail server 127.0.0.1 port 9993 (IMAP over TLS), with the mailbox opened read-only "
        "(IMAP EXAMINE and BODY.PEEK[], so no message was marked read or changed). The server presented a TLS "
        "certificate with SHA-256 fingerprint AB:CD:EF.")
    plain = Acquisition(**{**mail.__dict__, "peer": dict(peer, tls_cert_sha256=None)})
    assert capture_sentence(plain).endswith("The connection was not encrypted (no TLS certificate).")
    assert capture_sentence(None) == "The case's custody log holds no acquisition line for it."


def test_an_unknown_time_reaches_timesketch_as_the_time_it_was_kept_and_says_so():
    from ingest.features.handover import timesketch_row

    record = {"id": "r1", "kind": "file", "direction": None, "from": [], "to": [], "subject": None, "text": "Note",
              "occurred_at": None, "occurred_at_source": "unknown", "acquired_at": "2026-11-30T10:00:00Z",
              "timezone_assumed": False, "original": {"sha256": "0" * 64, "filename": "x.txt"}, "metadata": {}}
    row = timesketch_row(record, "SP/1")
    assert (row["datetime"], row["timestamp_desc"]) == ("2026-11-30T10:00:00+00:00",
                                                       "Kept by ingest (when it happened is unknown)")
    record["occurred_at"] = "2024-03-01T21:41:05+01:00"
    assert timesketch_row(record, "SP/1")["datetime"] == "2024-03-01T21:41:05+01:00"

"""Issue 13: detection by content, a wrong --source that loses nothing, containers that are not
incidents, and items whose time cannot be read. Every fixture is written here."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import zipfile
from pathlib import Path

from phone_helpers import sms, write_backup

CHAT = ("12/03/2024, 21:40 - Jordan: I saw you at the station\n"
        "12/03/2024, 21:41 - Jordan: Answer me\n"
        "13/03/2024, 08:02 - Sam: Please stop contacting me\n")
APPLE_2024_03_01 = 730_944_000      # 2024-03-01T00:00:00Z in seconds since 2001


def chat_zip(path: Path, member: str = "sample.txt") -> Path:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, CHAT)
        archive.writestr("PTT-20240312-WA0001.opus", b"OggS" + b"\x00" * 64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.getvalue())
    return path


def padded_schema(db: sqlite3.Connection, tables: int = 60) -> None:
    """Enough other tables that the schema no longer fits on the first page (as in a real phone's)."""
    for number in range(tables):
        db.execute(f"CREATE TABLE other{number} (a TEXT, b TEXT, c TEXT, d TEXT, e TEXT, f TEXT)")
        db.execute(f"CREATE INDEX other{number}_a ON other{number}(a, b)")


def android_sms_db(path: Path, *, padded: bool) -> Path:
    with sqlite3.connect(path) as db:
        if padded:
            padded_schema(db)
        db.execute("CREATE TABLE sms (_id INTEGER PRIMARY KEY, address TEXT, date INTEGER, type INTEGER, body TEXT)")
        db.execute("INSERT INTO sms VALUES (1, '07700900123', 1709329265000, 1, ?)", (f"I know where you live ({path.name})",))
    return path


def ios_sms_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        padded_schema(db)
        db.execute("CREATE TABLE handle (ROWID INTEGER PRIMARY KEY, id TEXT)")
        db.execute("CREATE TABLE message (ROWID INTEGER PRIMARY KEY, handle_id INTEGER, date INTEGER, "
                   "is_from_me INTEGER, text TEXT, attributedBody BLOB)")
        db.execute("INSERT INTO handle VALUES (1, '+447700900123')")
        db.execute(f"INSERT INTO message VALUES (1, 1, {APPLE_2024_03_01 * 10**9}, 0, 'Outside your door', NULL)")
    return path


def android_calls_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        padded_schema(db)
        db.execute("CREATE TABLE calls (_id INTEGER PRIMARY KEY, number TEXT, date INTEGER, duration INTEGER, "
                   "type INTEGER)")
        db.execute("INSERT INTO calls VALUES (1, '07700900123', 1709329265000, 0, 3)")
    return path


def ios_calls_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE ZCALLRECORD (Z_PK INTEGER PRIMARY KEY, ZADDRESS TEXT, ZDATE REAL, ZDURATION REAL, "
                   "ZORIGINATED INTEGER, ZANSWERED INTEGER)")
        db.execute(f"INSERT INTO ZCALLRECORD VALUES (1, '07700900123', {APPLE_2024_03_01}.5, 42.0, 1, 1)")
        db.execute(f"INSERT INTO ZCALLRECORD VALUES (2, '07700900123', {APPLE_2024_03_01 + 60}, 0, 0, 0)")
    return path


def run(ingest, *args, expect_exit: int = 0) -> dict:
    result = ingest("run", *map(str, args), "--json")
    assert result.exit_code == expect_exit, result.output
    return json.loads(result.stdout)


def current(ingest) -> list[dict]:
    return ingest.json("list", "--json")


# --- no --source: every format recognised by its content ---------------------------------------
def test_run_without_source_recognises_every_format_whatever_the_file_is_called(ingest, tmp_path):
    folder = tmp_path / "phone"
    folder.mkdir()
    android_sms_db(folder / "3d0d7e5fb2ce288813306e4d4636395e047a3d28", padded=True)   # an iOS-backup-like hash name
    android_sms_db(folder / "small", padded=False)
    ios_sms_db(folder / "chat-copy")
    android_calls_db(folder / "a1b2c3")
    ios_calls_db(folder / "5a4935c78a5255723f707230a451d79c540d2741")
    for member in ("sample.txt", "_chat.txt", "WhatsApp Chat with Jordan.txt"):
        chat_zip(folder / f"{member[:5]}.zip", member)
    maildir = folder / "Mail"
    (maildir / "cur").mkdir(parents=True)
    (maildir / "cur" / "1709329265.M1P1.host:2,S").write_bytes(
        b"From: j@example.net\nTo: sam@example.org\nSubject: hi\nDate: Fri, 1 Mar 2024 21:41:05 +0000\n\nhello\n")
    summary = run(ingest, folder)
    assert (summary["unparsed"], summary["failed"], summary["not_read"]) == (0, 0, [])
    by_name: dict[str, set] = {}
    for record in current(ingest):
        by_name.setdefault(record["original"]["filename"], set()).add(record["source"]["parser"].split(" > ")[-1])
    assert by_name["3d0d7e5fb2ce288813306e4d4636395e047a3d28"] == {"sms 1"}
    assert by_name["small"] == {"sms 1"}
    assert by_name["chat-copy"] == {"sms 1"}
    assert by_name["a1b2c3"] == {"calls 1"}
    assert by_name["5a4935c78a5255723f707230a451d79c540d2741"] == {"calls 1"}
    for name in ("sampl.zip", "_chat.zip", "Whats.zip"):
        assert by_name[name] == {"whatsapp 1"}, name
    assert by_name["1709329265.M1P1.host:2,S"] == {"email 1"}
    kinds = sorted(r["kind"] for r in current(ingest) if r["source"]["locator"] or r["kind"] == "email")
    assert kinds == ["call", "call", "call", "email", "sms", "sms", "sms"] + ["whatsapp"] * 9


def test_ios_call_history_direction_time_and_duration(ingest, tmp_path):
    run(ingest, ios_calls_db(tmp_path / "CallHistory.storedata"))
    calls = {r["source"]["locator"]: r for r in current(ingest) if r["kind"] == "call"}
    made, missed = calls["table ZCALLRECORD, row 1"], calls["table ZCALLRECORD, row 2"]
    assert (made["direction"], made["from"], made["to"], made["duration_s"], made["occurred_at"],
            made["occurred_at_source"]) == ("outgoing", ["me"], ["+447700900123"], 42.0,
                                            "2024-03-01T00:00:00.500000+00:00", "ios:ZDATE")
    assert (missed["direction"], missed["from"], missed["to"]) == ("missed", ["+447700900123"], ["me"])


# --- a wrong --source loses nothing ----------------------------------------------------------
def test_a_chat_zip_given_as_sms_is_said_and_read_when_whatsapp_is_named_later(ingest, tmp_path):
    path = chat_zip(tmp_path / "export.zip", "sample.txt")
    wrong = run(ingest, "--source", "sms", path, expect_exit=1)
    assert (wrong["new"], wrong["unparsed"], wrong["records"]) == (1, 1, 1)
    assert wrong["not_read"] == [
        "export.zip could not be read as sms; it is kept exactly as it is. It looks like whatsapp: run ingest on "
        "it again without --source (or with --source whatsapp)."]
    [unparsed] = current(ingest)
    assert unparsed["kind"] == "unparsed"

    right = run(ingest, "--source", "whatsapp", path)
    # the zip is held already; the voice note inside it is new to the case
    assert (right["new"], right["already_held"], right["records"], right["not_read"]) == (1, 1, 5, [])
    assert right["notes"][-1] == ("1 original(s) already in the case but not read before were read now as whatsapp; "
                                  "what was said of them before is kept, superseded.")
    records = current(ingest)
    assert sorted(r["text"] for r in records if r["kind"] == "whatsapp") == [
        "Answer me", "I saw you at the station", "Please stop contacting me"]
    assert not [r for r in records if r["kind"] == "unparsed"]
    everything = ingest.json("list", "--json")
    assert unparsed["id"] not in {r["id"] for r in everything}
    assert ingest("show", unparsed["id"], "--json").exit_code == 0       # kept, superseded, never deleted
    again = run(ingest, "--source", "whatsapp", path)
    assert (again["already_held"], again["records"]) == (1, 0)
    assert ingest("verify").exit_code == 0


def test_a_wrong_source_is_not_retried_with_a_parser_that_does_not_accept_it(ingest, tmp_path):
    path = chat_zip(tmp_path / "export.zip")
    run(ingest, "--source", "sms", path, expect_exit=1)
    calls = run(ingest, "--source", "calls", path)          # calls does not take a zip: nothing is redone
    assert (calls["already_held"], calls["records"]) == (1, 0)
    assert [r["kind"] for r in current(ingest)] == ["unparsed"]


def test_reparse_without_options_resniffs_what_nobody_read(ingest, tmp_path):
    path = chat_zip(tmp_path / "export.zip")
    backup = write_backup(tmp_path / "backup.xml", [sms(1709329265000, body="Hello")])
    run(ingest, "--source", "sms", path, backup, expect_exit=1)
    summary = ingest.json("reparse", "--json")
    assert (summary["records"], summary["already_held"]) == (5, 1)     # the zip read as a chat; the backup as it was
    records = current(ingest)
    assert sorted(r["source"]["parser"] for r in records if r["kind"] == "whatsapp") == ["whatsapp 1"] * 3
    assert not [r for r in records if r["kind"] == "unparsed"]
    assert ingest.json("reparse", "--json")["records"] == 0
    assert ingest("verify").exit_code == 0


# --- a container is not an incident -----------------------------------------------------------
def test_containers_stay_in_the_case_but_not_on_the_timeline_chart_or_period(ingest, tmp_path):
    from email_helpers import mbox, message

    box = tmp_path / "Inbox.mbox"
    box.write_bytes(mbox([message(1, attachment_bytes=0), message(2, attachment_bytes=0)]))
    backup = write_backup(tmp_path / "sms.xml", [sms(1709329265000, body="Hello")])
    run(ingest, box, backup)          # both files' own times: now (mtime), the backup's 2024-03-02 stamp
    listed = current(ingest)
    containers = sorted(r["original"]["filename"] for r in listed if r["metadata"].get("container"))
    assert containers == ["Inbox.mbox", "sms.xml"]
    timeline = ingest.json("timeline", "--format", "json")
    assert {r["kind"] for r in timeline} == {"email", "sms"} and len(timeline) == 3
    out = tmp_path / "report.html"
    assert ingest("report", "--out", out).exit_code == 0
    html = out.read_text()
    emails = sorted(r["occurred_at"] for r in listed if r["kind"] == "email")
    first, last = emails[0], max(emails[-1], "2024-03-01T21:41:05+00:00")
    # the period and the chart end at the last message, not today (when the files were copied)
    assert "2026" not in html.split('id="chart"')[1].split("</section>")[0]
    assert first[:4] == last[:4] == "2024"
    chart = html.split('id="chart"')[1].split("</section>")[0]
    assert "the busiest week had 3" in chart or "the busiest week had 2" in chart
    assert '<section id="containers">' in html and "Inbox.mbox" in html.split('id="containers"')[1]


def test_the_chart_counts_the_emails_in_an_mbox_not_the_mbox(case, tmp_path):
    from email_helpers import mbox, message

    from adapters.files import FilesSource
    from ingest import pipeline

    box = tmp_path / "Inbox.mbox"
    box.write_bytes(mbox([message(index, attachment_bytes=0) for index in range(1, 4)]))
    pipeline.run(case, FilesSource([box]))
    assert sorted(kind for kind, _moment in case.index.incidents()) == ["email", "email", "email"]
    first, last = case.index.time_span()
    assert first.startswith("2024") and last.startswith("2024")


# --- no usable time ---------------------------------------------------------------------------
def test_an_sms_without_a_readable_date_is_time_unknown_warned_and_listed_apart(ingest, tmp_path):
    backup = write_backup(tmp_path / "sms.xml", [sms(1709329265000, body="dated"), sms("garbled", body="undated"),
                                                 sms(1709329266000, body="no date").replace(' date="1709329266000"', "")])
    result = ingest("run", backup, "--json")
    assert result.exit_code == 0
    assert "no usable time in it; shown as 'time unknown'" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["warnings"] == 2
    by_text = {r["text"]: r for r in current(ingest) if r["kind"] == "sms"}
    for text, raw in (("undated", "garbled"), ("no date", None)):
        record = by_text[text]
        assert (record["occurred_at"], record["occurred_at_source"], record["occurred_at_raw"]) == (None, "unknown", raw)
    assert by_text["dated"]["occurred_at"] == "2024-03-01T21:41:05+00:00"
    table = ingest("timeline").stdout
    assert "time unknown" in table
    out = tmp_path / "r.html"
    ingest("report", "--out", out)
    html = out.read_text()
    unknown = html.split('<section id="time-unknown">')[1].split("</section>")[0]
    assert "undated" in unknown and "no date" in unknown and "\">dated</div>" not in unknown
    timeline = html.split('<section id="timeline">')[1].split("</section>")[0]
    assert "undated" not in timeline and ">dated" in timeline
    chart = html.split('<section id="chart">')[1].split("</section>")[0]
    assert "the busiest week had 1." in chart

"""Parties and marks: one person across SMS, a two-party call log, WhatsApp and email.

The fixture is written here: Mark Ellis texts and calls from 07700 900123, writes on
WhatsApp as "Jordan" (the chat's file name carries his number) and emails as
m.ellis@example.net under the name "Jordan". Sarah, the case owner, uses 07700 900456,
sarah@example.org and "Sarah" on WhatsApp. A dentist and a shop are unrelated senders.
Times are in March 2024, when Europe/London is on UTC, so local and UTC times agree.
"""

from __future__ import annotations

import json
import re
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.case import Case
from ingest.features import parties

MARK = "+447700900123"
SARAH = "+447700900456"
DENTIST = "+447700900999"


def ms(text: str) -> str:
    from datetime import datetime, timezone
    return str(int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000))


def write_fixture(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    sms = [(ms("2024-03-01T09:00"), "07700 900123", "1", "Mark Ellis", "Why are you ignoring me?"),
           (ms("2024-03-02T10:00"), "07700 900123", "2", "Mark Ellis", "Please stop contacting me"),
           (ms("2024-03-03T12:00"), "07700 900999", "1", "Dentist", "Reminder: dentist appointment"),
           (ms("2024-03-04T23:30"), "07700 900123", "1", "Mark Ellis", "You can't ignore me forever")]
    body = "".join(f'  <sms protocol="0" address="{address}" date="{date}" type="{kind}" subject="null" '
                   f'body="{text}" read="1" status="-1" locked="0" date_sent="0" contact_name="{name}" />\n'
                   for date, address, kind, name, text in sms)
    paths = {"sms": folder / "sms-backup.xml"}
    paths["sms"].write_text(f"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"4\">\n"
                            f"{body}</smses>\n", encoding="utf-8")
    paths["calls"] = folder / "carrier-calls.csv"
    paths["calls"].write_text("Date,Time,Caller,Receiver,Duration\n"
                              "01/03/2024,21:00,07700 900123,07700 900456,30\n"
                              "02/03/2024,11:00,07700 900456,07700 900123,5\n"
                              "03/03/2024,15:00,07700 900999,07700 900456,60\n"
                              "05/03/2024,02:15,07700 900123,07700 900456,0\n", encoding="utf-8")
    paths["whatsapp"] = folder / "WhatsApp Chat with +44 7700 900123.txt"
    paths["whatsapp"].write_text("01/03/2024, 22:00 - Jordan: Pick up the phone\n"
                                 "02/03/2024, 09:30 - Sarah: Leave me alone\n"
                                 "06/03/2024, 23:45 - Jordan: I know where you live\n", encoding="utf-8")
    for name, sender, subject, date, text in [
            ("jordan.eml", "Jordan <m.ellis@example.net>", "Still here", "Thu, 07 Mar 2024 20:00:00 +0000",
             "You will have to talk to me."),
            ("shop.eml", "Shop <news@shop.example>", "Spring sale", "Sun, 03 Mar 2024 08:00:00 +0000", "Sale on.")]:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"], mail["Date"] = sender, "Sarah <sarah@example.org>", subject, date
        mail["Message-ID"] = f"<{name}@example.net>"
        mail.set_content(text + "\n")
        paths[name] = folder / name
        paths[name].write_bytes(bytes(mail))
    return paths


@pytest.fixture
def held(ingest, tmp_path):
    """The case with every source kept, and Sarah added as its owner."""
    paths = write_fixture(tmp_path / "evidence")
    for source, key in (("sms", "sms"), ("calls", "calls"), ("whatsapp", "whatsapp"), ("eml", "jordan.eml"),
                        ("eml", "shop.eml")):
        result = ingest("run", "--source", source, paths[key])
        assert result.exit_code == 0, result.output
    ingest.json("party", "add", "Sarah", "--me", "--phone", "07700 900456", "--email", "Sarah@Example.org",
                "--alias", "Sarah", "--json")
    return ingest


def label(record: dict) -> str:
    """What was said, or which row of the call log."""
    return record["subject"] or record["text"] or f"{record['kind']} {record['source']['locator']}"


def texts(ingest, *args) -> list[str]:
    return [label(r) for r in ingest.json("list", "--json", *args) if r["kind"] != "file"]


def by_text(ingest) -> dict[str, dict]:
    return {label(r): r for r in ingest.json("list", "--json") if r["kind"] != "file"}


MARKS_RECORDS = ["Why are you ignoring me?", "call row 2", "Pick up the phone", "Please stop contacting me", "call row 3",
                 "You can't ignore me forever", "call row 5", "I know where you live"]


def test_suggestions_find_the_shared_number_then_the_email(held):
    suggested = held.json("party", "suggest", "--json")
    assert [(s["phones"], s["aliases"], s["party"]) for s in suggested] == [
        ([MARK], ["Jordan"], None),                    # the chat's file name carries his number
        ([MARK], ["Jordan", "Mark Ellis"], None),      # one number under two names
    ]
    assert suggested[1]["reason"] == f"The number {MARK} appears under 2 names: 'Jordan' (2), 'Mark Ellis' (3)."
    assert suggested[1]["command"] == f"ingest party add NAME --phone {MARK} --alias Jordan --alias 'Mark Ellis'"
    assert held("party", "list").stdout.count("\n") == 4        # suggesting linked nothing: Sarah alone

    held.json("party", "add", "Mark Ellis", "--phone", "07700900123", "--alias", "Jordan", "--json")
    suggested = held.json("party", "suggest", "--json")
    assert suggested == [{
        "reason": "The email address m.ellis@example.net writes its name as 'Jordan', an alias of 'Mark Ellis'.",
        "party": "Mark Ellis", "phones": [], "emails": ["m.ellis@example.net"], "aliases": ["Jordan"],
        "records": 1, "command": "ingest party link 'Mark Ellis' --email m.ellis@example.net"}]


def test_list_by_party_is_exactly_the_person_and_linking_relinks_old_records(held, case_dir):
    held.json("party", "add", "Mark Ellis", "--phone", "07700900123", "--alias", "jordan", "--json")
    assert texts(held, "--party", "mark ellis") == MARKS_RECORDS
    custody_before = (case_dir / "custody.jsonl").read_text().splitlines()
    linked = held.json("party", "link", "Mark Ellis", "--email", "M.Ellis@example.net", "--json")
    assert linked["emails"] == ["m.ellis@example.net"] and linked["aliases"] == ["jordan"]
    # the email already held now involves him: no reparse, one custody line for the link
    assert texts(held, "--party", "Mark Ellis") == MARKS_RECORDS + ["Still here"]
    custody = (case_dir / "custody.jsonl").read_text().splitlines()
    assert len(custody) == len(custody_before) + 1
    line = json.loads(custody[-1])
    assert (line["action"], line["detail"]) == ("party_link", {"name": "Mark Ellis", "emails": ["m.ellis@example.net"]})
    records = by_text(held)
    assert records["Still here"]["parties"] == ["Mark Ellis", "Sarah"]
    assert records["Reminder: dentist appointment"]["parties"] == ["Sarah"]
    assert records["Spring sale"]["parties"] == ["Sarah"]
    assert texts(held, "--party", "Sarah", "--kind", "whatsapp") == ["Leave me alone"]   # his messages name only him
    assert [r["subject"] for r in held.json("timeline", "--format", "json", "--party", "Mark Ellis",
                                            "--kind", "email")] == ["Still here"]
    found = held("search", "--json", "--party", "Mark Ellis", "ignor*")
    assert [r["text"] for r in json.loads(found.stdout)] == ["Why are you ignoring me?", "You can't ignore me forever"]
    assert json.loads(held("search", "--json", "--party", "Sarah", "dentist").stdout)[0]["kind"] == "sms"


def test_unknown_party_is_a_usage_error_naming_the_known_ones(held):
    held.json("party", "add", "Mark Ellis", "--phone", "07700900123", "--json")
    for command in (["list", "--party", "Jordan"], ["timeline", "--party", "Jordan"], ["search", "x", "--party", "Jordan"],
                    ["party", "show", "Jordan"], ["party", "link", "Jordan", "--alias", "J"]):
        result = held(*command)
        assert result.exit_code == 2, command
        assert result.stderr == "ingest: There is no party called 'Jordan'. Known parties: Sarah, Mark Ellis.\n"
    refused = held("party", "add", "Other", "--phone", "+44 7700 900123")
    assert refused.stderr == ("ingest: '+447700900123' already belongs to 'Mark Ellis'. One number, address or name "
                              "can belong to one party only.\n")
    assert held("party", "add", "Bad", "--phone", "not a number").exit_code == 2
    assert held("party", "add", "Second me", "--me").stderr.startswith("ingest: The case owner is already 'Sarah'.")


def test_directions_with_the_owner_known(held, ingest):
    records = by_text(held)
    calls = {r["source"]["locator"]: r for r in held.json("list", "--json", "--kind", "call")}
    assert {row: (r["from"], r["to"], r["direction"]) for row, r in calls.items()} == {
        "row 2": ([MARK], [SARAH], "incoming"), "row 3": ([SARAH], [MARK], "outgoing"),
        "row 4": ([DENTIST], [SARAH], "incoming"), "row 5": ([MARK], [SARAH], "incoming")}
    assert all(r["direction_derived"] for r in calls.values())
    assert records["Leave me alone"]["direction"] == "outgoing"
    assert records["Pick up the phone"]["direction"] == "incoming"
    assert records["Still here"]["direction"] == "incoming"
    # what the phone itself said is kept, not derived again
    assert records["Please stop contacting me"]["direction"] == "outgoing"
    assert "direction_derived" not in records["Please stop contacting me"]


def test_directions_unknown_without_the_owner(ingest, tmp_path):
    paths = write_fixture(tmp_path / "evidence")
    ingest("run", "--source", "calls", paths["calls"])
    ingest("run", "--source", "whatsapp", paths["whatsapp"])
    for record in ingest.json("list", "--json"):
        if record["kind"] in ("call", "whatsapp"):
            assert record["direction"] is None and "direction_derived" not in record and record["parties"] == []


def stop_and_threat(ingest) -> tuple[str, str]:
    records = by_text(ingest)
    stop, threat = records["Please stop contacting me"]["id"], records["I know where you live"]["id"]
    assert ingest("mark", stop[:10], "--as", "request-to-stop").stdout == f"Marked {stop[:12]} as request-to-stop.\n"
    ingest("mark", threat, "--as", "threat")
    ingest("mark", threat, "--as", "reported-to-police", "--reference", "CAD 1234/07MAR24")
    return stop, threat


@pytest.fixture
def linked(held):
    held.json("party", "add", "Mark Ellis", "--phone", "07700900123", "--alias", "Jordan",
              "--email", "m.ellis@example.net", "--note", "Ex-partner", "--json")
    return held


def test_party_show_counts_are_exact(linked):
    before = linked.json("party", "show", "Mark Ellis", "--json")
    assert before["after_request_to_stop"] is None and before["requests_to_stop"] == []
    stop, threat = stop_and_threat(linked)
    shown = linked.json("party", "show", "Mark Ellis", "--json")
    grid = [[0] * 24 for _ in range(7)]
    for day, hour in ((4, 9), (4, 21), (4, 22), (0, 23), (1, 2), (2, 23), (3, 20)):
        grid[day][hour] += 1
    assert shown == {
        "name": "Mark Ellis", "me": False, "note": "Ex-partner", "timezone": "Europe/London",
        "identifiers": {"phones": [MARK], "emails": ["m.ellis@example.net"], "aliases": ["Jordan"], "handles": []},
        "contacts": 7, "first": "2024-03-01T09:00:00+00:00", "last": "2024-03-07T20:00:00+00:00",
        "by_kind": {"call": 2, "sms": 2, "whatsapp": 2, "email": 1},
        "by_week": {"2024-02-26": 3, "2024-03-04": 4},
        "by_week_kind": {"2024-02-26": {"sms": 1, "call": 1, "whatsapp": 1},
                         "2024-03-04": {"sms": 1, "call": 1, "whatsapp": 1, "email": 1}},
        "trend_per_week": 1.0,
        "requests_to_stop": [{"record": stop, "at": "2024-03-02T10:00:00+00:00", "contacts_after": 4}],
        "after_request_to_stop": 4,
        "threats": [{"record": threat, "at": "2024-03-06T23:45:00+00:00"}],
        "reported_to_police": [{"record": threat, "at": "2024-03-06T23:45:00+00:00", "reference": "CAD 1234/07MAR24"}],
        "longest_gap": {"days": 3.06, "from": "2024-03-01T22:00:00+00:00", "to": "2024-03-04T23:30:00+00:00"},
        "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "hour_by_weekday": grid,
    }
    text = linked("party", "show", "Mark Ellis").stdout
    assert "asked to stop 2024-03-02T10:00:00+00:00: 4 contact(s) after it" in text


def test_marks_are_overlays_logged_and_undone_by_a_further_line(linked, case_dir):
    bodies = {row[0]: row[1] for row in _bodies(case_dir)}
    stop, threat = stop_and_threat(linked)
    assert {row[0]: row[1] for row in _bodies(case_dir)} == bodies       # no record changed
    record = linked.json("show", threat[:12], "--json")
    assert [(m["as"], m["reference"]) for m in record["marks"]] == [("threat", None),
                                                                  ("reported-to-police", "CAD 1234/07MAR24")]
    again = linked("mark", stop, "--as", "request-to-stop")
    assert again.exit_code == 2 and "is already marked request-to-stop" in again.stderr
    assert linked("mark", stop, "--as", "rude").stderr == ("ingest: 'rude' is not a mark ingest knows. Use one of: "
                                                           "request-to-stop, threat, reported-to-police.\n")
    assert linked("unmark", stop, "--as", "request-to-stop").exit_code == 0
    assert linked("unmark", stop, "--as", "request-to-stop").exit_code == 2       # nothing left to take off
    assert linked.json("party", "show", "Mark Ellis", "--json")["after_request_to_stop"] is None
    lines = [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]
    assert [(l["action"], l["detail"].get("mark")) for l in lines if l["action"] in ("mark", "unmark")] == [
        ("mark", "request-to-stop"), ("mark", "threat"), ("mark", "reported-to-police"), ("unmark", "request-to-stop")]
    assert linked("verify").exit_code == 0


def _bodies(case_dir: Path) -> list[tuple[str, str]]:
    with Case.open(case_dir, writable=False) as case:
        return list(case.index.db.execute("SELECT id, body FROM records"))


def test_report_section_names_the_person_and_the_request_to_stop(linked, tmp_path):
    stop_and_threat(linked)
    out = tmp_path / "report.html"
    assert linked("report", "--out", out).exit_code == 0
    html = " ".join(out.read_text(encoding="utf-8").split())
    section = html[html.index('<section class="party"'):html.index('<section id="index">')]
    assert "<h2>Mark Ellis</h2>" in section and "Sarah" not in section     # the owner has no section
    assert "<dt>Phone numbers</dt><dd>+447700900123</dd>" in section and "<dd>Jordan</dd>" in section
    assert re.search(r"Asked to stop on Sat 02 Mar 2024, 10:00:00 GMT \(record <a href=\"#r-\w+\">\w{12}</a>\): "
                     r"4 contacts after it\.", section)
    assert "<dt>First contact</dt><dd>Fri 01 Mar 2024, 09:00:00 GMT</dd>" in section
    assert "<dt>Last contact</dt><dd>Thu 07 Mar 2024, 20:00:00 GMT</dd>" in section
    assert "contacts per week rose by about 1.0 a week" in section and "crime reference <strong>CAD 1234/07MAR24" in section
    assert "“I know where you live”" in section
    # black and white: every bar segment carries a pattern, every heat-map count is written out
    assert section.count('fill="url(#pat-') == 7 + 4             # 7 segments, 4 legend keys
    assert re.findall(r"<title>Fri 09:00-09:59: (\d+)</title>", section) == ["1"]
    assert html.index('<section class="party"') < html.index('<section id="timeline">')

    only = tmp_path / "only.html"
    # his 8 messages and calls, his email, her WhatsApp reply, and the backup, log and chat they were read from
    assert linked("report", "--out", only, "--party", "Mark Ellis").stdout.startswith("Wrote the report of 13 record(s)")


def test_export_by_party_carries_both_sides_and_verifies(linked, tmp_path):
    stop_and_threat(linked)
    out = tmp_path / "bundle"
    result = linked("export", "--out", out, "--party", "Mark Ellis")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["selection"] == {"party": ["Mark Ellis"]}
    said = [label(r) for r in manifest["records"] if r["kind"] != "file"]
    assert said == MARKS_RECORDS[:3] + ["Leave me alone"] + MARKS_RECORDS[3:] + ["Still here"]  # her WhatsApp reply too
    assert all(r["parties"] for r in manifest["records"] if r["kind"] != "file" and r["text"] != "Leave me alone")
    verified = linked("verify", out)
    assert verified.exit_code == 0, verified.output
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out).returncode == 0


def test_library_api(case_dir, tmp_path):
    with Case.open(case_dir) as case:
        party = parties.add_party(case, "Mark Ellis", phones=["07700 900123"], aliases=["Jordan"])
        assert party["phones"] == [MARK]
        assert parties.link(case, "mark ellis", emails=["m.ellis@example.net"])["emails"] == ["m.ellis@example.net"]
        assert [p["name"] for p in parties.list_parties(case)] == ["Mark Ellis"]
        assert parties.show(case, "Mark Ellis")["contacts"] == 0
        assert parties.suggest(case) == []
        with pytest.raises(Exception, match="No single record"):
            parties.mark(case, "ffff", "threat")


def test_caller_receiver_csv_keeps_both_ends(ingest, tmp_path):
    paths = write_fixture(tmp_path / "evidence")
    ingest("run", "--source", "calls", paths["calls"])
    table = next(r for r in ingest.json("list", "--json") if r["kind"] == "file")
    assert table["metadata"]["columns"] == {"caller": 3, "callee": 4, "date": 1, "duration": 5, "time": 2}


def test_an_index_from_before_parties_moves_forward_keeping_its_records(tmp_path):
    import sqlite3

    from store.index import MIGRATIONS, Index

    path = tmp_path / "index.sqlite"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
    old.execute("INSERT INTO records(id, kind, sort_time, blake3, source_key, parser, body) "
                "VALUES('r1', 'sms', '2024-03-01T09:00:00Z', 'b', 'k', 'sms 1', '{}')")
    old.commit()
    old.close()
    index = Index(path)
    assert index.version() == len(MIGRATIONS) == 4
    assert index.parties() == [] and index.marks() == []
    assert [tuple(row) for row in index.db.execute("SELECT id FROM records")] == [("r1",)]
    index.close()

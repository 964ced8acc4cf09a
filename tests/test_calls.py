"""`ingest run --source calls`: calls.xml from the backup apps, and call-log CSVs in many dialects."""

import hashlib

import pytest

from conftest import Ingest
from ingest.case import Case
from phone_helpers import HEADER, by_locator, records, run

JULY_25 = 1721938500000      # 2024-07-25T20:15:00Z


def calls_xml(path, calls, count=None, root="calls", item="call"):
    count = len(calls) if count is None else count
    body = "".join(f"  <{item} " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + " />\n" for attrs in calls)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f'<{root} count="{count}" backup_set="a1" backup_date="1721940000000" type="full">\n'
                    + body + f"</{root}>\n", encoding="utf-8")
    return path


def call(date, number="+447700900123", type_=1, duration=42, **extra):
    return {"number": number, "duration": str(duration), "date": str(date), "type": str(type_),
            "presentation": "1", "readable_date": "25 juil. 2024 21:15:00", "contact_name": "Jamie Doe", **extra}


def test_call_types_directions_durations_and_parties(tmp_path, ingest):
    path = calls_xml(tmp_path / "calls-20240725.xml", [
        call(JULY_25 + i * 60000, type_=code, duration=10 * code) for i, code in enumerate((1, 2, 3, 4, 5, 6, 7, 9))
    ] + [call(JULY_25 + 9 * 60000, number="", type_=3, duration=0, presentation="2", contact_name="(Unknown)")])
    summary = run(ingest, "calls", path)
    assert (summary["new"], summary["records"]) == (1, 10)
    assert summary["expected"] == summary["acquired"] == {"calls-20240725.xml": 9}
    found = by_locator(ingest)
    directions = [found[f"element {i}"]["direction"] for i in range(1, 10)]
    assert directions == ["incoming", "outgoing", "missed", "voicemail", "rejected", "blocked", "incoming", None,
                          "missed"]
    first = found["element 1"]
    assert (first["kind"], first["occurred_at"], first["occurred_at_source"], first["occurred_at_raw"]) == \
        ("call", "2024-07-25T20:15:00+00:00", "calls:date", "1721938500000")
    assert (first["from"], first["to"], first["duration_s"], first["text"]) == \
        (["+447700900123"], ["me"], 10.0, "Jamie Doe")
    assert (found["element 2"]["from"], found["element 2"]["to"]) == (["me"], ["+447700900123"])
    assert found["element 7"]["metadata"]["answered_elsewhere"] is True
    assert found["element 8"]["metadata"]["type"] == "9" and found["element 8"]["metadata"]["type_name"] is None
    withheld = found["element 9"]
    assert (withheld["from"], withheld["metadata"]["presentation_name"], withheld["text"]) == \
        (["withheld"], "restricted", None)


def test_superbackup_call_log(tmp_path, ingest):
    path = calls_xml(tmp_path / "superbackup.xml", [
        {"number": "07700 900123", "time": "25.07.2024 21:15:00", "date": str(JULY_25), "type": "3",
         "name": "Jamie Doe", "new": "1", "dur": "0"}], root="alllogs", item="log")
    run(ingest, "calls", path)
    record = by_locator(ingest)["element 1"]
    assert (record["direction"], record["from"], record["duration_s"], record["text"]) == \
        ("missed", ["+447700900123"], 0.0, "Jamie Doe")


def csv_file(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


# Each dialect: file text, encoding, then (row locator, occurred_at, direction, from, to, duration) of one row.
DIALECTS = {
    "comma-utf8-separate-date-and-time": (
        "Date,Time,Number,Name,Direction,Duration\n"
        "25/07/2024,21:15,07700 900123,Jamie Doe,Incoming,65\n",
        "utf-8", ("row 2", "2024-07-25T21:15:00+01:00", "incoming", ["+447700900123"], ["me"], 65.0)),
    "semicolon-bom-combined-hms": (
        "Call date;Phone number;Call type;Call duration\n"
        "25.07.2024 21:15:07;+44 (0)7700 900123;Outgoing;0:01:05\n",
        "utf-8-sig", ("row 2", "2024-07-25T21:15:07+01:00", "outgoing", ["me"], ["+447700900123"], 65.0)),
    "excel-unicode-text-utf16-tab": (
        "Date\tTime\tNumber\tContact\tType\tDuration\r\n"
        "25/07/2024\t9:15 PM\t07700900123\tZoë\tMissed\t0\r\n",
        "utf-16", ("row 2", "2024-07-25T21:15:00+01:00", "missed", ["+447700900123"], ["me"], 0.0)),
    "cp1252-comma": (
        "Date,Number,Name,Direction,Duration\n"
        "25/07/2024 21:15,07700900123,Zoë Café,Incoming,12\n",
        "cp1252", ("row 2", "2024-07-25T21:15:00+01:00", "incoming", ["+447700900123"], ["me"], 12.0)),
    "nokia-logexport-month-first": (
        'Date,"Time","Type","RemoteParty","Direction","DurationType","Duration","Status","Number"\n'
        '07/25/2024,"21:15","Voice call","Jamie","Missed call","Seconds","0","","07700900123"\n'
        '07/25/2024,"21:16","Short message","Jamie","Incoming","","","","07700900123"\n',
        "utf-8", ("row 2", "2024-07-25T21:15:00+01:00", "missed", ["+447700900123"], ["me"], 0.0)),
    "ios-dump-iso": (
        "uuid,timestamp,caller_id,call_type,duration\n"
        "3DA5,2024-07-25T21:15:00.319552,,cellular,58.0\n",
        "utf-8", ("row 2", "2024-07-25T21:15:00.319552+01:00", None, ["unknown"], [], 58.0)),
    "windows-mobile-headerless-tsv": (
        "O\t07700900123\tDoe, Jamie\tHdy\t2024.07.25 21:15.16\t65\tLocal\tConnected\tEnded\tCID_Available\n"
        "M\t07700900124\tRoe, Sam\tHdy\t2024.07.26 08:01.00\t0\tLocal\tbusy/no answer\tEnded\tCID_Available\n",
        "utf-8", ("row 1", "2024-07-25T21:15:16+01:00", "outgoing", ["me"], ["+447700900123"], 65.0)),
    "carrier-cdr-headerless": (
        '07700900123,07700900999,"25-07-2024 21:15:00",65\n07700900123,07700900999,"26-07-2024 08:00:00",5\n',
        "utf-8", ("row 1", "2024-07-25T21:15:00+01:00", None, ["+447700900123"], ["+447700900999"], 65.0)),
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_csv_dialects(tmp_path, ingest, dialect):
    text, encoding, (locator, occurred, direction, from_, to, duration) = DIALECTS[dialect]
    path = csv_file(tmp_path, f"{dialect}.csv", text, encoding)
    summary = run(ingest, "calls", path)
    # columns ingest does not read are named once (DurationType and Status; uuid and call_type)
    unread = 1 if dialect in ("nokia-logexport-month-first", "ios-dump-iso") else 0
    assert (summary["new"], summary["unparsed"], summary["warnings"]) == (1, 0, unread)
    record = by_locator(ingest)[locator]
    assert (record["kind"], record["occurred_at"], record["direction"], record["from"], record["to"],
            record["duration_s"]) == ("call", occurred, direction, from_, to, duration)
    assert record["timezone_assumed"] is True and record["occurred_at_source"] == "csv:date"
    assert by_locator(ingest)[None]["metadata"]["encoding"] == {"utf-8-sig": "utf-8-sig"}.get(encoding, encoding) \
        or encoding == "utf-8"


def test_names_survive_the_encodings(tmp_path, ingest):
    text, encoding, _ = DIALECTS["cp1252-comma"]
    run(ingest, "calls", csv_file(tmp_path, "c.csv", text, encoding))
    assert by_locator(ingest)["row 2"]["text"] == "Zoë Café"


def test_day_first_is_decided_from_the_data_and_said(tmp_path, ingest):
    path = csv_file(tmp_path, "log.csv", "Date,Number\n03/04/2024 10:00,07700900123\n13/04/2024 10:00,07700900123\n")
    result = ingest("run", "--source", "calls", path)
    assert "log.csv: dates read as day/month (row 3 has 13/04/2024 10:00)." in result.output
    assert by_locator(ingest)["row 2"]["occurred_at"] == "2024-04-03T10:00:00+01:00"


def test_month_first_is_decided_from_the_data(tmp_path, ingest):
    path = csv_file(tmp_path, "log.csv", "Date,Number\n03/04/2024 10:00,07700900123\n04/13/2024 10:00,07700900123\n")
    result = ingest("run", "--source", "calls", path)
    assert "log.csv: dates read as month/day (row 3 has 04/13/2024 10:00)." in result.output
    assert by_locator(ingest)["row 2"]["occurred_at"] == "2024-03-04T10:00:00+00:00"


def test_ambiguous_dates_follow_the_case_region(tmp_path):
    root = tmp_path / "us-case"
    Case.init(root, name="US", timezone="America/New_York", region="US", operator="Tester").close()
    us = Ingest(root)
    path = csv_file(tmp_path, "log.csv", "Date,Number\n03/04/2024 10:00,(202) 555-0143\n")
    result = us("run", "--source", "calls", path)
    assert "log.csv: no date in the file shows its order; read as month/day, as usual in US." in result.output
    record = by_locator(us)["row 2"]
    assert (record["occurred_at"], record["from"]) == ("2024-03-04T10:00:00-05:00", ["+12025550143"])


def test_dst_ambiguous_and_nonexistent_times_are_flagged(tmp_path, ingest):
    run(ingest, "calls", csv_file(tmp_path, "d.csv", "Date,Number\n27/10/2024 01:30,07700900123\n"
                                  "31/03/2024 01:30,07700900123\n"))
    autumn, spring = by_locator(ingest)["row 2"], by_locator(ingest)["row 3"]
    assert autumn["occurred_at"] == "2024-10-27T01:30:00+01:00" and autumn["metadata"]["dst_ambiguous"] is True
    assert spring["metadata"]["dst_nonexistent"] is True and "dst_ambiguous" not in spring["metadata"]


def test_numbers_short_codes_and_withheld_callers_in_a_csv(tmp_path, ingest):
    path = csv_file(tmp_path, "n.csv", "Date,Number,Direction\n"
                    "25/07/2024 21:00,+44 (0)7700 900123,Incoming\n25/07/2024 21:01,150,Outgoing\n"
                    "25/07/2024 21:02,Unknown,Missed\n25/07/2024 21:03,Withheld,Missed\n25/07/2024 21:04,-1,Missed\n")
    run(ingest, "calls", path)
    found = by_locator(ingest)
    assert [found[f"row {i}"]["from"] for i in range(2, 7)] == \
        [["+447700900123"], ["me"], ["unknown"], ["withheld"], ["withheld"]]
    assert found["row 3"]["to"] == ["150"]
    assert found["row 2"]["metadata"]["number_raw"] == "+44 (0)7700 900123"


def test_an_unreadable_row_is_reported_by_number_and_the_rest_kept(tmp_path, ingest):
    path = csv_file(tmp_path, "r.csv", "Date,Number\n25/07/2024 21:00,07700900123\nnot a date,07700900123\n"
                    "26/07/2024 08:00,07700900123\n")
    result = ingest("run", "--source", "calls", path)
    assert result.exit_code == 0
    assert ("r.csv (row 3): could not read the date and time ('not a date'), so this row was not made a record; "
            "the file is kept whole.") in result.output
    found = by_locator(ingest)
    assert sorted(key for key in found if key) == ["row 2", "row 4"]
    assert found[None]["metadata"]["rows_not_read"] == 1
    assert found[None]["original"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_unknown_columns_are_named_and_map_settles_them(tmp_path, ingest):
    path = csv_file(tmp_path, "odd.csv", "Quand,Qui,Combien\n25/07/2024 21:00,07700900123,30\n")
    first = run(ingest, "calls", path, expect_exit=1)
    assert (first["unparsed"], first["records"]) == (1, 1)
    [record] = records(ingest)
    assert record["metadata"]["error"] == ("Could not tell which column of odd.csv holds the date (its columns are: "
                                           "Quand, Qui, Combien). Name it with --map, e.g. --map date='Call Date'.")
    copy = csv_file(tmp_path, "odd-again.csv", "Quand,Qui,Combien\n25/07/2024 21:00,07700900123,30\n"
                    "26/07/2024 08:00,07700900123,5\n")
    run(ingest, "calls", copy, "--map", "date=Quand", "--map", "number=qui", "--map", "duration=3")
    mapped = by_locator(ingest)["row 2"]
    assert (mapped["occurred_at"], mapped["from"], mapped["duration_s"]) == \
        ("2024-07-25T21:00:00+01:00", ["+447700900123"], 30.0)


def test_map_to_a_missing_column_says_which_columns_exist(tmp_path, ingest):
    path = csv_file(tmp_path, "m.csv", "Date,Number\n25/07/2024 21:00,07700900123\n")
    run(ingest, "calls", path, "--map", "number=Phone", expect_exit=1)
    [record] = records(ingest)
    assert record["metadata"]["error"] == \
        "--map number=Phone names a column m.csv does not have (it has: Date, Number)."


def test_csv_with_no_header_and_no_recognisable_columns(tmp_path, ingest):
    path = csv_file(tmp_path, "bare.csv", "alpha,bravo\ncharlie,delta\n")
    summary = run(ingest, "calls", path, expect_exit=1)
    assert (summary["new"], summary["unparsed"]) == (1, 1)
    [record] = records(ingest)
    assert record["metadata"]["error"] == (
        "bare.csv has no header row and the column holding the date could not be recognised. "
        "Name the columns with --map and their number, e.g. --map date=3 --map number=2.")


def test_csv_with_no_header_read_by_column_numbers(tmp_path, ingest):
    path = csv_file(tmp_path, "bare.csv", "x;07700900123;2024-07-25 21:00;7\n")
    run(ingest, "calls", path, "--map", "date=3", "--map", "number=2", "--map", "duration=4")
    record = by_locator(ingest)["row 1"]
    assert (record["occurred_at"], record["from"], record["duration_s"]) == \
        ("2024-07-25T21:00:00+01:00", ["+447700900123"], 7.0)


@pytest.mark.parametrize("name", ["empty.csv", "empty-calls.xml"])
def test_empty_file_is_kept_as_unparsed(tmp_path, ingest, name):
    path = csv_file(tmp_path, name, "")
    summary = run(ingest, "calls", path, expect_exit=1)
    assert (summary["new"], summary["unparsed"], summary["records"]) == (1, 1, 1)
    [record] = records(ingest)
    assert record["metadata"]["error"] == "The file is empty: there are no calls in it (it is kept as it is)."


def test_rerun_adds_nothing_and_a_newer_log_adds_only_new_calls(tmp_path, ingest):
    older = calls_xml(tmp_path / "old" / "calls.xml", [call(JULY_25), call(JULY_25 + 60000, type_=3, duration=0)])
    newer = calls_xml(tmp_path / "new" / "calls.xml", [
        call(JULY_25, contact_name="J"), call(JULY_25 + 60000, type_=3, duration=0),
        call(JULY_25 + 120000, type_=3, duration=0), call(JULY_25 + 120000, type_=3, duration=0)])
    assert run(ingest, "calls", older)["records"] == 3
    assert run(ingest, "calls", older)["records"] == 0
    second = run(ingest, "calls", newer)
    assert (second["new"], second["records"], second["duplicates"]) == (1, 3, 2)   # two new calls + the log
    assert len(records(ingest, "call")) == 4
    text = "Date,Number,Direction\n25/07/2024 21:00,07700900123,Missed\n25/07/2024 21:00,07700900123,Missed\n"
    assert run(ingest, "calls", csv_file(tmp_path, "a.csv", text))["records"] == 3
    longer = text + "25/07/2024 21:05,07700900123,Missed\n"
    assert run(ingest, "calls", csv_file(tmp_path, "b.csv", longer))["records"] == 2


def test_truncated_calls_xml_keeps_calls_before_the_break(tmp_path, ingest):
    whole = calls_xml(tmp_path / "w.xml", [call(JULY_25 + i * 1000) for i in range(3)]).read_text()
    cut = csv_file(tmp_path, "cut.xml", whole[:whole.rindex("<call ") + 20])
    summary = run(ingest, "calls", cut, expect_exit=1)
    assert (summary["records"], summary["acquired"], summary["expected"]) == (3, {"cut.xml": 2}, {"cut.xml": 3})
    assert by_locator(ingest)[None]["metadata"]["partial"] is True


def test_source_files_recognises_backups_and_call_logs_by_their_content(tmp_path, ingest):
    calls_xml(tmp_path / "in" / "a.xml", [call(JULY_25)])
    csv_file(tmp_path, "b.txt", "Date,Number,Direction\n25/07/2024 21:00,07700900123,Missed\n")
    csv_file(tmp_path, "c.csv", "Name,Colour\nJamie,blue\n")     # a CSV, but not a call log
    summary = run(ingest, "files", tmp_path / "in")
    assert (summary["new"], summary["records"]) == (3, 5)
    parsers = sorted((r["original"]["filename"], r["source"]["parser"], r["kind"]) for r in records(ingest))
    assert parsers == [("a.xml", "calls 1", "call"), ("a.xml", "calls 1", "file"), ("b.txt", "calls 1", "call"),
                       ("b.txt", "calls 1", "file"), ("c.csv", "file 1", "file")]


def test_text_messages_in_a_mixed_log_are_not_made_calls(tmp_path, ingest):
    text, encoding, _ = DIALECTS["nokia-logexport-month-first"]
    result = ingest("run", "--source", "calls", csv_file(tmp_path, "log-2024.csv", text, encoding))
    assert "log-2024.csv: 1 row(s) are text messages, not calls; they are kept in the file but not made call " \
           "records." in result.output
    assert [r["source"]["locator"] for r in records(ingest, "call")] == ["row 2"]


def test_one_byte_that_is_no_character_loses_no_call(tmp_path, ingest):
    # 0x8f is neither UTF-8 nor Windows-1252: the row holding it is named, and every call is kept.
    text = ("Date,Number,Contact,Direction\n25/07/2024 21:00,07700900123,Jamie,Missed\n"
            "25/07/2024 21:01,07700900123,Jamie,Missed\n25/07/2024 21:02,07700900123,Jo\x8fy,Missed\n"
            "25/07/2024 21:03,07700900123,Jamie,Missed\n25/07/2024 21:04,07700900123,José,Missed\n")
    path = tmp_path / "in" / "log.csv"
    path.parent.mkdir()
    path.write_bytes(text.encode("utf-8", "surrogateescape").replace(b"\xc2\x8f", b"\x8f"))
    result = ingest("run", "--source", "calls", path, "--json")
    assert result.exit_code == 0, result.output
    found = by_locator(ingest)
    assert sorted(key for key in found if key) == ["row 2", "row 3", "row 4", "row 5", "row 6"]
    assert (found["row 4"]["text"], found["row 6"]["text"]) == ("Jo\ufffdy", "José")
    assert ("log.csv (row 4): a byte in this row is not a character in the file's encoding (utf-8); "
            "it is shown as \ufffd (the file is kept exactly as it was).") in result.stderr
    assert found[None]["metadata"]["encoding"] == "utf-8"


def test_a_windows_file_with_a_byte_that_is_no_character_stays_windows_1252(tmp_path, ingest):
    path = tmp_path / "in" / "log.csv"
    path.parent.mkdir()
    path.write_bytes(b"Date,Number,Contact\n25/07/2024 21:00,07700900123,Zo\xeb\n25/07/2024 21:01,07700900123,J\x8f\n")
    result = ingest("run", "--source", "calls", path)
    assert result.exit_code == 0, result.output
    found = by_locator(ingest)
    assert (found["row 2"]["text"], found["row 3"]["text"]) == ("Zoë", "J\ufffd")
    assert found[None]["metadata"]["encoding"] == "cp1252"
    assert "log.csv (row 3): a byte in this row is not a character in the file's encoding (cp1252)" in result.output
    assert "(row 2)" not in result.output


def test_a_damaged_call_in_the_xml_loses_only_that_call(tmp_path, ingest):
    path = calls_xml(tmp_path / "in" / "calls.xml", [call(1709329265000 + i * 60000, duration=i) for i in range(5)])
    text = path.read_bytes()
    second = text.index(b"<call ", text.index(b"<call ") + 1)
    path.write_bytes(text[:second + 3] + b"&" + text[second + 4:])      # "<call" -> "<ca&l"
    result = ingest("run", "--source", "calls", path)
    found = by_locator(ingest)
    assert [found[f"element {n}"]["duration_s"] for n in (1, 3, 4, 5)] == [0.0, 2.0, 3.0, 4.0]
    assert "calls.xml (element 2): This part of the backup is damaged (the XML is broken at line " in result.output
    assert "reading went on with the next call." in result.output


def test_a_damaged_column_name_is_recognised_by_what_the_column_holds(tmp_path, ingest):
    path = csv_file(tmp_path, "log.csv", "D\x00te,Time,Number,Direction\n04/03/2024,12:02,07700 900461,Missed\n"
                                         "05/03/2024,08:10,07700 900461,Incoming\n")
    result = ingest("run", "--source", "calls", path)
    assert result.exit_code == 0, result.output
    found = by_locator(ingest)
    assert (found["row 2"]["occurred_at"], found["row 3"]["occurred_at"]) == \
        ("2024-03-04T12:02:00+00:00", "2024-03-05T08:10:00+00:00")
    assert "log.csv: column 1 ('D\\x00te') was read as the date from what it holds; its name is not one ingest " \
        "knows." in result.output


@pytest.mark.parametrize("row", ["04/03/2024,32:02,07700 900461,Missed,0:00:00",        # no such hour
                                 "04/03/2024,12:02,07700 900461,Missed,0:00:0\xb9"])     # a superscript digit
def test_rows_found_by_fuzzing_cost_at_most_themselves(tmp_path, ingest, row):
    text = ("Date,Time,Number,Direction,Duration\n04/03/2024,12:01,07700 900461,Missed,0:00:00\n" + row
            + "\n04/03/2024,12:03,07700 900461,Missed,0:00:00\n")
    path = csv_file(tmp_path, "log.csv", text, "cp1252")
    result = ingest("run", "--source", "calls", path)
    assert result.exit_code == 0, result.output
    found = by_locator(ingest)
    assert {"row 2", "row 4"} <= set(found)


@pytest.mark.parametrize("header", ["\rate,Time,Number,Direction", "D\rte,Time,Number,Direction"])
def test_a_line_break_in_the_header_loses_no_call(tmp_path, ingest, header):
    # found by fuzzing: one byte of the header turned into a line break made every call unreadable
    path = csv_file(tmp_path, "log.csv", header + "\n04/03/2024,12:02,07700 900461,Missed\n"
                                                  "05/03/2024,08:10,07700 900461,Incoming\n")
    result = ingest("run", "--source", "calls", path)
    assert result.exit_code == 0, result.output
    found = by_locator(ingest)
    assert [found[f"row {n}"]["occurred_at"][:10] for n in (3, 4)] == ["2024-03-04", "2024-03-05"]


def test_an_xml_declaration_naming_no_real_encoding_loses_no_call(tmp_path, ingest):
    # found by fuzzing: expat raised LookupError ("unknown encoding: UTX-8") out of the parser
    path = calls_xml(tmp_path / "in" / "calls.xml", [call(1709329265000 + i * 60000, duration=i) for i in range(3)])
    path.write_bytes(path.read_bytes().replace(b"UTF-8", b"UTX-8", 1))
    result = ingest("run", "--source", "calls", path)
    found = by_locator(ingest)
    assert [found[f"element {n}"]["duration_s"] for n in (1, 2, 3)] == [0.0, 1.0, 2.0]
    assert "calls.xml: This part of the backup is damaged (the XML is broken at line 1, column 0: " \
        "unknown encoding)" in result.output


def test_a_duration_with_a_control_character_costs_nothing(tmp_path, ingest):
    # found by fuzzing: str.strip() removes \x1d but int() does not accept it
    path = csv_file(tmp_path, "log.csv", "Date,Time,Number,Duration\n04/03/2024,12:02,07700 900461,0:01\x1d\n"
                                         "04/03/2024,12:03,07700 900461,0:00:09\n")
    assert run(ingest, "calls", path)["records"] == 3
    assert by_locator(ingest)["row 2"]["duration_s"] == 1.0


def test_a_stray_quote_swallows_no_row(tmp_path, ingest):
    # found by fuzzing: a '"' at the start of a cell opened a quoted cell running to the end of the file
    path = csv_file(tmp_path, "log.csv", "Date,Time,Number,Direction\n04/03/2024,12:01,07700 900461,Missed\n"
                                         '04/03/2024,12:02,"07700 900461,Missed\n04/03/2024,12:03,07700 900461,Missed\n'
                                         "04/03/2024,12:04,07700 900461,Missed\n")
    run(ingest, "calls", path)
    found = by_locator(ingest)
    assert [found[f"row {n}"]["occurred_at"][11:16] for n in (2, 3, 4, 5)] == ["12:01", "12:02", "12:03", "12:04"]
    assert found["row 3"]["metadata"]["number_raw"] == '"07700 900461'


def test_a_csv_header_damaged_into_a_less_than_sign_is_still_a_csv(tmp_path, ingest):
    path = csv_file(tmp_path, "log.csv", "<ate,Time,Number,Direction\n04/03/2024,12:02,07700 900461,Missed\n"
                                         "05/03/2024,08:10,07700 900461,Incoming\n")
    assert run(ingest, "calls", path)["records"] == 3

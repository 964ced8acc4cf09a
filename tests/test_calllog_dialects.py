"""Issue 13, call-log CSVs: yes/no direction columns, who an outgoing call is to, durations with
units or from start and end, both ends of a Caller/Receiver log, and columns nobody reads named."""

from __future__ import annotations

import json

from test_calls import csv_file


def calls(ingest, path, expect_warnings: int = 0) -> dict[str, dict]:
    result = ingest("run", path, "--json")          # no --source: recognised by its header
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["unparsed"], summary["warnings"]) == (0, expect_warnings), result.output
    return {r["source"]["locator"]: r for r in ingest.json("list", "--json") if r["kind"] == "call"}


def test_yes_no_direction_columns_give_missed_incoming_or_outgoing(ingest, tmp_path):
    path = csv_file(tmp_path, "log.csv", "date,number,incoming_call,missed_call,duration\n"
                                         "2024-07-25 21:15:00,07700900123,true,false,65\n"
                                         "2024-07-25 21:16:00,07700900123,true,true,0\n"
                                         "2024-07-25 21:17:00,07700900123,false,false,12\n")
    found = calls(ingest, path)
    assert [(found[f"row {n}"]["direction"], found[f"row {n}"]["from"], found[f"row {n}"]["to"]) for n in (2, 3, 4)] \
        == [("incoming", ["+447700900123"], ["me"]), ("missed", ["+447700900123"], ["me"]),
            ("outgoing", ["me"], ["+447700900123"])]


def test_duration_headers_with_units_are_read(ingest, tmp_path):
    path = csv_file(tmp_path, "units.csv", "Date,Number,Type,Call duration (s)\n"
                                           "2024-07-25 21:15:00,07700900123,Outgoing,65\n")
    other = csv_file(tmp_path, "minutes.csv", "Date,Number,Type,Duration (min)\n"
                                              "2024-07-26 08:00:00,07700900124,Incoming,2.5\n")
    sec = csv_file(tmp_path, "sec.csv", "Date,Number,Type,Duration (sec)\n2024-07-27 08:00:00,07700900125,Missed,0\n")
    for each in (path, other, sec):
        calls(ingest, each)
    found = [r for r in ingest.json("list", "--json") if r["kind"] == "call"]
    by_number = {r["to"][0] if r["direction"] == "outgoing" else r["from"][0]: r for r in found}
    assert (by_number["+447700900123"]["duration_s"], by_number["+447700900123"]["to"]) == (65.0, ["+447700900123"])
    assert by_number["+447700900124"]["duration_s"] == 150.0
    assert by_number["+447700900125"]["duration_s"] == 0.0


def test_start_and_end_give_the_duration(ingest, tmp_path):
    path = csv_file(tmp_path, "span.csv", "Start,End,Number,Direction\n"
                                          "25/07/2024 21:15:00,25/07/2024 21:16:05,07700900123,Incoming\n"
                                          "25/07/2024 23:59:30,00:00:40,07700900123,Outgoing\n")
    found = calls(ingest, path)
    assert (found["row 2"]["duration_s"], found["row 2"]["metadata"]["duration_from"]) == (65.0, "start and end")
    assert found["row 3"]["duration_s"] == 70.0         # ended after midnight


def test_caller_receiver_logs_keep_both_numbers_as_written(ingest, tmp_path):
    path = csv_file(tmp_path, "cdr.csv", "Date,Caller,Receiver,Duration\n"
                                         "2024-07-25 21:15:00,07700900123,07700900999,65\n")
    record = calls(ingest, path)["row 2"]
    assert (record["from"], record["to"], record["metadata"]["caller_raw"], record["metadata"]["callee_raw"]) == (
        ["+447700900123"], ["+447700900999"], "07700900123", "07700900999")


def test_an_unrecognised_column_is_named_in_a_warning(ingest, tmp_path):
    path = csv_file(tmp_path, "extra.csv", "Date,Number,Direction,Duration,Cell tower,SIM slot\n"
                                           "2024-07-25 21:15:00,07700900123,Incoming,65,Leeds-4411,2\n")
    result = ingest("run", path, "--json")
    assert result.exit_code == 0
    assert ("column(s) not read as any part of a call: Cell tower, SIM slot. Their values are kept in each call's "
            "metadata (row); name one with --map if it matters.") in result.stderr
    [record] = [r for r in ingest.json("list", "--json") if r["kind"] == "call"]
    assert record["metadata"]["row"]["Cell tower"] == "Leeds-4411"

"""`ingest timeline`: every kind merged in occurred_at order, as a table, CSV or JSON, filtered."""

from __future__ import annotations

import csv
import io

import pytest

from ingest.features.timeline import CSV_COLUMNS
from handoff_helpers import STALKER, STALKER_MAIL, build_mixed


@pytest.fixture
def mixed(ingest, tmp_path):
    build_mixed(ingest, tmp_path / "evidence")
    return ingest


def events(records):
    """(time, kind, what) of each record, without the parts that change from run to run."""
    return [(r["occurred_at"], r["kind"], r["subject"] or r["text"]) for r in records if r["kind"] != "file"
            or r["source"]["locator"] is not None or r["original"]["filename"].endswith(".txt")]


def test_every_kind_merged_in_time_order(mixed):
    records = mixed.json("timeline", "--format", "json")
    moments = [r["occurred_at"] for r in records]
    assert len(records) == 8            # letter, 3 sms, email + photo, 2 notes
    listed = mixed.json("list", "--json")
    # the SMS backup file's own record is listed (and bundled) but is not an incident on the timeline
    [backup] = [r for r in listed if r["metadata"].get("container")]
    assert backup["metadata"]["format"] == "SMS Backup & Restore" and backup["occurred_at_source"] == "file:mtime"
    assert [r["id"] for r in records] == [r["id"] for r in listed if r is not backup]
    assert events(records)[:8] == [
        ("2024-02-05T09:00:00+00:00", "file", "I saw you at the station on Tuesday. I will be waiting.\n"),
        ("2024-02-05T09:00:00+00:00", "sms", "Why are you ignoring me?"),
        ("2024-02-10T21:40:00+00:00", "note", "Grey Ford Focus AB12 CDE parked opposite"),
        ("2024-02-11T09:00:00+00:00", "sms", "I know where you live now"),
        ("2024-02-12T09:00:00+00:00", "sms", "Please stop contacting me"),
        ("2024-02-13T08:10:00+00:00", "note", "Followed from the station"),
        ("2024-02-14T20:15:00+00:00", "email", "Saw you today"),
        ("2024-02-14T20:15:00+00:00", records[7]["kind"], None),     # the attached photo, after its email
    ]
    assert records[7]["parent"] == records[6]["id"] and records[7]["original"]["filename"] == "outside.png"
    assert sorted(moments[:8]) == moments[:8]


def test_filters(mixed):
    def texts(*args):
        return [r["text"] for r in mixed.json("timeline", "--format", "json", *args)]

    assert texts("--kind", "sms") == ["Why are you ignoring me?", "I know where you live now", "Please stop contacting me"]
    assert texts("--kind", "note", "--kind", "email") == [
        "Grey Ford Focus AB12 CDE parked opposite", "Followed from the station",
        "You looked lovely in the red coat. See the photo."]
    # --since is inclusive, --until exclusive; times without a zone are read in the case zone
    assert texts("--kind", "sms", "--since", "2024-02-11 09:00", "--until", "2024-02-12 09:00") == [
        "I know where you live now"]
    mixed("party", "add", "J Smith", "--phone", "07700 900123")    # read as the stored E.164 form
    mixed("party", "add", "Mail", "--email", STALKER_MAIL.upper())
    mixed("party", "add", "Nobody", "--email", "nobody@example.net")
    assert texts("--party", "j smith") == ["Why are you ignoring me?", "I know where you live now",
                                           "Please stop contacting me"]
    assert texts("--party", "Mail") == ["You looked lovely in the red coat. See the photo."]
    assert texts("--party", "Nobody") == []
    assert len(texts("--party", "J Smith", "--party", "Mail")) == 4


def test_csv(mixed):
    text = mixed("timeline", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 9
    by_text = {row[CSV_COLUMNS.index("text")]: dict(zip(CSV_COLUMNS, row)) for row in rows[1:]}
    sms = by_text["I know where you live now"]
    assert (sms["occurred_at"], sms["kind"], sms["direction"], sms["from"], sms["to"], sms["occurred_at_source"],
            sms["occurred_at_raw"], sms["timezone_assumed"]) == (
        "2024-02-11T09:00:00+00:00", "sms", "incoming", STALKER, "me", "sms:date", "1707642000000", "False")
    note = by_text["Grey Ford Focus AB12 CDE parked opposite"]
    assert (note["occurred_at"], note["where"], note["occurred_at_raw"], note["timezone_assumed"]) == (
        "2024-02-10T21:40:00+00:00", "Home", "2024-02-10 21:40", "True")


def test_table_marks_assumed_zones(mixed):
    table = mixed("timeline", env={"COLUMNS": "220"}).stdout
    assert "Timeline of Test case" in table
    assert "2024-02-10T21:40:00+00:00 (zone assumed)" in table
    assert "2024-02-13T08:10:00+00:00 (zone assumed)" not in table
    assert table.index("Grey Ford Focus") < table.index("Followed from the station") < table.index("Saw you today")


def test_empty_case(ingest):
    assert ingest("timeline", "--format", "json").stdout == "[]\n"
    assert ingest("timeline", "--format", "csv").stdout.splitlines() == [",".join(CSV_COLUMNS)]


def test_unreadable_time_bound(ingest):
    result = ingest("timeline", "--since", "last week")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("ingest: Could not read the time 'last week'. "
                                     "Write it like 2024-03-01 21:40 or 2024-03-01T21:40:00+00:00.")


def test_text_that_looks_like_markup_is_shown_as_written(ingest):
    ingest.json("note", "see you [/b] at [red]home[/red]", "--at", "2024-01-01 10:00", "--json")
    result = ingest("timeline", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "see you [/b] at [red]home[/red]" in result.stdout

"""`ingest note`: a diary entry is evidence too (an original, hashed, parsed, logged), never edited."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from ingest.case import Case
from handoff_helpers import png


def custody(case_dir):
    return [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]


def stored_bytes(case_dir, record):
    b3 = record["original"]["blake3"]
    return (case_dir / "objects" / b3[:2] / b3).read_bytes()


def test_note_is_an_original_parsed_and_logged(ingest, case_dir):
    record = ingest.json("note", "Grey Ford Focus AB12 CDE parked opposite the house", "--at", "2024-03-01 21:40",
                         "--where", "Outside home", "--json")
    assert record["kind"] == "note"
    assert record["text"] == "Grey Ford Focus AB12 CDE parked opposite the house"
    assert record["occurred_at"] == "2024-03-01T21:40:00+00:00"
    assert record["occurred_at_source"] == "user"
    assert record["occurred_at_raw"] == "2024-03-01 21:40"
    assert record["timezone_assumed"] is True
    assert record["source"] == {"adapter": "note", "parser": "note 1", "key": record["source"]["key"], "locator": None}
    assert record["source"]["key"] == f"note:{record['metadata']['written_at']}"
    assert record["metadata"]["where"] == "Outside home"
    assert record["metadata"]["operator"] == "Tester"
    assert record["metadata"]["at_from"] == "typed"
    assert record["original"]["media_type"] == "application/json"

    # the original is the canonical JSON of what was typed, and its hashes are the record's
    data = stored_bytes(case_dir, record)
    assert data.startswith(b'{"@format":"ingest-note/1","at":"2024-03-01T21:40:00+00:00","at_from":"typed",'
                           b'"at_typed":"2024-03-01 21:40","attachments":[],"case":"Test case",')
    assert hashlib.sha256(data).hexdigest() == record["original"]["sha256"]
    doc = json.loads(data)
    assert doc["text"] == record["text"] and doc["where"] == "Outside home" and doc["supersedes"] is None
    assert doc["timezone"] == "Europe/London"

    line, closing = custody(case_dir)[-2:]
    assert line["action"] == "note"
    assert line["subjects"] == {"objects": [record["original"]["blake3"]], "records": [record["id"]]}
    assert line["detail"]["parser"] == "note 1" and line["detail"]["adapter"] == "note"
    assert (closing["action"], closing["subjects"], closing["detail"]["records"]) == ("records", line["subjects"], 1)
    assert closing["detail"]["records_sha256"] == hashlib.sha256(record["id"].encode() + b"\n").hexdigest()
    assert ingest("verify").exit_code == 0


@pytest.mark.parametrize("typed, occurred, assumed, flags", [
    ("2024-07-01 08:00", "2024-07-01T08:00:00+01:00", True, {}),                      # summer time
    ("2024-03-01T21:40:00+05:00", "2024-03-01T21:40:00+05:00", False, {}),           # a zone was given
    ("2024-10-27 01:30", "2024-10-27T01:30:00+01:00", True, {"dst_ambiguous": True}),  # clocks went back
    ("2024-03-31 01:30", "2024-03-31T01:30:00+00:00", True, {"dst_nonexistent": True}),  # clocks went forward
])
def test_note_times(ingest, typed, occurred, assumed, flags):
    record = ingest.json("note", "Car outside", "--at", typed, "--json")
    assert record["occurred_at"] == occurred
    assert record["timezone_assumed"] is assumed
    assert {key: record["metadata"][key] for key in ("dst_ambiguous", "dst_nonexistent")
            if key in record["metadata"]} == flags


def test_note_without_at_happened_now(ingest):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    record = ingest.json("note", "A parcel left at the door", "--json")
    after = datetime.now(timezone.utc)
    occurred = datetime.fromisoformat(record["occurred_at"])
    assert before <= occurred <= after
    assert record["occurred_at_raw"] is None
    assert record["metadata"]["at_from"] == "written_at"
    assert record["timezone_assumed"] is False


def test_attachments_are_originals_whose_parent_is_the_note(ingest, case_dir, tmp_path):
    photo = tmp_path / "letter-photo.png"
    photo.write_bytes(png())
    voice = tmp_path / "voicemail.m4a"
    voice.write_bytes(b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00" + b"\x11" * 64)
    note = ingest.json("note", "Letter pushed through the door, and a voicemail", "--at", "2024-03-02 07:15",
                       "--attach", photo, "--attach", voice, "--attach", photo, "--json")
    assert [(a["filename"], a["sha256"]) for a in note["metadata"]["attachments"]] == [
        ("letter-photo.png", hashlib.sha256(photo.read_bytes()).hexdigest()),
        ("voicemail.m4a", hashlib.sha256(voice.read_bytes()).hexdigest())]
    records = ingest.json("list", "--json")
    children = [r for r in records if r["parent"] == note["id"]]
    assert sorted(r["original"]["filename"] for r in children) == ["letter-photo.png", "voicemail.m4a"]
    assert {r["original"]["sha256"] for r in children} == {a["sha256"] for a in note["metadata"]["attachments"]}
    for child in children:
        assert stored_bytes(case_dir, child) == (tmp_path / child["original"]["filename"]).read_bytes()
    lines = custody(case_dir)
    assert [line["action"] for line in lines[-6:]] == ["note", "records", "acquire", "records", "acquire", "records"]
    assert [line["detail"]["parent_record"] for line in lines[-4::2]] == [note["id"], note["id"]]
    assert lines[-4]["private"]["detail"]["source_key"] == str(photo)      # the full path stays in the case
    assert lines[-4]["detail"]["source_key"] == f"{photo.parent.name}/{photo.name}"
    assert photo.read_bytes() == png()       # the user's file is untouched


def test_a_correction_is_a_new_note_and_both_stay(ingest, case_dir):
    first = ingest.json("note", "Grey Ford Focus outside", "--at", "2024-03-01 21:40", "--where", "Home", "--json")
    with Case.open(case_dir, writable=False) as case:
        first_body = case.index.db.execute("SELECT body FROM records WHERE id=?", (first["id"],)).fetchone()[0]
    result = ingest("note", "Correction: it was a blue Ford Focus, AB12 CDE", "--supersedes", first["id"][:8])
    assert result.exit_code == 0, result.output
    second_id = result.stdout.split()[1]
    second = ingest.json("show", second_id, "--json")
    assert second["metadata"]["supersedes"] == first["id"]
    # a correction without --at is about the same incident: it keeps the corrected note's time
    assert second["occurred_at"] == "2024-03-01T21:40:00+00:00"
    assert second["metadata"]["at_from"] == "corrected note"

    timeline = ingest.json("timeline", "--format", "json")
    assert [r["id"] for r in timeline] == [first["id"], second["id"]]
    assert timeline[0]["corrected_by"] == [second["id"]]
    assert "corrected_by" not in timeline[1]
    table = ingest("timeline", env={"COLUMNS": "200"}).stdout
    assert f"(corrected by {second['id'][:12]})" in table and f"(corrects {first['id'][:12]})" in table
    with Case.open(case_dir, writable=False) as case:   # the old note was not touched
        assert case.index.db.execute("SELECT body FROM records WHERE id=?", (first["id"],)).fetchone()[0] == first_body
    assert ingest("verify").exit_code == 0


def lines_and_records(case_dir):
    with Case.open(case_dir, writable=False) as case:
        return len(custody(case_dir)), case.index.count_records()


@pytest.mark.parametrize("args, code, message", [
    (["   "], 2, 'ingest: The note is empty. Write what happened, e.g. ingest note "A grey car parked opposite".'),
    (["x", "--at", "yesterday"], 2, "ingest: Could not read the time 'yesterday'. "
                                    "Write it like 2024-03-01 21:40, 2024-03-01 9pm or 01/03/2024."),
    (["x", "--supersedes", "ffffffff"], 2, "ingest: No single record has an id starting 'ffffffff'. "
                                           "See `ingest list --kind note` for the ids of your notes."),
])
def test_bad_notes_are_refused_and_nothing_is_kept(ingest, case_dir, args, code, message):
    before = lines_and_records(case_dir)
    result = ingest("note", *args)
    assert result.exit_code == code
    assert result.stderr.strip() == message
    assert lines_and_records(case_dir) == before


def test_future_time_is_refused(ingest, case_dir):
    when = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    result = ingest("note", "x", "--at", when)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"ingest: The time {when!r} is in the future. "
                                     "Check the date, and write it like 2024-03-01 21:40.")


def test_missing_or_folder_attachment_is_refused_before_anything_is_kept(ingest, case_dir, tmp_path):
    before = lines_and_records(case_dir)
    missing = tmp_path / "nope.jpg"
    result = ingest("note", "x", "--attach", missing)
    assert result.exit_code == 3
    assert result.stderr.strip() == (f"ingest: The attachment {missing} does not exist. "
                                     "Check the spelling, or drag the file into the terminal.")
    result = ingest("note", "x", "--attach", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"ingest: The attachment {tmp_path} is a folder. Attach files one by one with --attach FILE."
    assert lines_and_records(case_dir) == before


def test_only_notes_can_be_corrected(ingest, tmp_path):
    letter = tmp_path / "letter.txt"
    letter.write_text("hello\n")
    ingest("run", "--source", "files", letter)
    record = ingest.json("list", "--json")[0]
    result = ingest("note", "x", "--supersedes", record["id"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"ingest: Record {record['id']} is a file record, not a note: only notes can be "
                                     "corrected. Write a new note that says what is wrong with it instead.")


@pytest.mark.parametrize("content, error", [
    (b'{"@format":"ingest-note/1","text":', "is not a readable note (Expecting value: line 1 column 35 (char 34))"),
    (b'{"@format":"ingest-note/1","at":"2024-03-01T21:40:00+00:00","written_at":"2024-03-02T00:00:00Z"}',
     "is a note without text"),
    (b'{"@format":"ingest-note/1","at":"1 March","text":"x","written_at":"2024-03-02T00:00:00Z"}',
     "has a time that cannot be read: '1 March'"),
    (b'{"@format":"ingest-note/1","at":"2024-03-01T21:40:00","text":"x","written_at":"2024-03-02T00:00:00Z"}',
     "has a time without a zone: '2024-03-01T21:40:00'"),
])
def test_broken_note_documents_are_kept_as_unparsed(ingest, tmp_path, content, error):
    path = tmp_path / "note.json"
    path.write_bytes(content)
    summary = ingest.json("run", "--source", "files", path, "--json")
    assert summary["unparsed"] == 1
    record = ingest.json("list", "--json")[0]
    assert record["kind"] == "unparsed"
    assert record["metadata"]["error"] == error
    assert record["source"]["parser"] == "note 1"


def test_a_note_document_read_by_the_files_source_is_a_note(ingest, case_dir, tmp_path):
    note = ingest.json("note", "Followed from the station", "--at", "2024-03-05 18:05", "--where", "High St", "--json")
    doc = json.loads(stored_bytes(case_dir, note))
    doc["written_at"] = "2024-03-05T18:30:00Z"     # other bytes than the note the case holds
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")))
    ingest("run", "--source", "files", copy)
    again = [r for r in ingest.json("list", "--json") if r["source"]["key"] == str(copy)][0]
    for key in ("kind", "text", "occurred_at", "occurred_at_raw", "occurred_at_source", "timezone_assumed"):
        assert again[key] == note[key]
    assert again["metadata"] == dict(note["metadata"], written_at="2024-03-05T18:30:00Z")

"""`ingest verify`: tamper with a case in each way and expect it named."""

import json
import os
from datetime import datetime
from zoneinfo import ZoneInfo



def objects_of(ingest):
    return sorted(r["original"]["blake3"] for r in ingest.json("list", "--json"))


def custody(ingest):
    return ingest.case_dir / "custody.jsonl"


def verify_lines(ingest):
    result = ingest("verify")
    return result.exit_code, [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]


def test_untouched_case_verifies_and_logs_the_check(filled):
    result = filled("verify")
    assert result.exit_code == 0
    assert result.stdout == "Everything holds: 3 object(s), 3 record(s), 7 custody line(s).\n"
    last = json.loads(custody(filled).read_text().splitlines()[-1])
    assert (last["action"], last["detail"]["ok"]) == ("verify", True)


def evidence(ingest, name):
    """How verify names the evidence an object holds: its file name, kind and local time."""
    [record] = [r for r in ingest.json("list", "--json") if r["original"]["blake3"] == name]
    moment = datetime.fromisoformat(record["occurred_at"]).astimezone(ZoneInfo("Europe/London"))
    return f"{record['original']['filename']}, file, {moment:%Y-%m-%d %H:%M}"


def test_flipped_byte_in_an_object_is_named(filled):
    name = objects_of(filled)[0]
    about = evidence(filled, name)
    path = filled.case_dir / "objects" / name[:2] / name
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)
    code, problems = verify_lines(filled)
    assert code == 1
    assert len(problems) == 2
    assert problems[0].startswith(f"PROBLEM object {name} ({about}): content changed: its BLAKE3 is now ")
    assert problems[1].startswith(f"PROBLEM object {name} ({about}): SHA-256 is ")
    assert about.startswith("item") and about[5:] == ".txt, file, " + about[-16:]


def test_deleted_object_is_named_with_its_record(filled):
    records = filled.json("list", "--json")
    name = records[1]["original"]["blake3"]
    about = evidence(filled, name)
    (filled.case_dir / "objects" / name[:2] / name).unlink()
    code, problems = verify_lines(filled)
    assert code == 1
    assert problems == [f"PROBLEM object {name} ({about}): is missing from the store",
                        f"PROBLEM record {records[1]['id']} ({about}): its original {name} is missing from the store"]


def test_edited_custody_line_is_named(filled):
    lines = custody(filled).read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("item", "ITEM")
    custody(filled).write_text("".join(lines))
    code, problems = verify_lines(filled)
    assert code == 1
    assert problems == ["PROBLEM custody line 3: does not follow from the line before it (hash chain broken: "
                        "a line was edited, removed or moved)"]


def test_edited_last_custody_line_is_named(filled):
    lines = custody(filled).read_text().splitlines(keepends=True)
    lines[-1] = lines[-1].replace("item", "ITEM")
    custody(filled).write_text("".join(lines))
    code, problems = verify_lines(filled)
    assert code == 1
    assert problems == ["PROBLEM custody line 7: is not the line the index recorded as the head of the log "
                        "(it was changed)"]


def test_reordered_custody_lines_are_named(filled):
    lines = custody(filled).read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    custody(filled).write_text("".join(lines))
    code, problems = verify_lines(filled)
    assert code == 1
    assert "PROBLEM custody line 2: has sequence number 3, expected 2" in problems
    assert "PROBLEM custody line 3: has sequence number 2, expected 3" in problems


def test_dropped_last_custody_line_is_named(filled):
    lines = custody(filled).read_text().splitlines(keepends=True)
    custody(filled).write_text("".join(lines[:-1]))
    code, problems = verify_lines(filled)
    assert code == 1
    assert problems == ["PROBLEM custody line 7: is missing: the index recorded 7 lines, the log has 6 "
                        "(lines were removed from the end)"]


def test_a_tampered_log_blocks_further_writing(filled, tmp_path):
    custody(filled).write_text("".join(custody(filled).read_text().splitlines(keepends=True)[:-1]))
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "x.txt").write_text("x")
    result = filled("run", "--source", "files", tmp_path / "more")
    assert result.exit_code == 2
    assert result.stderr == ("ingest: The custody log of this case does not match its index: it may have been "
                             "altered. Nothing was written. Run `ingest verify` to see what changed.\n")

"""Rule 4 and 5 under kill -9: an original's custody line is committed before any of its records,
its closing line commits to the final record set, a reparse or a note is all or nothing, and a
re-run completes everything with no duplicates."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from phone_helpers import sms, write_backup

INGEST = os.path.join(os.path.dirname(sys.executable), "ingest")
MESSAGES = 50_000
# `ingest reparse` with the SMS parser at version 2: what a newer ingest would do
REPARSE_V2 = ("import sys; from adapters.phone.sms import SmsBackupParser; SmsBackupParser.version = '2'; "
              "from ingest.cli import cli; cli(['--case', sys.argv[1], 'reparse', '--parser', 'sms'])")


def ingest(case_dir, *args):
    return subprocess.run([INGEST, "--case", str(case_dir), *map(str, args)], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


def committed(case_dir, where="1=1") -> int:
    try:
        db = sqlite3.connect(f"file:{case_dir / 'index.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute(f"SELECT count(*) FROM records WHERE {where}").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def kill_when(command, case_dir, where, at_least) -> bool:
    """Start `command`, kill -9 it once the index has `at_least` such records; False if it finished first."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    try:
        while process.poll() is None:
            if committed(case_dir, where) >= at_least:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.02)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def custody(case_dir):
    return [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]


def verifies(case_dir) -> str:
    check = ingest(case_dir, "verify")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "PROBLEM" not in check.stdout
    return check.stdout


def test_kill_9_in_a_big_sms_backup_and_in_its_reparse(case_dir, tmp_path):
    backup = write_backup(tmp_path / "sms.xml", [sms(1709329265000 + n * 1000, body=f"message {n}")
                                                 for n in range(MESSAGES)])
    run = [INGEST, "--case", str(case_dir), "run", "--source", "sms", str(backup)]
    kills = [kill_when(run, case_dir, "1=1", at_least) for at_least in (1, 20_000, 40_000)]
    assert kills.count(True) >= 2, kills
    # the killed runs left records: each is named by a committed acquire line, and verify says so
    notes = verifies(case_dir)
    assert "were committed by a run that stopped before it finished that original; a re-run completes it" in notes
    lines = custody(case_dir)
    acquire = [n for n, line in enumerate(lines) if line["action"] == "acquire"]
    assert acquire and not [line for line in lines if line["action"] == "records"]

    final = ingest(case_dir, "run", "--source", "sms", backup, "--json")
    assert final.returncode == 0, final.stderr
    db = sqlite3.connect(case_dir / "index.sqlite")
    ids = sorted(found for (found,) in db.execute("SELECT id FROM records"))
    assert len(ids) == len(set(ids)) == MESSAGES + 1
    closing = custody(case_dir)[-1]
    assert (closing["action"], closing["detail"]["records"]) == ("records", MESSAGES + 1)
    import hashlib
    assert closing["detail"]["records_sha256"] == hashlib.sha256("".join(f"{i}\n" for i in ids).encode()).hexdigest()
    verifies(case_dir)

    # a reparse killed at several moments never leaves two live versions of a message
    reparse = [sys.executable, "-c", REPARSE_V2, str(case_dir)]
    kills = [kill_when(reparse, case_dir, "parser='sms 2'", at_least) for at_least in (1, 30_000)]
    assert kills.count(True) >= 1, kills
    live = db.execute("SELECT parser, count(*) FROM records WHERE superseded_by IS NULL GROUP BY parser").fetchall()
    assert live == [("sms 1", MESSAGES + 1)]
    assert "come from a reparse that was stopped" in verifies(case_dir)
    done = subprocess.run(reparse, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    live = db.execute("SELECT parser, count(*) FROM records WHERE superseded_by IS NULL GROUP BY parser").fetchall()
    assert live == [("sms 2", MESSAGES + 1)]
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == 2 * (MESSAGES + 1)
    verifies(case_dir)


def test_a_deleted_or_added_record_row_is_named(case_dir, tmp_path):
    backup = write_backup(tmp_path / "sms.xml", [sms(1709329265000 + n * 1000, body=f"m{n}") for n in range(5)])
    assert ingest(case_dir, "run", "--source", "sms", backup).returncode == 0
    line = next(n for n, entry in enumerate(custody(case_dir), 1) if entry["action"] == "records")
    db = sqlite3.connect(case_dir / "index.sqlite")
    row = db.execute("SELECT * FROM records WHERE locator IS NOT NULL ORDER BY id LIMIT 1").fetchone()
    with db:
        db.execute("DELETE FROM records WHERE id=?", (row[0],))
    check = ingest(case_dir, "verify")
    assert check.returncode == 1
    assert (f"PROBLEM custody line {line}: commits to 6 record(s) of {backup} (read by sms 1); the index holds 5: "
            "record rows were deleted from the index") in check.stdout
    with db:
        db.execute("INSERT INTO records VALUES(" + ",".join("?" * len(row)) + ")", row)
        db.execute("INSERT INTO records VALUES(" + ",".join("?" * len(row)) + ")", ("f" * 24, *row[1:]))
    check = ingest(case_dir, "verify")
    assert check.returncode == 1
    assert (f"PROBLEM custody line {line}: commits to 6 record(s) of {backup} (read by sms 1); the index holds 7: "
            "record rows were added to the index") in check.stdout
    assert (f"PROBLEM record {'f' * 24} (sms.xml, sms, 2024-03-01 21:41): its id does not derive from its original "
            "and place in it: the row was added or changed outside ingest") in check.stdout


def test_kill_9_during_note_with_attachments_is_all_or_nothing(case_dir, tmp_path):
    big = tmp_path / "recording.bin"
    with open(big, "wb") as handle:
        for _ in range(48):
            handle.write(os.urandom(1 << 20))
    letter = tmp_path / "letter.txt"
    letter.write_text("You can't hide from me.\n")
    note = [INGEST, "--case", str(case_dir), "note", "Letter and a recording", "--at", "2024-03-02 07:15",
            "--attach", str(big), "--attach", str(letter)]
    for attempt, delay in enumerate((0.3, 0.6, 0.9, 1.2, 1.6, 2.0)):
        # new bytes each time: bytes the case already holds would be one more name for them, not new records
        with open(big, "r+b") as handle:
            handle.write(attempt.to_bytes(4, "big"))
        letter.write_text(f"You can't hide from me. ({attempt})\n")
        process = subprocess.Popen(note, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        verifies(case_dir)
        records = json.loads(ingest(case_dir, "list", "--json").stdout)
        notes = [r for r in records if r["kind"] == "note"]
        for kept in notes:      # never a note without its files, never a file without its note
            assert sorted(r["original"]["filename"] for r in records if r["parent"] == kept["id"]) == [
                "letter.txt", "recording.bin"]
        assert len(records) == 3 * len(notes)
    before = len(notes)
    letter.write_text("And again.\n")
    with open(big, "r+b") as handle:
        handle.write(b"last")
    assert ingest(case_dir, "note", "Letter and a recording", "--at", "2024-03-02 07:15", "--attach", big,
                  "--attach", letter).returncode == 0
    records = json.loads(ingest(case_dir, "list", "--json").stdout)
    assert len([r for r in records if r["kind"] == "note"]) == before + 1 and len(records) == 3 * (before + 1)
    verifies(case_dir)

"""The case as a whole under attack: two writers, a write-blocked copy, an edited log, a broken pipe."""

import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from ingest.case import Case

INGEST = os.path.join(os.path.dirname(sys.executable), "ingest")


def ingest(case_dir, *args, **kwargs):
    return subprocess.run([INGEST, "--case", str(case_dir), *map(str, args)], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, **kwargs)


@pytest.fixture
def filled(case_dir, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for number in range(3):
        (source / f"item{number}.txt").write_text(f"message number {number} about the car outside\n")
    assert ingest(case_dir, "run", "--source", "files", source).returncode == 0
    return case_dir


HOLD = """
import sys
from pathlib import Path
from ingest.case import Case
case = Case.open(Path(sys.argv[1]))
print("holding", flush=True)
sys.stdin.read()
case.close()
"""

TRY = """
import sys
from pathlib import Path
import ingest.case
from ingest.model.errors import CaseError
ingest.case.LOCK_WAIT_S = 0.5
try:
    Case = ingest.case.Case.open(Path(sys.argv[1]))
except CaseError as error:
    print(error)
    sys.exit(2)
print("got the lock")
"""


def test_deleting_any_file_does_not_let_a_second_writer_in(filled):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(filled)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        (filled / ".lock").unlink(missing_ok=True)       # what an earlier version locked, and a user may delete
        second = subprocess.run([sys.executable, "-c", TRY, str(filled)], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stdout.startswith("Another ingest is working on this case.")
    finally:
        holder.communicate("", timeout=60)
    after = subprocess.run([sys.executable, "-c", TRY, str(filled)], capture_output=True, text=True, timeout=60)
    assert after.stdout == "got the lock\n"


def test_a_writer_refuses_a_log_with_an_edited_middle_line(filled, tmp_path):
    log = filled / "custody.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("item", "ITEM")
    log.write_text("".join(lines))
    before = log.read_bytes()
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "x.txt").write_text("x")
    for command in (["run", "--source", "files", tmp_path / "more"], ["note", "a car outside"]):
        result = ingest(filled, *command)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("ingest: The custody log of this case does not match its index")
    assert log.read_bytes() == before


def test_a_failed_verify_writes_nothing(filled):
    log = filled / "custody.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("item", "ITEM")
    log.write_text("".join(lines))
    before = (log.read_bytes(), (filled / "index.sqlite").read_bytes())
    result = ingest(filled, "verify")
    assert result.returncode == 1
    assert "note: this check was not written to the custody log, because the case does not hold" in result.stdout
    assert (log.read_bytes(), (filled / "index.sqlite").read_bytes()) == before


def test_the_checkpoint_makes_a_writer_read_only_the_tail(filled, monkeypatch):
    """A writer hashes the committed bytes and parses only the lines after them."""
    import store.custody

    parsed = []
    real = store.custody.check_line
    monkeypatch.setattr(store.custody, "check_line", lambda number, raw, prev: parsed.append(number) or
                        real(number, raw, prev))
    with Case.open(filled) as case:
        assert not case.custody_broken
        case.log_now("note", {}, {"n": 1})
    assert parsed == []
    lines = (filled / "custody.jsonl").read_bytes().splitlines(keepends=True)
    with open(filled / "custody.jsonl", "ab") as handle:   # a line a killed run wrote but never committed
        handle.write(lines[-1].replace(b'"n":1', b'"n":2'))
    with Case.open(filled) as case:
        assert case.custody_broken                         # its chain does not follow on
    assert parsed == [len(lines) + 1]


@pytest.fixture
def read_only(filled, tmp_path):
    """The case seen through a real read-only bind mount, as an examiner's write-blocked copy."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    view = tmp_path / "blocked"
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(filled), str(view)]).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        assert subprocess.run(["mount", "-o", "remount,ro,bind", str(view)]).returncode == 0
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)])


def snapshot(root):
    return {path: (path.stat().st_size, path.stat().st_mtime_ns, path.read_bytes() if path.is_file() else None)
            for path in sorted(root.rglob("*"))}


def test_a_write_blocked_copy_can_be_examined(read_only, filled, tmp_path):
    before = snapshot(filled)
    result = ingest(read_only, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "note: this check could not be written to the custody log: the case is read-only",
        "Everything holds: 3 object(s), 3 record(s), 7 custody line(s)."]
    records = json.loads(ingest(read_only, "list", "--json").stdout)
    assert len(records) == 3
    assert ingest(read_only, "show", records[0]["id"]).returncode == 0
    assert "message number" in ingest(read_only, "search", "car").stdout
    assert len(list(csv.reader(io.StringIO(ingest(read_only, "timeline", "--format", "csv").stdout)))) == 4
    assert "acquire" in ingest(read_only, "log").stdout
    report = ingest(read_only, "report", "--out", tmp_path / "report.html")
    assert report.returncode == 0, report.stderr
    assert "note: the case is read-only, so this report was not written to its custody log." in report.stderr
    exported = ingest(read_only, "export", "--out", tmp_path / "bundle")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "bundle" / "SHA256SUMS").exists()
    refused = ingest(read_only, "note", "a car outside")
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"ingest: The case folder {read_only} is read-only")
    assert snapshot(filled) == before


def test_a_reader_that_stops_early_is_not_an_error(filled):
    """`ingest verify | head`: the pipe closes before ingest writes; no traceback, no 'internal error'."""
    for command in (["verify"], ["log"], ["list", "--json"]):
        process = subprocess.Popen([INGEST, "--case", str(filled), *command], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        process.stdout.close()
        stderr = process.stderr.read().decode()
        process.wait(timeout=60)
        assert stderr == "", command
        assert process.returncode != 70


def test_log_shows_control_characters_escaped(case_dir, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    (source / "bill\x1b[2J\x07.txt").write_text("x")
    assert ingest(case_dir, "run", "--source", "files", source).returncode == 0
    shown = ingest(case_dir, "log").stdout
    assert "\x1b" not in shown and "\x07" not in shown
    assert "bill\\x1b[2J\\x07.txt" in shown


def test_writing_into_an_unwritable_place_is_one_plain_line(read_only, filled):
    init = ingest(read_only, "init", read_only / "new-case")
    assert init.returncode == 2
    assert init.stderr == (f"ingest: Cannot create the case in {read_only / 'new-case'}: Read-only file system. "
                           "Choose a folder you can write to.\n")
    report = ingest(filled, "report", "--out", read_only / "report.html")
    assert report.returncode == 4
    assert report.stderr.startswith("ingest: The disk is read-only (")
    assert report.stderr.endswith("). Choose a place you can write to.\n")
    export = ingest(filled, "export", "--out", read_only / "bundle")
    assert export.returncode == 2
    assert export.stderr == f"ingest: Cannot write in {read_only}. Choose a folder you can write to.\n"
    assert "internal error" not in init.stderr + report.stderr + export.stderr
    assert ingest(filled, "verify").returncode == 0


def test_a_file_name_that_is_not_utf8_is_kept_and_shown_escaped(case_dir, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    raw_name = b"bill \xff\x8f.txt"
    with open(os.path.join(os.fsencode(source), raw_name), "wb") as handle:
        handle.write(b"pay by friday\n")
    (source / "ok.txt").write_text("fine\n")
    first = ingest(case_dir, "run", "--source", "files", source, "--json")
    assert first.returncode == 0, first.stderr
    assert (json.loads(first.stdout)["new"], json.loads(first.stdout)["records"]) == (2, 2)
    again = json.loads(ingest(case_dir, "run", "--source", "files", source, "--json").stdout)
    assert (again["new"], again["already_held"]) == (0, 2)
    [record] = [r for r in json.loads(ingest(case_dir, "list", "--json").stdout) if r["text"] == "pay by friday\n"]
    assert record["original"]["filename"] == "bill \\xff\\x8f.txt"
    assert record["source"]["key"] == f"{source}/bill \\xff\\x8f.txt"
    assert bytes.fromhex(record["metadata"]["source_key_bytes_hex"]) == os.fsencode(source) + b"/" + raw_name
    assert ingest(case_dir, "verify").returncode == 0


@pytest.mark.parametrize("beside_the_case", [False, True], ids=["read-and-written", "copied-by-the-kernel"])
def test_a_full_disk_stops_the_run_with_one_line_and_a_rerun_completes(small_disk, tmp_path, beside_the_case):
    """The source on another disk (read and written here) or on the case's own (copy_file_range)."""
    case_dir = small_disk / "case"
    assert ingest(case_dir, "init").returncode == 0
    source = (small_disk if beside_the_case else tmp_path) / "in"
    source.mkdir()
    for number in range(5):
        (source / f"a{number}.txt").write_text(f"note {number}\n" * 100)
    big = os.urandom(3_000_000)
    (source / "z-big.bin").write_bytes(big)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 2_000_000))    # 2 MB left: the big file cannot fit
    result = ingest(case_dir, "run", "--source", "files", source)
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stderr == ("ingest: The disk holding the case is full: 5 item(s) were kept, 1 were not. "
                             "Free some space and run again; what was kept is safe.\n")
    db = sqlite3.connect(case_dir / "index.sqlite")
    assert db.execute("SELECT count(*) FROM objects WHERE size=3000000").fetchone()[0] == 0
    assert sorted(r for (r,) in db.execute("SELECT filename FROM originals")) == [f"a{n}.txt" for n in range(5)]
    db.close()
    assert ingest(case_dir, "verify").returncode == 0
    (small_disk / "filler").unlink()
    again = ingest(case_dir, "run", "--source", "files", source, "--json")
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["new"], json.loads(again.stdout)["already_held"]) == (1, 5)
    [row] = [r for r in json.loads(ingest(case_dir, "list", "--json").stdout) if r["original"]["size"] == 3_000_000]
    assert row["original"]["sha256"] == hashlib.sha256(big).hexdigest()
    assert (case_dir / "objects" / row["original"]["blake3"][:2] / row["original"]["blake3"]).read_bytes() == big
    assert ingest(case_dir, "verify").returncode == 0


def test_a_case_folder_removed_mid_run_is_said_truly(case_dir, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    # enough files that the run is still storing when the folder goes (a quiet machine keeps ~2,000 a second)
    for number in range(15000):
        (source / f"f{number:05}.bin").write_bytes(number.to_bytes(4, "big") + os.urandom(200))
    process = subprocess.Popen([INGEST, "--case", str(case_dir), "run", "--source", "files", str(source)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    while committed_records(case_dir) < 100 and process.poll() is None:
        time.sleep(0.05)
    while case_dir.exists():
        shutil.rmtree(case_dir, ignore_errors=True)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 4, stdout + stderr
    assert stderr == (f"ingest: The case folder {case_dir} was removed while ingest was working, so nothing more "
                      "could be kept, and what it held is gone unless you have a copy. Restore the folder (or "
                      "create a new case) and run again.\n")
    assert not case_dir.exists()


def committed_records(case_dir) -> int:
    try:
        db = sqlite3.connect(f"file:{case_dir / 'index.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT count(*) FROM records").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_a_rewrite_of_the_whole_chain_is_named_by_verify(filled):
    """Every line re-chained and the index's count and head set to match: the committed bytes' hash differs."""
    from ingest.model.records import canonical_json
    from store.custody import line_hash

    prev, lines = "0" * 64, []
    for raw in (filled / "custody.jsonl").read_bytes().splitlines():
        entry = dict(json.loads(raw), prev=prev)
        if entry["seq"] == 2:
            entry["operator"] = "Someone else"
        line = canonical_json(entry).encode()
        prev = line_hash(line)
        lines.append(line)
    (filled / "custody.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    with sqlite3.connect(filled / "index.sqlite") as db:
        db.execute("UPDATE meta SET value=? WHERE key='custody_head'", (prev,))
    check = ingest(filled, "verify")
    assert check.returncode == 1
    assert f"PROBLEM custody line {len(lines)}: the log up to this line is not the one the index committed: it was " \
           "rewritten" in check.stdout
    assert ingest(filled, "note", "more").returncode == 2

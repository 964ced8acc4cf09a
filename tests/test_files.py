"""`ingest run --source files`: files and folders, kept byte-exact, never touched."""

import hashlib
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from adapters.files import FilesSource
from ingest import pipeline
from ingest.kit.localfiles import WatchedRead
from ingest.model.errors import OriginalChanged, SourceError


def write(path, data: bytes, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_run_keeps_each_file_with_both_hashes_and_its_mtime(tmp_path, ingest):
    source = tmp_path / "in"
    write(source / "note.txt", b"He was outside again.\n", mtime=1709329265)   # 2024-03-01T21:41:05Z
    write(source / "deep" / "photo.bin", hashlib.sha256(b"seed").digest() * 32, mtime=1709329300)
    summary = ingest.json("run", "--source", "files", source, "--json")
    assert {k: summary[k] for k in ("new", "already_held", "unparsed", "failed", "records")} == \
        {"new": 2, "already_held": 0, "unparsed": 0, "failed": 0, "records": 2}
    records = ingest.json("list", "--json")
    by_name = {r["original"]["filename"]: r for r in records}
    note = by_name["note.txt"]
    assert note["original"]["sha256"] == hashlib.sha256(b"He was outside again.\n").hexdigest()
    assert note["original"]["media_type"] == "text/plain"
    assert note["occurred_at"] == "2024-03-01T21:41:05+00:00"
    assert note["occurred_at_source"] == "file:mtime"
    assert note["occurred_at_raw"] == "1709329265000000000"
    assert note["text"] == "He was outside again.\n"
    assert note["source"] == {"adapter": "files", "parser": "file 1", "key": str(source / "note.txt"), "locator": None}
    assert note["metadata"]["size"] == 22 and note["metadata"]["path"] == str(source / "note.txt")
    assert by_name["photo.bin"]["original"]["media_type"] == "application/octet-stream"
    stored = ingest.case_dir / "objects" / note["original"]["blake3"][:2] / note["original"]["blake3"]
    assert stored.read_bytes() == b"He was outside again.\n"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444


def test_media_type_comes_from_content_not_the_extension(tmp_path, ingest):
    write(tmp_path / "in" / "looks-like.jpg", b"just some words, not a picture\n")
    write(tmp_path / "in" / "no-extension", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    ingest.json("run", "--source", "files", tmp_path / "in", "--json")
    types = {r["original"]["filename"]: r["original"]["media_type"] for r in ingest.json("list", "--json")}
    assert types == {"looks-like.jpg": "text/plain", "no-extension": "application/pdf"}


def test_rerun_adds_nothing_and_a_changed_file_is_kept_again(tmp_path, ingest):
    path = write(tmp_path / "in" / "a.txt", b"first version")
    first = ingest.json("run", "--source", "files", tmp_path / "in", "--json")
    again = ingest.json("run", "--source", "files", tmp_path / "in", "--json")
    assert (first["new"], again["new"], again["already_held"], again["records"]) == (1, 0, 1, 0)
    write(path, b"second version, longer", mtime=time.time() + 5)
    changed = ingest.json("run", "--source", "files", tmp_path / "in", "--json")
    assert (changed["new"], changed["records"]) == (1, 1)
    assert len(ingest.json("list", "--json")) == 2


def test_source_files_are_untouched(tmp_path, ingest):
    path = write(tmp_path / "in" / "a.txt", b"keep me as I am", mtime=1700000000)
    before = os.stat(path)
    ingest.json("run", "--source", "files", tmp_path / "in", "--json")
    after = os.stat(path)
    assert path.read_bytes() == b"keep me as I am"
    assert (after.st_mtime_ns, after.st_size, after.st_mode, after.st_ino) == \
        (before.st_mtime_ns, before.st_size, before.st_mode, before.st_ino)


def test_fifo_is_skipped_with_a_warning_not_a_hang(tmp_path, ingest):
    write(tmp_path / "in" / "real.txt", b"real")
    os.mkfifo(tmp_path / "in" / "pipe")
    result = ingest("run", "--source", "files", tmp_path / "in", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["new"] == 1
    assert f"Skipped {tmp_path / 'in' / 'pipe'}: not a regular file" in result.stderr


def test_missing_path_is_one_clear_line(tmp_path, ingest):
    result = ingest("run", "--source", "files", tmp_path / "nowhere")
    assert result.exit_code == 3
    assert result.stderr == (f"ingest: {tmp_path / 'nowhere'} does not exist. "
                             "Check the spelling, or drag the file into the terminal.\n")
    assert result.stdout == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder regardless of permissions")
def test_unreadable_folder_is_one_clear_line(tmp_path, ingest):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    result = ingest("run", "--source", "files", locked)
    assert result.exit_code == 3
    assert result.stderr == f"ingest: No permission to read the folder {locked}. Run as a user who can open it.\n"


def test_unreadable_folder_as_a_plain_user(case_dir):
    """The same check run as `nobody`, so it holds when the tests run as root (CI), wherever the
    checkout is: what nobody needs is put where it can reach it (see tests/plain_user.py)."""
    import shutil
    import subprocess
    import tempfile

    from plain_user import NOBODY, ingest_as_nobody

    area = Path(tempfile.mkdtemp(prefix="ingest-perm-"))   # pytest's own tmp is 0700 root: untraversable
    try:
        os.chmod(area, 0o755)
        command, env = ingest_as_nobody(area / "runtime")
        (area / "locked").mkdir()
        shutil.copytree(case_dir, area / "case")
        for path in [area / "locked", area / "case", *(area / "case").rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        (area / "locked").chmod(0o000)
        result = subprocess.run([*command, "--case", str(area / "case"), "run", "--source", "files",
                                 str(area / "locked")], capture_output=True, text=True, timeout=120, cwd=area,
                                env=env)
    finally:
        shutil.rmtree(area, ignore_errors=True)
    assert result.returncode == 3, result.stderr
    assert result.stderr == (f"ingest: No permission to read the folder {area / 'locked'}. "
                             "Run as a user who can open it.\n")


def test_a_file_that_changes_while_read_is_never_stored_with_a_wrong_hash(tmp_path, case):
    """A writer appends while the store reads: the store must re-read or refuse, never keep a mix."""
    path = write(tmp_path / "in" / "growing.bin", os.urandom(64 * 1024 * 1024))
    stop = threading.Event()

    def keep_writing():
        with open(path, "ab") as handle:
            while not stop.is_set():
                handle.write(b"x" * 65536)
                handle.flush()
                time.sleep(0.001)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        summary = pipeline.run(case, FilesSource([tmp_path / "in"]))
    finally:
        stop.set()
        writer.join()
    assert summary.failed == 1
    assert summary.problems == [f"growing.bin: {path} changed while it was being read; it was not kept. "
                                "Run again once nothing is writing to it."]
    assert list(case.objects.all_objects()) == []
    assert case.objects.temp_files() == []


def test_a_file_changed_once_is_read_again(tmp_path, case):
    path = write(tmp_path / "in" / "edited.txt", b"draft")
    source = FilesSource([tmp_path / "in"])
    originals = iter(source.originals(pipeline.RunContext(case, pipeline.RunSummary(), pipeline.Progress(),
                                                          pipeline.Batch(case, "files"))))
    original = next(originals)
    write(path, b"final text", mtime=time.time() + 10)   # changed after it was looked at
    runner = pipeline.Pipeline(case, "files")
    stored, new = runner.store(original)
    assert new and stored.path.read_bytes() == b"final text"
    assert stored.digest.sha256 == hashlib.sha256(b"final text").hexdigest()


def test_a_file_swapped_for_another_before_it_is_opened_is_never_read_as_itself(tmp_path):
    """A sync client may put another file in a path's place and later the first back: the end
    check then sees the first again, so the file opened must be told apart from the one looked
    at when it is opened (the storing process opens files by path again)."""
    path = write(tmp_path / "in" / "statement.txt", b"what he said on Monday\n", mtime=1_700_000_000)
    seen = os.stat(path)
    other = write(tmp_path / "other.txt", b"what he said on Sunday\n", mtime=1_700_000_000)   # same size, same times
    os.rename(path, tmp_path / "aside.txt")
    os.rename(other, path)
    with pytest.raises(OriginalChanged) as caught:
        WatchedRead(str(path), seen)
    assert caught.value.location == str(path)
    os.rename(path, other)
    os.rename(tmp_path / "aside.txt", path)     # the first back: the same file as looked at, read as usual
    read = WatchedRead(str(path), seen)
    try:
        assert read.read() == b"what he said on Monday\n"
    finally:
        read.close()


def test_no_paths_is_a_clear_error(case):
    with pytest.raises(SourceError, match="No files or folders were given"):
        pipeline.run(case, FilesSource([]))


def test_small_files_are_stored_on_the_parsing_thread_and_large_ones_beside_it(tmp_path, case, monkeypatch):
    """A small file costs less to store than to hand to another thread; a large one is hashed
    while the files before it are read."""
    for number in range(3):
        write(tmp_path / "in" / f"small{number}.txt", b"note %d\n" % number)
    write(tmp_path / "in" / "large.bin", os.urandom(pipeline.STORE_HERE_BELOW))
    stored_on = {}
    real_store = pipeline.Pipeline.store

    def store(self, original):
        stored_on[original.filename] = threading.current_thread().name
        return real_store(self, original)

    monkeypatch.setattr(pipeline.Pipeline, "store", store)
    summary = pipeline.run(case, FilesSource([tmp_path / "in"]))
    assert summary.new == 4 and summary.failed == 0
    here = threading.current_thread().name
    assert {name: thread == here for name, thread in stored_on.items()} == {
        "small0.txt": True, "small1.txt": True, "small2.txt": True, "large.bin": False}


def test_ctrl_c_while_storing_a_small_file_stops_before_the_next_file(tmp_path, case, monkeypatch):
    for number in range(12):
        write(tmp_path / "in" / f"f{number:02}.txt", b"note %d\n" % number)
    real_store = pipeline.Pipeline.store
    calls = []

    def store(self, original):
        calls.append(original.filename)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_store(self, original)

    monkeypatch.setattr(pipeline.Pipeline, "store", store)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(case, FilesSource([tmp_path / "in"]))
    assert calls == ["f00.txt", "f01.txt", "f02.txt"]
    assert len(list(case.objects.all_objects())) == 2 and case.objects.temp_files() == []


@pytest.mark.parametrize("moment", ["_dispatch", "_add_record"])
def test_ctrl_c_while_a_file_is_read_never_commits_a_row_the_log_does_not_name(tmp_path, case, monkeypatch, moment):
    """A stop commits what the batch holds. Stopped while a parser starts on the third file
    (`_dispatch`) nothing of it is committed; stopped while its record is made (`_add_record`), its
    object row is committed with its acquire line and nothing more. Either way every object row has
    its line, and the next run reads that file and counts it as new (adopted), not as held."""
    for number in range(12):
        write(tmp_path / "in" / f"f{number:02}.txt", b"note %d\n" % number)
    real = getattr(pipeline.Pipeline, moment)
    calls = []

    def stopped(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.Pipeline, moment, stopped)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(case, FilesSource([tmp_path / "in"]))
    db = case.index.db
    acquired = [json.loads(line)["subjects"]["objects"][0] for line in case.custody.path.read_text().splitlines()
                if json.loads(line)["action"] == "acquire"]
    objects = [row[0] for row in db.execute("SELECT blake3 FROM objects ORDER BY blake3")]
    assert sorted(acquired) == objects and len(objects) == (2 if moment == "_dispatch" else 3)
    assert db.execute("SELECT count(*) FROM originals").fetchone()[0] == 2
    monkeypatch.setattr(pipeline.Pipeline, moment, real)
    again = pipeline.run(case, FilesSource([tmp_path / "in"]))
    assert (again.already_held, again.new, again.failed) == (2, 10, 0)
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == 12


def test_ctrl_c_while_a_record_with_a_derived_layer_is_made_commits_no_row_of_that_layer(tmp_path, case, monkeypatch):
    """A text layer a parser derived (OCR) is stored before its record is made: a stop in between
    must not commit the layer's rows without the record that names them."""
    from adapters.file import FileParser
    from ingest.model.records import Derived

    for number in range(6):
        write(tmp_path / "in" / f"f{number:02}.txt", b"note %d\n" % number)
    real_parse, real_row, rows = FileParser.parse, pipeline.record_row, []

    def parse(self, stored, ctx):
        for record in real_parse(self, stored, ctx):
            record.derived.append(Derived("text", b"layer of " + stored.filename.encode(), "test-ocr 1", "text/plain"))
            yield record

    def record_row(*args):
        rows.append(1)
        if len(rows) == 3:
            raise KeyboardInterrupt     # the third file's layer is stored, its record not yet made
        return real_row(*args)

    monkeypatch.setattr(FileParser, "parse", parse)
    monkeypatch.setattr(pipeline, "record_row", record_row)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(case, FilesSource([tmp_path / "in"]))
    db = case.index.db
    named = {item["blake3"] for (body,) in db.execute("SELECT body FROM records")
             for item in json.loads(body)["derived"]}
    layers = {blake3 for (blake3,) in db.execute("SELECT blake3 FROM objects WHERE role='derived'")}
    assert len(named) == 2 and layers == named
    assert {row[0] for row in db.execute("SELECT blake3 FROM derived")} == named

"""`ingest watch DIR`: each new file kept once, when complete; the folder itself never changes."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from image_helpers import chat_screenshot, conversation, exif_jpeg
from ingest.case import Case

INGEST = Path(sys.executable).parent / "ingest"
DEADLINE_S = 90     # only so a broken watcher fails instead of hanging; never a speed check


class Watcher:
    """`ingest watch` in a subprocess, its stderr collected as it comes."""

    def __init__(self, case_dir: Path, folder: Path, *args: str):
        self.case_dir = case_dir
        self.process = subprocess.Popen([str(INGEST), "--case", str(case_dir), "watch", str(folder), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()
        wait_for(lambda: any(line.startswith("Watching") for line in self.lines) or self.process.poll() is not None)
        assert self.process.poll() is None, self.lines

    def stop(self, signum=signal.SIGINT) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        self.process.wait(timeout=DEADLINE_S)
        stdout = self.process.stdout.read()
        self.reader.join(timeout=DEADLINE_S)
        return self.process.returncode, stdout, "".join(self.lines)


@pytest.fixture
def watch(case_dir):
    """Starts watchers; any still running when the test ends (a failed assertion) is killed."""
    started: list[Watcher] = []

    def start(folder: Path, *args: str) -> Watcher:
        started.append(Watcher(case_dir, folder, *args))
        return started[-1]

    yield start
    for watcher in started:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.communicate()


def wait_for(condition) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.1)


def originals(case_dir: Path) -> dict[str, int]:
    """source key -> how many times it was kept (complete)."""
    with Case.open(case_dir, writable=False) as case:
        rows = case.index.db.execute("SELECT source_key, count(*) FROM originals WHERE depth=0 "
                                     "GROUP BY source_key").fetchall()
    return {key: count for key, count in rows}


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    return {str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns,
                                            path.stat().st_size)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def custody(case_dir: Path, action: str) -> list[dict]:
    entries = [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]
    return [entry for entry in entries if entry["action"] == action]


def small_screenshot(path: Path, start: int = 0) -> Path:
    picture, said = chat_screenshot(conversation(3, start), size=(720, 1100))
    assert said.count("\n") == 2, said
    picture.save(path)
    return path


def test_new_files_are_kept_once_each_and_the_folder_is_never_changed(tmp_path, case_dir, watch):
    folder = tmp_path / "Screenshots"
    folder.mkdir()
    small_screenshot(folder / "already-there.png")          # added while ingest was not running
    watcher = watch(folder)
    small_screenshot(folder / "Screenshot_20240301-214105.png", start=3)
    exif_jpeg(folder / "photo.jpg", taken="2024:03:02 08:00:00", offset="+00:00", make="Apple", model="iPhone 13")
    slow = small_screenshot(tmp_path / "slow-source.png", start=6).read_bytes()
    with open(folder / "slow.png", "wb") as handle:          # synced in pieces, like a cloud folder does
        for start in range(0, len(slow), len(slow) // 6 + 1):
            handle.write(slow[start:start + len(slow) // 6 + 1])
            handle.flush()
            time.sleep(0.3)
    (folder / "nested").mkdir()
    exif_jpeg(folder / "nested" / "later.jpg", taken="2024:03:03 09:00:00", offset="+00:00", make="Apple", model="X")
    before = snapshot(folder)

    names = ["already-there.png", "Screenshot_20240301-214105.png", "photo.jpg", "slow.png", "nested/later.jpg"]
    wanted = {str(folder / name) for name in names}
    wait_for(lambda: set(originals(case_dir)) >= wanted)
    code, stdout, stderr = watcher.stop(signal.SIGINT)

    assert code == 130, stderr                              # Ctrl-C, like `run`
    assert "Traceback" not in stderr and "Stopped watching. Everything kept is safe in the case." in stderr
    assert stdout.startswith("Kept 3 new screenshots and 2 new pictures.\n"
                             "In all: 5 given = 5 new + 0 already in the case + 0 not kept.\nRecords written: 5.\n")
    assert originals(case_dir) == {key: 1 for key in wanted}
    assert snapshot(folder) == before                      # same names, bytes and modification times
    with Case.open(case_dir, writable=False) as case:
        (slow_record,) = [r for r in case.index.records() if r["original"]["filename"] == "slow.png"]
    assert slow_record["original"]["sha256"] == hashlib.sha256(slow).hexdigest()
    acquired = sorted(entry["private"]["detail"]["source_key"] for entry in custody(case_dir, "acquire"))
    assert acquired == sorted(wanted)


def test_once_keeps_what_is_there_then_a_later_once_only_what_is_new(tmp_path, case_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    exif_jpeg(folder / "a.jpg", taken="2024:01:01 10:00:00", offset="+00:00", make="Apple", model="X")
    exif_jpeg(folder / "b.jpg", taken="2024:01:01 11:00:00", offset="+00:00", make="Apple", model="X")
    run = [str(INGEST), "--case", str(case_dir), "watch", str(folder), "--once"]
    first = subprocess.run(run, capture_output=True, text=True, timeout=DEADLINE_S)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Kept 2 new pictures.\nIn all: 2 given = 2 new + 0 already in the case + "
                                   "0 not kept.\nRecords written: 2.\n")
    exif_jpeg(folder / "c.jpg", taken="2024:01:01 12:00:00", offset="+00:00", make="Apple", model="X")
    second = subprocess.run(run, capture_output=True, text=True, timeout=DEADLINE_S)
    assert second.stdout.startswith("Kept 1 new picture.\nAlready in the case: 2 (nothing was added twice).\n"
                                    "In all: 3 given = 1 new + 2 already in the case + 0 not kept.\n"
                                    "Records written: 1.\n")
    assert "Kept c.jpg" in second.stderr
    assert originals(case_dir) == {str(folder / name): 1 for name in ("a.jpg", "b.jpg", "c.jpg")}


def test_a_burst_of_hundreds_of_files_is_kept_whole_and_sigterm_stops_cleanly(tmp_path, case_dir, watch):
    folder = tmp_path / "in"
    folder.mkdir()
    watcher = watch(folder, "--source", "files")
    for number in range(300):
        (folder / f"message-{number:03d}.txt").write_text(f"Message {number}: I am watching you.\n")
    wait_for(lambda: len(originals(case_dir)) >= 300)
    code, stdout, stderr = watcher.stop(signal.SIGTERM)
    assert code == 0, stderr
    # each batch names its files, or counts them when there are many
    counted = sum(int(line.split()[1]) for line in stderr.splitlines() if line.endswith(" new files."))
    assert counted + stderr.count("\nKept message-") == 300, stderr
    assert originals(case_dir) == {str(folder / f"message-{number:03d}.txt"): 1 for number in range(300)}
    assert len(custody(case_dir, "acquire")) == 300


def test_watching_a_missing_folder_says_so_plainly(tmp_path, ingest):
    result = ingest("watch", tmp_path / "nowhere")
    assert result.exit_code == 3
    assert result.output.strip() == (f"ingest: {tmp_path / 'nowhere'} is not a folder. Name the folder to watch, "
                                     "e.g. ~/Pictures/Screenshots.")


def test_watch_refuses_a_source_that_is_not_files(tmp_path, ingest):
    (tmp_path / "in").mkdir()
    result = ingest("watch", tmp_path / "in", "--source", "imap")
    assert result.exit_code == 2
    assert result.output.startswith("ingest: `ingest watch` keeps files from a folder; --source imap does not read files.")

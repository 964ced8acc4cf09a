"""A real `kill -9` during `ingest export`: no bundle appears under its name, the log names none,
and the next export removes what was left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

INGEST = str(Path(sys.executable).parent / "ingest")
PART_SIZE = 16 * 1024 * 1024


@pytest.fixture
def heavy_case(ingest, tmp_path):
    """Three 16 MiB originals: enough that each stage of an export lasts long enough to be caught."""
    source = tmp_path / "recordings"
    source.mkdir()
    for number in range(3):
        (source / f"recording-{number}.bin").write_bytes(os.urandom(PART_SIZE))
    ingest.json("run", "--source", "files", source, "--json")
    return ingest


def work_folders(folder: Path) -> list[Path]:
    return list(folder.glob(".ingest-export-*"))


def copying(folder: Path, name: str) -> bool:
    return any((work / name / "originals").is_dir() and any((work / name / "originals").iterdir())
               for work in work_folders(folder))


def hashing(folder: Path, name: str) -> bool:
    return any((work / name / "data").is_dir() for work in work_folders(folder))


def zipping(folder: Path, name: str) -> bool:
    return any((work / f"{name}.zip").exists() for work in work_folders(folder))


def export_lines(case_dir: Path) -> list[dict]:
    entries = [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]
    return [entry for entry in entries if entry["action"] == "export"]


@pytest.mark.parametrize("moment, suffix", [(copying, ""), (hashing, ""), (zipping, ".zip")])
def test_a_killed_export_leaves_nothing_that_looks_like_a_bundle(heavy_case, tmp_path, moment, suffix):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / f"bundle{suffix}"
    command = [INGEST, "--case", str(heavy_case.case_dir), "export", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None and not moment(folder, "bundle"):
            time.sleep(0.001)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the export ended before it could be stopped {moment.__name__}"
    assert not out.exists()                                    # nothing under the bundle's name
    assert len(work_folders(folder)) == 1                      # the unfinished work, under a temporary name
    assert export_lines(heavy_case.case_dir) == []             # and the log names no bundle

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stderr == "Removed 1 unfinished bundle(s) left by an export that was stopped.\n"
    assert work_folders(folder) == []
    assert heavy_case("verify", out).exit_code == 0
    assert len(export_lines(heavy_case.case_dir)) == 1
    assert heavy_case("verify").exit_code == 0


def test_leftovers_of_a_running_export_are_left_alone(tmp_path):
    from ingest.features.export import remove_leftovers

    running = tmp_path / f".ingest-export-{os.getpid()}-abcd"
    stale = tmp_path / ".ingest-export-999999999-efgh"       # no such process
    for folder in (running, stale):
        (folder / "bundle" / "data").mkdir(parents=True)
    (tmp_path / "keep-me").mkdir()
    assert remove_leftovers(tmp_path) == 1
    assert running.exists() and not stale.exists() and (tmp_path / "keep-me").exists()

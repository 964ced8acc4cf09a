"""Rule 5: a kill -9 at any moment leaves a case that verifies, and a re-run completes it
with no duplicates, nothing lost and no temp files left behind."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

INGEST = os.path.join(os.path.dirname(sys.executable), "ingest")
FILES = 3000


def ingest(case_dir, *args, timeout=300):
    return subprocess.run([INGEST, "--case", str(case_dir), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def many_files(tmp_path):
    rng = random.Random(20241124)
    root = tmp_path / "many"
    for folder in range(10):
        (root / f"d{folder}").mkdir(parents=True)
    for number in range(FILES):
        size = rng.randint(5_000, 20_000)
        (root / f"d{number % 10}" / f"f{number:05}.bin").write_bytes(number.to_bytes(4, "big") + rng.randbytes(size))
    return root


def test_kill_9_at_five_moments_then_rerun(case_dir, many_files):
    moments = [0.5, 0.8, 1.1, 1.5, 2.0]
    kills = 0
    for delay in moments:
        process = subprocess.Popen([INGEST, "--case", str(case_dir), "run", "--source", "files", str(many_files)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        check = ingest(case_dir, "verify")
        assert check.returncode == 0, check.stdout + check.stderr
        assert "PROBLEM" not in check.stdout
    assert kills >= 3, "the run finished before most kills: make it bigger"

    final = ingest(case_dir, "run", "--source", "files", many_files, "--json")
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)        # originals an interrupted run stored are counted as new, adopted
    assert summary["new"] + summary["already_held"] + summary["failed"] == FILES, summary
    records = json.loads(ingest(case_dir, "list", "--json").stdout)
    keys = [record["source"]["key"] for record in records]
    assert len(keys) == FILES
    assert len(set(keys)) == FILES                       # no duplicates
    assert len({record["id"] for record in records}) == FILES
    assert sorted((case_dir / "objects").glob(".tmp/*")) + sorted((case_dir / "objects").glob("*/.put-*")) == []
    check = ingest(case_dir, "verify")
    assert check.returncode == 0 and f"{FILES} object(s), {FILES} record(s)" in check.stdout
    again = json.loads(ingest(case_dir, "run", "--source", "files", many_files, "--json").stdout)
    assert (again["new"], again["already_held"], again["records"]) == (0, FILES, 0)


def test_kill_9_while_the_kernel_copies_a_large_file(case_dir, tmp_path):
    """Killed while a large file is half copied into its temp file: nothing is named, the
    re-run clears the temp file and keeps the file whole."""
    source = tmp_path / "in"
    source.mkdir()
    block = random.Random(7).randbytes(1 << 20)
    with open(source / "video.bin", "wb") as handle:
        for number in range(400):
            handle.write(number.to_bytes(4, "big") + block[4:])
    process = subprocess.Popen([INGEST, "--case", str(case_dir), "run", "--source", "files", str(source)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    temp = case_dir / "objects" / ".tmp"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and not (
            temp.is_dir() and any(path.stat().st_size > 0 for path in temp.iterdir())):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    halfway = [path.stat().st_size for path in temp.iterdir()] if temp.is_dir() else []
    assert process.returncode == -signal.SIGKILL and halfway and 0 < halfway[0] < 400 << 20, halfway
    assert [path for path in (case_dir / "objects").iterdir() if path.name != ".tmp"] == []
    check = ingest(case_dir, "verify")
    assert check.returncode == 0, check.stdout + check.stderr
    again = ingest(case_dir, "run", "--source", "files", source, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["new"] == 1, again.stderr
    assert list(temp.iterdir()) == []
    [record] = json.loads(ingest(case_dir, "list", "--json").stdout)
    kept = case_dir / "objects" / record["original"]["blake3"][:2] / record["original"]["blake3"]
    assert kept.stat().st_size == 400 << 20 and kept.read_bytes() == (source / "video.bin").read_bytes()

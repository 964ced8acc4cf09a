"""mbox ingest speed beside references measured in the same run on the same file:

- a bare `mailbox.mbox` iteration that hashes each message (parsed Message objects, as_bytes);
- `mailbox.mbox` split only (`get_bytes`) hashing each message: the floor of any mbox reader.

The messages are the same realistic 5,000 as bench_imap.py, written as one mboxrd file.
The three are interleaved for --rounds rounds (the machine is shared) and the best of each
is kept; each round prints the load average, and ingest's CPU time (its own and its
workers') beside its wall time, which the load disturbs less.

    /work/main/.venv/bin/python bench/bench_mbox.py            # 5,000 messages, 2 rounds
    /work/main/.venv/bin/python bench/bench_mbox.py --quick    # 300, a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mailbox
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from common import children_cpu, peak_kib, timed_call as timed  # noqa: E402
from email_helpers import mbox, message  # noqa: E402

INGEST = str(Path(sys.executable).with_name("ingest"))


def iterate_and_hash(path: Path) -> int:
    count = 0
    for item in mailbox.mbox(path, create=False):
        hashlib.sha256(item.as_bytes()).digest()
        count += 1
    return count


def split_and_hash(path: Path) -> int:
    box = mailbox.mbox(path, create=False)
    count = 0
    for key in box.iterkeys():
        hashlib.sha256(box.get_bytes(key)).digest()
        count += 1
    return count


def ingest_run(path: Path, work: Path, name: str) -> tuple[int, int]:
    """(email records written, peak RSS in KiB) of `ingest run --source mbox` as its own process."""
    # a new case each round: deleting the last one just before would slow every object stored after
    case = work / f"case-{name}"
    subprocess.run([INGEST, "init", str(case)], check=True, capture_output=True)
    rss_file = work / "rss"
    process = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", str(rss_file),
                                INGEST, "--case", str(case), "run", "--source", "mbox", str(path), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"ingest failed: {err.decode()}")
    json.loads(out)
    listed = subprocess.run([INGEST, "--case", str(case), "list", "--kind", "email", "--json"], check=True,
                            capture_output=True)
    return len(json.loads(listed.stdout)), peak_kib(rss_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 messages, a smoke run")
    parser.add_argument("-n", type=int, default=5000, help="messages in the mbox (default 5000)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds, the best kept (default 2)")
    args = parser.parse_args()
    count = 300 if args.quick else args.n
    work = Path(tempfile.mkdtemp(prefix="bench-mbox-"))
    path = work / "Inbox.mbox"
    path.write_bytes(mbox([message(i) for i in range(count)]))
    print(f"{count} messages, {path.stat().st_size / 1e6:.1f} MB mboxrd (2 cores, shared machine)")
    split_s = iterate_s = ingest_s = ingest_cpu = float("inf")
    for round_number in range(1, args.rounds + 1):
        split_and_hash(path)                                 # page cache warm for everyone
        split, seconds = timed(split_and_hash, path)
        split_s = min(split_s, seconds)
        iterated, round_iterate_s = timed(iterate_and_hash, path)
        iterate_s = min(iterate_s, round_iterate_s)
        cpu_before = children_cpu()
        (kept, peak), seconds = timed(ingest_run, path, work, str(round_number))
        ingest_cpu = min(ingest_cpu, children_cpu() - cpu_before)   # `list` and `init` are small beside it
        ingest_s = min(ingest_s, seconds)
        # attachments that are themselves mail would add email records; these fixtures have none
        assert split == iterated == kept == count, (split, iterated, kept)
        print(f"  round {round_number}: iteration {count / round_iterate_s:6.0f} msg/s, ingest {count / seconds:6.0f} msg/s"
              f" (load average {os.getloadavg()[0]:.2f})")

    rate = count / ingest_s
    print(f"mailbox.mbox split + sha256 (get_bytes)    : {count / split_s:8.0f} msg/s  ({split_s:.2f} s)")
    print(f"mailbox.mbox iteration + sha256 (as_bytes) : {count / iterate_s:8.0f} msg/s  ({iterate_s:.2f} s)")
    print(f"ingest run --source mbox                   : {rate:8.0f} msg/s  ({ingest_s:.2f} s, whole process; "
          f"CPU {ingest_cpu:.2f} s)")
    print(f"  ingest / iteration                       : {rate / (count / iterate_s):8.2f}x  (target >= 0.6)")
    print(f"  ingest / split                           : {rate / (count / split_s):8.2f}x")
    print(f"peak memory of ingest: {peak / 1024:.0f} MiB for a {path.stat().st_size / 1e6:.0f} MB mbox")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

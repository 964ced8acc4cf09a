"""Foundation benchmark: keeping originals.

1. One large file (1 GiB; --quick 128 MiB): `ingest run --source files FILE` beside
   `cp FILE X && sync` (the floor for keeping a copy), a bare hashlib.sha256 loop
   (the hashing ceiling), b3sum, sha256sum, and the naive `sha256sum; b3sum; cp; sync`.
2. 10,000 small files of 5-50 KB (--quick 2,000): files/s beside a bare Python loop that
   reads and hashes each with both hashes, and `xargs b3sum --no-mmap`.

Run: .venv/bin/python bench/bench_store.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import INGEST, cpu_note, new_case, row, timed  # noqa: E402

BARE_SHA256 = ("import hashlib, sys\nh = hashlib.sha256()\nb = bytearray(1 << 22)\nv = memoryview(b)\n"
               "with open(sys.argv[1], 'rb', buffering=0) as f:\n"
               "    while (n := f.readinto(b)):\n        h.update(v[:n])\nprint(h.hexdigest())\n")
BARE_BOTH = ("import hashlib, os, sys, blake3\n"
             "for path in sys.stdin.read().split('\\n'):\n"
             "    if path:\n"
             "        data = open(path, 'rb').read()\n"
             "        hashlib.sha256(data).hexdigest(); blake3.blake3(data).hexdigest()\n")


def large_file(work: Path, size_mib: int) -> None:
    big = work / "big.bin"
    with open(big, "wb") as handle:
        block = random.Random(1).randbytes(1 << 20)
        for number in range(size_mib):
            handle.write(number.to_bytes(8, "big") + block[8:])
    subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)   # into the page cache
    subprocess.run(["sync"], check=True)
    copy = work / "copy.bin"
    print(f"\nOne {size_mib} MiB file ({cpu_note()}):")
    cp_sync, _ = timed(f"cp {big} {copy} && sync", shell=True)
    copy.unlink()
    bare, _ = timed([sys.executable, "-c", BARE_SHA256, str(big)])
    b3, _ = timed(["b3sum", str(big)])
    sha, _ = timed(["sha256sum", str(big)])
    naive, _ = timed(f"sha256sum {big} >/dev/null; b3sum {big} >/dev/null; cp {big} {copy}; sync", shell=True)
    copy.unlink()
    case = work / "case"
    new_case(case)
    subprocess.run(["sync"], check=True)
    ours, peak = timed([INGEST, "--case", str(case), "run", "--source", "files", str(big), "--json"])
    row("cp FILE X && sync (floor)", cp_sync)
    row("bare Python hashlib.sha256 loop (ceiling)", bare)
    row("b3sum", b3)
    row("sha256sum", sha)
    row("naive: sha256sum; b3sum; cp; sync", naive)
    row("ingest run --source files FILE", ours, None, f"peak RSS {peak} MiB")
    print(f"  ratios: ingest/naive = {ours / naive:.2f}x (target <= 1.0), ingest/cp+sync = {ours / cp_sync:.2f}x "
          f"(aim 1.15), ingest/bare sha256 = {ours / bare:.2f}x")


def small_files(work: Path, count: int) -> None:
    rng = random.Random(2)
    folder = work / "small"
    for number in range(count):
        sub = folder / f"d{number % 50:02}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{number:05}.bin").write_bytes(number.to_bytes(4, "big") + rng.randbytes(rng.randint(5_000, 50_000)))
    paths = "\n".join(str(p) for p in sorted(folder.rglob("*.bin")))
    list_file = work / "list.txt"
    list_file.write_text(paths)
    subprocess.run(["sync"], check=True)
    print(f"\n{count} small files of 5-50 KB ({cpu_note()}):")
    bare, _ = timed(f"{sys.executable} -c \"{BARE_BOTH}\" < {list_file}", shell=True)
    b3, _ = timed(f"xargs b3sum --no-mmap < {list_file} > /dev/null", shell=True)
    case = work / "case"
    new_case(case)
    subprocess.run(["sync"], check=True)
    ours, peak = timed([INGEST, "--case", str(case), "run", "--source", "files", str(folder), "--json"])
    for label, seconds in (("bare Python loop, both hashes", bare), ("xargs b3sum --no-mmap", b3),
                           ("ingest run --source files (stored, indexed, logged)", ours)):
        row(label, seconds, None, f"{count / seconds:9.0f} files/s")
    print(f"  ingest peak RSS {peak} MiB; ingest speed / bare loop = {bare / ours:.2f}x (target >= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    for tool in ("b3sum", "sha256sum"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed for the reference figures (apt-get install b3sum coreutils)")
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        large_file(work, 128 if args.quick else 1024)
        small_files(work, 2000 if args.quick else 10_000)
        print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

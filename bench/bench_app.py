"""The app's timeline page on a 100,000-record case, beside a bare SQLite query of the same page;
and a large upload, beside `cp` of the same file, with the app's peak memory.

Builds the case with `ingest run --source whatsapp` on a generated export (bench_whatsapp's
generator), starts a real `ingest app --no-browser`, and times whole HTTP requests for the
first page, a page from the middle, the last page, one kind, and a word search. The
reference is the bare query a page needs (the same 100 rows' JSON from index.sqlite,
decoded), measured in the same run. Each figure is the fastest of several interleaved runs.
The upload (1 GiB; --quick: 64 MiB) is streamed by httpx2 as a browser would send it; the
app's peak RSS (VmHWM) is read before and after, so a flat memory shows as a small rise.

    .venv/bin/python bench/bench_app.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_whatsapp import generate  # noqa: E402
from common import INGEST, cpu_note, new_case, row  # noqa: E402

PAGE = 100
ROUNDS = 5
SELECT = "SELECT body FROM records WHERE superseded_by IS NULL {extra} ORDER BY sort_time, rowid LIMIT ?"
KEYSET = "AND (sort_time, rowid) > (?, ?)"
FTS = "AND id IN (SELECT id FROM records_fts WHERE records_fts MATCH ?)"


def bare(db: Path, extra: str = "", args: tuple = ()) -> float:
    """The reference: open the index, fetch and decode the same page's 100 rows."""
    start = time.perf_counter()
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = [json.loads(body) for body, in connection.execute(SELECT.format(extra=extra), (*args, PAGE))]
    connection.close()
    assert rows
    return time.perf_counter() - start


def fetch(client: httpx2.Client, url: str) -> tuple[float, str]:
    start = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response.text


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc: this benchmark needs Linux")


def upload(client: httpx2.Client, base: str, folder: Path, pid: int, size: int) -> None:
    big = folder / "big-export.bin"
    with open(big, "wb") as out:
        for _ in range(size >> 20):
            out.write(os.urandom(1 << 20))
    start = time.perf_counter()
    subprocess.run(["cp", str(big), str(folder / "copy.bin")], check=True)
    copy_seconds = time.perf_counter() - start
    (folder / "copy.bin").unlink()
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"{base}/add").text).group(1)
    before = peak_mib(pid)
    start = time.perf_counter()
    with open(big, "rb") as handle:
        response = client.post(f"{base}/add/upload", data={"csrf": csrf}, files={"file": (big.name, handle)})
    sent = time.perf_counter() - start
    progress = response.url.path + "/progress"
    while not client.get(base + progress).json()["finished"]:
        time.sleep(0.2)
    kept = time.perf_counter() - start
    row(f"app upload of {size >> 20} MiB (sent)", sent, copy_seconds, f"(cp of the same file: {copy_seconds:.2f} s)")
    row(f"app upload of {size >> 20} MiB (sent and kept)", kept, copy_seconds)
    print(f"  app peak memory: {before:.0f} MiB before the upload, {peak_mib(pid):.0f} MiB after "
          f"({size >> 20} MiB uploaded)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10,000-record smoke run")
    args = parser.parse_args()
    lines = 12_000 if args.quick else 121_000       # about 0.83 records a line (multi-line messages)
    with tempfile.TemporaryDirectory(prefix="bench-app-") as folder:
        folder = Path(folder)
        case = folder / "case"
        new_case(case)
        export = folder / "WhatsApp Chat with Sam Taylor.txt"
        generate(export, lines)
        subprocess.run([INGEST, "--case", str(case), "run", "--source", "whatsapp", str(export)], check=True,
                       stdout=subprocess.DEVNULL)
        db = case / "index.sqlite"
        with sqlite3.connect(db) as connection:
            records = connection.execute("SELECT count(*) FROM records WHERE superseded_by IS NULL").fetchone()[0]
            places = [connection.execute("SELECT sort_time, rowid FROM records WHERE superseded_by IS NULL "
                                         "ORDER BY sort_time, rowid LIMIT 1 OFFSET ?", (offset,)).fetchone()
                      for offset in (records // 2 - 1, records - PAGE - 1)]
        print(f"case: {records:,} records; {cpu_note()}")
        env = {**os.environ, "XDG_CONFIG_HOME": str(folder / "config")}
        app = subprocess.Popen([INGEST, "app", "--case", str(case), "--no-browser"], stdout=subprocess.PIPE,
                               text=True, env=env)
        try:
            address = app.stdout.readline().strip()
            base = address.split("/?", 1)[0]
            with httpx2.Client(follow_redirects=True, timeout=60) as client:
                client.get(address)
                (middle_time, middle_rowid), (last_time, last_rowid) = places
                cases = [
                    ("first page", "", "", ()),
                    (f"middle page (after the {records // 2:,}th)", f"after={quote(middle_time)}~{middle_rowid}",
                     KEYSET, places[0]),
                    ("last page", f"after={quote(last_time)}~{last_rowid}", KEYSET, places[1]),
                    ("one kind (whatsapp)", "kind=whatsapp", "AND kind=?", ("whatsapp",)),
                    ("word search 'station'", "q=station", FTS, ("station",)),
                ]
                for label, query, extra, sql_args in cases:
                    app_best = ref_best = float("inf")
                    for _ in range(ROUNDS):
                        app_best = min(app_best, fetch(client, f"{base}/timeline?{query}")[0])
                        ref_best = min(ref_best, bare(db, extra, sql_args))
                    row(f"app GET /timeline, {label}", app_best, ref_best,
                        f"(bare SQLite page: {ref_best * 1000:.1f} ms)" + ("  OVER 1 s" if app_best >= 1 else ""))
                upload(client, base, folder, app.pid, (64 if args.quick else 1024) << 20)
        finally:
            app.terminate()
            app.wait(timeout=30)


if __name__ == "__main__":
    main()

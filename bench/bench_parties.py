"""`party show` and the report's party section on a large case, beside a bare SQLite GROUP BY.

    python bench/bench_parties.py            # 10,000 and 100,000 records (memory must be flat)
    python bench/bench_parties.py --quick    # 2,000 and 10,000: a smoke run

A case is made per size by the real pipeline from a generated SMS backup: half the
messages come from the party's number, a quarter go to it, the rest are from twenty
other numbers; one message mid-way is marked request-to-stop. Then, each in a fresh
subprocess that reports its own peak RSS (three runs each, interleaved, fastest kept):
- group:   sqlite3 alone: the party's messages by kind and week, filtered on the JSON
           `from` in SQL (the reference: the same rows, the same JSON, no Python)
- show:    `ingest.features.parties.show` (what `ingest party show --json` prints)
- section: `ingest.features.report.party_section` (the report's section: show plus the
           chart and heat-map geometry, and the marked threats)
Target: time linear in the records (the 10x size about 10x the time), peak memory the
same at both sizes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPEATS = 3
START_MS = 1704067200000   # 2024-01-01T00:00:00Z
PARTY = "+447700900123"
BODIES = ["Where are you?", "I saw you at the station today. Nice coat.", "Answer your phone.",
          "You can't ignore me forever", "ok", "I know you're home, the lights are on."]


def generate(path: Path, count: int) -> None:
    """An SMS Backup & Restore file: a message every 7 minutes, half of them from the party."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"{count}\">\n")
        for i in range(count):
            kind, address = ((1, "07700 900123") if i % 2 == 0 else (2, "07700 900123") if i % 4 == 1
                             else (1, f"07700 900{200 + i % 20:03d}"))
            out.write(f'  <sms protocol="0" address="{address}" date="{START_MS + i * 420_000}" type="{kind}" '
                      f'subject="null" body="{BODIES[i % len(BODIES)]} #{i}" read="1" status="-1" locked="0" '
                      f'date_sent="0" contact_name="{"Mark Ellis" if address.endswith("123") else "Other"}" />\n')
        out.write("</smses>\n")


def build(folder: Path, count: int) -> Path:
    from adapters.files import FilesSource
    from adapters.phone.sms import SmsBackupParser
    from ingest import pipeline
    from ingest.case import Case
    from ingest.features import parties

    backup = folder / f"sms-{count}.xml"
    generate(backup, count)
    root = folder / f"case-{count}"
    with Case.init(root, name="bench", timezone="Europe/London", region="GB", operator="bench") as case:
        pipeline.run(case, FilesSource([backup]), SmsBackupParser())
        parties.add_party(case, "Mark Ellis", phones=[PARTY])
        middle = START_MS + (count // 2 + 1) * 420_000      # an outgoing message, half-way through
        from datetime import datetime, timezone
        stamp = datetime.fromtimestamp(middle / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        stop = next(case.index.records(since=stamp + "Z"))
        parties.mark(case, stop["id"], "request-to-stop")
    return root


# --- what each subprocess runs (imports first, outside the timing) --------------------------
def measure_group(root: str):
    import sqlite3

    def job():
        db = sqlite3.connect(f"file:{root}/index.sqlite?mode=ro", uri=True)
        rows = db.execute(
            "SELECT kind, strftime('%Y-%W', sort_time) AS week, count(*) FROM records WHERE superseded_by IS NULL "
            "AND EXISTS (SELECT 1 FROM json_each(body, '$.from') WHERE value = ?) GROUP BY kind, week",
            (PARTY,)).fetchall()
        return sum(row[2] for row in rows)
    return job


def measure_show(root: str):
    from ingest.case import Case
    from ingest.features import parties

    def job():
        with Case.open(Path(root), writable=False) as case:
            return parties.show(case, "Mark Ellis")["contacts"]
    return job


def measure_section(root: str):
    from ingest.case import Case
    from ingest.features.report import party_section
    from ingest.features.timeline import Scope

    def job():
        with Case.open(Path(root), writable=False) as case:
            return party_section(Scope(case), "Mark Ellis")["p"]["contacts"]
    return job


def child(kind: str, root: str) -> None:
    import resource

    sys.path.insert(0, str(REPO))
    if kind == "build":          # in a child too: Linux keeps a parent's peak RSS across fork and exec
        folder, size = root.rsplit(":", 1)
        print(json.dumps({"root": str(build(Path(folder), int(size)))}))
        return
    job = {"group": measure_group, "show": measure_show, "section": measure_section}[kind](root)
    started = time.perf_counter()
    count = job()
    seconds = time.perf_counter() - started
    print(json.dumps({"count": count, "seconds": seconds,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run(kind: str, root: Path | str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(root)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--quick", action="store_true", help="a small smoke run")
    options.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = (2_000, 10_000) if args.quick else (10_000, 100_000)
    print(f"{'records':>9} {'method':<8} {'seconds':>8} {'rec/s':>10} {'peak MB':>8} {'vs group':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            started = time.perf_counter()
            root = Path(run("build", f"{folder}:{size}")["root"])
            print(f"{size:>9} (case built by the pipeline in {time.perf_counter() - started:.1f} s)", flush=True)
            results: dict[str, list[dict]] = {"group": [], "show": [], "section": []}
            for _ in range(REPEATS):
                for kind in results:
                    results[kind].append(run(kind, root))
            best = {kind: min(runs, key=lambda result: result["seconds"]) for kind, runs in results.items()}
            for kind, result in best.items():
                assert result["count"] == (size + 1) // 2, (kind, result["count"])
                peak = max(each["peak_mb"] for each in results[kind])
                print(f"{size:>9} {kind:<8} {result['seconds']:>8.3f} {size / result['seconds']:>10,.0f} "
                      f"{peak:>8.1f} {result['seconds'] / best['group']['seconds']:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()

"""SMS backup throughput and memory, beside a bare `xml.etree.ElementTree.iterparse` pass.

    python bench/bench_sms.py            # 200,000 messages (and 50,000, to show memory is flat)
    python bench/bench_sms.py --quick    # 20,000 and 5,000: a smoke run
    python bench/bench_sms.py --parser-only   # bare and parse only, not the full ingest

Each measurement runs in a fresh subprocess that reports its own peak RSS, over the same
generated file (bare and parse three times each, interleaved, the fastest kept):
- bare:   ElementTree.iterparse, clearing each element (the reference)
- parse:  the `sms` parser doing its whole job (records, E.164, identities, metadata)
- ingest: `ingest.pipeline.run` into a new case (store, hashes, index, custody log)
Target: the parser at least 0.5x the bare pass; peak memory the same at both sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPEATS = 3
START_MS = 1704067200000   # 2024-01-01T00:00:00Z
BODIES = ["Where are you?", "I saw you at the station today. Nice coat.", "Answer your phone.",
          "Please stop contacting me.", "You can't ignore me forever \U0001F621", "ok",
          "I know you're home, the lights are on. I'll wait outside until you come down & talk to me."]


def generate(path: Path, count: int) -> None:
    """A realistic SMS Backup & Restore file: a few correspondents, every 20th message an MMS."""
    from xml.sax.saxutils import quoteattr

    with open(path, "w", encoding="utf-8") as out:
        out.write("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
                  f'<smses count="{count}" backup_set="bench" backup_date="{START_MS + count * 60000}" type="full">\n')
        for i in range(count):
            date = START_MS + i * 60000
            address = f"+44 7700 900{i % 37:03d}"
            body = quoteattr(BODIES[i % len(BODIES)] + f" #{i}")
            if i % 20 == 19:
                out.write(f'  <mms date="{date}" msg_box="1" address="{address}" m_id="m{i}@mmsc.example.org" sub="null" '
                          f'read="1" text_only="1" ct_t="application/vnd.wap.multipart.related" contact_name="Sam">\n'
                          f'    <parts><part seq="0" ct="text/plain" name="null" chset="106" text={body} /></parts>\n'
                          f'    <addrs><addr address="{address}" type="137" charset="106" /></addrs>\n  </mms>\n')
            else:
                out.write(f'  <sms protocol="0" address="{address}" date="{date}" type="{1 + i % 2}" subject="null" '
                          f'body={body} toa="null" sc_toa="null" service_center="null" read="1" status="-1" '
                          f'locked="0" date_sent="0" sub_id="1" readable_date="1 janv. 2024 00:00:00" '
                          f'contact_name="Sam Example" />\n')
        out.write("</smses>\n")


# --- what each subprocess runs (imports first, outside the timing) --------------------------
def measure_bare(path: str):
    import xml.etree.ElementTree as ET

    return lambda: bare_pass(ET, path)


def bare_pass(ET, path: str) -> int:
    count = 0
    context = ET.iterparse(path, events=("start", "end"))
    _, root = next(context)
    for event, element in context:
        if event == "end" and element.tag in ("sms", "mms"):
            count += 1
            root.clear()
    return count


def measure_parse(path: str):
    from datetime import datetime, timezone

    from adapters.phone.sms import SmsBackupParser
    from ingest.kit.phones import e164
    from ingest.model.records import Digest, Record, StoredOriginal

    class Context:
        region = "GB"

        def phone(self, raw):
            return e164(raw, "GB")

        def expect(self, *_):
            pass

        acquired = note = warn = expect

    stored = StoredOriginal(Digest("", "", 0), Path(path), path, Path(path).name, "text/xml", {},
                            datetime.now(timezone.utc))
    e164("+447700900000", "GB")    # phonenumbers loads its GB tables once, on first use: setup, not per message
    return lambda: sum(1 for item in SmsBackupParser().parse(stored, Context())
                       if isinstance(item, Record) and item.locator is not None)


def measure_ingest(path: str):
    from adapters.files import FilesSource
    from adapters.phone.sms import SmsBackupParser
    from ingest import pipeline
    from ingest.case import Case

    return lambda: ingest_pass(path, FilesSource, SmsBackupParser, pipeline, Case)


def ingest_pass(path: str, FilesSource, SmsBackupParser, pipeline, Case) -> int:
    # The case stays until the bench's folder is removed after every timing: deleting a large tree
    # is slow here and would be timed (and it slows what is created right after it).
    folder = tempfile.mkdtemp(dir=Path(path).parent)
    case = Case.init(Path(folder) / "case", name="bench", timezone="Europe/London", region="GB", operator="bench")
    try:
        summary = pipeline.run(case, FilesSource([Path(path)]), SmsBackupParser())
    finally:
        case.close()
    return summary.records - 1      # less the record of the backup file itself


def child(kind: str, path: str) -> None:
    import resource

    sys.path.insert(0, str(REPO))
    job = {"bare": measure_bare, "parse": measure_parse, "ingest": measure_ingest}[kind](path)
    started = time.perf_counter()
    count = job()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"count": count, "seconds": seconds, "peak_mb": peak_mb}))


def run(kind: str, path: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--quick", action="store_true", help="a small smoke run")
    options.add_argument("--parser-only", action="store_true",
                         help="the parser beside the bare pass, not the full ingest")
    options.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = (5_000, 20_000) if args.quick else (50_000, 200_000)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{'messages':>9} {'method':<7} {'seconds':>8} {'msg/s':>9} {'peak MB':>8} {'vs bare':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            path = Path(folder) / f"sms-{size}.xml"
            generate(path, size)
            # bare and parse are cheap: run each REPEATS times, interleaved, and keep the best
            # (the machine is shared; the minimum is the least disturbed run)
            results = {"bare": [], "parse": []}
            for _ in range(REPEATS):
                for kind in results:
                    results[kind].append(run(kind, path))
            if not args.parser_only:
                results["ingest"] = [run("ingest", path) for _ in range(2)]
            best = {kind: min(runs, key=lambda result: result["seconds"]) for kind, runs in results.items()}
            for kind, result in best.items():
                assert result["count"] == size, (kind, result["count"], size)
                peak = max(each["peak_mb"] for each in results[kind])
                print(f"{size:>9} {kind:<7} {result['seconds']:>8.2f} {size / result['seconds']:>9,.0f} "
                      f"{peak:>8.1f} {best['bare']['seconds'] / result['seconds']:>7.2f}x", flush=True)
            print(f"{'':>9} file size {path.stat().st_size / 1e6:.1f} MB; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Hand-off benchmark: `timeline --format json`, `report` and `export` on generated cases.

A case of 10,000 and one of 100,000 records (--quick: 1,000 and 10,000) is generated
through the real pipeline with a trivial source and parser (one small original per ten
records: nine messages of mixed kinds and the original's own record). Each command
is timed with its peak memory; the target is linear time and flat memory. Beside each
figure, a reference measured in the same run:
  - timeline: a bare Python loop that reads every record body from SQLite in time
    order and writes it out (the floor for streaming the same JSON);
  - report: the timeline of the same case (the report is the same stream, rendered);
  - export: `cp -r` of the object store plus `bagit.py` bagging that copy with
    SHA-256 and SHA-512 (copying and checksumming the same bytes, without records).

Run: .venv/bin/python bench/bench_handoff.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import INGEST, VENV_BIN, cpu_note, row, timed  # noqa: E402

from ingest.kit.adapter import Parser, Source  # noqa: E402
from ingest.case import Case  # noqa: E402
from ingest.pipeline import run  # noqa: E402
from ingest.model.records import Original, Record  # noqa: E402

PER_ORIGINAL = 9
KINDS = ("sms", "whatsapp", "call", "email", "sms", "whatsapp", "screenshot", "note", "sms")
START = datetime(2023, 1, 2, tzinfo=timezone.utc)
BARE_TIMELINE = ("import sqlite3, sys\n"
                 "db = sqlite3.connect(f'file:{sys.argv[1]}/index.sqlite?mode=ro', uri=True)\n"
                 "out = sys.stdout\nout.write('[')\n"
                 "for n, (body,) in enumerate(db.execute('SELECT body FROM records WHERE superseded_by IS NULL "
                 "ORDER BY sort_time, rowid')):\n"
                 "    out.write(',\\n' if n else '\\n'); out.write(body)\nout.write(']\\n')\n")


class GeneratedSource(Source):
    """Small chat-like originals: one line per message, `epoch|number|text`."""

    name = "bench"

    def __init__(self, originals: int):
        super().__init__()
        self.count = originals

    def originals(self, ctx):
        rng = random.Random(7)
        for number in range(self.count):
            lines = []
            for line in range(PER_ORIGINAL):
                # incidents become more frequent over the year: escalation the chart should show
                moment = START + timedelta(days=365 * (number / self.count) ** 0.5, minutes=line * 7)
                lines.append(f"{int(moment.timestamp())}|+4477009{rng.randrange(100, 999)}|"
                             f"Message {number}.{line}: {'I know where you are ' * rng.randrange(1, 6)}")
            yield Original(stream=io.BytesIO("\n".join(lines).encode()), source_key=f"bench://chat/{number}",
                           filename=f"chat-{number:06d}.txt")


class GeneratedParser(Parser):
    name = "bench"
    version = "1"

    def parse(self, stored, ctx):
        with stored.open() as handle:
            for number, line in enumerate(handle, 1):
                epoch, sender, text = line.decode().rstrip("\n").split("|", 2)
                yield Record(kind=KINDS[number - 1], locator=f"line {number}",
                             occurred_at=datetime.fromtimestamp(int(epoch), timezone.utc),
                             occurred_at_source="bench:epoch", occurred_at_raw=epoch, direction="incoming",
                             from_=[sender], to=["me"], text=text)
        yield Record(kind="file")


def make_case(root: Path, records: int) -> float:
    start = time.perf_counter()
    case = Case.init(root, name=f"Bench {records}", operator="bench")
    try:
        summary = run(case, GeneratedSource(records // (PER_ORIGINAL + 1)), GeneratedParser())
    finally:
        case.close()
    assert summary.records == records, summary.records
    return time.perf_counter() - start


def measure(work: Path, records: int) -> dict:
    root = work / f"case-{records}"
    made = make_case(root, records)
    print(f"\n{records:,} records ({records // (PER_ORIGINAL + 1):,} originals), generated in {made:.1f} s")
    figures = {}
    figures["bare"] = timed(f"{sys.executable} -c \"{BARE_TIMELINE}\" {root} > /dev/null", shell=True)
    figures["timeline"] = timed(f"{INGEST} --case {root} timeline --format json > /dev/null", shell=True)
    figures["report"] = timed([INGEST, "--case", str(root), "report", "--out", str(work / f"report-{records}.html")])
    copy = work / f"copy-{records}"
    figures["bagit"] = timed(f"cp -r {root}/objects {copy} && {VENV_BIN}/bagit.py --quiet --sha256 --sha512 {copy}",
                             shell=True)
    figures["export"] = timed([INGEST, "--case", str(root), "export", "--out", str(work / f"bundle-{records}")])
    row("timeline --format json", *_pair(figures["timeline"], figures["bare"]), extra=_mem(figures, "timeline"))
    row("  reference: bare SQLite body dump", figures["bare"][0], extra=_mem(figures, "bare"))
    row("report", *_pair(figures["report"], figures["timeline"]), extra=_mem(figures, "report"))
    row("export (directory bundle)", *_pair(figures["export"], figures["bagit"]), extra=_mem(figures, "export"))
    row("  reference: cp -r objects + bagit.py sha256+sha512", figures["bagit"][0], extra=_mem(figures, "bagit"))
    print(f"  report size {(work / f'report-{records}.html').stat().st_size / 2**20:.1f} MiB")
    for path in (root, copy, work / f"bundle-{records}"):
        shutil.rmtree(path, ignore_errors=True)
    return figures


def _pair(figure, reference):
    return figure[0], reference[0]


def _mem(figures, key) -> str:
    return f"peak {figures[key][1]} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 records instead of 10,000 and 100,000")
    args = parser.parse_args()
    small, large = (1_000, 10_000) if args.quick else (10_000, 100_000)
    print(f"Hand-off benchmark ({cpu_note()}); ratio = figure / reference in the same run")
    with tempfile.TemporaryDirectory(prefix="bench-handoff-") as scratch:
        work = Path(scratch)
        low = measure(work, small)
        high = measure(work, large)
    print(f"\nGrowth from {small:,} to {large:,} records ({large // small}x more; linear = {large // small}x time, "
          "flat memory):")
    for key, label in (("timeline", "timeline --format json"), ("report", "report"), ("export", "export")):
        print(f"  {label:<24} time x{high[key][0] / low[key][0]:5.1f}   peak memory {low[key][1]} -> "
              f"{high[key][1]} MiB (x{high[key][1] / max(low[key][1], 1):.2f})")


if __name__ == "__main__":
    main()

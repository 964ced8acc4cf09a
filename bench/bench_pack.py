"""Export with the officer's pack and report.pdf, beside the same export without the PDF.

    .venv/bin/python bench/bench_pack.py [10000 100000]

For each size, a case holding one SMS backup of N messages is exported twice in the same
run, interleaved: with report.pdf (printed by headless Chromium in parts of at most 5,000
rows, see ingest.features.pdf) and with --no-pdf (the reference). Each export runs in a fresh
process that reports its own peak memory and, apart, the peak of the largest process it
started (Chromium's), so the export's own memory can be seen to stay flat while the PDF's
layout lives in Chromium. It also prints the PDF's page count and size, and the bundle's size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import INGEST, cpu_note, drop_case, new_case  # noqa: E402

EXPORT = """
import json, resource, sys
from pathlib import Path
from ingest.case import Case
from ingest.features.export import export_bundle
with Case.open(Path(sys.argv[1])) as case:
    result = export_bundle(case, Path(sys.argv[2]), pdf=sys.argv[3] == "pdf")
print(json.dumps({"records": result.records,
                  "self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "child_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024}))
"""


def sms_backup(path: Path, count: int) -> None:
    start = 1704067200000
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"<?xml version='1.0' encoding='UTF-8'?>\n<smses count=\"{count}\">\n")
        for n in range(count):
            out.write(f'  <sms protocol="0" address="07700 900{n % 50:03d}" date="{start + n * 60_000}" '
                      f'type="{1 + n % 2}" body="Message {n}: I know where you are, answer me" read="1" />\n')
        out.write("</smses>\n")


def export(case: Path, out: Path, mode: str) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", EXPORT, str(case), str(out), mode], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"export failed: {done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout.strip().splitlines()[-1])


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / (1 << 20)


def main(sizes: list[int]) -> None:
    print(f"bench_pack: export with report.pdf vs the same export with --no-pdf ({cpu_note()})")
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as scratch:
        root = Path(scratch)
        for run, count in enumerate(sizes):      # a size may be given twice, to measure it again
            case = root / f"case{run}-{count}"
            new_case(case)
            source = root / f"sms{run}-{count}"
            source.mkdir()
            sms_backup(source / "sms.xml", count)
            subprocess.run([INGEST, "--case", str(case), "run", "--source", "sms", str(source)], check=True,
                           stdout=subprocess.DEVNULL)
            print(f"\n{count} SMS records")
            for mode in ("no-pdf", "pdf"):
                out = root / f"bundle{run}-{count}-{mode}"
                seconds, figures = export(case, out, mode)
                extra = ""
                if mode == "pdf":
                    pdf = out / "data" / "report.pdf"
                    extra = (f"  {pages(pdf)} pages ({pdf.stat().st_size / (1 << 20):.1f} MiB), "
                             f"Chromium peak {figures['child_mib']} MiB")
                print(f"  export {mode:<7} {seconds:8.1f} s   export's own peak {figures['self_mib']:5d} MiB   "
                      f"bundle {size_mib(out):7.1f} MiB{extra}  (load {os.getloadavg()[0]:.2f})")
                drop_case(out)
            drop_case(case)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10_000, 100_000])

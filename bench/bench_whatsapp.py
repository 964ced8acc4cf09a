"""WhatsApp export: lines per second and peak memory, ingest's full job beside whatstk's parser.

    .venv/bin/python bench/bench_whatsapp.py [--quick] [--lines N] [--parser-only]

Generates an Android export (multi-line messages, system lines, phone-number senders),
then in separate processes, on the same file, in the same run:
  - whatstk `df_from_whatsapp` (parse only, into a pandas DataFrame; the reference);
  - ingest's whatsapp parser alone (the same job: every line read into records, nothing kept);
    these two three times each, interleaved, the fastest of each kept (the machine is shared);
  - `ingest run --source whatsapp` as a library call: hash, store, parse, index, log;
  - ingest again on a file a tenth the size, to show memory does not grow with the export.
Every time includes the process's imports (whatstk's pandas, ingest's modules), as a user would wait.
whatstk is in the `bench` extra (`.venv/bin/python -m pip install -e '.[bench]'`), never a dependency.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

NAMES = ["Sam Taylor", "Alex Morgan", "+44 7700 900123", "Priya Shah", "Jordan Pike"]
WORDS = ("please stop messaging me I know where you live saw you at the station tonight answer "
         "why did you block me we need to talk it is not over you cannot ignore me forever").split()

REPEATS = 3
WORKER = r"""
import json, resource, sys, time
mode, path, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
if mode == "whatstk":
    from whatstk.whatsapp.parser import df_from_whatsapp
    frame = df_from_whatsapp(path, hformat="%d/%m/%Y, %H:%M - %name:", max_size=None)
    items = len(frame)
elif mode == "parse":      # the parser alone on the file, nothing stored: the same job whatstk does
    from datetime import datetime, timezone
    from pathlib import Path
    from adapters.whatsapp.parser import WhatsAppParser
    from ingest.kit.phones import e164
    from ingest.model.records import Digest, StoredOriginal
    from ingest.model.times import localize

    class Context:           # what the parser asks of a run: the case's zone and region, and a place to say things
        region, timezone = "GB", "Europe/London"

        def phone(self, raw):
            return e164(raw, self.region)

        def localize(self, naive):
            return localize(naive, self.timezone)

        def note(self, text):
            pass

    stored = StoredOriginal(digest=Digest("0" * 64, "0" * 64, 0), path=Path(path), source_key=path,
                            filename=Path(path).name, media_type="text/plain", source_meta={},
                            acquired_at=datetime.now(timezone.utc))
    items = sum(1 for _ in WhatsAppParser().parse(stored, Context()))
else:
    from pathlib import Path
    from adapters.files import FilesSource
    from adapters.whatsapp.parser import WhatsAppParser
    from ingest import pipeline
    from ingest.case import Case
    case = Case.init(Path(workdir) / "case", timezone="Europe/London", region="GB", operator="bench")
    summary = pipeline.run(case, FilesSource([Path(path)]), WhatsAppParser())
    items = summary.records
    case.close()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "items": items,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, lines: int, seed: int = 7) -> int:
    """An Android dd/mm/yyyy 24h export of exactly `lines` lines; returns the message count."""
    rng = random.Random(seed)
    moment = datetime(2023, 1, 13, 8, 0)
    written = messages = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(f"{moment:%d/%m/%Y, %H:%M} - Messages and calls are end-to-end encrypted. No one outside of this "
                  "chat, not even WhatsApp, can read or listen to them. Tap to learn more.\n")
        written = messages = 1
        while written < lines:
            moment += timedelta(seconds=rng.randint(5, 400))
            stamp = f"{moment:%d/%m/%Y, %H:%M}"
            roll = rng.random()
            if roll < 0.02:
                out.write(f"{stamp} - {rng.choice(NAMES)} changed the group description\n")
                written += 1
            else:
                body = " ".join(rng.choices(WORDS, k=rng.randint(2, 14)))
                if roll < 0.05:
                    body = "<Media omitted>"
                out.write(f"{stamp} - {rng.choice(NAMES)}: {body}\n")
                written += 1
                if roll > 0.9:            # a multi-line message
                    for _ in range(min(rng.randint(1, 3), lines - written)):
                        out.write(" ".join(rng.choices(WORDS, k=rng.randint(1, 9))) + "\n")
                        written += 1
            messages += 1
    return messages


def measure(mode: str, path: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-wa-") as workdir:
        done = subprocess.run([sys.executable, "-c", WORKER, mode, str(path), workdir], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20,000-line smoke run")
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--parser-only", action="store_true", help="only the parser beside whatstk, not the full job")
    args = parser.parse_args()
    if importlib.util.find_spec("whatstk") is None:
        raise SystemExit("This benchmark measures ingest beside whatstk, which is not installed. Install it with: "
                         ".venv/bin/python -m pip install -e '.[bench]'")
    lines = 20_000 if args.quick else args.lines
    with tempfile.TemporaryDirectory(prefix="bench-wa-data-") as folder:
        big, small = Path(folder) / "WhatsApp Chat with Sam Taylor.txt", Path(folder) / "WhatsApp Chat with Kim.txt"
        messages = generate(big, lines)
        generate(small, lines // 10)
        size = big.stat().st_size
        print(f"export: {lines:,} lines, {messages:,} messages, {size / 1e6:.1f} MB; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
        runs: dict[str, list[dict]] = {"whatstk": [], "parse": []}
        for _ in range(REPEATS):
            for mode in runs:
                runs[mode].append(measure(mode, big))
        reference, parse_only = (min(runs[mode], key=lambda figures: figures["seconds"]) for mode in runs)
        rows = [("whatstk df_from_whatsapp (parse only)", reference),
                ("ingest whatsapp parser alone (parse only, nothing kept)", parse_only)]
        if not args.parser_only:
            ours = measure("ingest", big)
            tenth = measure("ingest", small)
            rows.append(("ingest run --source whatsapp (hash, store, parse, index, log)", ours))
    for label, figures in rows:
        print(f"{label:64s} {figures['seconds']:7.2f} s  {lines / figures['seconds']:>10,.0f} lines/s  "
              f"peak {figures['peak_mib']:6.0f} MiB  ({figures['items']:,} records)")
    print(f"each the fastest of {REPEATS}: whatstk " + ", ".join(f"{each['seconds']:.2f}" for each in runs["whatstk"])
          + " s; parser " + ", ".join(f"{each['seconds']:.2f}" for each in runs["parse"]) + " s")
    print(f"speed, parser alone / whatstk: {reference['seconds'] / parse_only['seconds']:.2f}x "
          f"(load average {os.getloadavg()[0]:.2f} at the end)")
    if args.parser_only:
        return
    print(f"speed, full job / whatstk: {reference['seconds'] / ours['seconds']:.2f}x")
    print(f"peak memory, ingest / whatstk: {ours['peak_mib'] / reference['peak_mib']:.2f}x")
    print(f"memory flatness: ingest peak {tenth['peak_mib']:.0f} MiB at {lines // 10:,} lines, "
          f"{ours['peak_mib']:.0f} MiB at {lines:,} lines "
          f"({ours['peak_mib'] / tenth['peak_mib']:.2f}x for 10x the lines)")


if __name__ == "__main__":
    main()

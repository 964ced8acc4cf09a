"""The longer fuzz run: every registered parser fed its sample with one byte changed, many times.

The same promise as tests/test_fuzz.py (no exception escapes `parser.parse`; at most one
record or child lost against the unmutated file, where the format allows such a bound),
on random examples (seeded, so a run can be repeated) or on a sweep of every position
with a few telling byte values. Each failure is printed with what reproduces it.

    .venv/bin/python bench/fuzz_parsers.py --examples 20000          # per sample
    .venv/bin/python bench/fuzz_parsers.py --sweep --parser sms       # every byte of the sample
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzz_helpers import SAMPLES, items, mutated  # noqa: E402

# NUL, a control byte, space, newline, quote, comma, colon, '<', '>', 'A', '-', 0x8f, 0xff
SWEEP_VALUES = (0x00, 0x01, 0x20, 0x0A, 0x22, 0x2C, 0x3A, 0x3C, 0x3E, 0x41, 0x2D, 0x8F, 0xFF)


def mutations(size: int, examples: int | None, seed: int):
    if examples is None:
        return ((position, value) for position in range(size) for value in SWEEP_VALUES)
    rng = random.Random(seed)
    return ((rng.randrange(size), rng.randrange(256)) for _ in range(examples))


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--examples", type=int, default=2000, help="random mutations per sample")
    options.add_argument("--sweep", action="store_true", help="every position, a few values each")
    options.add_argument("--parser", action="append", help="only these parsers (repeatable)")
    options.add_argument("--seed", type=int, default=11)
    options.add_argument("--show", type=int, default=5, help="failures printed per sample")
    args = options.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ingest-fuzz-") as folder:
        for sample in SAMPLES:
            if args.parser and sample.parser not in args.parser:
                continue
            data = sample.data()
            path = Path(folder) / sample.name
            path.write_bytes(data)
            baseline = items(sample.parser, path, sample.name)
            crashes, losses, runs = [], [], 0
            start = time.perf_counter()
            for position, value in mutations(len(data), None if args.sweep else args.examples, args.seed):
                if data[position] == value:
                    continue
                runs += 1
                path.write_bytes(mutated(data, position, value))
                try:
                    found = items(sample.parser, path, sample.name)
                except Exception:
                    crashes.append((position, value, traceback.format_exc(limit=-3)))
                    continue
                if sample.loss_bound is not None and baseline - found > sample.loss_bound:
                    losses.append((position, value, found))
            elapsed = time.perf_counter() - start
            print(f"{sample.parser:9} {sample.name:36} {runs:7} mutations in {elapsed:6.1f} s: "
                  f"{len(crashes)} exceptions, {len(losses)} lost more than {sample.loss_bound} of {baseline}")
            for position, value, trace in crashes[:args.show]:
                print(f"    byte {position} -> {value:#04x} raised:\n      " + trace.strip().replace("\n", "\n      "))
            for position, value, found in losses[:args.show]:
                print(f"    byte {position} -> {value:#04x} ({data[position:position + 1]!r} was there): "
                      f"{found} of {baseline} items")
            failed += bool(crashes or losses)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

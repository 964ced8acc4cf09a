"""One mail message with a 1 GiB attachment: peak memory and time of `ingest run --source mbox`.

The attachment is streamed from the stored message into the store (see adapters/_mailparts.py),
so peak memory must stay under 600 MB whatever the size. Printed beside references
measured in the same run:

- `cp` of the same mbox + `sync`: the floor of any tool that writes its bytes once
  (ingest writes them three times: the mbox, the message inside it, the decoded attachment);
- the standard library holding the message whole (`email` compat32 + decoding the
  attachment) on a smaller message (--reference-size), which is how ingest read mail
  before: its peak grows with the message.

    .venv/bin/python bench/bench_big_mail.py                      # 1 GiB attachment
    .venv/bin/python bench/bench_big_mail.py --size 200000000     # quicker
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from common import INGEST, cpu_note, new_case, timed  # noqa: E402
from email_helpers import write_big_message  # noqa: E402

STDLIB_HOLDING = ("import email, email.policy, sys; message = email.message_from_binary_file(open(sys.argv[1], 'rb'), "
                  "policy=email.policy.compat32); [part.get_payload(decode=True) for part in message.walk() "
                  "if not part.is_multipart()]")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--size", type=int, default=1 << 30, help="attachment bytes (default 1 GiB)")
    options.add_argument("--reference-size", type=int, default=100_000_000,
                         help="attachment bytes for the standard-library reference (default 100 MB)")
    args = options.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingest-bench-bigmail-") as folder:
        root = Path(folder)
        mbox, small = root / "one-message.mbox", root / "reference.mbox"
        write_big_message(mbox, args.size)
        write_big_message(small, args.reference_size)
        size_mb = mbox.stat().st_size / 1e6
        print(f"one message, {args.size / 2**30:.2f} GiB attachment, mbox {size_mb:.0f} MB ({cpu_note()})")
        subprocess.run(["cat", str(mbox)], stdout=subprocess.DEVNULL, check=True)     # warm the page cache
        copy = root / "copy.mbox"
        floor, floor_peak = timed(f"cp '{mbox}' '{copy}' && sync", shell=True)
        copy.unlink()
        case = root / "case"
        new_case(case)
        subprocess.run(["sync"], check=True)
        subprocess.run(["cat", str(mbox)], stdout=subprocess.DEVNULL, check=True)
        seconds, peak = timed([INGEST, "--case", str(case), "run", "--source", "mbox", str(mbox)])
        held, held_peak = timed([sys.executable, "-c", STDLIB_HOLDING, str(small)])
        small_mb = small.stat().st_size / 1e6
        print(f"  ingest run --source mbox            {seconds:7.1f} s   peak {peak:6d} MiB "
              f"({seconds / floor:.1f}x the cp+sync time; target peak < 600 MB)")
        print(f"  cp + sync (reference, same file)    {floor:7.1f} s   peak {floor_peak:6d} MiB")
        print(f"  stdlib email holding a {small_mb:.0f} MB message {held:5.1f} s   peak {held_peak:6d} MiB "
              f"({held_peak / small_mb:.1f} MiB per MB of message: what holding it whole costs)")


if __name__ == "__main__":
    main()

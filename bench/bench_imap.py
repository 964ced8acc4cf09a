"""IMAP ingest speed and memory against a local Dovecot over TLS, beside two references
measured in the same run on the same mailbox:

- mbsync (Debian's isync) pulling the mailbox into a Maildir (the target: ingest is faster);
- a bare imapclient loop fetching BODY.PEEK[] in batches of 200 and discarding (the ceiling:
  ingest should reach at least 0.3x of it).

Peak memory (max RSS of the `ingest run` process) is measured for 1,000 and for N messages:
it should be flat. The three are interleaved for --rounds rounds (the machine is shared) and
the best of each is kept; each round prints the load average, and ingest's CPU time (its
own, its fetching thread's and its parsing worker's) beside its wall time. Without mbsync
installed, the run says so and measures the rest.

    /work/main/.venv/bin/python bench/bench_imap.py            # 5,000 messages
    /work/main/.venv/bin/python bench/bench_imap.py --quick    # 300, a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from common import children_cpu, peak_kib, timed_call as timed  # noqa: E402
from email_helpers import message  # noqa: E402
from imap_server import Dovecot  # noqa: E402
from imapclient import IMAPClient  # noqa: E402

INGEST = str(Path(sys.executable).with_name("ingest"))


def bare_loop(server: Dovecot, user) -> int:
    context = ssl.create_default_context(cafile=str(server.cert))
    client = IMAPClient("127.0.0.1", port=server.port, ssl=True, ssl_context=context)
    client.login(user.name, user.password)
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")
    count = 0
    for start in range(0, len(uids), 200):
        count += len(client.fetch(uids[start:start + 200], ["BODY.PEEK[]"]))
    client.logout()
    return count


def mbsync(server: Dovecot, user, work: Path, name: str) -> int:
    # a new folder each round: deleting the last one just before would slow every file made after
    target = work / f"mbsync-maildir-{name}"
    target.mkdir(parents=True)
    config = work / f"mbsyncrc-{name}"
    config.write_text(f"""IMAPAccount bench
Host 127.0.0.1
Port {server.port}
User {user.name}
Pass {user.password}
SSLType IMAPS
CertificateFile {server.cert}

IMAPStore remote
Account bench

MaildirStore local
Path {target}/
Inbox {target}/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Sync Pull
Create Near
SyncState *
""")
    subprocess.run(["mbsync", "-c", str(config), "-q", "bench"], check=True, cwd=work)
    return sum(1 for _ in (target / "INBOX" / "cur").iterdir()) + sum(1 for _ in (target / "INBOX" / "new").iterdir())


def ingest_run(server: Dovecot, user, work: Path, name: str) -> tuple[int, int]:
    """Run `ingest run --source imap` as its own process: (messages kept, peak RSS in KiB)."""
    case = work / f"case-{name}"     # a new case each round, nothing deleted just before (see mbsync)
    subprocess.run([INGEST, "init", str(case)], check=True, capture_output=True)
    env = dict(os.environ, BENCH_PASSWORD=user.password)
    rss_file = work / "rss"
    process = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", str(rss_file),
                                INGEST, "--case", str(case), "run", "--source", "imap", "--host", "127.0.0.1",
                                "--port", str(server.port), "--user", user.name, "--password-env", "BENCH_PASSWORD",
                                "--ca-file", str(server.cert), "--json"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"ingest failed: {err.decode()}")
    summary = json.loads(out)
    return summary["acquired"]["INBOX"], peak_kib(rss_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 messages, a smoke run")
    parser.add_argument("-n", type=int, default=5000, help="messages in the big mailbox (default 5000)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds, the best kept (default 2)")
    args = parser.parse_args()
    count = 300 if args.quick else args.n
    small = min(1000, count)
    have_mbsync = shutil.which("mbsync") is not None
    if not have_mbsync:
        print("mbsync is not installed (apt-get install isync): this run has no mbsync figure, only the others")
    work = Path(tempfile.mkdtemp(prefix="bench-imap-"))
    bare_s = mbsync_s = ingest_s = ingest_cpu = float("inf")
    with Dovecot() as server:
        big_user, small_user = server.add_user("big"), server.add_user("small")
        mails = [message(i) for i in range(count)]
        server.add_messages(big_user, mails)
        server.add_messages(small_user, mails[:small])
        size = sum(map(len, mails))
        print(f"{count} messages, {size / 1e6:.1f} MB, Dovecot over TLS on 127.0.0.1 (2 cores, shared machine)")
        bare_loop(server, big_user)             # Dovecot indexes the folder and the page cache warms
        bare_loop(server, small_user)

        for round_number in range(1, args.rounds + 1):
            fetched, seconds = timed(bare_loop, server, big_user)
            bare_s = min(bare_s, seconds)
            line = f"  round {round_number}: bare loop {count / seconds:6.0f} msg/s"
            if have_mbsync:
                synced, seconds = timed(mbsync, server, big_user, work, str(round_number))
                mbsync_s = min(mbsync_s, seconds)
                assert synced == count, synced
                line += f", mbsync {count / seconds:6.0f} msg/s"
            cpu_before = children_cpu()
            (kept, peak_big), seconds = timed(ingest_run, server, big_user, work, f"big-{round_number}")
            ingest_cpu = min(ingest_cpu, children_cpu() - cpu_before)   # `init` is small beside it
            ingest_s = min(ingest_s, seconds)
            assert fetched == kept == count, (fetched, kept)
            print(f"{line}, ingest {count / seconds:6.0f} msg/s (load average {os.getloadavg()[0]:.2f})")
        (kept_small, peak_small), _ = timed(ingest_run, server, small_user, work, "small")
        assert kept_small == small, kept_small

    rate = count / ingest_s
    print(f"bare imapclient BODY.PEEK[] loop : {count / bare_s:8.0f} msg/s  ({bare_s:.2f} s)")
    if have_mbsync:
        print(f"mbsync to a Maildir              : {count / mbsync_s:8.0f} msg/s  ({mbsync_s:.2f} s)")
    print(f"ingest run --source imap         : {rate:8.0f} msg/s  ({ingest_s:.2f} s, whole process incl. start; "
          f"CPU {ingest_cpu:.2f} s)")
    if have_mbsync:
        print(f"  ingest / mbsync                : {rate / (count / mbsync_s):8.2f}x  (target > 1)")
    print(f"  ingest / bare loop             : {rate / (count / bare_s):8.2f}x  (target >= 0.3)")
    print(f"peak memory of ingest: {peak_small / 1024:.0f} MiB at {small} messages, "
          f"{peak_big / 1024:.0f} MiB at {count} ({peak_big / peak_small:.2f}x)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

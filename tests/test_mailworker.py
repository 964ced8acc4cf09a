"""Email parsing in a worker process (`EmailParser.prefetch`): the same items, notes and
errors as parsing in the main process, and a worker that dies only means parsing here."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters import _mailworker
from adapters.email import EmailParser
from email_helpers import message
from ingest.model.records import Child
from parser_helpers import ParseContext, stored

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(_mailworker._workers() < 1, reason="one core: nothing is parsed apart")

NO_ZONE = b"From: a@example.com\nSubject: no zone\nDate: Fri, 1 Mar 2024 21:41:05\n\nwhen?\n"
DELIVERING = b"From: a@example.com\nSubject: still coming\nDate: Fri, 1 Mar 2024 21:41:05 +0000\n\nhi\n"
BROKEN = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n" + b"--b\nContent-Type: multipart/mixed; boundary=b\n\n" * 3000


def shown(items) -> list[str]:
    return [json.dumps({"type": type(item).__name__, **dataclasses.asdict(
        dataclasses.replace(item, open=None) if isinstance(item, Child) else item)}, sort_keys=True, default=str)
            for item in items]


def read(parser: EmailParser, original, ctx) -> list[str]:
    items = []
    try:
        for item in parser.parse(original, ctx):
            items.append(item)
    except Exception as error:   # as the pipeline says it: "parser stopped: <type>: <message>"
        return shown(items) + [f"{type(error).__name__}: {error}"]
    return shown(items)


@pytest.fixture
def originals(tmp_path):
    _mailworker.pool(now=True)       # the workers start after a few messages; here, every message goes to them
    paths = []
    for index in range(12):
        path = tmp_path / "mail" / f"{index}.eml"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(message(index))
        paths.append(path)
    for name, data in (("nozone.eml", NO_ZONE), ("broken.eml", BROKEN)):
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    tmp = tmp_path / "Maildir" / "tmp" / "1709329265.M1P2.host"
    tmp.parent.mkdir(parents=True)
    tmp.write_bytes(DELIVERING)
    return [stored(path) for path in paths] + [stored(tmp, source_meta={"path": "Maildir/tmp/1709329265.M1P2.host"})]


def test_a_message_parsed_apart_gives_exactly_what_parsing_here_gives(originals):
    here, apart = EmailParser(), EmailParser()
    here_ctx, apart_ctx = ParseContext(), ParseContext()
    apart_ctx.timezone = here_ctx.timezone = "America/New_York"     # a zone-less Date is read in the case's zone
    for original in originals:
        apart.prefetch(original, apart_ctx)
    assert len(apart._apart.jobs) == len(originals)
    for original in originals:
        assert read(apart, original, apart_ctx) == read(here, original, here_ctx), original.filename
    assert not apart._apart.jobs
    assert apart_ctx.notes == here_ctx.notes and any("tmp/" in note for note in here_ctx.notes)
    assert any("2024-03-01 21:41:05-05:00" in line for line in read(here, originals[12], here_ctx))


def test_a_worker_that_dies_means_the_message_is_parsed_here(originals):
    here, apart = EmailParser(), EmailParser()
    apart.prefetch(originals[0], ParseContext())
    assert read(apart, originals[0], ParseContext()) == read(here, originals[0], ParseContext())
    killed = _mailworker.pool()
    for process in list(killed._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
    for original in originals[1:]:          # each read right, by the dead pool's fallback or a new pool
        _mailworker.pool(now=True)
        apart.prefetch(original, ParseContext())
        assert read(apart, original, ParseContext()) == read(here, original, ParseContext())
    assert _mailworker.pool() not in (None, killed)      # a new pool took over


def test_workers_end_with_a_run_killed_with_sigkill(tmp_path):
    # a worker waits for work on a pipe it holds both ends of: without a watch it would outlive the run
    script = tmp_path / "killed.py"
    script.write_text("import os, signal\n"
                      "from adapters import _mailworker\n"
                      "if __name__ == '__main__':\n"
                      "    workers = _mailworker.pool(now=True)\n"
                      "    print(' '.join(str(pid) for pid in workers._processes), flush=True)\n"
                      "    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == -signal.SIGKILL
    pids = [int(pid) for pid in done.stdout.split()]
    assert pids
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]


def alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)     # not ours: raises; a zombie of ours would be reaped
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False

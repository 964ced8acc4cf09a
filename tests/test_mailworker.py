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
    for pid in killed.pids:
        os.kill(pid, signal.SIGKILL)
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
                      "    print(' '.join(str(pid) for pid in workers.pids), flush=True)\n"
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


def test_a_worker_killed_in_the_middle_of_a_mailbox_loses_and_doubles_nothing(tmp_path, monkeypatch):
    """The worker is killed with SIGKILL after it answered ten messages, with more sent to it: those
    are read here (or by a new worker), and the case is the one a run without any worker makes."""
    from conftest import Ingest
    from email_helpers import mbox
    from ingest.case import Case

    box = tmp_path / "in" / "mail.mbox"
    box.parent.mkdir()
    box.write_bytes(mbox([message(index) for index in range(60)]))
    take, answered, killed = _mailworker.Apart.take, [], []

    def take_then_kill(self, original):
        done = take(self, original)
        answered.append(done is not None)
        if sum(answered) == 10 and not killed:
            killed.extend(_mailworker.pool().pids)
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        return done

    found = {}
    workers = _mailworker.pool
    for name in ("killed", "here"):
        monkeypatch.setattr(_mailworker.Apart, "take", take_then_kill if name == "killed" else take)
        monkeypatch.setattr(_mailworker, "pool", workers if name == "killed" else lambda now=False: None)
        root = tmp_path / name
        Case.init(root, name="t", timezone="Europe/London", region="GB", operator="Tester").close()
        ingest = Ingest(root)
        result = ingest("run", "--source", "mbox", box, "--json")
        assert result.exit_code == 0, result.output
        records = sorted((record["id"], json.dumps({key: value for key, value in record.items() if key != "acquired_at"},
                                                   sort_keys=True)) for record in ingest.json("list", "--json"))
        assert len(records) == len({rid for rid, _body in records})       # no record twice
        found[name] = (json.loads(result.stdout), records)
        assert ingest("verify").exit_code == 0
    assert killed and sum(answered) >= 10
    assert answered.count(False) > 0        # some were read here once the worker was gone
    assert found["killed"] == found["here"]
    assert found["here"][0]["records"] == len(found["here"][1]) == 60 + 1 + 15     # messages, the mbox, photos

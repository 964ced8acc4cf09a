"""A large original parsed in a worker process (ingest/apart.py) gives exactly what a parse here
gives, and whatever goes wrong with the worker (killed, an item that cannot travel, a question
only the main process can answer, the parser's own error) loses and doubles nothing."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import ingest.pipeline
from adapters.phone.sms import SmsBackupParser
from adapters.whatsapp.parser import WhatsAppParser
from ingest import apart
from ingest.case import Case
from ingest.model.records import Child, Digest, Record, StoredOriginal
from ingest.recordrows import BuiltRecord
from phone_helpers import PNG_B64, sms, write_backup
from conftest import Ingest
from test_mailworker import REPO, alive

MARCH_1 = 1709329265000


def backup(path: Path, count: int = 300) -> Path:
    """Messages, an MMS with a photo every 50th, one damaged element, one without a time."""
    elements = []
    for number in range(count):
        if number % 50 == 49:
            elements.append(f'  <mms date="{MARCH_1 + number * 1000}" msg_box="1" address="+447700900123" '
                            'ct_t="application/vnd.wap.multipart.related" contact_name="Jamie Doe">\n'
                            f'    <parts><part seq="0" ct="image/png" name="null" chset="null" cl="p{number}.png" '
                            f'text="null" data="{PNG_B64}" /></parts>\n'
                            '    <addrs><addr address="+447700900123" type="137" charset="106" /></addrs>\n  </mms>\n')
        else:
            elements.append(sms(MARCH_1 + number * 1000, body=f"message {number} \U0001F621 &amp; &lt;ok&gt;"))
    if count > 200:
        elements[120] = elements[120].replace('read="1"', 'read="<"')
        elements[200] = elements[200].replace(f'date="{MARCH_1 + 200000}"', 'date="soon"')
    return write_backup(path, elements)


def chat(path: Path, count: int = 400) -> Path:
    lines = [f"01/03/2024, 21:{number // 60 % 60:02d} - {'Sam' if number % 3 else 'Jamie Doe'}: line {number}"
             for number in range(count)]
    lines[150] = "this line carries on the one before"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def case_with(tmp_path: Path, name: str, monkeypatch, *, apart_from: int) -> tuple[Ingest, list]:
    """A new case, with originals of `apart_from` bytes or more parsed in a worker; the rows built there."""
    monkeypatch.setattr(apart, "MIN_SIZE", apart_from)
    built: list = []
    monkeypatch.setattr(ingest.pipeline.Pipeline, "_add_built", lambda self, item: built.append(item) or
                        ADD_BUILT(self, item))
    root = tmp_path / name
    Case.init(root, name="t", timezone="Europe/London", region="GB", operator="Tester").close()
    return Ingest(root), built


ADD_BUILT = ingest.pipeline.Pipeline._add_built


def comparable(records: list[dict]) -> list[dict]:
    """Records as two runs of the same originals must give them (only the acquisition time differs)."""
    return sorted(({key: value for key, value in record.items() if key != "acquired_at"} for record in records),
                  key=lambda record: record["id"])


@pytest.mark.parametrize("source, make", [("sms", backup), ("whatsapp", chat)])
def test_a_worker_gives_exactly_the_records_warnings_and_counts_of_a_parse_here(tmp_path, monkeypatch, source,
                                                                                make):
    original = make(tmp_path / "in" / ("backup.xml" if source == "sms" else "WhatsApp Chat with Jamie.txt"))
    found = {}
    for name, apart_from in (("here", 1 << 40), ("worker", 0)):
        case, built = case_with(tmp_path, name, monkeypatch, apart_from=apart_from)
        result = case("run", "--source", source, str(original), "--json")
        summary = result.stdout
        found[name] = (comparable(case.json("list", "--json")), result.exit_code, summary, result.stderr)
        assert len(built) > (200 if source == "sms" else 300) if name == "worker" else not built
    assert found["worker"] == found["here"]
    records, exit_code, _summary, said = found["worker"]
    if source == "sms":
        assert exit_code == 1       # the backup said 300; one damaged element is a shortfall, said
        assert len([record for record in records if record["kind"] == "image"]) == 6    # the MMS photos
        assert "no usable time" in said and "element 121" in said


class Told:
    """A context that notes every telling, and answers nothing else."""

    timezone, region, excluded_paths = "Europe/London", "GB", ()

    def __init__(self):
        self.told: list = []

    def __getattr__(self, name):
        if name in apart.TELLS:
            return lambda *args: self.told.append((name, args))
        raise AttributeError(name)

    def localize(self, naive):
        return apart._Relayed.localize(self, naive)

    def phone(self, raw):
        return apart._Relayed.phone(self, raw)


def stored_of(path: Path) -> StoredOriginal:
    return StoredOriginal(digest=Digest("a" * 64, "b" * 64, path.stat().st_size), path=path, source_key=str(path),
                          filename=path.name, media_type="text/xml", source_meta={},
                          acquired_at=datetime(2024, 3, 2, tzinfo=timezone.utc))


def sequence(items) -> list:
    """What a parse gave, in order: records by locator (built or not), anything else by its type."""
    return [("record", item.row[5]) if isinstance(item, BuiltRecord) else
            ("record", item.locator) if isinstance(item, Record) else
            (type(item).__name__, getattr(item, "locator", None)) for item in items]


class DiesInTheWorker(SmsBackupParser):
    """Killed (SIGKILL) in the worker after 37 items; reads on normally in the main process."""

    main = os.getpid()      # set on the instance by the test: pickled into the worker with it

    def parse(self, stored, ctx):
        for number, item in enumerate(super().parse(stored, ctx)):
            if number == 37 and os.getpid() != self.main:
                os.kill(os.getpid(), signal.SIGKILL)
            yield item


class GivesAZipMember(SmsBackupParser):
    """Its 60th item opens something (only the main process can): it cannot travel."""

    def parse(self, stored, ctx):
        for number, item in enumerate(super().parse(stored, ctx)):
            if number == 60:
                yield Child(data=None, open=lambda: open(os.devnull, "rb"), locator="member")
            yield item


class AsksTheContext(SmsBackupParser):
    """Asks the context something after 80 items (as a source would)."""

    def parse(self, stored, ctx):
        for number, item in enumerate(super().parse(stored, ctx)):
            if number == 80:
                ctx.get_state("anything")
            yield item


class Breaks(SmsBackupParser):
    def parse(self, stored, ctx):
        for number, item in enumerate(super().parse(stored, ctx)):
            if number == 150:
                raise ValueError("element 151 is not what it seems")
            yield item


@pytest.mark.parametrize("parser_class", [DiesInTheWorker, GivesAZipMember, AsksTheContext, Breaks])
def test_whatever_befalls_the_worker_the_items_and_tellings_are_those_of_a_parse_here(tmp_path, monkeypatch,
                                                                                      parser_class):
    monkeypatch.setattr(apart, "MIN_SIZE", 0)
    monkeypatch.setattr(apart, "CHUNK", 16)
    stored = stored_of(backup(tmp_path / "backup.xml"))
    parser = parser_class()
    parser.main = os.getpid()

    def everything(items, ctx) -> tuple[list, str | None]:
        got, error = [], None
        try:
            for item in items:
                got.append(item)
        except ValueError as raised:
            error = str(raised)
        return got, error

    class Answers(Told):
        def get_state(self, key):
            return None

    here_ctx, worker_ctx = Answers(), Answers()
    here, here_error = everything(parser.parse(stored, here_ctx), here_ctx)
    there, there_error = everything(apart.parse(parser, stored, worker_ctx, adapter="files", chain="sms 1"),
                                    worker_ctx)
    assert sequence(there) == sequence(here) and len(here) >= 150
    assert worker_ctx.told == here_ctx.told and here_ctx.told[0][0] == "expect"
    assert there_error == here_error == ("element 151 is not what it seems" if parser_class is Breaks else None)
    built = sum(isinstance(item, BuiltRecord) for item in there)
    assert (16 <= built < 150 if parser_class is not Breaks else built >= 140), built    # the worker did part of it
    assert not [child for child in multiprocessing.active_children() if child.name == "ingest parse"]   # ended


def test_small_originals_zips_and_parsers_that_do_not_say_so_are_parsed_here(tmp_path):
    stored = stored_of(backup(tmp_path / "backup.xml", count=20))
    assert type(apart.parse(SmsBackupParser(), stored, Told(), adapter="files", chain="sms 1")).__name__ == \
        "generator" and apart.MIN_SIZE == 4 << 20
    zipped = tmp_path / "chat.zip"
    zipped.write_bytes(b"PK\x03\x04" + bytes(100))
    assert not WhatsAppParser().apart(stored_of(zipped))
    assert not apart.Parser().apart(stored)        # a parser says so, or is parsed here


def test_a_worker_ends_with_a_run_killed_with_sigkill(tmp_path):
    """The worker waits on a full pipe for a main process that is killed: it must not outlive it."""
    script = tmp_path / "killed.py"
    script.write_text("import multiprocessing, os, signal, sys\n"
                      "sys.path.insert(0, 'tests')\n"
                      "from test_apart import Told, backup, stored_of\n"
                      "from adapters.phone.sms import SmsBackupParser\n"
                      "from ingest import apart\n"
                      "if __name__ == '__main__':\n"
                      "    apart.MIN_SIZE = 0\n"
                      f"    stored = stored_of(backup(__import__('pathlib').Path({str(tmp_path)!r}) / 'b.xml', 3000))\n"
                      "    items = apart.parse(SmsBackupParser(), stored, Told(), adapter='files', chain='sms 1')\n"
                      "    next(items)\n"
                      "    print(' '.join(str(child.pid) for child in multiprocessing.active_children()\n"
                      "                   if child.name == 'ingest parse'), flush=True)\n"
                      "    os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == 1
    deadline = time.monotonic() + 20
    while alive(pids[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pids[0])

"""Email parsing on the second core: a message the pipeline stores ahead of reading it
(`Parser.prefetch`) is parsed in a worker process while the main one fetches, stores
and indexes the messages before it.

    jobs = Apart(function)        # function(stored, timezone, region) -> (items, calls, error) or None
    jobs.start(stored, ctx)       # in prefetch: the worker begins on it
    done = jobs.take(stored)      # in parse: what the worker made of it, or None: parse it here

The worker runs the same parser code on the same stored bytes with the case's zone and
region, so what it returns is what parsing here would give. Whatever goes wrong with the
worker itself (it died, a result would not travel) only means the message is parsed here.

Each worker is one process and one pipe, written and read by the thread that parses (no
executor threads): a message costs this process one pickled job out and one result in,
taken when it is needed. Handing each job through a process pool's own threads cost the
main thread about a fifth of its time in an mbox: each hand-over woke two threads that
took the GIL from it. Answers are read off the pipe when one is needed (or OUT jobs are out:
the pipe never fills both ways), never polled for at each message. Memory stays bounded: the
pipeline prefetches a few messages ahead, and past LIMIT waiting answers the oldest is dropped.
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import select
import threading
import time
from collections import OrderedDict
from datetime import datetime

from ingest.kit.context import Context
from ingest.kit.phones import e164
from ingest.model.records import StoredOriginal
from ingest.model.times import LocalTime, localize

LIMIT = 64                  # jobs of one parser sent and not taken, and answers waiting, at most
OUT = 32                    # jobs sent to a worker and not answered (a few KiB each), at most
AFTER = 16                  # messages read here before the workers start: a short run never starts them
_pool_lock = threading.Lock()
_pool: "Workers | None" = None
_unavailable = False        # workers could not start here: every message is read in the main process
_asked = 0


def _workers() -> int:
    return len(os.sched_getaffinity(0)) - 1


class Worker:
    """One worker process and the two-way pipe to it. Jobs are answered in the order sent."""

    def __init__(self, context):
        self.pipe, theirs = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(theirs, os.getpid()), name="ingest email", daemon=True)
        self.process.start()
        theirs.close()
        self.results: dict[int, object] = {}     # received, not yet taken
        self.sent: list[int] = []                # numbers sent and not yet answered, oldest first

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, number: int, job: tuple) -> None:
        self.pipe.send((number, job))
        self.sent.append(number)

    def receive(self, *, wait: bool) -> bool:
        """Read one answer off the pipe (waiting for it, or only if one is there): False when none was."""
        if not self.sent or (not wait and not self.pipe.poll()):
            return False
        number, result = self.pipe.recv()       # EOFError/OSError: the worker died
        self.sent.remove(number)
        self.results[number] = result
        while len(self.results) > LIMIT:        # answers nobody took (bytes read before): the oldest go
            del self.results[next(iter(self.results))]
        return True

    def close(self) -> None:
        self.pipe.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


class Workers:
    """The worker processes, one per core beside the main one; each job goes to the least busy."""

    def __init__(self, count: int):
        context = multiprocessing.get_context("forkserver")
        # "__main__" too: without it, the IMAP test that restarts the server mid-run hung in about
        # one run in four under load (fetch thread waiting on SELECT), and never with it.
        context.set_forkserver_preload(["__main__", "adapters.email"])
        self.members = [Worker(context) for _ in range(count)]
        self.numbers = itertools.count()

    @property
    def pids(self) -> list[int]:
        return [member.pid for member in self.members]

    def submit(self, function, *args) -> tuple[Worker, int]:
        member = min(self.members, key=lambda each: len(each.sent))
        number = next(self.numbers)
        member.send(number, (function, args))
        return member, number

    def close(self) -> None:
        for member in self.members:
            member.close()


def pool(now: bool = False) -> Workers | None:
    """The worker processes (none on one core), started once more than AFTER messages were
    offered (or `now`) and answering when this returns, so a run never ends with a worker
    half-started. `forkserver`: a worker is never a fork of a process with threads running
    (the IMAP fetcher) or a database open; the server imports the parser once."""
    global _pool, _unavailable, _asked
    if _pool is not None:       # running: asked once a message, so not behind the lock
        return _pool
    with _pool_lock:
        _asked += 1
        if _pool is None and not _unavailable and _workers() > 0 and (now or _asked > AFTER):
            workers = None
            try:
                workers = Workers(_workers())
                for member in workers.members:      # each is up and answering
                    member.send(-1, (int, ()))
                    member.receive(wait=True)
                    member.results.clear()
                _pool = workers
            except Exception:   # no worker can run here: everything is read in the main process
                if workers is not None:
                    workers.close()
                _unavailable = True
        return _pool


def _serve(pipe, parent: int) -> None:
    """In a worker: answer each job, in order, until the pipe closes."""
    _watch(parent)
    while True:
        try:
            number, (function, args) = pipe.recv()
        except (EOFError, OSError):     # the main process is done (or gone)
            return
        try:
            result = function(*args)
        except Exception:               # a bug of the job: the message is parsed there
            result = None
        try:
            pipe.send((number, result))
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception:               # the answer cannot travel: the message is parsed there
            pipe.send((number, None))


def _watch(parent: int) -> None:
    """In a worker: end with the process it works for, even one killed with SIGKILL (nothing
    else would tell it, and it would wait for work forever)."""
    def wait() -> None:
        try:
            with os.fdopen(os.pidfd_open(parent), "rb") as gone:
                select.select([gone], [], [])
        except (AttributeError, OSError):   # no pidfd here: look once a second
            while _alive(parent):
                time.sleep(1)
        os._exit(0)

    threading.Thread(target=wait, name="parent watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _drop(broken: Workers) -> None:
    """A worker died: every job still out is parsed in the main process, by a new pool next time."""
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None
    broken.close()


class Noted:
    """The context a worker parses with: the case's zone and region; notes and warnings travel
    back, as ("note" or "warn", text), to be said on the real context in the same order."""

    def __init__(self, timezone: str, region: str):
        self.timezone, self.region = timezone, region
        self.calls: list[tuple[str, str]] = []

    def note(self, text: str) -> None:
        self.calls.append(("note", text))

    def warn(self, message: str) -> None:
        self.calls.append(("warn", message))

    def localize(self, naive: datetime) -> LocalTime:
        return localize(naive, self.timezone)

    def phone(self, raw: str) -> str | None:
        return e164(raw, self.region)

    def cached_derived(self, original_blake3: str, type_: str, tool: str) -> bytes | None:
        return None


class Apart:
    def __init__(self, function):
        self.function = function
        self.jobs: OrderedDict[tuple[str, str], tuple[Workers, Worker, int]] = OrderedDict()

    def start(self, stored: StoredOriginal, ctx: Context) -> None:
        key = (stored.source_key, stored.digest.blake3)
        workers = pool()
        if workers is None or key in self.jobs:
            return
        # the head read while storing stays here: the worker reads the message from the store
        travelling = dataclasses.replace(stored, first_bytes=None)
        try:
            for member in workers.members:  # a bounded number of jobs out: the pipe never fills both ways
                while len(member.sent) >= OUT and member.receive(wait=True):
                    pass
            self.jobs[key] = (workers, *workers.submit(self.function, travelling, ctx.timezone, ctx.region))
        except (EOFError, OSError):         # a worker died: parsed here, by a new pool next time
            _drop(workers)
        while len(self.jobs) > LIMIT:
            self._forget(*self.jobs.popitem(last=False)[1])

    def take(self, stored: StoredOriginal) -> tuple[list, list[tuple[str, str]], Exception | None] | None:
        found = self.jobs.pop((stored.source_key, stored.digest.blake3), None)
        if found is None:
            return None
        workers, member, number = found
        try:
            while number not in member.results and member.receive(wait=True):
                pass
        except (EOFError, OSError):         # the worker died: parsed here, by a new pool next time
            _drop(workers)
            return None
        return member.results.pop(number, None)

    @staticmethod
    def _forget(workers: Workers, member: Worker, number: int) -> None:
        """A job never taken: its answer, when it comes, is not kept."""
        try:
            while number in member.sent and member.receive(wait=True):
                pass
        except (EOFError, OSError):
            _drop(workers)
        member.results.pop(number, None)

"""Email parsing on the second core: a message the pipeline stores ahead of reading it
(`Parser.prefetch`) is parsed in a worker process while the main one fetches, stores
and indexes the messages before it.

    jobs = Apart(function)        # function(stored, timezone, region) -> (items, calls, error) or None
    jobs.start(stored, ctx)       # in prefetch: the worker begins on it
    done = jobs.take(stored)      # in parse: what the worker made of it, or None: parse it here

The worker runs the same parser code on the same stored bytes with the case's zone and
region, so what it returns is what parsing here would give. Whatever goes wrong with the
worker itself (it died, a result would not travel) only means the message is parsed here,
and so does a worker that has not begun on it when it is needed (a busy machine).
Memory stays bounded: the pipeline prefetches a few messages ahead, and a result never
taken (the same bytes seen twice in a batch are parsed once) is dropped past LIMIT.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from collections import OrderedDict
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from datetime import datetime

from ingest.kit.context import Context
from ingest.kit.phones import e164
from ingest.model.records import StoredOriginal
from ingest.model.times import LocalTime, localize

LIMIT = 64                  # results waiting to be taken, at most
AFTER = 16                  # messages read here before the workers start: a short run never starts them
_pool_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_unavailable = False        # workers could not start here: every message is read in the main process
_asked = 0


def _workers() -> int:
    return len(os.sched_getaffinity(0)) - 1


def pool(now: bool = False) -> ProcessPoolExecutor | None:
    """The worker processes, one per core beside the main one (none on one core), started once
    more than AFTER messages were offered (or `now`) and ready when this returns, so a run never
    ends with a worker half-started. `forkserver`: a worker is never a fork of a process with
    threads running (the IMAP fetcher) or a database open; the server imports the parser once."""
    global _pool, _unavailable, _asked
    with _pool_lock:
        _asked += 1
        if _pool is None and not _unavailable and _workers() > 0 and (now or _asked > AFTER):
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["__main__", "adapters.email"])
            workers = ProcessPoolExecutor(max_workers=_workers(), mp_context=context, initializer=_watch,
                                          initargs=(os.getpid(),))
            try:
                workers.submit(int).result()       # a worker is up and answering
                _pool = workers
            except Exception:   # no worker can run here: everything is read in the main process
                workers.shutdown(wait=False, cancel_futures=True)
                _unavailable = True
        return _pool


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


def _drop(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


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
        self.jobs: OrderedDict[tuple[str, str], tuple[ProcessPoolExecutor, Future]] = OrderedDict()

    def start(self, stored: StoredOriginal, ctx: Context) -> None:
        key = (stored.source_key, stored.digest.blake3)
        workers = pool()
        if workers is None or key in self.jobs:
            return
        try:
            self.jobs[key] = workers, workers.submit(self.function, stored, ctx.timezone, ctx.region)
        except BrokenExecutor:      # a worker was killed: parsed here, by a new pool next time
            _drop(workers)
        except RuntimeError:        # the interpreter is exiting: parsed here
            pass
        while len(self.jobs) > LIMIT:
            self.jobs.popitem(last=False)[1][1].cancel()

    def take(self, stored: StoredOriginal) -> tuple[list, list[tuple[str, str]], Exception | None] | None:
        workers, job = self.jobs.pop((stored.source_key, stored.digest.blake3), (None, None))
        if job is None or job.cancel():     # not begun (the worker lags behind): read here, not waited for
            return None
        try:
            return job.result()
        except BrokenExecutor:      # a worker was killed: parsed here, by a new pool next time
            _drop(workers)
        except Exception:           # its answer could not travel back: parsed here
            pass
        return None

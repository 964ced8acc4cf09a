"""A large original parsed in a second process while this one keeps what it yields.

    items = apart.parse(parser, stored, ctx, adapter=..., chain=...)   # what parser.parse yields

Reading a big SMS backup or chat is parsing, then building each record's row (its JSON and
search text), then indexing it. The worker parses and builds rows (`BuiltRecord`); this
process only decides which rows to keep (a message the case holds already is not) and
indexes them. Rows travel in chunks through a pipe, which bounds memory: the worker waits
while a chunk is not read. What the parser tells the context (a warning, a note, how many
messages the backup says it holds) travels in the same stream, so it is said here at the
same place among the items as a parse here would say it.

Nothing depends on the worker. If it cannot start, dies, meets an item that cannot travel
(a Child that opens a zip member) or a question only this process can answer, the rest is
parsed here: the parser reads the original again from the start and the items and tellings
already received are passed over (parsers are deterministic), so nothing is lost or doubled.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import signal
from typing import Iterator

from ingest.kit.adapter import Parser
from ingest.kit.context import Context
from ingest.kit.phones import e164
from ingest.model.records import Record, StoredOriginal, record_id
from ingest.model.times import localize
from ingest.recordrows import BuiltRecord, record_row

MIN_SIZE = 4 << 20      # smaller originals parse faster here than a worker starts (~0.2 s)
CHUNK = 256             # items and tellings sent at a time
# What a parser may tell the context; these travel in the stream. Anything it asks is asked here.
TELLS = ("held_without_asking", "expect", "acquired", "expect_originals", "failed", "set_state", "note", "warn")

_unavailable = False    # a worker could not start here: everything is parsed in this process


def parse(parser: Parser, stored: StoredOriginal, ctx: Context, *, adapter: str, chain: str) -> Iterator:
    """The items `parser.parse(stored, ctx)` yields, its records as `BuiltRecord` rows when they
    were built in a worker (`adapter` and `chain` go into them: the source and parser chain)."""
    if _unavailable or stored.digest.size < MIN_SIZE or not parser.apart(stored) or \
            len(os.sched_getaffinity(0)) < 2:
        return parser.parse(stored, ctx)
    return _received(parser, stored, ctx, adapter, chain)


def _received(parser: Parser, stored: StoredOriginal, ctx: Context, adapter: str, chain: str) -> Iterator:
    global _unavailable
    items = tellings = 0
    mp = multiprocessing.get_context("forkserver")
    reading, writing = mp.Pipe(duplex=False)
    try:
        worker = mp.Process(target=_work, name="ingest parse", daemon=True, args=(
            parser, parser.label, stored, ctx.timezone, ctx.region, adapter, chain, CHUNK, writing))
        worker.start()
    except Exception:       # no worker here (no /dev/shm, a sandbox): parsed here from now on
        _unavailable = True
        for end in (reading, writing):
            end.close()
        yield from parser.parse(stored, ctx)
        return
    writing.close()         # only the worker writes: its end closing is how its death is seen
    try:
        for kind, value in _events(reading):
            if kind == "item":
                items += 1
                yield value
            elif kind == "tell":
                tellings += 1
                getattr(ctx, value[0])(*value[1])
            elif kind == "built":
                items += 1
                yield BuiltRecord(*value)
            elif kind == "raised":
                raise value         # the parser's own error, as a parse here would raise it
            elif kind == "end":
                return
        # the worker died, or met what it could not send or answer: the rest is parsed here
        yield from _resumed(parser, stored, ctx, items, tellings)
    finally:
        reading.close()
        if worker.is_alive():
            worker.kill()
        worker.join()


def _events(reading) -> Iterator[tuple[str, object]]:
    """The worker's events, until its last, its death or its "parse the rest there"."""
    while True:
        try:
            chunk = reading.recv()
        except Exception:       # EOF: the worker died (or sent what cannot be read here)
            return
        for event in chunk:
            if event[0] == "here":
                return
            yield event


def _resumed(parser: Parser, stored: StoredOriginal, ctx: Context, items: int, tellings: int) -> Iterator:
    """The parse here, past the first `items` items and `tellings` tellings (already said)."""
    return itertools.islice(parser.parse(stored, _Passing(ctx, tellings)), items, None)


class _Passing:
    """The context, with the first `count` tellings passed over (the worker's, already said)."""

    def __init__(self, ctx: Context, count: int):
        self._ctx, self._count = ctx, count

    def __getattr__(self, name: str):
        found = getattr(self._ctx, name)
        if name not in TELLS:
            return found

        def tell(*args):
            if self._count > 0:
                self._count -= 1
                return None
            return found(*args)
        return tell


class _AskHere(Exception):
    """The parser asked what only the main process knows: the rest is parsed there."""


class _Relayed:
    """The worker's context: the case's zone and region; tellings go into the stream."""

    excluded_paths = ()

    def __init__(self, timezone: str, region: str, out: list):
        self.timezone, self.region, self._out = timezone, region, out

    def __getattr__(self, name: str):
        if name in TELLS:
            return lambda *args: self._out.append(("tell", (name, args)))
        raise _AskHere(name)

    def localize(self, naive):
        return localize(naive, self.timezone)

    def phone(self, raw: str) -> str | None:
        return e164(raw, self.region)


def _work(parser: Parser, label: str, stored: StoredOriginal, timezone: str, region: str, adapter: str,
          chain: str, chunk: int, writing) -> None:
    """`label`: the parser's name and version as the main process has them (ids are made of it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the main process's to handle
    out: list = []
    key, blake3_hex = stored.source_key, stored.digest.blake3
    own_id = record_id(key, blake3_hex, None, label)
    try:
        try:
            for item in parser.parse(stored, _Relayed(timezone, region, out)):
                if isinstance(item, Record) and item.locator is not None and not item.derived:
                    rid = record_id(key, blake3_hex, item.locator, label)
                    out.append(("built", record_row(item, rid, stored, label, chain, own_id, None, adapter, [])))
                else:               # the original's own record, a child, a warning: as they are
                    out.append(("item", item))
                if len(out) >= chunk and not _sent(writing, out):
                    return
            out.append(("end", None))
        except _AskHere:
            out.append(("here", None))
        except Exception as error:  # the parser's own: raised in the main process, as it would be there
            out.append(("raised", _travelling(error)))
        _sent(writing, out)
    finally:
        writing.close()


def _sent(writing, out: list) -> bool:
    """Send the chunk and empty it; False: stop (the main process is gone, or parses the rest)."""
    try:
        writing.send(out)       # pickled whole before anything is written; waits while the pipe is full
    except OSError:             # the main process is gone, or stopped reading
        return False
    except Exception:           # something that cannot travel (a Child opening a zip member):
        sendable = []           # what comes before it goes, and the main process parses the rest
        for event in out:
            try:
                pickle.dumps(event)
            except Exception:
                break
            sendable.append(event)
        try:
            writing.send([*sendable, ("here", None)])
        except Exception:       # the main process is gone: nothing to do
            pass
        return False
    out.clear()
    return True


def _travelling(error: Exception) -> Exception:
    """The error, or one of the same name and message when it cannot be pickled."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return type(type(error).__name__, (Exception,), {})(str(error))

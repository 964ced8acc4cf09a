"""The pipeline: sources give originals, the store keeps them, parsers explain them.

    ingest.pipeline.run(case, source, parser) -> RunSummary

Each original is streamed once into the store, read back from the store and
parsed; its records, children and custody line are committed in small batches,
and only after the bytes they name are durable (`Case.commit`).

Nearly 1,000 lines: the order of storing, dispatching, committing and logging is the
guarantee this module gives, and it reads best in one place (the storing process it may hand
small originals to is ingest/storing.py).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Iterator

from ingest import apart
from ingest.kit import registry
from ingest.kit.adapter import Parser, Source
from ingest.kit.context import Context
from ingest.kit.dating import date_by_file_time
from ingest.case import Case
from ingest.model.errors import OriginalChanged
from ingest.media import media_type
from ingest.kit.localfiles import WatchedRead
from ingest.kit.phones import e164
from ingest.model.records import (Child, Digest, NotThisFormat, Original, ParseWarning, Record, StoredOriginal,
                                  record_id, storable)
from ingest.model.times import LocalTime, iso_utc, localize, utc_now
from ingest.recordrows import BuiltRecord, acquired_text, record_row
from ingest.storing import Kept, Storer, declared_reader
from store.index import PENDING, Index

MAX_DEPTH = 4             # an email in a zip in an email... deeper is refused, not followed
BATCH_RECORDS = 10000     # commit at least this often while parsing a big original (and once a second)
BATCH_SECONDS = 1.0
REREAD_ATTEMPTS = 3
WINDOW = 2 * (os.cpu_count() or 1)   # originals stored ahead of parsing, for `Parser.prefetch`
STORE_AHEAD = 8           # originals being stored on the second thread while earlier ones are parsed
# A local file (or message in memory) smaller than this is stored by the storing process, or on the
# thread that parses until that process is ready: never by the storing thread, where it costs more
# than storing it (each of its ~12 system calls hands the GIL back and forth; 10,000 files of 5-50 KB
# took 11-12 s of CPU on one thread, 13-20 s split over two).
STORE_HERE_BELOW = 1024 * 1024
STORED_HERE_FIRST = 16    # small files, or spans of a stored parent, stored here before the storing process starts
WRITER_CACHE_MIB = 64     # SQLite pages the committing connection keeps (see store/index.py)
CHILDREN_AHEAD = 8        # children an email worker parses while the ones before them are read
LOOKAHEAD = 500           # records whose identities are asked of the index in one query
MAX_WARNINGS_SHOWN = 20


@dataclass
class RunSummary:
    new: int = 0              # originals newly in the case (given, and found inside what was given)
    already_held: int = 0     # originals the case already had
    unparsed: int = 0         # originals kept but not understood
    failed: int = 0           # originals that could not be preserved
    records: int = 0          # records written
    duplicates: int = 0       # records skipped because the case holds the same event already
    adopted: int = 0          # of `new`: bytes an interrupted run had stored, now taken into the case
    reparsed: int = 0         # `reparse`: originals read again with a newer parser
    already_inside: int = 0   # of `already_held`: found inside what was given (the same attachment again)
    kept: dict[str, int] = field(default_factory=dict)          # new originals given, by their record's kind
    found_inside: dict[str, int] = field(default_factory=dict)  # new originals found inside them (attachments)
    expected: dict[str, int] = field(default_factory=dict)   # what a source said it holds
    acquired: dict[str, int] = field(default_factory=dict)   # what the case now holds of it
    expected_what: dict[str, tuple[str, str]] = field(default_factory=dict)   # (noun, place): ("call", "backup")
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: int = 0
    interrupted: bool = False # stopped by Ctrl-C (what was kept up to then is committed)
    # originals that could not be read as the parser the run named (kept; the run exits non-zero)
    not_read: list[str] = field(default_factory=list)

    COUNTS = ("new", "already_held", "unparsed", "failed", "records", "duplicates", "adopted", "already_inside",
              "reparsed", "warnings")
    TALLIES = ("kept", "found_inside", "expected", "acquired")

    def add(self, part: "RunSummary") -> None:
        """Fold another run's summary into this one (watch runs once per batch of files)."""
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(part, name))
        for name in self.TALLIES:
            merged = getattr(self, name)
            for key, value in getattr(part, name).items():
                merged[key] = merged.get(key, 0) + value
        self.expected_what.update(part.expected_what)
        self.notes.extend(note for note in part.notes if note not in self.notes)
        self.problems.extend(part.problems)
        self.not_read.extend(part.not_read)

    def shortfalls(self) -> dict[str, tuple[int, int]]:
        return {name: (count, self.acquired.get(name, 0)) for name, count in self.expected.items()
                if self.acquired.get(name, 0) < count}

    def to_json(self) -> dict:
        return {"new": self.new, "already_held": self.already_held, "unparsed": self.unparsed,
                "failed": self.failed, "records": self.records, "duplicates": self.duplicates,
                "adopted": self.adopted, "reparsed": self.reparsed, "kept": self.kept, "found_inside": self.found_inside,
                "expected": self.expected, "acquired": self.acquired, "notes": self.notes,
                "problems": self.problems, "warnings": self.warnings, "not_read": self.not_read}


class Progress:
    """What the pipeline tells whoever is watching. The CLI draws it; the library stays quiet."""

    def total(self, count: int | None) -> None: ...
    def advance(self, label: str) -> None: ...
    def warn(self, message: str) -> None: ...


class RunContext(Context):
    """The pipeline's side of the conversation with sources and parsers (see ingest/kit/context.py).
    The case and the summary stay private: adapters reach them only through these calls."""

    def __init__(self, case: Case, summary: RunSummary, progress: Progress, batch: "Batch"):
        self._case = case
        self.timezone = case.config.timezone
        self.region = case.config.region
        self.excluded_paths = (case.root.resolve(),)
        self._summary = summary
        self._progress = progress
        self._batch = batch
        self._expected_total = 0
        # held originals nobody has truly read (see Index.unread_originals), met in a run that names
        # its parser (only then can they be read again)
        self.collect_unread = False
        self.unread_held: list = []

    # for sources
    def already_held(self, source_key: str, fingerprint: str | None = None) -> bool:
        if self._case.index.held(storable(source_key), fingerprint):
            if self.collect_unread:
                self.unread_held.extend(self._case.index.unread_originals(source_key=storable(source_key)))
            self._summary.already_held += 1
            self._progress.advance(source_key)
            return True
        return False

    def held_without_asking(self, count: int) -> None:
        self._summary.already_held += count

    def expect(self, container: str, count: int, noun: str = "item", place: str = "source") -> None:
        self._summary.expected[container] = self._summary.expected.get(container, 0) + count
        self._summary.expected_what[container] = (noun, place)

    def acquired(self, container: str, count: int = 1) -> None:
        self._summary.acquired[container] = self._summary.acquired.get(container, 0) + count

    def expect_originals(self, count: int) -> None:
        self._expected_total += count
        self._progress.total(self._expected_total)

    def failed(self, location: str, reason: str) -> None:
        self._summary.failed += 1
        self._summary.problems.append(f"{location}: {reason}")
        self._progress.warn(f"Could not keep {location}: {reason}")

    def get_state(self, key: str) -> str | None:
        return self._batch.state_of(key) or self._case.index.get_state(self._batch.source_name, key)

    def set_state(self, key: str, value: str) -> None:
        self._batch.state[key] = value

    # for parsers
    def note(self, text: str) -> None:
        if text not in self._summary.notes:
            self._summary.notes.append(text)

    def warn(self, message: str) -> None:
        self._summary.warnings += 1
        if self._summary.warnings <= MAX_WARNINGS_SHOWN:
            self._progress.warn(message)

    def localize(self, naive: datetime) -> LocalTime:
        return localize(naive, self.timezone)

    def phone(self, raw: str) -> str | None:
        return e164(raw, self.region)

    def cached_derived(self, original_blake3: str, type_: str, tool: str) -> bytes | None:
        digest = self._case.index.derived(original_blake3, type_, tool) or self._batch.derived_of(
            (original_blake3, type_, tool))
        if digest and self._case.objects.exists(digest):
            return self._case.objects.path(digest).read_bytes()
        return None


class Batch:
    """Everything waiting for the next commit, and the one commit in flight.

    A commit is written on a second thread, through a second connection to the index, while
    this one reads on (SQLite and the disk work without the GIL: ~a third of a big chat's time).
    One commit is in flight at a time, in order; what it holds is still asked of it here (`inflight`)
    until it is done, and its error is raised here, at the next commit or at the end."""

    def __init__(self, case: Case, source_name: str, *, pending: str | None = None):
        self.case = case
        self.source_name = source_name
        self.pending = pending       # records go in hidden until their original's closing line (reparse)
        self.atomic = False          # True: nothing commits until `commit()` is called (a note and its files)
        self.committed_originals = 0
        self.failed = False          # a commit failed: what is queued is not committed again
        self.inflight: Batch | None = None     # handed to the committing thread, not known to be done
        self._committing: Future | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._writer_index: Index | None = None
        self.reset()
        self.last_commit = time.monotonic()

    def reset(self) -> None:
        self.entries: list = []       # custody entries, or functions of the index making one (closing lines)
        self.objects: list[tuple] = []
        self.originals: list[dict] = []
        self.records: list[tuple] = []
        self.identities: dict[str, str] = {}   # identity -> id of the record in this batch holding it
        self.derived: list[tuple] = []
        self.derived_pending: dict[tuple, str] = {}
        self.seen: set[str] = set()           # objects read in this batch at any depth, for counting
        self.state: dict[str, str] = {}
        # object read in this batch -> the source keys of the originals it was read as or inside
        self.parsed: dict[str, set[str]] = {}

    # what is not committed yet, asked of this batch and of the one in flight ---------------------
    def has_seen(self, blake3_hex: str) -> bool:
        return blake3_hex in self.seen or (self.inflight is not None and blake3_hex in self.inflight.seen)

    def parsed_within(self, blake3_hex: str) -> set[str] | None:
        """The top-level source keys these bytes were read as or inside (None: not read here)."""
        found = [batch.parsed[blake3_hex] for batch in (self, self.inflight) if batch and blake3_hex in batch.parsed]
        return set().union(*found) if found else None

    def state_of(self, key: str) -> str | None:
        return self.state.get(key) or (self.inflight.state.get(key) if self.inflight else None)

    def derived_of(self, key: tuple) -> str | None:
        return self.derived_pending.get(key) or (self.inflight.derived_pending.get(key) if self.inflight else None)

    def inflight_identities(self) -> dict[str, str]:
        return self.inflight.identities if self.inflight else {}

    # committing -------------------------------------------------------------------------------
    def due(self) -> bool:
        return not self.atomic and (len(self.records) >= BATCH_RECORDS or len(self.entries) >= BATCH_RECORDS
                                    or time.monotonic() - self.last_commit >= BATCH_SECONDS)

    def commit(self) -> None:
        """Hand what waits to the committing thread, once the commit before it is done."""
        self.wait()
        if self.entries or self.objects or self.originals or self.records or self.state:
            handed = Batch.__new__(Batch)
            handed.__dict__.update({name: getattr(self, name) for name in (
                "entries", "objects", "originals", "records", "identities", "derived", "derived_pending", "seen",
                "state", "parsed", "source_name", "pending")})
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
            self.inflight, self._committing = handed, self._writer.submit(self._write, handed)
        self.reset()
        self.last_commit = time.monotonic()

    def wait(self) -> None:
        """Until the commit in flight is done; its error, if it failed, is raised here."""
        if self._committing is None:
            return
        handed, committing = self.inflight, self._committing
        try:
            committing.result()
        except BaseException:
            self.failed = True
            raise
        finally:
            self.inflight = self._committing = None
        self.committed_originals += sum(1 for original in handed.originals if original["depth"] == 0)

    def close(self) -> None:
        """Wait for the commit in flight (its error is the caller's to have seen) and end the thread."""
        try:
            if self._committing is not None:
                self._committing.exception()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
            if self._writer_index is not None:
                self._writer_index.close()
            self._writer = self._writer_index = None

    def _write(self, handed: "Batch") -> None:
        def work(index):
            index.add_objects(handed.objects)
            index.add_originals(handed.originals)
            if handed.records:
                index.add_records(handed.records, pending=handed.pending)
            for row in handed.derived:
                index.add_derived(*row)
            for key, value in handed.state.items():
                index.set_state(handed.source_name, key, value)

        if self._writer_index is None:
            self._writer_index = Index(self.case.index.path, cache_mib=WRITER_CACHE_MIB)
        self.case.commit(handed.entries, work, index=self._writer_index)


class Pipeline:
    def __init__(self, case: Case, source_name: str, progress: Progress | None = None, *, reparsing: bool = False,
                 named: Parser | None = None, summary: RunSummary | None = None):
        case.require_intact()
        self.case = case
        self.summary = summary or RunSummary()
        self.named = named          # the parser the run was told to use (None: each original sniffed)
        self.progress = progress or Progress()
        self.batch = Batch(case, source_name, pending=PENDING if reparsing else None)
        self.ctx = RunContext(case, self.summary, self.progress, self.batch)
        self.source_name = source_name
        self.reparsing = reparsing
        # A record skipped as already held -> the record holding it, so what refers to it (a photo
        # in a chat exported again, now with media) joins the record the case has. Per original.
        self.held_as: dict[str, str] = {}
        # identity -> id of the live record holding it, for the records read ahead (see _asked_ahead)
        self.identities_known: dict[str, str] = {}
        self.identities_unsaved: tuple[dict, dict] = ({}, {})   # not committed when the index was asked
        self.top_key = ""       # the source key of the original being read at depth 0
        self.handed = 0     # originals given to this pipeline: kept or not, they are counted
        self.storing_process: Storer | None = None      # see `storer`
        self.storer_wanted = 0

    @contextmanager
    def committing(self):
        """Around a run: what was fully processed is committed whatever stops it (even Ctrl-C); a
        disk that fails (full, read-only, failing, the case folder gone) becomes one plain line
        saying how many items were kept and how many were not."""
        error: BaseException | None = None
        try:
            yield
        except BaseException as stopped:
            error = stopped
        try:
            if not self.batch.failed and (error is None or not self.batch.atomic):
                self.batch.commit()
            self.batch.wait()
        except BaseException as late:
            if error is None or (self.case.storage_trouble(late) and not self.case.storage_trouble(error)):
                error = late
        finally:
            self.batch.close()
            if self.storing_process is not None:
                self.storing_process.close()
                self.storing_process = None
        if error is None:
            return
        trouble = self.case.storage_trouble(error, writing=self.batch.failed)
        if trouble:
            kept = self.batch.committed_originals
            raise self.case.storage_failed(trouble, kept, max(self.handed - kept, 1)) from error
        raise error

    # storing ------------------------------------------------------------------
    def store(self, original: Original) -> tuple[StoredOriginal, bool]:
        """Keep the original's bytes. Its declared type is taken when the parser that type names
        (storing.DECLARED_READERS) sees that format in the bytes, without libmagic (~0.7 ms a message)."""
        stored, new, _reader = self._store(original)
        return stored, new

    def _store(self, original: Original) -> tuple[StoredOriginal, bool, Parser | None]:
        """`store`, and the parser its declared type named when the bytes are that format."""
        digest, new, head = self._put(original)
        reader = declared_reader(original.declared_type, head)
        known = original.declared_type if reader else media_type(head, original.filename)
        return self.described(original, digest, head, known, utc_now()), new, reader

    def _put(self, original: Original) -> tuple[Digest, bool, bytes]:
        stream = original.stream
        for attempt in range(REREAD_ATTEMPTS):
            try:
                digest, new, head = self.case.objects.put(stream)
                break
            except OriginalChanged:
                if original.reopen is None or attempt == REREAD_ATTEMPTS - 1:
                    raise
            finally:
                stream.close()
            time.sleep(0.2 * (attempt + 1))   # let the writer finish, then read it all again
            stream = original.reopen()
        return digest, new, head

    def described(self, original: Original, digest: Digest, head: bytes, known: str,
                  acquired_at: datetime) -> StoredOriginal:
        return StoredOriginal(digest=digest, path=self.case.objects.path(digest.blake3), source_key=original.source_key,
                              filename=original.filename, media_type=known, source_meta=original.source_meta,
                              acquired_at=acquired_at, first_bytes=head)

    def store_child(self, child: Child, parent: StoredOriginal) -> tuple[StoredOriginal, bool, Parser | None]:
        """The child kept, and the parser its declared type named when its bytes are that format."""
        stream = child.open() if child.open else io.BytesIO(child.data or b"")
        stored, new, reader = self._store(self._child_original(child, parent, stream))
        return self._as_child(stored, child), new, reader

    def kept_apart(self, original: Original, kept: Kept) -> tuple[StoredOriginal, bool, Parser | None]:
        """`_store`'s answer for an original the storing process kept (with the parser it found)."""
        known = kept.media_type or media_type(kept.put.head, original.filename)
        stored = self.described(original, kept.put.digest, kept.put.head, known, kept.acquired_at)
        return stored, kept.put.new, registry.parser(kept.parser)() if kept.parser else None

    @staticmethod
    def _child_original(child: Child, parent: StoredOriginal, stream) -> Original:
        return Original(stream=stream, source_key=f"{parent.source_key}!{child.locator}", filename=child.filename,
                        source_meta=dict(child.source_meta, locator=child.locator), declared_type=child.media_type)

    @staticmethod
    def _as_child(stored: StoredOriginal, child: Child) -> StoredOriginal:
        if child.media_type and stored.media_type in ("application/octet-stream", "text/plain"):
            stored = replace(stored, media_type=child.media_type)
        return replace(stored, kind_hint=child.kind_hint)

    def storer(self) -> Storer | None:
        """The storing process (ingest/storing.py), started once more than STORED_HERE_FIRST originals
        could have used it (a short run never starts it), and given work only once it is ready
        (~0.3 s); None until then, and where it cannot run: they are stored here."""
        self.storer_wanted += 1
        if self.storer_wanted == STORED_HERE_FIRST + 1:
            self.storing_process = Storer.start(self.case.objects)
        return self.storing_process if self.storing_process is not None and self.storing_process.ready() else None

    # parsing ------------------------------------------------------------------
    def process(self, stored: StoredOriginal, new: bool, parser: Parser | None, *, depth: int = 0,
                parent_record: str | None = None, peer: dict | None = None, fingerprint: str | None = None,
                action: str | None = None, state: dict[str, str] | None = None) -> None:
        """Parse one stored original and queue everything it yields for commit.

        `action` names the custody action (default: acquire, or extract for a child)."""
        case, batch = self.case, self.batch
        digest = stored.digest
        action = action or ("acquire" if depth == 0 else "extract")
        if depth == 0:
            self.top_key = stored.source_key
        if not self.reparsing and self._read_before(digest.blake3, depth):
            # The same bytes again (a message in two folders, a file copied, the attachments of a
            # message an earlier export held): one object, one more source key.
            if self.ctx.collect_unread:
                self.ctx.unread_held.extend(case.index.unread_originals(blake3_hex=digest.blake3))
            self.summary.already_held += 1
            self.summary.already_inside += 1 if depth else 0
            held = case.custody_entry(action, {"objects": [digest.blake3]}, {
                "source_key": stored.source_key, "already_held": True, **({"peer": peer} if peer else {})})
            batch.entries.append(held)      # with its row, nothing between (see the object's row below)
            batch.originals.append(self._original_row(stored, parser, depth, parent_record, fingerprint))
            batch.state.update(state or {})
            return
        # The same bytes read earlier inside this same original (ten identical parts of one email)
        # are read again for this key, and counted as held; bytes in the store that the case does
        # not know yet were stored by an interrupted run: new to the case, adopted now.
        # (An original's object row alone, with no original row, is what a stopped run left: adopted.)
        repeat = not self.reparsing and (batch.has_seen(digest.blake3) or (
            depth > 0 and not new and case.index.object(digest.blake3) is not None))   # kept earlier, committed
        counted_new = new or not (self.reparsing or repeat)
        if repeat:
            self.summary.already_held += 1
            self.summary.already_inside += 1 if depth else 0
        elif counted_new:
            self.summary.new += 1
            self.summary.adopted += 0 if new else 1
        warnings: list[str] = []
        items, parser, chain = self._dispatch(stored, parser, warnings, elsewhere=depth == 0)
        own_id = record_id(stored.source_key, digest.blake3, None, parser.label)
        # The original's line comes first: before any of its records (committed in batches) and
        # before its children's lines. Its closing line, once all are in, commits to the record set.
        detail = {"source_key": stored.source_key, "filename": stored.filename, "size": digest.size,
                  "sha256": digest.sha256, "media_type": stored.media_type, "parser": chain,
                  "adapter": self.source_name}
        if peer:
            detail["peer"] = peer
        if parent_record:
            detail["parent_record"] = parent_record
        acquired = case.custody_entry(action, {"objects": [digest.blake3], "records": [own_id]}, detail)
        # The object's row and the line that acquires it go into the batch together, nothing between
        # them: a stop (Ctrl-C commits what the batch holds) never commits a row the log does not name.
        batch.entries.append(acquired)
        batch.objects.append((digest, stored.media_type, "original", acquired_text(stored.acquired_at)))
        batch.seen.add(digest.blake3)
        count = 0
        own_emitted = False
        fatal: str | None = None
        own_kind = None
        waiting = _Waiting()        # children being stored, or stored and to be read a little later (see _child)
        for item in self._asked_ahead(items):
            if isinstance(item, BuiltRecord):
                count += self._add_built(item)
            elif isinstance(item, Record):
                if item.locator is None:
                    own_emitted = True
                    own_kind = item.kind
                    if item.kind == "unparsed":
                        fatal = fatal or item.metadata.get("error", "not understood")
                count += self._add_record(item, stored, parser, chain, own_id, parent_record)
            elif isinstance(item, Child):
                self._child(item, stored, parser, own_id, depth, waiting)
            elif isinstance(item, ParseWarning):
                where = f"{stored.filename or stored.source_key}" + (f" ({item.locator})" if item.locator else "")
                warnings.append(f"{item.locator + ': ' if item.locator else ''}{item.message}")
                self.ctx.warn(f"{where}: {item.message}")
                if item.fatal:
                    fatal = fatal or item.message
            if batch.due():
                batch.commit()
        self._stored_waiting(waiting, 0)
        self._read_waiting(waiting, 0)
        if warnings and warnings[-1].startswith("parser stopped:"):
            fatal = fatal or warnings[-1]
        if not own_emitted:
            own = self._own_record(stored, fatal, warnings, count)
            own_kind = own.kind
            count += self._add_record(own, stored, parser, chain, own_id, parent_record)
        if counted_new:
            tally = self.summary.found_inside if depth else self.summary.kept
            category = (stored.kind_hint if depth else None) or own_kind or "file"
            tally[category] = tally.get(category, 0) + 1
        if fatal and (not own_emitted or count <= 1):
            self.summary.unparsed += 1
        if depth == 0 and self.named and (parser.name == "file" or (fatal and (not own_emitted or count <= 1))):
            self.summary.not_read.append(self._not_read(stored))
        batch.originals.append(self._original_row(stored, parser, depth, parent_record, fingerprint))
        batch.parsed.setdefault(digest.blake3, set()).add(self.top_key)
        batch.state.update(state or {})
        batch.entries.append(self._closing(stored, parser.label, own_id, warnings))
        self.progress.advance(stored.filename or stored.source_key)
        if depth == 0:
            self.held_as.clear()

    def _read_before(self, blake3_hex: str, depth: int) -> bool:
        """Were these bytes read before, so they are only one more source key now? An original:
        read anywhere. Something inside one (an attachment, a zip member): read inside another
        original; the same bytes twice inside one (ten identical parts of an email, a picture sent
        in two messages of one mailbox) are each read. Never a matter of what is committed yet."""
        within = self.batch.parsed_within(blake3_hex)
        if depth == 0:
            return within is not None or self.case.index.object_parsed(blake3_hex)
        return bool((within or set()) - {self.top_key}) or self.case.index.object_parsed(blake3_hex,
                                                                                          outside=self.top_key)

    def _asked_ahead(self, items: Iterator) -> Iterator:
        """The items, with the identities of each run of up to LOOKAHEAD records asked of the index
        in one query (a query a record cost ~50 us). Anything else ends a run: a child must be
        stored while its parser still stands where it yielded it (its zip still open)."""
        run: list = []
        for item in items:
            is_record = isinstance(item, (Record, BuiltRecord))
            if is_record:
                run.append(item)
                if len(run) < LOOKAHEAD:
                    continue
            yield from self._asked(run)
            run = []
            if not is_record:
                yield item
        yield from self._asked(run)

    def _asked(self, run: list) -> list:
        if not self.reparsing:
            # What is not committed when the index is asked may be committed before these records
            # are added (and leave the batch): those identities are kept by reference as they were.
            self.identities_unsaved = (self.batch.identities, self.batch.inflight_identities())
            identities = {item.row[8] if isinstance(item, BuiltRecord) else item.identity for item in run}
            identities.discard(None)
            self.identities_known = self.case.index.identities_held(identities)
        return run

    def _closing(self, stored: StoredOriginal, parser: str, own_id: str, warnings: list[str]):
        """The original's closing custody line, made inside the commit once its records are in the
        index: how many records this parser made from it and the SHA-256 of their ids (`verify`
        recomputes both). In a reparse, the new records take over from the old in the same commit."""
        key, blake3_hex = stored.source_key, stored.digest.blake3

        def entry(index) -> dict:
            detail = {"source_key": key, "parser": parser}
            if self.reparsing:
                detail["superseded"] = index.take_over(blake3_hex, key, parser, PENDING)
            detail["records"], detail["records_sha256"] = index.record_set(blake3_hex, key, parser)
            if warnings:
                detail["warnings"] = warnings[:50]
            return self.case.custody_entry("records", {"objects": [blake3_hex], "records": [own_id]}, detail)

        return entry

    def _dispatch(self, stored: StoredOriginal, parser: Parser | None, warnings: list[str], *,
                  elsewhere: bool) -> tuple[Iterator, Parser, str]:
        """The one place that decides which parser reads an original: the one named (or sniffed);
        when it says the original is not its format, the best other one. Returns the items, the
        parser that reads them and the chain of parsers that handled it (`whatsapp 1 > image 1`).
        `elsewhere`: a large original may be parsed in a worker process (ingest/apart.py)."""
        if parser is None:
            parser = registry.sniff(stored.head(), stored.filename)
        chain = [parser]
        while True:
            named = " > ".join(step.label for step in chain)
            parsed = apart.parse(parser, stored, self.ctx, adapter=self.source_name, chain=named) if elsewhere \
                else parser.parse(stored, self.ctx)
            items = self._guarded(parsed, warnings)
            first = next(items, None)
            if not isinstance(first, NotThisFormat):
                return (items if first is None else itertools.chain([first], items)), parser, named
            items.close()
            self.ctx.note(first.note)
            parser = registry.sniff(stored.head(), stored.filename, parser.options,
                                    exclude={step.name for step in chain})
            chain.append(parser)

    def _not_read(self, stored: StoredOriginal) -> str:
        """One line for an original the named parser could not read, with what it looks like."""
        where = stored.filename or stored.source_key
        line = f"{where} could not be read as {self.named.name}; it is kept exactly as it is."
        found = registry.sniff(stored.head(), stored.filename)
        if found.name not in ("file", self.named.name):
            preset = next(iter(found.presets), None)
            return (f"{line} It looks like {found.name}: run ingest on it again without --source"
                    + (f" (or with --source {preset})." if preset else "."))
        return line + " The warning above says why."

    def _guarded(self, items: Iterator, warnings: list[str]) -> Iterator:
        """A parser that raises loses nothing it already yielded; the rest is said, not hidden."""
        try:
            yield from items
        except Exception as error:  # a parser bug must never lose the other items
            message = f"parser stopped: {type(error).__name__}: {error}"
            warnings.append(message)
            self.ctx.warn(message)

    def _child(self, child: Child, parent: StoredOriginal, parser: Parser, own_id: str, depth: int,
               waiting: _Waiting) -> None:
        """Store a child now (its parent's parser stands where it yielded it: a zip still open) and
        read it: at once, or, when its parser prefetches (an email, parsed by a worker process),
        once CHILDREN_AHEAD more are stored, so the messages of a mailbox parse on the second core.
        A child that is a span of its stored parent (an mbox's message) may be stored by the storing
        process instead, and taken from it once CHILDREN_AHEAD more are asked for."""
        parent_record = (record_id(parent.source_key, parent.digest.blake3, child.parent_locator, parser.label)
                         if child.parent_locator else own_id)
        parent_record = self.held_as.get(parent_record, parent_record)
        if depth + 1 > MAX_DEPTH:
            self.ctx.warn(f"{child.locator}: nested too deeply; not extracted (the parent original is kept whole)")
            return
        storer = self.storer() if child.span is not None else None
        if storer is not None:
            answer = storer.submit_span(parent.path, *child.span, child.media_type, child.filename)
            waiting.storing.append((child, parent, depth + 1, parent_record, answer))
            self._stored_waiting(waiting, CHILDREN_AHEAD)
            return
        try:
            stored, new, reader = self.store_child(child, parent)
        except OSError as error:
            self.ctx.warn(f"{child.locator}: could not be extracted ({error})")
            return
        self._read_child(stored, new, reader or registry.sniff(stored.head(), stored.filename), depth + 1,
                         parent_record, waiting)

    def _stored_waiting(self, waiting: _Waiting, keep: int) -> None:
        """Take what the storing process kept of the children, in order, past the last `keep`."""
        while len(waiting.storing) > keep:
            child, parent, depth, parent_record, answer = waiting.storing.popleft()
            try:
                kept = answer.result()
                if kept is not None:
                    stored, new, reader = self.kept_apart(self._child_original(child, parent, None), kept)
                    stored = self._as_child(stored, child)
                else:               # not kept there after all: here
                    stored, new, reader = self.store_child(child, parent)
            except OSError as error:
                self.ctx.warn(f"{child.locator}: could not be extracted ({error})")
                continue
            self._read_child(stored, new, reader or registry.sniff(stored.head(), stored.filename), depth,
                             parent_record, waiting)

    def _read_child(self, stored: StoredOriginal, new: bool, reader: Parser, depth: int, parent_record: str,
                    waiting: _Waiting) -> None:
        if not reader.prefetches:
            self.process(stored, new, reader, depth=depth, parent_record=parent_record)
            return
        reader.prefetch(stored, self.ctx)
        waiting.stored.append((stored, new, reader, depth, parent_record))
        self._read_waiting(waiting, CHILDREN_AHEAD)

    def _read_waiting(self, waiting: _Waiting, keep: int) -> None:
        while len(waiting.stored) > keep:
            stored, new, reader, depth, parent_record = waiting.stored.popleft()
            self.process(stored, new, reader, depth=depth, parent_record=parent_record)

    def _add_record(self, record: Record, stored: StoredOriginal, parser: Parser, chain: str, own_id: str,
                    parent_record: str | None) -> int:
        rid = own_id if record.locator is None else record_id(stored.source_key, stored.digest.blake3,
                                                              record.locator, parser.label)
        if self._held_elsewhere(record.identity, rid):
            return 0
        named, layers = self._derived(record, stored)
        row, warning = record_row(record, rid, stored, parser.label, chain, own_id, parent_record, self.source_name,
                                  named)
        return self._keep(row, warning, layers)

    def _add_built(self, built: BuiltRecord) -> int:
        """A record a worker built (ingest/apart.py): kept unless the case holds its event."""
        if self._held_elsewhere(built.row[8], built.row[0]):
            return 0
        return self._keep(*built)

    def _held_elsewhere(self, identity: str | None, rid: str) -> bool:
        """Does another record hold this event already? (Else it is now this record's.)"""
        if not identity or self.reparsing:
            return False
        held = (self.batch.identities.get(identity) or self.identities_known.get(identity)
                or self.identities_unsaved[0].get(identity) or self.identities_unsaved[1].get(identity))
        if held and held != rid:     # (held == rid: this very record, from a run that was stopped)
            self.summary.duplicates += 1
            self.held_as[rid] = held
            return True
        # also kept past a commit (which empties the batch) until the run read ahead is done
        self.batch.identities[identity] = self.identities_known[identity] = rid
        return False

    def _keep(self, row: tuple, warning: str | None, layers: list[tuple] = ()) -> int:
        """The record into the batch, with the rows of the layers derived for it (see `_derived`)."""
        if warning:
            self.ctx.warn(warning)
        batch = self.batch
        # nothing between them and the record: a stop (which commits the batch) keeps all or none
        for object_row, derived_row in layers:
            batch.objects.append(object_row)
            batch.derived.append(derived_row)
            batch.derived_pending[derived_row[:3]] = derived_row[3]
        batch.records.append(row)
        self.summary.records += 1
        return 1

    def _derived(self, record: Record, stored: StoredOriginal) -> tuple[list[dict], list[tuple]]:
        """Store what the parser derived (an OCR text layer): (each as the record names it, by hash;
        the (object row, derived row) of each, which `_keep` adds with the record)."""
        named, layers = [], []
        for artifact in record.derived:
            digest = self.case.objects.put_bytes(artifact.data).digest
            layers.append(((digest, artifact.media_type, "derived", iso_utc(utc_now())),
                           (stored.digest.blake3, artifact.type, artifact.tool, digest.blake3)))
            named.append({"type": artifact.type, "blake3": digest.blake3, "tool": artifact.tool})
        return named, layers

    @staticmethod
    def _own_record(stored: StoredOriginal, fatal: str | None, warnings: list[str], count: int) -> Record:
        """The record every original has, when its parser did not make one itself."""
        meta = {key: value for key, value in stored.source_meta.items()}
        if warnings:
            meta["warnings"] = warnings[:50]
        kind = "unparsed" if fatal and count == 0 else (stored.kind_hint or "file")
        if kind == "unparsed":
            meta["error"] = fatal
        record = Record(kind=kind, metadata=meta)
        date_by_file_time(record, stored.source_meta)
        return record

    def _original_row(self, stored, parser, depth, parent_record, fingerprint) -> dict:
        return dict(source_key=stored.source_key, blake3_hex=stored.digest.blake3, adapter=self.source_name,
                    parser=parser.label if parser else None, filename=stored.filename, fingerprint=fingerprint,
                    source_meta=stored.source_meta, acquired_at=acquired_text(stored.acquired_at),
                    parent_record=parent_record, kind_hint=stored.kind_hint, depth=depth)


def run(case: Case, source: Source, parser: Parser | None = None, *, progress: Progress | None = None) -> RunSummary:
    """Acquire everything `source` offers into `case`; `parser=None` sniffs each original.

    A held original nobody has truly read (a wrong --source earlier) is read again when
    `parser` accepts it, its old records superseded, never deleted."""
    pipeline = Pipeline(case, source.name, progress, named=parser)
    pipeline.ctx.collect_unread = parser is not None
    window: deque = deque()

    def drain(limit: int) -> None:
        while len(window) > limit:
            stored, new, original = window.popleft()
            pipeline.process(stored, new, parser_for(stored), peer=original.peer, fingerprint=original.fingerprint,
                             state=original.state)
            if pipeline.batch.due():
                pipeline.batch.commit()

    chosen: dict[str, Parser] = {}

    def parser_for(stored: StoredOriginal) -> Parser:
        if parser is not None:
            return parser
        key = stored.source_key
        if key not in chosen:
            chosen[key] = registry.sniff(stored.head(), stored.filename, None)
        return chosen.pop(key)

    def stored_one(original: Original, storing: Future) -> None:
        try:
            stored, new = storing.result()
        except (OriginalChanged, OSError) as error:
            if case.storage_trouble(error, writing=False):
                drain(0)        # what was stored before it is still read and kept
                raise           # the case's disk, not this item: nothing after it could be kept either
            reason = str(error) if isinstance(error, OriginalChanged) else (error.strerror or str(error))
            pipeline.ctx.failed(original.filename or original.source_key, reason)
            return
        if original.container:
            pipeline.ctx.acquired(original.container)
        if parser is None and getattr(storing, "sniffed", None) is not None:
            chosen[stored.source_key] = storing.sniffed      # found by the storing process
        selected = parser_for(stored)
        chosen[stored.source_key] = selected
        if selected.prefetches and not case.index.object_parsed(stored.digest.blake3):
            selected.prefetch(stored, pipeline.ctx)
        window.append((stored, new, original))
        drain(WINDOW)

    # Originals with streams of their own are stored on a second thread while this one parses and
    # commits the ones before (hashing, writing and SQLite release the GIL), except small ones
    # (STORE_HERE_BELOW), stored by the storing process or here: each is still taken in order, and
    # its records commit only after the sync that makes its object durable.
    here = _Inline()
    storer, ahead = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="store"), STORE_AHEAD) \
        if source.separate_streams else (here, 0)
    elsewhere = _StoredElsewhere(pipeline)
    storing: deque = deque()
    with storer, pipeline.committing():
        try:
            for original in source.originals(pipeline.ctx):
                pipeline.handed += 1
                size = original.source_meta.get("size")
                small = isinstance(size, int) and size < STORE_HERE_BELOW
                storing.append((original, (source.separate_streams and elsewhere.submit(original))
                                or (here if small else storer).submit(pipeline.store, original)))
                while len(storing) > ahead:
                    stored_one(*storing.popleft())
            while storing:
                stored_one(*storing.popleft())
        except BaseException:
            for _original, future in storing:
                future.cancel()     # not begun: never stored; begun: stored, and adopted by the next run
            raise
        drain(0)
    if parser is not None and pipeline.ctx.unread_held:
        again = [row for row in pipeline.ctx.unread_held if row["parser"] != parser.label
                 and parser.sniff(_stored_from_row(case, row).head(), row["filename"])]
        if again:
            read = _read_again(case, again, lambda _row: parser, source.name, progress, pipeline.summary)
            pipeline.summary.notes.append(f"{read} original(s) already in the case but not read before were read "
                                          f"now as {parser.name}; what was said of them before is kept, superseded.")
    return pipeline.summary


class _Waiting:
    """An original's children between being found and being read: being stored by the storing
    process (in order, with its answer), and stored, waiting while their parser prefetches."""

    def __init__(self):
        self.storing: deque = deque()
        self.stored: deque = deque()


class _StoredElsewhere:
    """Originals under STORE_HERE_BELOW that the storing process (Pipeline.storer) can keep: a
    local file (read there) or bytes already in memory (an IMAP message, sent there)."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    def submit(self, original: Original) -> _StoredApart | None:
        """Handed to the storing process; None: not for it, or it is not ready (stored here then)."""
        stream, size = original.stream, original.source_meta.get("size")
        if isinstance(stream, WatchedRead) and isinstance(size, int) and size < STORE_HERE_BELOW:
            storer = self.pipeline.storer()
            return storer and _StoredApart(self.pipeline, original, storer.submit(stream))
        if isinstance(stream, io.BytesIO) and stream.getbuffer().nbytes < STORE_HERE_BELOW:
            storer = self.pipeline.storer()
            return storer and _StoredApart(self.pipeline, original, storer.submit_bytes(
                stream.getvalue(), original.declared_type, original.filename))
        return None


class _StoredApart:
    """An original the storing process keeps: (stored, new) when taken, or stored here after all
    (a file changed while read there, or the process is gone). `sniffed`: the parser the worker found
    for it (a run that names none reads it with that one)."""

    def __init__(self, pipeline: Pipeline, original: Original, answer):
        self.pipeline, self.original, self.answer = pipeline, original, answer
        self.sniffed: Parser | None = None

    def result(self) -> tuple[StoredOriginal, bool]:
        kept = self.answer.result()
        if kept is None:    # (an object the other process named and did not say so is found in place: synced)
            return self.pipeline.store(self.original)
        self.original.stream.close()      # a file opened when it was found, read there
        stored, new, self.sniffed = self.pipeline.kept_apart(self.original, kept)
        return stored, new

    def cancel(self) -> bool:
        return self.answer.cancel()


class _Inline:
    """An executor that runs each call at once: for sources whose streams share one handle, and
    for small files (cheaper stored here than handed to a thread)."""

    def submit(self, call, *args) -> Future:
        done: Future = Future()
        try:
            done.set_result(call(*args))
        except Exception as error:      # handed to whoever takes the result, as a thread's would be
            done.set_exception(error)       # (Ctrl-C stops the run at once, not when the result is taken)
        return done

    def __enter__(self):
        return self

    def __exit__(self, *_exc) -> None:
        return None


def reparse(case: Case, parser_name: str | None = None, *, progress: Progress | None = None) -> RunSummary:
    """Re-derive records from every stored original with today's parsers; old records are
    superseded (kept, marked), never deleted. An original nobody truly read (no parser, only the
    generic file parser, or kept `unparsed`) is sniffed again, so a wrong --source is mended."""
    rows = list(case.index.originals(parser_name))
    unread = {(row["source_key"], row["blake3"]) for row in case.index.unread_originals()}

    def parser_for(row) -> Parser:
        old_name = (row["parser"] or "file").split(" ")[0]
        if (row["source_key"], row["blake3"]) in unread and not parser_name:
            return registry.sniff(_stored_from_row(case, row).head(), row["filename"])
        current = registry.parser(old_name)()
        if row["depth"] > 0 and old_name == "file":
            return registry.sniff(_stored_from_row(case, row).head(), row["filename"])
        return current

    summary = RunSummary()
    _read_again(case, rows, parser_for, "reparse", progress, summary, parser_name=parser_name)
    return summary


def _read_again(case: Case, rows: list, parser_for, source_name: str, progress: Progress | None,
                summary: RunSummary, *, parser_name: str | None = None) -> int:
    """Parse held originals again (`parser_for(row)` says with what); returns how many were."""
    pipeline = Pipeline(case, source_name, progress, reparsing=True, summary=summary)
    pipeline.progress.total(len(rows))
    done: set[tuple[str, str]] = set()
    reparsed = 0
    with pipeline.committing():
        for row in rows:
            if (row["source_key"], row["blake3"]) in done:
                continue
            done.add((row["source_key"], row["blake3"]))
            current = parser_for(row)
            if current.label == row["parser"]:
                pipeline.summary.already_held += 1
                pipeline.progress.advance(row["filename"] or row["source_key"])
                continue
            stored = _stored_from_row(case, row)
            reparsed += 1
            pipeline.handed += 1
            pipeline.process(stored, False, current, depth=row["depth"], parent_record=row["parent_record"])
            if pipeline.batch.due():
                pipeline.batch.commit()
        pipeline.summary.reparsed = reparsed
        pipeline.batch.entries.append(case.custody_entry("reparse", {}, {
            "parser": parser_name, "originals_reparsed": reparsed,
            "records": pipeline.summary.records}))
    return reparsed


def _stored_from_row(case: Case, row) -> StoredOriginal:
    obj = case.index.object(row["blake3"])
    path = case.objects.path(row["blake3"])
    return StoredOriginal(digest=Digest(obj["blake3"], obj["sha256"], obj["size"]), path=path,
                          source_key=row["source_key"], filename=row["filename"], media_type=obj["media_type"],
                          source_meta=json.loads(row["source_meta"]),
                          acquired_at=datetime.fromisoformat(row["acquired_at"].replace("Z", "+00:00")),
                          kind_hint=row["kind_hint"])


"""`ingest watch DIR`: keep each new file in a folder as soon as it is completely written.

    watch_folder(case, directory, "screenshots", once=False, progress_factory=..., report=print)

The folder is only read: nothing in it is moved, renamed, deleted or even has its
access time changed (the files source opens with O_NOATIME). On start it catches
up with files added while it was not running; the files source's fingerprint
(size, mtime, inode) makes files already kept cost one `stat` each.

A file is taken once nothing has written to it for SETTLE_S seconds, so a
screenshot still being synced or copied is not kept half-written (and if it does
change while being read, the pipeline notices and reads it again). Each batch of
ready files is one pipeline run, so it is committed and logged in the custody log
as soon as it is kept, rather than waiting for the next file to arrive.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterator

from ingest.kit.localfiles import fingerprint, original_for, regular_files
from ingest.kit import registry
from ingest.kit.adapter import Source
from ingest.kit.context import Context
from ingest.case import Case
from ingest.model.errors import SourceError, UsageError
from ingest.pipeline import Progress, RunSummary, run

SETTLE_S = 2.0          # quiet time after the last write before a file counts as complete
POLL_S = 0.25           # how often files waiting to settle are looked at again
RESCAN_S = 60.0         # a full look at the folder, in case the system dropped events (a huge burst)
REPORT_NAMES = 10       # name each kept file up to this many per batch, then just count
# Partial downloads and editor scratch files are renamed to their real name when complete.
PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".swp")


def is_candidate(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and not name.lower().endswith(PARTIAL_SUFFIXES)


class Pending:
    """Files seen but not yet kept, each with the moment its size and mtime last changed."""

    def __init__(self, case: Case, root: str):
        self.case = case
        self.root = root
        self.case_root = str(case.root.resolve())
        self.changed: dict[str, tuple[str, float]] = {}
        # What this watch already handed to the pipeline: late events for a file already taken
        # (its last writes, its close) must not take it again.
        self.taken: dict[str, str] = {}
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()

    def __len__(self) -> int:
        return len(self.changed)

    def wanted(self, path: str) -> bool:
        return is_candidate(path) and not (path == self.case_root or path.startswith(self.case_root + os.sep))

    def saw(self, path: str) -> None:
        """Called from watchdog's thread: only queue it, the main thread does the looking."""
        self.events.put(path)

    def note(self, path: str, info: os.stat_result) -> None:
        mark = fingerprint(info)
        earlier = self.changed.get(path)
        if earlier is None or earlier[0] != mark:
            self.changed[path] = (mark, time.monotonic())

    def take_events(self) -> None:
        while True:
            try:
                path = self.events.get_nowait()
            except queue.Empty:
                return
            if os.path.isdir(path):
                self.scan(path)     # a folder moved in whole brings files no event named
            elif self.wanted(path):
                self.look(path)

    def look(self, path: str) -> None:
        try:
            info = os.stat(path)
        except OSError:
            self.changed.pop(path, None)     # gone again (a temporary file); nothing to keep
            return
        mark = fingerprint(info)
        if os.path.isfile(path) and self.taken.get(path) != mark and not self.case.index.held(path, mark):
            self.note(path, info)

    def scan(self, folder: str) -> None:
        for base, dirs, files in os.walk(folder):
            dirs[:] = [name for name in dirs if self.wanted(os.path.join(base, name))]
            for name in files:
                path = os.path.join(base, name)
                if self.wanted(path) and path not in self.changed:
                    self.look(path)

    def ready(self) -> Iterator[tuple[str, os.stat_result]]:
        """Files nobody has written to for SETTLE_S (by our own clock, or by their mtime)."""
        now, wall = time.monotonic(), time.time()
        for path, (mark, since) in sorted(self.changed.items()):
            try:
                info = os.stat(path)
            except OSError:
                del self.changed[path]
                continue
            if fingerprint(info) != mark:
                self.changed[path] = (fingerprint(info), now)
            elif now - since >= SETTLE_S or wall - info.st_mtime >= SETTLE_S:
                del self.changed[path]
                self.taken[path] = mark
                yield path, info


class WatchSource(Source):
    """The watched folder as a source: first what is there, then what becomes ready."""

    name = "watch"

    def __init__(self, pending: Pending, stop: threading.Event, *, catch_up: bool):
        super().__init__([Path(pending.root)])
        self.pending = pending
        self.stop = stop
        self.catch_up = catch_up
        self.offered: list[tuple[str, str]] = []

    def originals(self, ctx: Context):
        if self.catch_up:
            for path, info in regular_files(self.paths, ctx):
                if not self.pending.wanted(path) or ctx.already_held(path, fingerprint(info)):
                    continue
                self.pending.note(path, info)
        while not self.stop.is_set():
            self.pending.take_events()
            batch = list(self.pending.ready())
            if not batch:
                return      # nothing more is ready: let the pipeline finish and commit this batch
            for path, info in batch:
                if self.stop.is_set():
                    return
                self.offered.append((path, fingerprint(info)))
                yield original_for(path, info)


def watch_folder(case: Case, directory, source_name: str = "screenshots", *, once: bool = False,
                 progress_factory: Callable | None = None, report: Callable[[str], None] = lambda text: None
                 ) -> RunSummary:
    """Keep every file in `directory` now and (unless `once`) every file that appears later,
    until Ctrl-C or SIGTERM; what was kept up to then is committed."""
    source_cls, parser_cls = registry.resolve_preset(source_name)
    if source_cls.name != "files":
        raise UsageError(f"`ingest watch` keeps files from a folder; --source {source_name} does not read files.",
                         hint="Use --source screenshots, or another source that reads files (files, sms, whatsapp).")
    root = os.path.abspath(directory)
    if not os.path.isdir(root):
        raise SourceError(f"{directory} is not a folder.", hint="Name the folder to watch, e.g. ~/Pictures/Screenshots.",
                          location=str(directory))
    parser = parser_cls() if parser_cls else None
    pending = Pending(case, root)
    stop = threading.Event()
    total = RunSummary()
    with _stop_on_signals(stop, total), _observer(pending, root, enabled=not once), \
            (progress_factory or _quiet)(f"Watching {root}") as progress:
        if not once:
            report(f"Watching {root}. New files are kept as soon as they are complete; nothing in the folder "
                   "is changed. Press Ctrl-C to stop.")
        catch_up = True
        last_scan = time.monotonic()
        while not stop.is_set():
            if catch_up or len(pending) or not pending.events.empty():
                source = WatchSource(pending, stop, catch_up=catch_up)
                total.add(run(case, source, parser, progress=progress))
                _report_kept(case, source.offered, report)
                catch_up = False
            if once and not len(pending):
                break
            if not once and time.monotonic() - last_scan >= RESCAN_S:
                pending.scan(root)
                last_scan = time.monotonic()
            stop.wait(POLL_S)
    if not once:
        report("Stopped watching. Everything kept is safe in the case.")
    return total


def _quiet(description: str):
    return nullcontext(Progress())


def _report_kept(case: Case, offered: list[tuple[str, str]], report: Callable[[str], None]) -> None:
    kept = [path for path, mark in offered if case.index.held(path, mark)]
    if len(kept) > REPORT_NAMES:
        report(f"Kept {len(kept)} new files.")
    else:
        for path in kept:
            report(f"Kept {os.path.basename(path)}")


@contextmanager
def _observer(pending: Pending, root: str, *, enabled: bool):
    if not enabled:
        yield
        return
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event):
            if event.event_type in ("created", "modified", "closed", "moved"):
                pending.saw(os.fsdecode(getattr(event, "dest_path", "") or event.src_path))

    observer = Observer()
    observer.schedule(Handler(), root, recursive=True)
    observer.start()
    try:
        yield
    finally:
        observer.stop()
        observer.join()


@contextmanager
def _stop_on_signals(stop: threading.Event, summary: RunSummary):
    """Ctrl-C or SIGTERM: finish the files in hand, commit, return (Ctrl-C marks the summary
    interrupted, so the CLI exits 130 like `run`). A second Ctrl-C stops at once (what was
    committed is safe; a re-run keeps the rest)."""

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        summary.interrupted = signum == signal.SIGINT
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

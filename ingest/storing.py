"""Small local files, messages of a stored mbox and IMAP messages, stored by a second process while
this one parses, logs and commits them.

    storer = Storer.start(case.objects)     # None on one core, or where no second process can start
    if storer.ready():                      # it has started (until then files are stored here)
        answer = storer.submit(read)        # read: a local file (WatchedRead), opened, not yet read
        answer = storer.submit_span(path, first, end, declared, filename)   # bytes of a stored object
        answer = storer.submit_bytes(data, declared, filename)              # bytes held here (IMAP)
        kept = answer.result()              # a Kept, or None: store it here after all

Of the ~0.7 ms a small file cost the one thread that parses, about half was keeping it: reading,
both hashes, a temp file written, read back and renamed, its media type, and which parser reads
it. Another thread would share the GIL (each of a file's dozen system calls hands it over; that
measured slower than one thread); a process does not. An mbox's message costs about the same
(5,000 messages: this process's CPU 7.4-7.6 s -> 5.5-5.9 s). The worker runs the same ObjectStore code
on the same store, so an object it names is checked exactly as one named here.

Durability stays this process's: the worker never syncs, and each object it names is handed to
this process's store (`ObjectStore.sync_later`), whose sync before every commit makes it
durable (syncfs covers every process's writes; a few objects are fsynced by name). Answers come
in the order asked. A file that changed while it was read, or anything else the worker could not
do, is stored here instead; a disk error (full, read-only, failing) is raised here as the same
error. A killed run leaves at most objects the worker named and nobody committed, which the next
run adopts, as it does those of a killed run without a worker.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from ingest.kit import registry
from ingest.kit.adapter import Parser
from ingest.kit.localfiles import WatchedRead
from ingest.media import media_type
from ingest.model.records import Digest
from store.objects import ObjectStore, Put

OUT = 16        # files asked of the worker and not yet answered, at most (a pipe never fills both ways)
READY = b"ready"
# An original declared to be of one of these types (an mbox's message, a forwarded message/rfc822
# part, an IMAP message) whose bytes look like the named parser's format takes that type without
# libmagic, and a child is read by that parser without asking the others first: a message quoting
# an SMS backup's XML is still a message.
DECLARED_READERS = {"message/rfc822": "email"}


class Kept(NamedTuple):
    put: Put
    media_type: str | None      # None: finding it failed there (found here instead)
    acquired_at: datetime
    parser: str | None          # the parser that sniffs these bytes and this name, None if unknown


class Storer:
    """The storing process and the pipe to it, seen from the run."""

    def __init__(self, objects: ObjectStore, process, pipe):
        self.objects = objects
        self.process = process
        self.pipe = pipe
        self.asked = 0              # files asked for; each is numbered in order
        self.received = 0           # answers read off the pipe (they come in the order asked)
        self.answers: dict[int, object] = {}    # read, not yet taken
        self.gone = False           # the worker died or stopped answering: the rest are stored here
        self.answering = False      # it said it is ready (its imports take ~0.3 s; files are stored here until)

    @classmethod
    def start(cls, objects: ObjectStore) -> Storer | None:
        """The worker; None on one core or where no second process can start."""
        if len(os.sched_getaffinity(0)) < 2:
            return None
        context = multiprocessing.get_context("forkserver")    # never a fork of a process with threads
        ours, theirs = context.Pipe(duplex=True)
        try:
            process = context.Process(target=_serve, args=(theirs, str(objects.root)), name="ingest store",
                                      daemon=True)
            process.start()
        except Exception:       # no second process here (a sandbox, no /dev/shm): stored here
            ours.close()
            return None
        finally:
            theirs.close()
        return cls(objects, process, ours)

    def ready(self, *, wait: bool = False) -> bool:
        """Has the worker started and said so? Waits for that only when told to."""
        if not self.answering and not self.gone:
            try:
                if wait or self.pipe.poll():
                    self.answering = self.pipe.recv_bytes() == READY
                    self.gone = not self.answering
            except (EOFError, OSError):
                self.gone = True
        return self.answering

    def submit(self, read: WatchedRead) -> _Answer:
        """A local file, found (and opened) but not read."""
        seen = read.before
        return self._asked(("file", read.path, seen.st_size, seen.st_mtime_ns, seen.st_ino, seen.st_dev))

    def submit_span(self, path: Path, first: int, end: int, declared: str | None, filename: str | None) -> _Answer:
        """Bytes first..end-1 of a stored object (an mbox's message), which `declared` says what they are."""
        return self._asked(("span", str(path), first, end, declared, filename))

    def submit_bytes(self, data: bytes, declared: str | None, filename: str | None) -> _Answer:
        """Bytes this process holds (an IMAP message): sent there, kept there."""
        return self._asked(("bytes", data, declared, filename))

    def _asked(self, job: tuple) -> _Answer:
        self.ready(wait=True)       # asked before it said it is ready: wait for that
        while self.asked - self.received >= OUT and self._receive():
            pass
        number = self.asked
        if not self.gone:
            try:
                self.pipe.send_bytes(pickle.dumps((number, *job)))
            except OSError:
                self.gone = True
        self.asked += 1
        return _Answer(self, number)

    def _receive(self) -> bool:
        """Read the next answer; False when there is none to come (the worker is gone)."""
        if self.gone or self.received == self.asked:
            return False
        try:
            number, *answer = pickle.loads(self.pipe.recv_bytes())
        except (EOFError, OSError, pickle.UnpicklingError):
            self.gone = True
            return False
        self.answers[number] = answer[0] if len(answer) == 1 else answer
        self.received += 1
        return True

    def take(self, number: int) -> Kept | None:
        """The file stored, or None: store it here instead. A disk error the worker met is raised here."""
        while self.received <= number and self._receive():
            pass
        answer = self.answers.pop(number, None)
        if answer is None:
            return None
        if isinstance(answer, OSError):
            raise answer
        blake3_hex, sha256_hex, size, new, head, media, when, parser = answer
        self.objects.sync_later(blake3_hex)    # named there, or found in place there: synced here
        return Kept(Put(Digest(blake3_hex, sha256_hex, size), new, head), media,
                    datetime.fromtimestamp(when, timezone.utc), parser)

    def close(self) -> None:
        if not self.answering:  # still starting: it has stored nothing, and a short run does not wait for it
            self.process.kill()
        self.pipe.close()       # the worker sees the end of its pipe and stops
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class _Answer:
    """A file asked of the worker: its answer is read off the pipe when it is needed."""

    def __init__(self, storer: Storer, number: int):
        self.storer, self.number = storer, number

    def result(self) -> Kept | None:
        return self.storer.take(self.number)

    def cancel(self) -> bool:
        return False        # begun or not, the worker may store it: adopted by the next run


def declared_reader(declared: str | None, head: bytes) -> Parser | None:
    """The parser a declared type names (DECLARED_READERS), when the bytes themselves (not a name)
    are that parser's format; None otherwise."""
    name = DECLARED_READERS.get(declared or "")
    reader = registry.parser(name)() if name else None
    return reader if reader is not None and reader.sniff(head, None) else None


def _described(head: bytes, declared: str | None, filename: str | None) -> tuple[str, str]:
    """(media type, name of the parser that reads it), as the pipeline decides them."""
    reader = declared_reader(declared, head)
    if reader is not None:
        return declared, reader.name
    return media_type(head, filename), registry.sniff(head, filename).name


class _Span:
    """Bytes first..end-1 of a stored object, read without moving any shared file position."""

    def __init__(self, path: str, first: int, end: int):
        self.fd = os.open(path, os.O_RDONLY)
        self.at, self.end = first, end

    def readinto(self, buffer) -> int:
        count = os.preadv(self.fd, [memoryview(buffer)[:max(0, min(len(buffer), self.end - self.at))]], self.at)
        self.at += count
        return count

    def close(self) -> None:
        os.close(self.fd)


class _Seen(NamedTuple):
    """What was seen of a file when it was found (WatchedRead checks it is unchanged at the end)."""

    st_size: int
    st_mtime_ns: int
    st_ino: int
    st_dev: int


def _serve(pipe, root: str) -> None:
    """In the worker: store each file asked for, answer in order, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the main process's to handle
    objects = ObjectStore(Path(root))
    registry.load()
    pipe.send_bytes(READY)
    while True:
        try:
            number, *job = pickle.loads(pipe.recv_bytes())
        except (EOFError, OSError):     # the run is done (or gone)
            return
        try:
            pipe.send_bytes(pickle.dumps((number, *_kept(objects, *job))))
        except (BrokenPipeError, ConnectionResetError):
            return


def _kept(objects: ObjectStore, kind: str, *details) -> tuple:
    """In the worker: one job done, as the answer's plain values (pickling the Put and a datetime
    cost the main process ~10x more); (error,) for a disk error, (None,) for "store it there"."""
    try:
        if kind == "file":
            path, *seen = details
            read, declared, filename = WatchedRead(path, _Seen(*seen)), None, os.path.basename(path)
        elif kind == "span":
            path, first, end, declared, filename = details
            read = _Span(path, first, end)
        else:
            data, declared, filename = details
            read = io.BytesIO(data)
        try:
            put = objects.put(read)
        finally:
            read.close()
    except OSError as error:        # the disk, or the file: raised in the main process as it is
        return (error,)
    except Exception:               # changed while read, or a bug: stored there instead
        return (None,)
    finally:
        objects.take_unsynced()     # syncing is the main process's (each answer is synced there)
    # a named object is always answered (so it is synced there): what fails after is found there
    media, parser = _or_none(_described, put.head, declared, filename) or (None, None)
    digest = put.digest
    return digest.blake3, digest.sha256, digest.size, put.new, put.head, media, time.time(), parser


def _or_none(function, *args):
    try:
        return function(*args)
    except Exception:
        return None

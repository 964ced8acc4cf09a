"""The chain-of-custody log: append-only JSON Lines, each line naming the BLAKE3 of the one before.

Editing, deleting or reordering a line breaks the chain; dropping lines from the
end is caught by the index, which remembers how many lines there were and the
hash of the last.

A writer checks the log before it appends (`resume`) against a checkpoint the
index committed: the line count, the last line's hash, the byte length and the
BLAKE3 of every byte up to it. The committed bytes are hashed (gigabytes a
second); only the lines after them are parsed and checked one by one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import blake3

from ingest.model.errors import CustodyBroken
from ingest.model.records import canonical_json

GENESIS = "0" * 64
PRIVATE = "private"


def public_line(line: bytes) -> bytes:
    """A line as it may be shown outside the case: its private block (the full local paths and the
    host name) replaced by that block's BLAKE3. The chain runs over this form, so a bundle's log of
    public lines verifies exactly as the case's own; a random nonce in the block keeps a guessed
    path from being confirmed against its hash. Lines without a private block are their own public form."""
    line = line.rstrip(b"\n")
    if b'"private":{' not in line:
        return line
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not _has_private_block(entry):
        return line
    return _public_form(entry)


def _has_private_block(entry) -> bool:
    private = entry.get(PRIVATE) if isinstance(entry, dict) else None
    return isinstance(private, dict) and set(private) != {"blake3"}


def _public_form(entry: dict) -> bytes:
    """The public line of an entry with a private block (see `public_line`), from the entry itself:
    a writer need not parse its own line again (that cost ~50 us a line)."""
    private = {"blake3": blake3.blake3(canonical_json(entry[PRIVATE]).encode()).hexdigest()}
    return canonical_json(dict(entry, **{PRIVATE: private})).encode()


def line_hash(line: bytes) -> str:
    return blake3.blake3(public_line(line)).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    line: int        # 1-based line number in custody.jsonl
    problem: str


@dataclass(frozen=True)
class Checkpoint:
    """A point up to which the log was checked: `lines` lines, the last hashing to `head`,
    `size` bytes in all, whose BLAKE3 is `prefix`. size/prefix are None for a case written
    before checkpoints existed (then the whole log is checked once)."""
    lines: int
    head: str
    size: int | None = None
    prefix: str | None = None


def check_line(number: int, raw: bytes, prev: str) -> tuple[dict | None, str, list[str]]:
    """(entry, hash, problems) of line `number`, which must follow the line hashing to `prev`."""
    digest = line_hash(raw)
    try:
        entry = json.loads(raw)
    except ValueError:
        return None, digest, ["is not valid JSON"]
    problems = []
    if not raw.endswith(b"\n"):
        problems.append("is cut short (no end of line)")
    if not isinstance(entry, dict):
        return None, digest, ["is not a custody entry"]
    if entry.get("seq") != number:
        problems.append(f"has sequence number {entry.get('seq')}, expected {number}")
    if entry.get("prev") != prev:
        problems.append("does not follow from the line before it (hash chain broken: "
                        "a line was edited, removed or moved)")
    if canonical_json(entry).encode() != raw.rstrip(b"\n"):
        problems.append("is not in canonical form (it was rewritten)")
    return entry, digest, problems


class CustodyLog:
    def __init__(self, path: Path):
        self.path = path
        self._count: int | None = None
        self._head = GENESIS
        self._prefix: blake3.blake3 | None = None   # BLAKE3 of every byte so far, once `resume` checked them
        self._size = 0
        self._fd: int | None = None    # open from a commit's first line to its sync (one open a commit, not a line)

    def tail(self) -> tuple[int, str]:
        """(number of lines, hash of the last line), read from the end of the file."""
        if self._count is None:
            self._count, self._head = 0, GENESIS
            last = self._last_line()
            if last is not None:
                self._count = int(json.loads(last)["seq"])
                self._head = line_hash(last)
        return self._count, self._head

    def _last_line(self) -> bytes | None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        with open(self.path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            step = 65536
            position = end
            data = b""
            while position > 0:
                position = max(0, position - step)
                handle.seek(position)
                data = handle.read(end - position)
                if data.rstrip(b"\n").count(b"\n") >= 1 or position == 0:
                    break
            return data.rstrip(b"\n").rsplit(b"\n", 1)[-1]

    def resume(self, checkpoint: Checkpoint) -> list[ChainProblem]:
        """Check the log from `checkpoint` on before appending to it. Returns what is wrong (then
        nothing may be appended); otherwise the log is ready to append to and `checkpoint()`
        describes it, including lines after the checkpoint (written by a run that was killed)."""
        self._count, self._head, self._size = 0, GENESIS, 0
        self._prefix = blake3.blake3()
        problems: list[ChainProblem] = []
        if not self.path.exists():
            if checkpoint.lines:
                problems.append(ChainProblem(1, f"the log is missing; the index recorded {checkpoint.lines} lines"))
            return problems
        with open(self.path, "rb") as handle:
            number, prev = 0, GENESIS
            if checkpoint.size is not None and checkpoint.lines:
                committed = handle.read(checkpoint.size)
                self._prefix.update(committed)
                if len(committed) < checkpoint.size or self._prefix.hexdigest() != checkpoint.prefix:
                    return [ChainProblem(checkpoint.lines, "a line up to this one was changed or removed "
                                                           "since it was committed")]
                number, prev, self._size = checkpoint.lines, checkpoint.head, checkpoint.size
            for raw in handle:
                number += 1
                _entry, digest, wrong = check_line(number, raw, prev)
                problems += [ChainProblem(number, problem) for problem in wrong]
                if number == checkpoint.lines and digest != checkpoint.head:
                    problems.append(ChainProblem(number, "is not the line the index recorded as the head of the log"))
                self._prefix.update(raw)
                self._size += len(raw)
                prev = digest
            if number < checkpoint.lines:
                problems.append(ChainProblem(number + 1, f"is missing: the index recorded {checkpoint.lines} lines, "
                                                         f"the log has {number}"))
        self._count, self._head = number, prev
        return problems

    def checkpoint(self) -> Checkpoint:
        """Where the log stands now, for the index to commit (only after `resume`)."""
        return Checkpoint(self._count or 0, self._head, self._size, self._prefix.hexdigest())

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def rewind(self, checkpoint: Checkpoint) -> None:
        """Cut lines written after `checkpoint` whose commit failed (never committed lines only)."""
        self._close()
        if self._prefix is None or self._size == checkpoint.size:
            return
        try:
            os.truncate(self.path, checkpoint.size)
        except OSError:
            self._prefix = None     # the next writer checks the log again from the index's checkpoint
            return
        self.resume(checkpoint)

    def append(self, entry: dict) -> dict:
        """Append one entry (its `seq` and `prev` are filled in here); returns it with its hash.

        Every byte is written or none: a failed write (a full disk) is cut off again."""
        if self._prefix is None:
            wrong = self.resume(Checkpoint(0, GENESIS))
            if wrong:
                raise CustodyBroken(wrong[0].line, wrong[0].problem)
        count, head = self._count, self._head
        entry = dict(entry, seq=count + 1, prev=head)
        line = canonical_json(entry).encode() + b"\n"
        public = _public_form(entry) if _has_private_block(entry) else line[:-1]
        if self._fd is None:
            # Only the first line creates the log: a log removed mid-run is not quietly begun again.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | (os.O_CREAT if count == 0 else 0), 0o600)
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except BaseException:
            os.ftruncate(self._fd, self._size)
            self._close()
            raise
        self._prefix.update(line)
        self._size += len(line)
        self._count, self._head = count + 1, blake3.blake3(public).hexdigest()
        return dict(entry, hash=self._head)

    def sync(self) -> None:
        """Make the lines appended so far durable, and end the commit's hold on the file."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            finally:
                self._close()
            return
        if self.path.exists():
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def drop_partial_tail(self) -> bytes:
        """A kill mid-write can leave a last line with no newline: cut it, return what was cut."""
        if not self.path.exists():
            return b""
        with open(self.path, "rb+") as handle:
            end = handle.seek(0, os.SEEK_END)
            position, cut = end, b""
            while position > 0:            # read back from the end only as far as the last newline
                step = min(65536, position)
                position -= step
                handle.seek(position)
                block = handle.read(step)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    cut = block[newline + 1:] + cut
                    position += newline + 1
                    break
                cut = block + cut
            if not cut:
                return b""
            handle.truncate(position)
        self._count = None
        self._prefix = None
        return cut

    def entries(self) -> Iterator[dict]:
        with open(self.path, "rb") as handle:
            for raw in handle:
                yield json.loads(raw)

    def walk(self) -> Iterator[tuple[int, dict | None, str, list[str]]]:
        """Every line with what is wrong with it: (line number, entry, hash, problems)."""
        if not self.path.exists():
            return
        prev = GENESIS
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                entry, digest, problems = check_line(number, raw, prev)
                prev = digest
                yield number, entry, digest, problems

"""The chain-of-custody log: append-only JSON Lines, each line naming the BLAKE3 of the one before.

Editing, deleting or reordering a line breaks the chain; dropping lines from the
end is caught by the index, which remembers how many lines there were and the
hash of the last.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import blake3

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
    private = entry.get(PRIVATE) if isinstance(entry, dict) else None
    if not isinstance(private, dict) or set(private) == {"blake3"}:
        return line
    entry[PRIVATE] = {"blake3": blake3.blake3(canonical_json(private).encode()).hexdigest()}
    return canonical_json(entry).encode()


def line_hash(line: bytes) -> str:
    return blake3.blake3(public_line(line)).hexdigest()


class CustodyLog:
    def __init__(self, path: Path):
        self.path = path
        self._count: int | None = None
        self._head = GENESIS

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

    def append(self, entry: dict) -> dict:
        """Append one entry (its `seq` and `prev` are filled in here); returns it with its hash."""
        count, head = self.tail()
        entry = dict(entry, seq=count + 1, prev=head)
        line = canonical_json(entry).encode()
        with open(self.path, "ab") as handle:
            handle.write(line + b"\n")
        self._count, self._head = count + 1, line_hash(line)
        return dict(entry, hash=self._head)

    def sync(self) -> None:
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
            data = handle.read()
            if not data or data.endswith(b"\n"):
                return b""
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)
        self._count = None
        return data[keep:]

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
                problems = []
                digest = line_hash(raw)
                try:
                    entry = json.loads(raw)
                except ValueError:
                    yield number, None, digest, ["is not valid JSON"]
                    prev = digest
                    continue
                if not raw.endswith(b"\n"):
                    problems.append("is cut short (no end of line)")
                if entry.get("seq") != number:
                    problems.append(f"has sequence number {entry.get('seq')}, expected {number}")
                if entry.get("prev") != prev:
                    problems.append("does not follow from the line before it (hash chain broken: "
                                    "a line was edited, removed or moved)")
                if canonical_json(entry).encode() != raw.rstrip(b"\n"):
                    problems.append("is not in canonical form (it was rewritten)")
                prev = digest
                yield number, entry, digest, problems

"""The `mbox` parser: a mailbox file kept whole as the original, each message in it
handed back as a child original (its exact bytes, located as "bytes FIRST-LAST",
counted from 0 and inclusive) for the email parser to read.

Streamed: the file is scanned line by line and each message is copied out of the
stored original by its byte range, so memory does not grow with the mailbox.

Splitting real mboxes is the hard part. A `From ` line only starts a message when
it looks like an envelope line (`From sender date`, `From -`, `From 1844...@xxx`)
and the next line is a header: "From Russia with love" in a body is not a message.
Netscape-era mboxes carry `Content-Length:`, which is followed when it lands
exactly on the next envelope line or the end of the file, so unescaped `From `
lines inside those bodies stay inside. A message's bytes exclude its envelope line
and the one blank line that separates it from the next (as Python's `mailbox`
does), so the same message exported in two mboxes is the same object.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from ingest.kit.adapter import Parser
from ingest.kit.dating import date_by_file_time
from ingest.model.records import Child, ParseWarning, Record, StoredOriginal
from ingest.kit.registry import register
from ingest.kit.context import Context

from .email import HEADER_LINE, sniff_mail

BOM = b"\xef\xbb\xbf"
# "From " sender [date]: the date, when present, has a time in it ("Mon May  2 16:07:05 2005").
ENVELOPE = re.compile(rb"^From (\S*)(?:[ \t]+(.*?))?[ \t]*\r?\n?$")
ENVELOPE_DATE = re.compile(rb"\d{1,2}:\d{2}")
CONTENT_LENGTH = re.compile(rb"^Content-Length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE)
QUOTED_FROM = re.compile(rb"^>+From ", re.MULTILINE)
BLOCK = 1 << 20
NEEDLE_MAX = 8            # bytes past a block's end read with it, so a needle starting inside it is whole
LINE_LIMIT = 1 << 16      # a line is read this far at most: only its start ever matters here


def is_envelope(line: bytes) -> bool:
    match = ENVELOPE.match(line)
    if not match:
        return False
    rest = match.group(2)
    return not rest or bool(ENVELOPE_DATE.search(rest))


def is_header(line: bytes) -> bool:
    return bool(HEADER_LINE.match(line)) or line.startswith(b">From ")


class ByteRange:
    """A read-only window onto the stored mbox: how a message's bytes reach the store unloaded."""

    def __init__(self, path, start: int, end: int):
        self.handle = open(path, "rb")
        self.handle.seek(start)
        self.left = end - start

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer)[:min(len(buffer), self.left)]
        count = self.handle.readinto(view)
        self.left -= count
        return count

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()


class Scanner:
    """Finds the messages of an mbox as (envelope line, first byte, end byte, has >From) without loading it."""

    def __init__(self, handle: BinaryIO, size: int):
        self.handle = handle
        self.size = size
        self.used_content_length = 0
        self.warnings: list[str] = []
        self.block_start = -1           # the block `line_starts` searches, kept for the next message,
        self.block = b""
        self.found: dict[bytes, tuple[int, int]] = {}   # and per needle: (searched from, found at or -1)

    def messages(self, start: int) -> Iterator[tuple[bytes, int, int, bool]]:
        self.handle.seek(start)
        envelope = self.handle.readline()
        while envelope:
            body_start = self.handle.tell()
            end, quoted, next_envelope = self.one_message(body_start)
            yield envelope, body_start, end, quoted
            envelope = next_envelope

    def one_message(self, body_start: int) -> tuple[int, bool, bytes]:
        """Read one message from just after its envelope line: (end, has >From lines, next envelope or b"")."""
        handle = self.handle
        content_length = None
        while True:                        # the headers, line by line
            line_start = handle.tell()
            line = handle.readline(LINE_LIMIT)
            if not line or line.startswith(b"From ") and is_envelope(line) and is_header_or_end(self.peek()):
                return self.finish(body_start, line_start, False, line)
            if line.strip() == b"":
                if content_length is not None:
                    end = self.follow_content_length(handle.tell(), content_length)
                    if end is not None:
                        return end, False, handle.readline()
                return self.body(body_start, handle.tell())
            if CONTENT_LENGTH.match(line):
                content_length = int(CONTENT_LENGTH.match(line).group(1))

    def body(self, body_start: int, position: int) -> tuple[int, bool, bytes]:
        """The body, searched a block at a time for the only lines that matter: a `From ` line
        that starts the next message, and `>From ` lines (so a 1 GB body is not read line by line)."""
        handle = self.handle
        quoted = False
        for line_start in self.line_starts(position, (b"From ", b">")):
            handle.seek(line_start)
            line = handle.readline(LINE_LIMIT)
            if line.startswith(b">"):
                quoted = quoted or bool(QUOTED_FROM.match(line))
            elif is_envelope(line) and is_header_or_end(self.peek()):
                return self.finish(body_start, line_start, quoted, line)
        return self.finish(body_start, self.size, quoted, b"")

    def first_envelope(self, position: int) -> tuple[int, bytes] | None:
        """(offset, line) of the first line at or after `position` that starts a message."""
        for line_start in self.line_starts(position, (b"From ",)):
            self.handle.seek(line_start)
            line = self.handle.readline(LINE_LIMIT)
            if is_envelope(line) and is_header_or_end(self.peek()):
                return line_start, line
        return None

    def line_starts(self, position: int, prefixes: tuple[bytes, ...]) -> Iterator[int]:
        """Offsets, in order, of the lines at or after `position` (a line start) beginning with a prefix.

        The file is searched a cached block at a time, each needle only as far as its next hit,
        which is remembered: however many messages a block holds, it is searched about once."""
        handle = self.handle
        handle.seek(position)
        if handle.read(max(map(len, prefixes))).startswith(prefixes):
            yield position
        needles = [b"\n" + prefix for prefix in prefixes]
        block_start = position - position % BLOCK
        while block_start < self.size:
            start = max(position - block_start, 0)
            while True:
                # a hit's first byte, its "\n", must lie in this block; the next block finds the rest
                at = min((found for found in (self.find(block_start, needle, start) for needle in needles)
                          if 0 <= found < BLOCK), default=-1)
                if at < 0:
                    break
                yield block_start + at + 1
                start = at + 1
            block_start += BLOCK

    def find(self, block_start: int, needle: bytes, start: int) -> int:
        """block.find(needle, start) in the block at `block_start` (a multiple of BLOCK, read a needle's
        length past its end), answered from the last search for this needle when that one covers it."""
        if self.block_start != block_start:
            self.block = b""            # let the old block go first: one block in memory at a time
            self.handle.seek(block_start)
            self.block = self.handle.read(BLOCK + NEEDLE_MAX)
            self.block_start = block_start
            self.found.clear()
        searched_from, found = self.found.get(needle, (BLOCK + NEEDLE_MAX, -1))
        if not (searched_from <= start and (found < 0 or found >= start)):
            found = self.block.find(needle, start)
            self.found[needle] = (start, found)
        return found

    def finish(self, body_start: int, end: int, quoted: bool, next_envelope: bytes) -> tuple[int, bool, bytes]:
        """The message ends where the next envelope line (or the file) starts, less the one blank line before it."""
        if not next_envelope and end > body_start and not self.ends_with_newline(end):
            self.warnings.append(f"the last message (bytes {body_start}-{end - 1}) is cut off: "
                                 "the file ends in the middle of a line")
        self.handle.seek(max(body_start, end - 3))
        before = self.handle.read(end - max(body_start, end - 3))
        self.handle.seek(end + len(next_envelope))    # the next message starts after its envelope line
        for blank in (b"\n", b"\r\n"):
            start = end - len(blank)
            # the blank line must be a whole line: at the body's start, or right after a line end
            if before.endswith(blank) and start >= body_start and (
                    start == body_start or before[:len(before) - len(blank)].endswith(b"\n")):
                return start, quoted, next_envelope
        return end, quoted, next_envelope

    def follow_content_length(self, body_offset: int, length: int) -> int | None:
        """Trust Content-Length only when it ends where the file ends or, after at most one blank
        line, the next message starts; the handle is then left on that envelope line."""
        handle = self.handle
        end = body_offset + length
        if end <= self.size:
            handle.seek(end)
            line = handle.readline()
            if line in (b"\n", b"\r\n"):
                line = handle.readline()
            if not line or (is_envelope(line) and is_header_or_end(self.peek())):
                self.used_content_length += 1
                handle.seek(handle.tell() - len(line))
                return end
        handle.seek(body_offset)
        return None

    def peek(self) -> bytes:
        position = self.handle.tell()
        line = self.handle.readline()
        self.handle.seek(position)
        return line

    def ends_with_newline(self, offset: int) -> bool:
        position = self.handle.tell()
        self.handle.seek(offset - 1)
        last = self.handle.read(1)
        self.handle.seek(position)
        return last == b"\n"


def is_header_or_end(line: bytes) -> bool:
    return not line or is_header(line)


@register
class MboxParser(Parser):
    name = "mbox"
    version = "1"
    presets = {"mbox": "files"}
    priority = 20   # above `email`: a file of several messages is an mbox, even if it starts like one email

    def sniff(self, head: bytes, filename: str | None) -> bool:
        if filename and filename.lower().endswith(".eml"):
            return False
        first, _sep, rest = head.removeprefix(BOM).partition(b"\n")
        named = bool(filename) and filename.lower().endswith(".mbox")   # then its first message may lack headers
        return first.startswith(b"From ") and is_envelope(first) and (
            named or not rest or is_header(rest.split(b"\n", 1)[0]))

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | Child | ParseWarning]:
        size = stored.digest.size
        # a container: the emails in it are the events, not the mailbox file (see Index.incidents)
        record = Record(kind="file", metadata={"format": "mbox", "container": True})
        date_by_file_time(record, stored.source_meta)
        with stored.open() as handle:
            head = handle.read(8192)
            start = len(BOM) if head.startswith(BOM) else 0
            if start:
                record.metadata["byte_order_mark"] = True
            first_line = head[start:].split(b"\n", 1)[0] + b"\n"
            if size == start or not head[start:].strip():
                record.metadata["messages"] = 0
                ctx.note(f"{stored.filename or 'An mbox'} is an empty mailbox: it was kept, with no messages in it.")
                yield record
                return
            scanner = Scanner(handle, size)
            count = 0
            if not (first_line.startswith(b"From ") and is_envelope(first_line)):
                later = scanner.first_envelope(start)
                if later is not None:   # a damaged first line: what stands before the next message is one
                    second_line = head[start + len(first_line):].split(b"\n", 1)[0]
                    # a line that is no header above one that is: the envelope line, damaged
                    envelope = first_line if not is_header(first_line) and is_header(second_line) else b""
                    end = scanner.finish(start, later[0], False, later[1])[0]
                    yield ParseWarning(f"does not start with a 'From ' line (damaged?); bytes {start}-{end - 1}, "
                                       "before the first message that does, are read as message 1")
                    count = 1
                    yield self.child(stored, envelope, start + len(envelope), end, count)
                    start = later[0]
                elif sniff_mail(head[start:]):
                    yield ParseWarning("does not start with a 'From ' line; read as one message")
                    record.metadata["messages"] = 1
                    yield record
                    yield self.child(stored, b"", start, size, 1)
                    return
                else:
                    yield ParseWarning("not an mbox: it does not start with a 'From ' line", fatal=True)
                    return
            for envelope, first, end, quoted in scanner.messages(start):
                count += 1
                if end <= first:
                    yield ParseWarning(f"message {count} (at byte {first}) is empty: an envelope line with "
                                       "nothing after it")
                    continue
                yield self.child(stored, envelope, first, end, count, quoted)
            for warning in scanner.warnings:
                yield ParseWarning(warning)
        record.metadata["messages"] = count
        if scanner.used_content_length:
            record.metadata["content_length_messages"] = scanner.used_content_length
        yield record

    @staticmethod
    def child(stored: StoredOriginal, envelope: bytes, first: int, end: int, number: int,
              quoted: bool = False) -> Child:
        meta = {"mbox_message": number}
        if envelope:
            meta["mbox_from_line"] = envelope.rstrip(b"\r\n").decode("latin-1")
        if quoted:
            meta["mbox_from_quoted"] = True
        path = stored.path
        return Child(data=None, open=lambda: ByteRange(path, first, end), locator=f"bytes {first}-{end - 1}",
                     filename=f"message-{number:05d}.eml", media_type="message/rfc822", source_meta=meta,
                     span=(first, end))

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

from .email import HEADER_LINE, sniff_mail

BOM = b"\xef\xbb\xbf"
# "From " sender [date]: the date, when present, has a time in it ("Mon May  2 16:07:05 2005").
ENVELOPE = re.compile(rb"^From (\S*)(?:[ \t]+(.*?))?[ \t]*\r?\n?$")
ENVELOPE_DATE = re.compile(rb"\d{1,2}:\d{2}")
CONTENT_LENGTH = re.compile(rb"^Content-Length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE)
QUOTED_FROM = re.compile(rb"^>+From ", re.MULTILINE)


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
        in_headers = True
        quoted = False
        blank_start = None     # where the last line began, if it was blank
        while True:
            line_start = handle.tell()
            line = handle.readline()
            if not line:
                if line_start > body_start and not self.ends_with_newline(line_start):
                    self.warnings.append(f"the last message (bytes {body_start}-{line_start - 1}) is cut off: "
                                         "the file ends in the middle of a line")
                return blank_start if blank_start is not None else line_start, quoted, b""
            if line.startswith(b"From ") and is_envelope(line) and is_header_or_end(self.peek()):
                # the blank line before an envelope separates messages; it is not part of either
                return blank_start if blank_start is not None else line_start, quoted, line
            if in_headers:
                if line.strip() == b"":
                    in_headers = False
                    if content_length is not None:
                        end = self.follow_content_length(handle.tell(), content_length)
                        if end is not None:
                            return end, quoted, handle.readline()
                elif CONTENT_LENGTH.match(line):
                    content_length = int(CONTENT_LENGTH.match(line).group(1))
            elif line.startswith(b">") and QUOTED_FROM.match(line):
                quoted = True
            blank_start = line_start if line in (b"\n", b"\r\n") else None

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
        return first.startswith(b"From ") and is_envelope(first) and (not rest or is_header(rest.split(b"\n", 1)[0]))

    def parse(self, stored: StoredOriginal, ctx) -> Iterator[Record | Child | ParseWarning]:
        size = stored.digest.size
        record = Record(kind="file", metadata={"format": "mbox"})
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
            if not (first_line.startswith(b"From ") and is_envelope(first_line)):
                if sniff_mail(head[start:]):
                    yield ParseWarning("does not start with a 'From ' line; read as one message")
                    record.metadata["messages"] = 1
                    yield record
                    yield self.child(stored, b"", start, size, 1)
                    return
                yield ParseWarning("not an mbox: it does not start with a 'From ' line", fatal=True)
                return
            scanner = Scanner(handle, size)
            count = 0
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
                     filename=f"message-{number:05d}.eml", media_type="message/rfc822", source_meta=meta)

"""Streaming, hostile-input-safe reading of phone-backup XML (SMS Backup & Restore, SuperBackup).

    for tag, attrs, line, depth in elements(handle, ends={"mms"}): ...   # attrs None: an end tag

Built on expat fed in 256 KiB chunks, so memory stays flat however large the backup
(only the current chunk and one element's attributes are held). Safety: any entity
document type declaration stops the read before anything in it is used (a backup
never has one, so one that declares entities is an attack: billion laughs, or an
external entity pointing at a local file); nothing external is ever fetched.

Tolerance, because real backups are not always well-formed XML: numeric references
to UTF-16 surrogate pairs (`&#55357;&#56832;`, how many Android apps write emoji)
are joined into the one character they mean; a lone surrogate, a reference to a
control character or a raw control byte becomes U+FFFD (counted in `repaired`).
"""

from __future__ import annotations

import itertools
import re
from typing import BinaryIO, Iterator
from xml.parsers import expat

CHUNK = 1 << 18
REPLACEMENT = "\ufffd"
# Only suspicious references are matched (surrogates, C0 controls), so ordinary text and
# `&#10;` newlines cost nothing; a high surrogate may be followed by its low half.
_SUSPECT = re.compile(
    rb"&#(?:(5[5-7]\d{3}|[0-8]|1[1-2]|1[4-9]|2\d|3[01])|[xX]0*([dD][89a-fA-F][0-9a-fA-F]{2}|1?[0-9a-fA-F]));"
    rb"(?:&#(?:(5[67]\d{3})|[xX]0*([dD][c-fC-F][0-9a-fA-F]{2}));)?")
_CONTROL_BYTES = bytes(range(9)) + b"\x0b\x0c" + bytes(range(14, 32))
_CONTROL = re.compile(b"[" + re.escape(_CONTROL_BYTES) + b"]")   # searched only when present: a char class scans slowly
_CONTROL_EACH = tuple(bytes([byte]) for byte in _CONTROL_BYTES)
_PAIR_TAIL = 24   # longer than any one numeric reference
_REFERENCE_END = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,6})|([0-9]{1,7}));$")


class UnsafeXml(Exception):
    """The document has a DTD (where entities are declared): refused, never expanded."""


class BrokenXml(Exception):
    """The document stops being XML here (a truncated file, a bad byte)."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


class Repairs:
    def __init__(self):
        self.count = 0

    def __call__(self, match: re.Match) -> bytes:
        text = match.group(0)
        if text[0] != 0x26:                      # a raw control byte, not a reference
            self.count += 1
            return REPLACEMENT.encode()
        first = int(match[1]) if match[1] else int(match[2], 16)
        second = int(match[3]) if match[3] else int(match[4], 16) if match[4] else None
        if 0xD800 <= first <= 0xDBFF and second is not None:
            return b"&#%d;" % (0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
        head = text[:text.index(b";") + 1]
        legal = first in (9, 10, 13) or 32 <= first < 0xD800
        self.count += (not legal) + (second is not None)   # a matched follower is a lone low surrogate
        return (head if legal else b"&#xFFFD;") + (b"&#xFFFD;" if second is not None else b"")


def _chunks(handle: BinaryIO, repairs: Repairs) -> Iterator[bytes]:
    """The file in chunks with the suspicious references repaired. A reference near the end
    of a chunk (perhaps incomplete, perhaps the second half of a pair) is held back, with
    the high surrogate just before it if there is one, and repaired with the next chunk."""
    carry = b""
    while True:
        block = handle.read(CHUNK)
        if not block:
            if carry:
                yield _repaired(carry, repairs)
            return
        block = carry + block
        cut = block.rfind(b"&", max(0, len(block) - _PAIR_TAIL))
        if cut < 0:
            cut = len(block)
        else:
            before = _REFERENCE_END.search(block, max(0, cut - 12), cut)
            if before and 0xD800 <= (int(before[1], 16) if before[1] else int(before[2])) <= 0xDBFF:
                cut = before.start()    # the first half of a pair stays with its second
        carry = block[cut:]
        yield _repaired(block[:cut], repairs)


def _repaired(block: bytes, repairs: Repairs) -> bytes:
    block = _SUSPECT.sub(repairs, block)
    if any(byte in block for byte in _CONTROL_EACH):     # one fast byte search each: cheaper than a copy without them
        block = _CONTROL.sub(repairs, block)
    return block


def elements(handle: BinaryIO, repairs: Repairs | None = None, ends: frozenset[str] = frozenset(),
             items: frozenset[str] = frozenset(), root: str = "backup") -> Iterator[tuple[str, dict | None, int, int]]:
    """(tag, attributes, line, depth) for each start tag, in order; (tag, None, line, depth)
    for the end tags named in `ends` (the root is depth 1). Leaving other ends out keeps a
    200,000-message backup from paying for 200,000 events nobody reads.

    With `items` (the tags of the root's children: sms and mms), a place where the file stops
    being XML costs only what stood there: a (DAMAGED, {"problem": ..., "in_root": ...}, line, 2) event says so,
    and reading resumes at the next of those tags, inside the root seen so far (or `root`,
    when the damage came before it). Raises UnsafeXml, or BrokenXml when nothing after the
    problem can be read (a file cut short), after yielding everything before it."""
    repairs = repairs if repairs is not None else Repairs()
    resume = re.compile(rb"<(?:%s)[\s/>]" % b"|".join(re.escape(tag.encode()) for tag in sorted(items))) \
        if items else None
    source = _chunks(handle, repairs)
    blocks: Iterator[bytes] = source
    reader = _Reader(ends)
    try:
        while True:
            try:
                yield from reader.read(blocks)
                return
            except expat.ExpatError as error:
                line = reader.line_base + error.lineno - 1
                message = _plain(error, line)
                rest = reader.unread(error) if resume is not None else None
                # The byte found wrong may itself start the next item (the "<" after an attribute whose
                # closing quote was damaged): resume there, unless this reader already began there or
                # the error is a token left open (a file cut short inside an item is not resumed in it).
                stuck = getattr(error, "byte_index", -1) == reader.prefix_size or _cut_short(error)
                found = _resume_point(rest, blocks, resume, 1 if stuck else 0) if rest is not None else None
                if found is None:
                    raise BrokenXml(message, line) from None
                skipped, blocks = found
                yield DAMAGED, {"problem": message, "in_root": reader.root is not None}, line, 2
                synthetic = reader.root or root
                reader = _Reader(ends, resumed_root=synthetic, announce_root=reader.root is None,
                                 line_base=line + skipped)
    finally:
        source.close()


DAMAGED = "#damaged"   # not a name XML allows, so never a real tag


class _Reader:
    """One expat parser over the repaired blocks; after damage a new one resumes, inside a
    synthetic root start tag whose own event is shown only if the real one never was."""

    def __init__(self, ends: frozenset[str], resumed_root: str | None = None, announce_root: bool = True,
                 line_base: int = 1):
        self.ends = ends
        self.root: str | None = None
        self.resumed_root = resumed_root
        self.announce_root = announce_root
        self.line_base = line_base                 # the file line of this parser's line 1
        self.fed: list[tuple[int, bytes]] = []     # (offset, block) of the last blocks fed, for resuming
        self.fed_size = 0
        self.prefix_size = 0                       # the synthetic root tag's bytes, before the file's

    def read(self, blocks: Iterator[bytes]) -> Iterator[tuple[str, dict | None, int, int]]:
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        events: list = []
        depth = 0
        base = self.line_base - 1

        def start(tag, attrs):
            nonlocal depth
            depth += 1
            if depth == 1:
                self.root = tag
                if self.resumed_root is not None and not self.announce_root:
                    return
            events.append((tag, attrs, base + parser.CurrentLineNumber, depth))

        def end(tag):
            nonlocal depth
            if tag in self.ends:
                events.append((tag, None, base + parser.CurrentLineNumber, depth))
            depth -= 1

        def refuse(*_args):
            raise UnsafeXml("the file carries a document type declaration (<!DOCTYPE>, where XML entities "
                            "live), which a phone backup never has; it was not read further, for safety")

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.StartDoctypeDeclHandler = refuse
        parser.EntityDeclHandler = refuse
        parser.UnparsedEntityDeclHandler = refuse
        parser.ExternalEntityRefHandler = refuse
        parser.SkippedEntityHandler = refuse
        if self.resumed_root is not None:
            self._feed(parser, b"<%s>" % self.resumed_root.encode())
        self.prefix_size = self.fed_size
        try:
            for block in blocks:
                try:
                    self._feed(parser, block)
                finally:
                    yield from events
                    events.clear()
            try:
                parser.Parse(b"", True)
            finally:
                yield from events
                events.clear()
        except expat.ExpatError as error:
            error.byte_index = parser.ErrorByteIndex
            raise
        except LookupError:   # the declaration names an encoding there is no codec for: damage at its start
            error = expat.ExpatError("unknown encoding")
            error.code = expat.errors.codes[expat.errors.XML_ERROR_UNKNOWN_ENCODING]
            error.lineno, error.offset, error.byte_index = 1, 0, self.prefix_size
            raise error from None

    def _feed(self, parser, block: bytes) -> None:
        self.fed = self.fed[-1:] + [(self.fed_size, block)]
        self.fed_size += len(block)
        parser.Parse(block, False)

    def unread(self, error: expat.ExpatError) -> bytes | None:
        """What was fed from the error's byte on, if it is still at hand."""
        at = getattr(error, "byte_index", -1)
        if at < 0 or not self.fed or at < self.fed[0][0]:
            return None
        first = self.fed[0][0]
        return b"".join(block for _offset, block in self.fed)[at - first:]


def _resume_point(rest: bytes, blocks: Iterator[bytes], resume: re.Pattern, after: int
                  ) -> tuple[int, Iterator[bytes]] | None:
    """(lines skipped, blocks from the next item tag at or after `after` on), or None when no item follows."""
    skipped = 0
    while True:
        found = resume.search(rest, after)
        after = 0
        if found:
            skipped += rest.count(b"\n", 0, found.start())
            return skipped, itertools.chain([rest[found.start():]], blocks)
        keep = len(rest) - min(len(rest), 16)         # an item tag may straddle two blocks
        skipped += rest.count(b"\n", 0, keep)
        following = next(blocks, None)
        if following is None:
            return None
        rest = rest[keep:] + following


CUT_SHORT = ("no element found", "unclosed token", "unclosed CDATA section", "partial character")


def _cut_short(error: expat.ExpatError) -> bool:
    """Expat's word for a token or element left open: the file ends there, or a damaged byte
    (a lost "<" or "?>") made what follows part of the open token."""
    return expat.ErrorString(error.code) in CUT_SHORT


def _plain(error: expat.ExpatError, line: int) -> str:
    if _cut_short(error):
        return f"the file ends in the middle of the XML (at line {line}): it looks cut short"
    return f"the XML is broken at line {line}, column {error.offset}: {expat.ErrorString(error.code)}"

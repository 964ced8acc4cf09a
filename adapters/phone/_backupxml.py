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
    if len(block.translate(None, _CONTROL_BYTES)) != len(block):
        block = _CONTROL.sub(repairs, block)
    return block


def elements(handle: BinaryIO, repairs: Repairs | None = None, ends: frozenset[str] = frozenset()
             ) -> Iterator[tuple[str, dict | None, int, int]]:
    """(tag, attributes, line, depth) for each start tag, in order; (tag, None, line, depth)
    for the end tags named in `ends` (the root is depth 1). Leaving other ends out keeps a
    200,000-message backup from paying for 200,000 events nobody reads.

    Raises UnsafeXml or BrokenXml after yielding everything before the problem."""
    repairs = repairs if repairs is not None else Repairs()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    events: list = []
    depth = 0

    def start(tag, attrs):
        nonlocal depth
        depth += 1
        events.append((tag, attrs, parser.CurrentLineNumber, depth))

    def end(tag):
        nonlocal depth
        if tag in ends:
            events.append((tag, None, parser.CurrentLineNumber, depth))
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
    try:
        for chunk in _chunks(handle, repairs):
            try:
                parser.Parse(chunk, False)
            finally:
                yield from events
                events.clear()
        try:
            parser.Parse(b"", True)
        finally:
            yield from events
            events.clear()
    except expat.ExpatError as error:
        raise BrokenXml(_plain(error), error.lineno) from None


def _plain(error: expat.ExpatError) -> str:
    code = expat.ErrorString(error.code)
    if code in ("no element found", "unclosed token", "unclosed CDATA section"):
        return f"the file ends in the middle of the XML (at line {error.lineno}): it looks cut short"
    return f"the XML is broken at line {error.lineno}, column {error.offset}: {code}"

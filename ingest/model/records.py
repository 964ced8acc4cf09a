"""What adapters hand to the pipeline, and the record schema of DESIGN.md.

Sources yield `Original`s; parsers read a `StoredOriginal` and yield `Record`s,
`Child`ren (bytes found inside an original) and `ParseWarning`s. Only the
pipeline turns them into stored, indexed, logged evidence.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Callable

import blake3
import orjson

# The record schema of DESIGN.md allows these and no others; a Record checks it is one of them.
KINDS = ("email", "attachment", "sms", "mms", "call", "whatsapp", "screenshot", "image",
         "note", "file", "unparsed")
DIRECTIONS = ("incoming", "outgoing", "missed", "rejected", "blocked", "voicemail")


@dataclass
class Original:
    """Bytes at a source, not yet kept. `stream` is read once, straight into the store."""

    stream: BinaryIO
    source_key: str
    filename: str | None = None
    source_meta: dict = field(default_factory=dict)
    # Opens the bytes again when the first read saw them change (a file still being written).
    reopen: Callable[[], BinaryIO] | None = None
    # What the source knows about the network peer (host, protocol, TLS fingerprint).
    peer: dict | None = None
    # Changes when the bytes at source_key change (a file's size and mtime): lets a
    # re-run skip what is already held without reading it.
    fingerprint: str | None = None
    # The folder or backup this original belongs to, for "the source says N, the case holds N".
    container: str | None = None
    # Source state committed in the same transaction as this original, never before it
    # (an IMAP folder's highest UID kept so far).
    state: dict[str, str] = field(default_factory=dict)
    # What the source or container says the bytes are (IMAP: a message); believed only when the
    # bytes agree (see storing.DECLARED_READERS), else the type is found from the content.
    declared_type: str | None = None

    def __post_init__(self):
        # A file name that is not UTF-8 arrives with its odd bytes as lone surrogates (Python's
        # surrogateescape), which no index, log or JSON can hold: keep it shown escaped (\xff), and
        # its exact bytes in source_meta.
        if not (is_storable(self.source_key) and is_storable(self.filename)):
            self.source_meta = dict(storable_meta(self.source_meta),
                                    source_key_bytes_hex=os.fsencode(self.source_key).hex())
            self.source_key, self.filename = storable(self.source_key), storable(self.filename)


def is_storable(text: str | None) -> bool:
    try:
        text and text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def storable(text: str | None) -> str | None:
    """Text with any undecodable bytes (lone surrogates) written as \\xNN, so it can be stored and shown."""
    if is_storable(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def storable_meta(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable_meta(key): storable_meta(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable_meta(item) for item in value]
    return value


@dataclass(frozen=True)
class Digest:
    blake3: str
    sha256: str
    size: int


@dataclass(frozen=True)
class StoredOriginal:
    """An original as kept in the store: parsers read it from here, read-only."""

    digest: Digest
    path: Path
    source_key: str
    filename: str | None
    media_type: str
    source_meta: dict
    acquired_at: datetime
    kind_hint: str | None = None     # e.g. "attachment" for a file found inside an email
    # The first bytes, as read while storing: telling the format needs no second open of the file.
    first_bytes: bytes | None = field(default=None, repr=False, compare=False)

    def open(self) -> BinaryIO:
        return open(self.path, "rb")

    def head(self, size: int = 8192) -> bytes:
        if self.first_bytes is not None and (size <= len(self.first_bytes) or len(self.first_bytes) == self.digest.size):
            return self.first_bytes[:size]
        with self.open() as handle:
            return handle.read(size)


@dataclass
class Derived:
    """An artifact computed from an original (OCR text, word boxes, a thumbnail)."""

    type: str
    data: bytes
    tool: str
    media_type: str = "application/octet-stream"


@dataclass
class Record:
    """One thing that happened, as a parser read it. The pipeline adds ids, hashes and times."""

    kind: str
    locator: str | None = None        # None: this record stands for the whole original
    occurred_at: datetime | None = None
    occurred_at_source: str | None = None
    occurred_at_raw: str | None = None
    timezone_assumed: bool = False
    direction: str | None = None
    from_: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    subject: str | None = None
    text: str | None = None
    duration_s: float | None = None
    metadata: dict = field(default_factory=dict)
    derived: list[Derived] = field(default_factory=list)
    # Identity of the event itself, independent of which export carried it, so an
    # overlapping export (a chat exported again, a newer backup) adds only what is new.
    identity: str | None = None
    parent_locator: str | None = None  # a record inside the same original this one belongs to

    def __post_init__(self):
        # A parser that names a kind or direction outside the schema has a bug: it stops (the
        # pipeline says so) rather than write records an officer's tools cannot read.
        if self.kind not in KINDS:
            raise ValueError(f"a record's kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ValueError(f"a record's direction must be one of {', '.join(DIRECTIONS)} or None, "
                             f"not {self.direction!r}")


@dataclass
class Child:
    """Bytes extracted from an original (attachment, MMS part, zip member)."""

    data: bytes | None
    locator: str                      # where in the parent original, e.g. "part 2" or a zip path
    filename: str | None = None
    parent_locator: str | None = None  # locator of the record that refers to it (None: the original's)
    kind_hint: str | None = None
    media_type: str | None = None
    source_meta: dict = field(default_factory=dict)
    open: Callable[[], BinaryIO] | None = None  # for large members: streamed instead of `data`
    # (first, end): the bytes are exactly bytes first..end-1 of the parent as stored (an mbox's
    # message), so the pipeline may store them elsewhere than where the parser stands
    span: tuple[int, int] | None = None

    def __post_init__(self):
        self.locator, self.filename = storable(self.locator), storable(self.filename)


@dataclass
class NotThisFormat:
    """A parser's word that an original is not its format: the pipeline sniffs again."""

    note: str    # a sentence for the run's summary, e.g. "Pictures given as WhatsApp were read as pictures."


@dataclass
class ParseWarning:
    message: str
    locator: str | None = None
    fatal: bool = False               # the original could not be understood at all


def record_id(source_key: str, blake3_hex: str, locator: str | None, parser: str) -> str:
    """Stable: the same original, place in it and parser version always give the same id."""
    material = "\x00".join((source_key, blake3_hex, locator or "", parser))
    return blake3.blake3(material.encode()).hexdigest()[:24]


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8: the form custody lines are written and checked in.

    orjson, ~10x faster than json, spells every string, integer and key order exactly as json did
    when the first logs were written (a test checks every code point), so those logs still check.
    It spells small floats differently (0.00001, json 1e-05); no custody line has held a float
    (103k lines from every feature were checked), and a new one is written and checked by this
    same function. What orjson refuses (surrogates, non-string keys) is json's, as before."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:          # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def read_body(text: str) -> dict:
    """A record's body from the index (orjson reads ~10x faster than json)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:     # a NaN that json wrote in an older case
        return json.loads(text)

"""Calling one parser directly on a file, outside the pipeline: what the fuzz and equivalence tests need.

`ParseContext` answers the questions parsers ask of a run (the case's zone and region,
phone numbers, "do you already have OCR for this?") without a case; it says yes to
every cached derived artifact so pictures are not OCRed thousands of times.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import datetime, timezone
from pathlib import Path

import blake3

from ingest.kit import registry
from ingest.kit.phones import e164
from ingest.model.records import Child, Digest, ParseWarning, Record, StoredOriginal
from ingest.model.times import localize

ACQUIRED = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
# A derived artifact "already made" for every picture, so fuzzing never waits on tesseract.
CACHED = {"ocr_text": b"", "ocr_tsv": b"level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\t"
                                     b"width\theight\tconf\ttext\n", "thumbnail": b""}


class ParseContext:
    timezone = "Europe/London"
    region = "GB"

    def __init__(self):
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.expected: dict[str, int] = {}
        self.read: dict[str, int] = {}
        self.state: dict[str, str] = {}

    def note(self, text: str) -> None:
        self.notes.append(text)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def expect(self, container: str, count: int) -> None:
        self.expected[container] = self.expected.get(container, 0) + count

    def acquired(self, container: str, count: int = 1) -> None:
        self.read[container] = self.read.get(container, 0) + count

    def localize(self, naive: datetime):
        return localize(naive, self.timezone)

    def phone(self, raw: str) -> str | None:
        return e164(raw, self.region)

    def cached_derived(self, original_blake3: str, type_: str, tool: str) -> bytes | None:
        return CACHED.get(type_)

    def already_held(self, source_key: str, fingerprint: str | None = None) -> bool:
        return False

    def get_state(self, key: str) -> str | None:
        return self.state.get(key)

    def set_state(self, key: str, value: str) -> None:
        self.state[key] = value


def stored(path: Path, filename: str | None = None, **changes) -> StoredOriginal:
    data = path.read_bytes()
    digest = Digest(blake3.blake3(data).hexdigest(), hashlib.sha256(data).hexdigest(), len(data))
    name = filename or path.name
    fields = dict(digest=digest, path=path, source_key=str(path), filename=name,
                  media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                  source_meta={"mtime": "2024-03-04T08:30:00Z"}, acquired_at=ACQUIRED)
    fields.update(changes)
    return StoredOriginal(**fields)


def parse(parser_name: str, path: Path, filename: str | None = None, options: dict | None = None,
          **changes) -> list[Record | Child | ParseWarning]:
    """Everything the parser yields for the file, children read into bytes (and their streams closed);
    a child whose stream raises OSError is left out, as the pipeline leaves it out with a warning."""
    registry.load()
    parser = registry.parser(parser_name)(options)
    items = []
    for item in parser.parse(stored(path, filename, **changes), ParseContext()):
        if isinstance(item, Child) and item.open is not None:
            try:    # as the pipeline does: a child whose bytes cannot be read (OSError) is said and skipped
                stream = item.open()
                try:
                    item.data, item.open = stream.read(), None
                finally:
                    stream.close()
            except OSError:
                continue
        items.append(item)
    return items

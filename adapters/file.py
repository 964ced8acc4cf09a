"""The generic `file` parser: any original at all, described by what the filesystem says."""

from __future__ import annotations

from typing import Iterator

from ingest.kit.adapter import Parser
from ingest.kit.dating import date_whole_file
from ingest.model.records import Record, StoredOriginal
from ingest.kit.registry import register
from ingest.kit.context import Context

TEXT_LIMIT = 1024 * 1024   # text files up to this size are searchable


@register
class FileParser(Parser):
    name = "file"
    version = "1"
    priority = -100

    def sniff(self, head: bytes, filename: str | None) -> bool:
        return True

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record]:
        meta = dict(stored.source_meta)
        record = Record(kind=stored.kind_hint or "file", metadata=meta)
        date_whole_file(record, meta)
        if stored.media_type.startswith("text/") and stored.digest.size <= TEXT_LIMIT:
            with stored.open() as handle:
                record.text = handle.read().decode("utf-8", errors="replace")
        yield record

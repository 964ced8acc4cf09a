"""The generic `file` parser: any original at all, described by what the filesystem says."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from ingest.kit.adapter import Parser
from ingest.model.records import Record, StoredOriginal
from ingest.kit.registry import register

TEXT_LIMIT = 1024 * 1024   # text files up to this size are searchable


def date_from_source_meta(record: Record, meta: dict) -> None:
    """Date a whole-file record: its container's time (an attachment), else the file's mtime."""
    if meta.get("occurred_at"):
        # a file inside another original happened when its container did
        record.occurred_at = datetime.fromisoformat(meta["occurred_at"])
        record.occurred_at_source = meta.get("occurred_at_source", "parent")
        record.occurred_at_raw = meta.get("occurred_at_raw")
    elif meta.get("mtime"):
        record.occurred_at = datetime.fromisoformat(meta["mtime"].replace("Z", "+00:00"))
        record.occurred_at_source = "file:mtime"
        record.occurred_at_raw = str(meta.get("mtime_ns", meta["mtime"]))


@register
class FileParser(Parser):
    name = "file"
    version = "1"
    priority = -100

    def sniff(self, head: bytes, filename: str | None) -> bool:
        return True

    def parse(self, stored: StoredOriginal, ctx) -> Iterator[Record]:
        meta = dict(stored.source_meta)
        record = Record(kind=stored.kind_hint or "file", metadata=meta)
        date_from_source_meta(record, meta)
        if stored.media_type.startswith("text/") and stored.digest.size <= TEXT_LIMIT:
            with stored.open() as handle:
                record.text = handle.read().decode("utf-8", errors="replace")
        yield record

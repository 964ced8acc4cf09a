"""The `note` parser: a diary entry written with `ingest note`, kept as a small JSON original.

The original is what the person typed, when and where they said it happened, and
when, where and by whom it was written (see `ingest.features.notes`). This parser only reads
it back, so a note is hashed, logged, re-parsed and exported like any other evidence.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterator

from ingest.kit.adapter import Parser
from ingest.kit.registry import register
from ingest.kit.context import Context
from ingest.model.note import FORMAT
from ingest.model.records import ParseWarning, Record, StoredOriginal

# Canonical JSON sorts its keys and "@" sorts before every lower-case letter, so the
# format tag always opens the document, however long the text is.
MAGIC = b'{"@format":"ingest-note/'
MAX_SIZE = 4 * 1024 * 1024    # a typed note is a few KB; anything far larger is not one
REQUIRED = ("text", "at", "written_at")


@register
class NoteParser(Parser):
    name = "note"
    version = "1"
    priority = 50

    def sniff(self, head: bytes, filename: str | None) -> bool:
        return head.startswith(MAGIC)

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning]:
        if stored.digest.size > MAX_SIZE:
            yield ParseWarning(f"is {stored.digest.size} bytes, too large to be a note", fatal=True)
            return
        with stored.open() as handle:
            raw = handle.read()
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            yield ParseWarning(f"is not a readable note ({error})", fatal=True)
            return
        if not isinstance(doc, dict) or doc.get("@format") != FORMAT:
            yield ParseWarning(f"is not a note in the format {FORMAT}", fatal=True)
            return
        missing = [key for key in REQUIRED if not doc.get(key)]
        if missing:
            yield ParseWarning(f"is a note without {', '.join(missing)}", fatal=True)
            return
        try:
            occurred = datetime.fromisoformat(doc["at"])
        except (TypeError, ValueError):
            yield ParseWarning(f"has a time that cannot be read: {doc['at']!r}", fatal=True)
            return
        if occurred.tzinfo is None:
            yield ParseWarning(f"has a time without a zone: {doc['at']!r}", fatal=True)
            return
        metadata = {key: doc[key] for key in ("where", "written_at", "operator", "host", "supersedes",
                                              "attachments", "at_from", "details", "occurred_on",
                                              "at_approximate", "at_day_order")
                    if doc.get(key) not in (None, [], "")}
        for flag in ("dst_ambiguous", "dst_nonexistent", "date_only"):
            if doc.get(flag):
                metadata[flag] = True
        yield Record(kind="note", occurred_at=occurred, occurred_at_source="user",
                     occurred_at_raw=doc.get("at_typed"), timezone_assumed=bool(doc.get("timezone_assumed")),
                     text=doc["text"], metadata=metadata)

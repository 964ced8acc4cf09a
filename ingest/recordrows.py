"""A record as the index keeps it: its row of id, times, places, body JSON and search text.

Built the same way in the main process and in a worker parsing a large original
(ingest/apart.py); which of the rows are kept (a message the case already holds is not)
is decided by the pipeline alone.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from ingest.model.records import Record, StoredOriginal, canonical_json, record_id
from ingest.model.times import iso, iso_utc

# An original's acquisition time, written into its object and original rows and each of its records
# (100k records: one formatting).
acquired_text = functools.lru_cache(maxsize=16)(iso_utc)


class BuiltRecord(NamedTuple):
    """A record a worker built: its row, and the warning to say if the row is kept."""

    row: tuple
    warning: str | None


def record_row(record: Record, rid: str, stored: StoredOriginal, label: str, chain: str, own_id: str,
               parent_record: str | None, adapter: str, derived: list[dict]) -> tuple[tuple, str | None]:
    """(row, warning). row: (id, kind, sort_time, blake3, source_key, locator, parser, parent,
    identity, body_json, search_text), what `Index.add_records` takes; warning: a record with no
    usable time is said, never given the time ingest took it (the report lists it apart)."""
    if record.locator is None:
        parent = parent_record
    elif record.parent_locator:
        parent = record_id(stored.source_key, stored.digest.blake3, record.parent_locator, label)
    else:
        parent = own_id
    occurred = iso(record.occurred_at) if record.occurred_at else None
    occurred_source, warning = record.occurred_at_source, None
    if occurred is None:
        occurred_source = "unknown"
        if not record.metadata.get("container"):
            where = (stored.filename or stored.source_key) + (f" ({record.locator})" if record.locator else "")
            warning = f"{where}: no usable time in it; shown as 'time unknown'."
    body = {
        "id": rid, "kind": record.kind,
        "source": {"adapter": adapter, "parser": chain, "key": stored.source_key, "locator": record.locator},
        "original": {"blake3": stored.digest.blake3, "sha256": stored.digest.sha256, "size": stored.digest.size,
                     "filename": stored.filename, "media_type": stored.media_type},
        "occurred_at": occurred, "occurred_at_source": occurred_source, "occurred_at_raw": record.occurred_at_raw,
        "timezone_assumed": record.timezone_assumed, "acquired_at": acquired_text(stored.acquired_at),
        "direction": record.direction, "from": record.from_, "to": record.to, "subject": record.subject,
        "text": record.text, "duration_s": record.duration_s, "parent": parent, "derived": derived,
        "metadata": record.metadata,
    }
    text = "\n".join([part for part in (record.subject, record.text, " ".join(record.from_), " ".join(record.to))
                      if part])
    if occurred is None:
        sort_time = ""      # sorts first, outside every period
    elif occurred.endswith("+00:00"):
        sort_time = occurred[:-6] + "Z"     # already UTC: iso_utc's text, without a second formatting
    else:
        sort_time = iso_utc(record.occurred_at)
    return (rid, record.kind, sort_time, stored.digest.blake3, stored.source_key, record.locator, label, parent,
            record.identity, canonical_json(body), text), warning

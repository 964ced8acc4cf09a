"""Every record in `occurred_at` order, streamed, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import json
from typing import IO, Iterator

from .case import Case

CSV_COLUMNS = ["id", "occurred_at", "timezone_assumed", "kind", "direction", "from", "to", "subject", "text",
               "duration_s", "occurred_at_source", "acquired_at", "sha256", "source_key", "locator", "parent"]


def records(case: Case, *, since: str | None = None, until: str | None = None, kinds: list[str] | None = None,
            party: str | None = None) -> Iterator[dict]:
    """Records in time order; `party` keeps those with it in from/to (a number, address or name)."""
    where, args = "", ()
    if party:
        where, args = "lower(json_extract(body, '$.from') || json_extract(body, '$.to')) LIKE ?", (f"%{party.lower()}%",)
    yield from case.index.records(kinds=kinds, since=since, until=until, where=where, args=args)


def write_json(items: Iterator[dict], out: IO[str]) -> int:
    """One JSON array, written a record at a time so memory stays flat."""
    count = 0
    out.write("[")
    for record in items:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def csv_row(record: dict) -> list:
    return [record["id"], record["occurred_at"], record["timezone_assumed"], record["kind"], record["direction"] or "",
            "; ".join(record["from"]), "; ".join(record["to"]), record["subject"] or "", record["text"] or "",
            "" if record["duration_s"] is None else record["duration_s"], record["occurred_at_source"],
            record["acquired_at"], record["original"]["sha256"], record["source"]["key"],
            record["source"]["locator"] or "", record["parent"] or ""]


def write_csv(items: Iterator[dict], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in items:
        writer.writerow(csv_row(record))
        count += 1
    return count


def one_line(record: dict, width: int = 80) -> str:
    """What a person needs to recognise a record: who, and the start of what was said."""
    text = record.get("subject") or record.get("text") or record["original"].get("filename") or ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

"""Every record in `occurred_at` order, streamed, as a table, CSV or JSON.

Corrected diary notes stay in the timeline: the old note carries `corrected_by`
(the ids of the notes that correct it), the new one `metadata.supersedes`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import IO, Iterator

from ingest.case import Case
from ingest.features.parties import PartyBook, require_party, values_of

CSV_COLUMNS = ["id", "occurred_at", "timezone_assumed", "kind", "direction", "from", "to", "subject", "text",
               "duration_s", "occurred_at_source", "acquired_at", "sha256", "source_key", "locator", "parent",
               "occurred_at_raw", "blake3", "filename", "where", "corrects", "corrected_by"]


def records(case: Case, *, since: str | None = None, until: str | None = None, kinds: list[str] | None = None,
            parties: list[str] | None = None) -> Iterator[dict]:
    """Records in time order, each with the `parties` it involves; `parties` keeps those
    involving any of the named parties."""
    yield from Scope(case).records(kinds=kinds, since=since, until=until,
                                   identifiers=values_of(case, parties) if parties else None)


def is_container(record: dict) -> bool:
    """A backup's or export's own record (an SMS backup, a call log, an mbox, a chat export):
    kept and listed, but not an event; its messages and calls are."""
    return bool(record["metadata"].get("container"))


def is_event(record: dict) -> bool:
    """A record that belongs on the timeline: it happened at a known time and is not a container."""
    return bool(record["occurred_at"]) and not is_container(record)


def events(case: Case, **filters) -> Iterator[dict]:
    """The timeline: records() without the containers' own records. Items of unknown time come
    first, shown as such (the report lists them in a section of their own)."""
    return (found for found in records(case, **filters) if not is_container(found))


def record(case: Case, record_id: str) -> dict | None:
    """One record (by the first characters of its id), with its parties and marks."""
    found = case.index.record(record_id)
    return PartyBook.load(case).annotate(found) if found else None


def search(case: Case, query: str, parties: list[str] | None = None) -> Iterator[tuple[dict, str]]:
    """(record, snippet) of each record whose text matches, oldest first; `parties` as in records()."""
    book = PartyBook.load(case)
    wanted = {name.lower() for name in (require_party(case, name) for name in parties or [])}
    for found, snippet in case.index.search(query):
        book.annotate(found)
        if not wanted or wanted & {name.lower() for name in found["parties"]}:
            yield found, snippet


@dataclass
class Scope:
    """The records a report or export covers: every current record, or only those whose
    ids are in a temporary table of the index (an export of a subset, a report of some parties)."""

    case: Case
    table: str | None = None

    def records(self, *, kinds=None, since=None, until=None, identifiers=None) -> Iterator[dict]:
        """Records in scope, each with the parties it involves and its marks (see parties.PartyBook)."""
        from ingest.features.notes import corrections

        corrected = corrections(self.case)
        book = PartyBook.load(self.case)
        for record in self.case.index.records(kinds=kinds, since=since, until=until, identifiers=identifiers,
                                              within=self.table):
            if record["id"] in corrected:
                record["corrected_by"] = corrected[record["id"]]
            yield book.annotate(record)

    def count(self) -> int:
        return sum(count for _kind, count in self.counts())

    def counts(self) -> list[tuple[str, int]]:
        return self.case.index.counts_by_kind(within=self.table)


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
            record["source"]["locator"] or "", record["parent"] or "", record["occurred_at_raw"] or "",
            record["original"]["blake3"], record["original"]["filename"] or "", record["metadata"].get("where") or "",
            record["metadata"].get("supersedes") or "", "; ".join(record.get("corrected_by", []))]


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
    if record.get("corrected_by"):
        text = f"(corrected by {', '.join(i[:12] for i in record['corrected_by'])}) {text}"
    elif record["metadata"].get("supersedes"):
        text = f"(corrects {record['metadata']['supersedes'][:12]}) {text}"
    return text if len(text) <= width else text[: width - 1] + "…"

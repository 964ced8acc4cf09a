"""Exhibit marks: `SP/1`, `SP/2`... as a UK officer exhibits what a producer hands over.

    give_marks(case) -> number of marks given     (logs them in the custody log)
    exhibit_list(case, within=None) -> Iterator[dict]      ExhibitLabels(case).of(blake3) -> "SP/3 item 2"

Each original kept from a source gets the next mark, in the order first acquired;
an original found inside another (an attachment, a photo in a chat) is an item of
its parent's exhibit (`SP/3 item 2`). A mark is given once: it is stored in the
index, named in a custody line, and never changed or given again, so a second
export shows the same marks. Marks are given when they are first needed (by
`ingest exhibits` or an export), always in acquisition order, so they are the same
as if each had been given on arrival.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from typing import IO, Iterator

from ingest.case import Case, initials_of
from ingest.model.privacy import scrub_text
from ingest.model.times import iso_utc, utc_now

BATCH = 1000              # marks given per transaction and custody line
EXHIBIT_COLUMNS = ["mark", "description", "source", "filename", "first_event", "last_event", "items",
                   "size", "sha256", "blake3", "acquired_at"]
# What a whole original is, by the parser that read it (the first word of its label).
CONTAINERS = {"whatsapp": "WhatsApp chat export", "sms": "SMS backup", "calls": "Call log", "email": "Email",
              "mbox": "Mailbox file", "maildir": "Mail folder", "image": "Picture", "note": "Diary note",
              "file": "File"}
# Plain words for a number of records of a kind.
KIND_WORDS = {"whatsapp": ("message", "messages"), "sms": ("text message", "text messages"),
              "mms": ("picture message", "picture messages"), "call": ("call", "calls"),
              "email": ("email", "emails"), "attachment": ("attachment", "attachments"),
              "screenshot": ("screenshot", "screenshots"), "image": ("photo", "photos"),
              "note": ("note", "notes"), "file": ("file", "files"), "unparsed": ("unreadable file", "unreadable files")}


def initials(case: Case) -> str:
    return case.config.initials or initials_of(case.config.operator)


def mark_label(prefix: str, mark: int, item: int = 0) -> str:
    return f"{prefix}/{mark}" + (f" item {item}" if item else "")


def give_marks(case: Case) -> int:
    """Give a mark to every kept original that has none; returns how many were given."""
    case.require_intact()
    prefix = initials(case)
    given = 0
    while True:
        pending = list(case.index.originals_without_exhibit(limit=BATCH))
        if not pending:
            return given
        if not case.writable:
            # A write-blocked copy: marks are given only where they can be logged; these stay unmarked.
            case.unlogged.append("marking of new exhibits")
            return given
        at = iso_utc(utc_now())
        chosen: dict[str, tuple[int, int]] = {}
        last_mark = case.index.last_exhibit_item()
        last_item: dict[int, int] = {}
        for blake3_hex, parent in pending:
            owner = (chosen.get(parent) or case.index.exhibit(parent)) if parent else None
            if owner is None:
                last_mark += 1
                chosen[blake3_hex] = (last_mark, 0)
            else:
                mark = owner[0]
                if mark not in last_item:
                    last_item[mark] = case.index.last_exhibit_item(mark)
                last_item[mark] += 1
                chosen[blake3_hex] = (mark, last_item[mark])
        entry = case.custody_entry("exhibit_marks", {"objects": list(chosen)},
                                   {"initials": prefix, "marks": [[mark_label(prefix, *place), blake3_hex]
                                                                  for blake3_hex, place in chosen.items()]})

        def store(index, chosen=chosen, at=at):
            for blake3_hex, (mark, item) in chosen.items():
                index.give_exhibit(blake3_hex, mark, item, at)

        case.commit([entry], store)
        given += len(chosen)


class ExhibitLabels:
    """The mark of the exhibit an original belongs to ("SP/3", "SP/3 item 2"), looked up once each."""

    def __init__(self, case: Case):
        self.prefix = initials(case)
        self._lookup = lru_cache(maxsize=4096)(case.index.exhibit)

    def of(self, blake3_hex: str) -> str:
        place = self._lookup(blake3_hex)
        return mark_label(self.prefix, *place) if place else ""

    def exhibit_of(self, blake3_hex: str) -> str:
        """The exhibit alone ("SP/3"), without the item."""
        place = self._lookup(blake3_hex)
        return mark_label(self.prefix, place[0]) if place else ""


def exhibit_list(case: Case, *, within: str | None = None, include_paths: bool = False) -> Iterator[dict]:
    """Every exhibit in mark order (those holding a record in the temporary table `within`, when
    given): its mark, a plain description, where it came from, its events and its hashes."""
    prefix = initials(case)
    for row in case.index.exhibits(within=within):
        contents = case.index.exhibit_contents(row["mark"], within=within)
        items = sum(count for _kind, count, *_rest in contents)
        times = [time for row in contents for time in row[3:5] if time] or \
            [time for row in contents for time in row[5:7] if time]
        source = row["source_key"] if include_paths else scrub_text(row["source_key"])
        yield {"mark": mark_label(prefix, row["mark"]), "description": describe(row["parser"], contents),
               "source": source, "filename": row["filename"], "first_event": min(times) if times else None,
               "last_event": max(times) if times else None, "items": items, "size": row["size"],
               "sha256": row["sha256"], "blake3": row["blake3"], "acquired_at": row["acquired_at"],
               "adapter": row["adapter"], "parser": row["parser"]}


def describe(parser: str | None, contents: list[tuple]) -> str:
    """"WhatsApp chat export, 412 messages, 3 photos": what the original is, then what is in it."""
    head = CONTAINERS.get((parser or "").split(" ")[0], "File")
    parts = [_count(kind, inner) for kind, _count_all, inner, *_times in contents if inner]
    if not parts and contents and head in ("File", "Picture"):
        head = KIND_WORDS.get(contents[0][0], ("file",))[0].capitalize()
    return ", ".join([head] + parts)


def _count(kind: str, number: int) -> str:
    one, many = KIND_WORDS.get(kind, (kind, kind))
    return f"{number} {one if number == 1 else many}"


def write_csv(exhibits: Iterator[dict], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(EXHIBIT_COLUMNS)
    count = 0
    for exhibit in exhibits:
        writer.writerow(["" if exhibit[column] is None else exhibit[column] for column in EXHIBIT_COLUMNS])
        count += 1
    return count

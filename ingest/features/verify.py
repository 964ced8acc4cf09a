"""`ingest verify`: re-hash every object, check every record's object, walk the custody chain.

Like bagit's validation, every problem is collected and reported, each naming
what it concerns (object hash, record id, custody line); nothing stops at the first.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from store.custody import PRIVATE, CustodyLog

from ingest.case import Case
from ingest.model.records import record_id


@dataclass(frozen=True)
class Problem:
    where: str        # "object 3fa1…", "record 9c2e…", "custody line 12"
    what: str
    about: str = ""   # the evidence it concerns: "photo.jpg, screenshot, 2024-03-01 21:41"

    def __str__(self) -> str:
        return f"{self.where} ({self.about}): {self.what}" if self.about else f"{self.where}: {self.what}"


@dataclass
class Verification:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    objects: int = 0
    records: int = 0
    custody_lines: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"ok": self.ok, "objects": self.objects, "records": self.records, "custody_lines": self.custody_lines,
                "problems": [str(p) for p in self.problems], "notes": self.notes}


def verify_case(case: Case, progress=None) -> Verification:
    result = Verification()
    if case.index_problem:
        result.problems.append(Problem("index", case.index_problem))
    check_objects(case, result, progress)
    check_records(case, result)
    check_custody(case, result)
    check_record_sets(case, result)
    result.problems = [named(case, problem) for problem in result.problems]
    leftovers = case.objects.temp_files()
    if leftovers:
        result.notes.append(f"{len(leftovers)} unfinished temporary file(s) from an interrupted run "
                            "(removed by the next run; never part of the evidence)")
    return result


def named(case: Case, problem: Problem) -> Problem:
    """A problem with an object or a record, with the evidence it concerns named beside the hash:
    the original's file name, its record's kind and when it happened, so a person knows what it was."""
    from dataclasses import replace

    kind, _space, name = problem.where.partition(" ")
    if kind == "object":
        records = case.index.own_records(name)
    elif kind == "record":
        found = case.index.record(name)
        records = [found] if found else []
    else:
        return problem
    if not records:
        return problem
    more = f"; and {len(records) - 1} more record(s)" if len(records) > 1 else ""
    return replace(problem, about=described(case, records[0]) + more)


def described(case: Case, record: dict) -> str:
    """'letter.txt, file, 2024-03-01 09:00': the original's name, the record's kind, when (case zone)."""
    from zoneinfo import ZoneInfo

    from ingest.features.rows import short_when

    label = record["original"].get("filename") or record["source"]["key"]
    return f"{label}, {record['kind']}, {short_when(record, ZoneInfo(case.config.timezone))}"


def check_objects(case: Case, result: Verification, progress=None) -> None:
    known = set()
    rows = list(case.index.objects())
    if progress:
        progress.total(len(rows))
    for row in rows:
        name = row["blake3"]
        known.add(name)
        result.objects += 1
        where = f"object {name}"
        path = case.objects.path(name)
        if progress:
            progress.advance(name[:12])
        if not path.exists():
            result.problems.append(Problem(where, "is missing from the store"))
            continue
        digest = case.objects.rehash(name)
        if digest.blake3 != name:
            result.problems.append(Problem(where, f"content changed: its BLAKE3 is now {digest.blake3}"))
        if digest.sha256 != row["sha256"]:
            result.problems.append(Problem(where, f"SHA-256 is {digest.sha256}, recorded {row['sha256']}"))
        if digest.size != row["size"]:
            result.problems.append(Problem(where, f"size is {digest.size} bytes, recorded {row['size']}"))
        if stat.S_IMODE(os.stat(path).st_mode) & 0o222:
            result.problems.append(Problem(where, "is writable; stored objects must be read-only"))
    unknown = [name for name in case.objects.all_objects() if name not in known]
    if unknown:
        result.notes.append(f"{len(unknown)} object(s) in the store are not yet named in the index "
                            "(kept by a run that was interrupted; a re-run adopts them)")


def check_records(case: Case, result: Verification) -> None:
    for rid, blake3_hex in case.index.record_objects():
        result.records += 1
        if case.index.object(blake3_hex) is None:
            result.problems.append(Problem(f"record {rid}", f"names object {blake3_hex}, which the index does not hold"))
        elif not case.objects.path(blake3_hex).exists():
            result.problems.append(Problem(f"record {rid}", f"its original {blake3_hex} is missing from the store"))
    for blake3_hex in case.index.derived_objects():
        if not case.objects.path(blake3_hex).exists():
            result.problems.append(Problem(f"object {blake3_hex}", "a derived artifact (OCR, thumbnail) is missing"))


def check_custody(case: Case, result: Verification) -> None:
    last_number = 0
    committed, head = case.index.custody_tail()
    head_found = None
    for number, _entry, digest, problems in case.custody.walk():
        last_number = number
        if number == committed:
            head_found = digest
        for problem in problems:
            result.problems.append(Problem(f"custody line {number}", problem))
    result.custody_lines = last_number
    if last_number < committed:
        result.problems.append(Problem(f"custody line {last_number + 1}",
                                       f"is missing: the index recorded {committed} lines, the log has {last_number} "
                                       "(lines were removed from the end)"))
    elif committed and head_found != head:
        result.problems.append(Problem(f"custody line {committed}",
                                       "is not the line the index recorded as the head of the log (it was changed)"))
    elif last_number > committed and not case.index_problem:
        result.notes.append(f"custody lines {committed + 1}-{last_number} were written by a run that has not committed")
    if last_number == 0:
        result.problems.append(Problem("custody log", "is empty or missing"))
    elif not any(problem.where.startswith("custody") for problem in result.problems):
        # Each line follows on and the head matches: the bytes the index committed must match too
        # (a rewrite of the whole chain, re-hashed line by line, changes them).
        checkpoint = case.custody_checkpoint()
        if checkpoint.size is not None and CustodyLog(case.custody.path).resume(checkpoint):
            result.problems.append(Problem(f"custody line {checkpoint.lines}", (
                "the log up to this line is not the one the index committed: it was rewritten")))


def check_record_sets(case: Case, result: Verification) -> None:
    """Every record row is under custody: the closing line of its original commits to how many
    records its parser made and to the SHA-256 of their ids, so a row deleted, added or swapped in
    the index is named; and every id must derive from the original and place it claims."""
    closed: dict[tuple, tuple] = {}     # (blake3, source_key, parser) -> (line, records, sha256)
    opened: set[tuple] = set()          # (blake3, source_key) with an acquisition line
    for number, entry, _digest, _problems in case.custody.walk():
        subjects = (entry or {}).get("subjects") or {}
        # the full source key (a local path) is in the line's private block; the shown one may be shortened
        detail = ((entry or {}).get(PRIVATE) or {}).get("detail") or (entry or {}).get("detail") or {}
        if not subjects.get("objects") or not isinstance(detail, dict) or "source_key" not in detail:
            continue
        place = (subjects["objects"][0], detail["source_key"])
        if entry.get("action") == "records":
            closed[(*place, detail.get("parser"))] = (number, detail.get("records"), detail.get("records_sha256"))
        else:
            opened.add(place)
    for group in case.index.record_groups():
        key = (group["blake3"], group["source_key"], group["parser"])
        what = f"{group['source_key']} (read by {group['parser']})"
        if key in closed:
            number, count, digest = closed[key]
            if group["records"] != count:
                change = "added to" if group["records"] > count else "deleted from"
                result.problems.append(Problem(f"custody line {number}", (
                    f"commits to {count} record(s) of {what}; the index holds {group['records']}: "
                    f"record rows were {change} the index")))
            elif case.index.record_set(*key)[1] != digest:
                result.problems.append(Problem(f"custody line {number}", (
                    f"commits to other record ids for {what} than the index holds: a record row was replaced")))
        elif group["pending"]:
            result.notes.append(f"{group['records']} record(s) of {what} come from a reparse that was stopped; "
                                "they are not in use (`ingest reparse` again finishes it)")
        elif key[:2] in opened:
            result.notes.append(f"{group['records']} record(s) of {what} were committed by a run that stopped "
                                "before it finished that original; a re-run completes it")
        else:
            result.problems.append(Problem(f"records of {what}", (
                f"{group['records']} record row(s) that no custody line names (added outside ingest)")))
    for row in case.index.record_places():
        if record_id(row["source_key"], row["blake3"], row["locator"], row["parser"]) != row["id"]:
            result.problems.append(Problem(f"record {row['id']}", (
                "its id does not derive from its original and place in it: the row was added or changed "
                "outside ingest")))

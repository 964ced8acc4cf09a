"""Files an examiner loads as they are, and a statement the officer adapts.

    write_timeline(scope, labels, jsonl_path, csv_path) -> lines      Timesketch's import format
    acquisitions(case, objects) -> {blake3: Acquisition}               from the custody log
    write_statement(path, case, exhibits, facts) -> None               statement.txt

Timesketch reads JSON Lines or CSV with `message`, `datetime` (ISO 8601 with
offset) and `timestamp_desc` (what the time means) on every line; every other
column is kept as an attribute (kind, parties, exhibit, record id, hashes).

The statement holds facts the case recorded and nothing else: who produced the
items and when, how each was captured (tool and version, source, read-only
access, the mail server's TLS certificate), the hashes at capture and at export,
the hash-chained custody log, the seal, and the exhibit list. It draws no
conclusion: the officer writes those.
"""

from __future__ import annotations

import csv
import json
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

from ingest import TOOL
from ingest.case import Case
from ingest.features.exhibits import ExhibitLabels
from ingest.features.parties import PartyBook
from ingest.features.timeline import Scope, one_line

TIMESKETCH_COLUMNS = ["message", "datetime", "timestamp_desc", "kind", "direction", "parties", "exhibit",
                      "record_id", "from", "to", "timezone_assumed", "time_source", "sha256", "file"]
MESSAGE_LIMIT = 1000
FIRST_WORDS = 70          # characters of an incident shown in an incident index
MESSAGE_KINDS = ("sms", "mms", "whatsapp")
# What a time means, by where it was read (occurred_at_source, up to its first ':').
TIME_MEANINGS = {"file:mtime": "File modified", "imap:INTERNALDATE": "Email received by the server",
                 "user": "Time given by the person who wrote the note", "unknown": "Time unknown"}


def timestamp_desc(record: dict) -> str:
    """"Message sent", "Call started", "Photo taken", "Screenshot file name"..."""
    kind, source = record["kind"], record.get("occurred_at_source") or ""
    if source in TIME_MEANINGS:
        return TIME_MEANINGS[source]
    if kind == "call":
        return "Call started"
    if kind == "email":
        return "Email sent (Date header)" if source.startswith("header") else "Email time"
    if kind in MESSAGE_KINDS:
        return "Message received" if record.get("direction") == "incoming" and kind != "whatsapp" else "Message sent"
    picture = "Screenshot" if kind == "screenshot" else "Photo"
    if source.startswith("exif"):
        return f"{picture} taken"
    if source == "filename":
        return f"{picture} file name" if kind in ("screenshot", "image") else "Time in the file name"
    if kind == "note":
        return "Noted event"
    return "Time recorded"


def timesketch_row(record: dict, exhibit: str) -> dict:
    who = ", ".join(record["from"]) or "unknown"
    to = ", ".join(record["to"])
    head = record["kind"] + (f" {record['direction']}" if record.get("direction") else "")
    text = one_line(record, MESSAGE_LIMIT)
    if record["kind"] == "call" and record.get("duration_s") is not None:
        text = f"{duration(record['duration_s'])} {text}".strip()
    message = f"{head} from {who}" + (f" to {to}" if to else "") + (f": {text}" if text else "")
    known = bool(record["occurred_at"])      # an unknown time is placed at the time ingest kept it, and says so
    return {"message": message, "datetime": _with_offset(record["occurred_at"] or record["acquired_at"]),
            "timestamp_desc": timestamp_desc(record) if known else "Kept by ingest (when it happened is unknown)", "kind": record["kind"], "direction": record.get("direction") or "",
            "parties": "; ".join(record.get("parties") or []), "exhibit": exhibit, "record_id": record["id"],
            "from": "; ".join(record["from"]), "to": "; ".join(record["to"]),
            "timezone_assumed": bool(record.get("timezone_assumed")),
            "time_source": record.get("occurred_at_source") or "", "sha256": record["original"]["sha256"],
            "file": record.get("file") or ""}


def duration(seconds: float | int | None) -> str:
    """1 min 5 s; 1 h 2 min 0 s; 0 s."""
    if seconds is None:
        return ""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = ([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if hours or minutes else []) + [f"{secs} s"]
    return " ".join(parts)


def local_time(moment: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(zone).strftime("%d %b %Y %H:%M")


def incident_lines(scope: Scope) -> Iterator[dict]:
    """The incident index, streamed: one line per incident (local time, kind, party, first words, exhibit)."""
    case = scope.case
    zone = ZoneInfo(case.config.timezone)
    labels = ExhibitLabels(case)
    annotate = with_parties(case)
    for record in case.index.incident_records(within=scope.table):
        record = annotate(record)
        other = record["to"] if record.get("direction") == "outgoing" else record["from"]
        yield {"id": record["id"], "when": local_time(record["occurred_at"], zone),
               "kind": record["kind"] + (f" {record['direction']}" if record.get("direction") else ""),
               "party": ", ".join(record.get("parties") or other)[:40], "words": one_line(record, FIRST_WORDS),
               "exhibit": labels.exhibit_of(record["original"]["blake3"])}


def _with_offset(moment: str) -> str:
    return moment[:-1] + "+00:00" if moment.endswith("Z") else moment


class TimelineWriter:
    """timeline.jsonl and timeline.csv, a record at a time (the export streams its records once)."""

    def __init__(self, jsonl_path: Path, csv_path: Path, labels: ExhibitLabels):
        self.labels = labels
        self._jsonl = open(jsonl_path, "x", encoding="utf-8", newline="\n")
        self._csv_file = open(csv_path, "x", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._csv_file, TIMESKETCH_COLUMNS)
        self._csv.writeheader()
        self.lines = 0

    def add(self, record: dict) -> None:
        row = timesketch_row(record, self.labels.of(record["original"]["blake3"]))
        self._jsonl.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._csv.writerow(row)
        self.lines += 1

    def close(self) -> None:
        self._jsonl.close()
        self._csv_file.close()


def write_timeline(scope: Scope, jsonl_path: Path, csv_path: Path) -> int:
    writer = TimelineWriter(jsonl_path, csv_path, ExhibitLabels(scope.case))
    try:
        for record in scope.records():
            writer.add(record)
    finally:
        writer.close()
    return writer.lines


def with_parties(case: Case):
    """A function adding `parties` to a record read from the index (records read through Scope have
    them already)."""
    return PartyBook.load(case).annotate


def write_left_out(path: Path, case: Case, table: str, reason: str) -> int:
    """What a selection left out: a count per kind and party, never any content. Returns the total."""
    annotate = with_parties(case)
    counts: dict[tuple[str, str], int] = {}
    for record in case.index.records_outside(table):
        for party in annotate(record).get("parties") or ["(no named party)"]:
            counts[(record["kind"], party)] = counts.get((record["kind"], party), 0) + 1
    with open(path, "x", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "party", "records left out", "why"])
        for (kind, party), count in sorted(counts.items()):
            writer.writerow([kind, party, count, reason])
    return sum(counts.values())


# --- how each exhibit was captured -----------------------------------------------------
@dataclass
class Acquisition:
    time: str
    operator: str
    tool: str
    line: int
    adapter: str
    parser: str
    source_key: str
    sha256: str
    peer: dict | None


def acquisitions(case: Case, objects: set[str]) -> dict[str, Acquisition]:
    """The first custody line that kept each object in `objects` (an `acquire`, or a `note` written
    in the case), read from the log in one pass."""
    found: dict[str, Acquisition] = {}
    for entry in case.custody.entries():
        if entry.get("action") not in ("acquire", "note"):
            continue
        for blake3_hex in (entry.get("subjects") or {}).get("objects", []):
            if blake3_hex in objects and blake3_hex not in found:
                detail = entry.get("detail") or {}
                found[blake3_hex] = Acquisition(entry.get("time", ""), entry.get("operator", ""), entry.get("tool", ""),
                                                entry.get("seq", 0), detail.get("adapter", ""), detail.get("parser", ""),
                                                detail.get("source_key", ""), detail.get("sha256", ""),
                                                detail.get("peer"))
    return found


def capture_sentence(acquisition: Acquisition | None) -> str:
    """How the bytes were taken, in plain words: the source, and that it was only read."""
    if acquisition is None:
        return "The case's custody log holds no acquisition line for it."
    peer = acquisition.peer or {}
    if peer:
        tls = (f" The server presented a TLS certificate with SHA-256 fingerprint {peer['tls_cert_sha256']}."
               if peer.get("tls_cert_sha256") else " The connection was not encrypted (no TLS certificate).")
        return (f"Downloaded from the mail server {peer.get('host')} port {peer.get('port')} "
                f"({peer.get('protocol', 'IMAP')}), with the mailbox opened read-only (IMAP EXAMINE and "
                f"BODY.PEEK[], so no message was marked read or changed).{tls}")
    if acquisition.adapter == "note" or acquisition.parser.startswith("note"):
        return "Written into the case by the operator with `ingest note`."
    return (f"Copied from the file {acquisition.source_key}, opened for reading only; the file itself was not "
            "moved, renamed or changed.")


# --- statement.txt -------------------------------------------------------------------------
def write_statement(path: Path, case: Case, exhibits: Iterable[dict], found: dict[str, Acquisition],
                    exported: dict[str, tuple[str, str]], facts: dict) -> None:
    """`exported` maps an exhibit's BLAKE3 to (its file in the bundle, that file's SHA-256 as hashed
    when the bundle was made); `facts` holds exported_at, custody_lines, custody_head, seal (or None)."""
    config = case.config
    wrap = textwrap.TextWrapper(width=78, break_long_words=False, break_on_hyphens=False)
    lines = ["DRAFT CONTINUITY AND PRODUCTION STATEMENT",
             "A draft for the officer to adapt. It states only what the case records.", ""]

    def para(text: str, indent: str = "") -> None:
        wrap.initial_indent = wrap.subsequent_indent = indent
        lines.extend(wrap.wrap(text) or [""])

    listed = list(exhibits)
    marks = [e["mark"] for e in listed]
    span = f"{marks[0]} to {marks[-1]}" if len(marks) > 1 else (marks[0] if marks else "none")
    para(f"Case: {config.name}. Producer: {config.operator}. The case was created on {config.created_at} (UTC); "
         f"this bundle was made on {facts['exported_at']} (UTC) with {TOOL}.")
    lines.append("")
    para(f"1. PRODUCTION. {config.operator} produces {len(listed)} exhibit(s), marked {span}. Each is an original "
         "file or message kept byte for byte in the case, listed in section 4 and in exhibits.csv.")
    lines.append("")
    para("2. HOW EACH ITEM WAS CAPTURED.")
    for exhibit in listed:
        acquisition = found.get(exhibit["blake3"])
        lines.append("")
        para(f"{exhibit['mark']}: {exhibit['description']} ({exhibit['filename'] or 'no file name'}).", "  ")
        if acquisition:
            para(f"Captured on {acquisition.time} (UTC) by {acquisition.operator} with {acquisition.tool} "
                 f"(source {acquisition.adapter}, read by {acquisition.parser or 'no parser'}; custody log line "
                 f"{acquisition.line}).", "    ")
        para(capture_sentence(acquisition), "    ")
        lines.append(f"    SHA-256 at capture: {acquisition.sha256 if acquisition else exhibit['sha256']}")
        lines.append(f"    BLAKE3 at capture:  {exhibit['blake3']}")
        if exhibit["blake3"] in exported:
            file, sha256 = exported[exhibit["blake3"]]
            lines.append(f"    SHA-256 at export:  {sha256}")
            para(f"(the copy data/{file} in this bundle, hashed again when the bundle was made)", "    ")
    lines.append("")
    para(f"3. CUSTODY LOG. Every action on the case (each capture, each export) is a line of the custody log "
         f"(custody.jsonl in this bundle). Each line holds the BLAKE3 hash of the line before it, so that a changed, "
         f"removed or reordered line breaks the chain. When this bundle was made the log had "
         f"{facts['custody_lines']} line(s); the BLAKE3 hash of the last was {facts['custody_head']}.")
    if facts.get("seal"):
        lines.append("")
        para(f"Seal code of the custody log at line {facts['custody_lines']}: {facts['seal']}. The code commits to "
             "the log's length and last line; `ingest verify --seal CODE` proves the log up to that line unchanged.")
    lines.append("")
    para("4. EXHIBIT LIST.")
    for exhibit in listed:
        para(f"{exhibit['mark']}  {exhibit['description']}; {exhibit['items']} item(s); "
             f"events {exhibit['first_event'] or 'undated'} to {exhibit['last_event'] or 'undated'}.", "  ")
        lines.append(f"      SHA-256 {exhibit['sha256']}")
    with open(path, "x", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")

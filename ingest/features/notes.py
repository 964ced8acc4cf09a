"""The incident diary: `ingest note`, for what no file records.

A note is evidence like any other. What was typed, when it happened, where, and
when and by whom it was written become a small canonical JSON document: that
document is the original, kept in the store, parsed by the `note` parser
(adapters/note.py) and logged with the custody action "note". Files that go
with it (a voice recording, a photo of a letter) are kept as originals of
their own whose record's `parent` is the note.

A note is never edited. A correction is a new note naming the old one
(`supersedes`); both stay in the case, the timeline, the report and the export.
The old note is shown marked "corrected by <id>", the new one "corrects <id>",
so an officer sees what was written first, what was written later, and when.
"""

from __future__ import annotations

import io
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.kit.localfiles import original_for

from ingest.case import Case
from ingest.kit import registry
from ingest.model.errors import OriginalChanged, SourceError, UsageError
from ingest.model.note import FORMAT
from ingest.pipeline import Pipeline
from ingest.model.records import Original, canonical_json, record_id
from ingest.features.typed_times import typed_time
from ingest.model.times import iso, iso_utc, utc_now

# A typed time this far ahead of the clock is a typing mistake, not a plan.
FUTURE_SLACK = timedelta(minutes=5)


def add_note(case: Case, text: str, *, at: str | None = None, where: str | None = None,
             attachments: list[Path] | None = None, supersedes: str | None = None,
             details: dict[str, str | bool] | None = None) -> dict:
    """Keep a diary note (and its attachments) in the case; returns the note's record.
    `details` are what the diary form asks besides the text (who, vehicle, how they looked,
    whether the time is approximate), kept in the note as given."""
    text = (text or "").strip()
    if not text:
        raise UsageError("The note is empty.", hint='Write what happened, e.g. ingest note "A grey car parked opposite".')
    paths = list(dict.fromkeys(_attachment(Path(path)) for path in attachments or []))   # each file once
    corrected = _note_to_correct(case, supersedes) if supersedes else None
    now = utc_now()
    # The note is an original handed over as it is: no host name in it (the custody line keeps that privately).
    doc = {"@format": FORMAT, "text": text, "where": (where or "").strip() or None,
           "written_at": iso_utc(now), "operator": case.config.operator,
           "case": case.config.name, "timezone": case.config.timezone,
           "supersedes": corrected["id"] if corrected else None}
    if details:
        doc["details"] = details
    doc.update(_when(case, at, corrected, now))

    pipeline = Pipeline(case, "note")
    pipeline.batch.atomic = True        # the note and its files commit together, or not at all
    pipeline.handed = 1 + len(paths)
    with pipeline.committing():
        kept = [_store(pipeline, path) for path in paths]
        doc["attachments"] = [{"filename": stored.filename, "size": stored.digest.size,
                               "sha256": stored.digest.sha256, "blake3": stored.digest.blake3}
                              for stored, _new in kept]
        data = canonical_json(doc).encode()
        source_key = f"note:{doc['written_at']}"
        note, new = pipeline.store(Original(stream=io.BytesIO(data), source_key=source_key,
                                            filename=f"note-{now:%Y%m%dT%H%M%S%f}Z.json"))
        parser = registry.parser("note")()
        pipeline.process(note, new, parser, action="note")
        note_id = record_id(source_key, note.digest.blake3, None, parser.label)
        for stored, stored_new in kept:
            pipeline.process(stored, stored_new, None, depth=1, parent_record=note_id, action="acquire")
    return case.index.record(note_id)


def corrections(case: Case) -> dict[str, list[str]]:
    """Which notes were corrected, and by which later notes: {old id: [new ids]}."""
    found: dict[str, list[str]] = {}
    for new_id, old_id in case.index.note_corrections():
        found.setdefault(old_id, []).append(new_id)
    return found


def _when(case: Case, at: str | None, corrected: dict | None, now: datetime) -> dict:
    """When it happened: as typed (read in the case zone when no zone is given), else the
    corrected note's time (a correction is about the same incident), else now."""
    zone = ZoneInfo(case.config.timezone)
    if at:
        local = typed_time(case, at)
        if local.moment > now + FUTURE_SLACK:
            raise UsageError(f"The time {at!r} is in the future.", hint="Check the date, and write it like 2024-03-01 21:40.")
        # A day without a time is kept as that day, its time unknown (never as 00:00); "about 9pm" keeps its "about".
        told = {"date_only": True, "occurred_on": local.moment.date().isoformat()} if local.date_only else {}
        if local.approximate:
            told["at_approximate"] = local.approximate
        if local.day_order:
            told["at_day_order"] = local.day_order
        return {"at": iso(local.moment), "at_typed": at, "at_from": "typed", "timezone_assumed": not local.zone_given,
                "dst_ambiguous": local.ambiguous, "dst_nonexistent": local.nonexistent, **told}
    if corrected:
        told = {key: corrected["metadata"][key] for key in ("date_only", "occurred_on", "at_approximate", "at_day_order")
                if key in corrected["metadata"]}
        return {"at": corrected["occurred_at"], "at_typed": corrected["occurred_at_raw"], "at_from": "corrected note",
                "timezone_assumed": corrected["timezone_assumed"],
                "dst_ambiguous": bool(corrected["metadata"].get("dst_ambiguous")),
                "dst_nonexistent": bool(corrected["metadata"].get("dst_nonexistent")), **told}
    return {"at": iso(now.astimezone(zone).replace(microsecond=0)), "at_typed": None, "at_from": "written_at",
            "timezone_assumed": False, "dst_ambiguous": False, "dst_nonexistent": False}


def _attachment(path: Path) -> Path:
    """An attachment must be a readable file; checked before anything is kept."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"The attachment {path} does not exist.", hint="Check the spelling, or drag the file "
                          "into the terminal.", location=str(path)) from None
    except OSError as error:
        raise SourceError(f"The attachment {path} cannot be read ({error.strerror}).", location=str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"The attachment {path} is a folder.", hint="Attach files one by one with --attach FILE.")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"The attachment {path} is not a regular file.", hint="Attach a file such as a photo or recording.")
    if not os.access(path, os.R_OK):
        raise SourceError(f"No permission to read the attachment {path}.", location=str(path))
    return path.resolve()


def _store(pipeline: Pipeline, path: Path):
    info = os.stat(path)
    try:
        return pipeline.store(original_for(str(path), info))
    except (OriginalChanged, OSError) as error:
        if isinstance(error, OSError) and pipeline.case.storage_trouble(error, writing=False):
            raise           # the case's disk: said as such, with what was kept
        reason = error.message if isinstance(error, OriginalChanged) else (error.strerror or str(error))
        raise SourceError(f"The attachment {path} could not be kept: {reason}", hint="Nothing was noted; try again.",
                          location=str(path)) from None


def _note_to_correct(case: Case, supersedes: str) -> dict:
    record = case.index.record(supersedes.strip())
    if record is None:
        raise UsageError(f"No single record has an id starting {supersedes!r}.",
                         hint="See `ingest list --kind note` for the ids of your notes.")
    if record["kind"] != "note":
        raise UsageError(f"Record {record['id']} is a {record['kind']} record, not a note: only notes can be corrected.",
                         hint="Write a new note that says what is wrong with it instead.")
    return record

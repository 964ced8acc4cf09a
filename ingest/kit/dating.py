"""Dating what a parser reads: one way for each kind of time an adapter meets.

- a whole file with no date of its own: its container's time (an attachment happened
  when the message that carried it did), else the file's modification time;
- a wall-clock time written without a zone: read in the case's zone, and a time the
  clocks showed twice (autumn) or skipped (spring) is flagged, never silently guessed;
- a date without a time: it is a day, not an instant at midnight. Records need an
  instant to sort by, so the day starts at its first moment in the case's zone and the
  record says it is a date only (`date_only`, `occurred_on`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ingest.kit.context import Context
from ingest.model.records import Record
from ingest.model.times import LocalTime

FILE_TIME = "file:mtime"


@dataclass(frozen=True)
class Dating:
    """When something happened, with where that time came from and how the source wrote it."""

    moment: datetime
    source: str
    raw: str | None

    def apply(self, record: Record) -> None:
        record.occurred_at, record.occurred_at_source, record.occurred_at_raw = self.moment, self.source, self.raw


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def container_time(meta: dict) -> Dating | None:
    """The time a container gave a file found inside it (`occurred_at` in its source_meta)."""
    if not meta.get("occurred_at"):
        return None
    return Dating(_instant(meta["occurred_at"]), meta.get("occurred_at_source") or "parent",
                  meta.get("occurred_at_raw"))


def file_time(meta: dict) -> Dating | None:
    """The file's modification time, from the source's `mtime` (raw: the exact nanoseconds)."""
    if not meta.get("mtime"):
        return None
    return Dating(_instant(meta["mtime"]), FILE_TIME, str(meta.get("mtime_ns", meta["mtime"])))


def date_whole_file(record: Record, meta: dict) -> None:
    """Date a record standing for a whole file: its container's time, else its mtime, else none."""
    dating = container_time(meta) or file_time(meta)
    if dating:
        dating.apply(record)


def date_by_file_time(record: Record, meta: dict) -> None:
    """Date a record by its file's modification time alone, when the file has one."""
    dating = file_time(meta)
    if dating:
        dating.apply(record)


def flag_dst(local: LocalTime, meta: dict) -> None:
    """Say in `meta` when a wall-clock time was doubled or skipped by a DST change."""
    if local.ambiguous:
        meta["dst_ambiguous"] = True
    if local.nonexistent:
        meta["dst_nonexistent"] = True


def local_moment(naive: datetime, ctx: Context, meta: dict) -> datetime:
    """A zone-less wall-clock time as an instant in the case's zone, DST doubts flagged in `meta`."""
    local = ctx.localize(naive)
    flag_dst(local, meta)
    return local.moment


def date_only(record: Record, day: date, raw: str, source: str, ctx: Context) -> None:
    """Date a record by a day without a time: the day's first moment in the case's zone, marked
    as a date only, so nothing reads it as something that happened at midnight."""
    record.occurred_at = local_moment(datetime(day.year, day.month, day.day), ctx, record.metadata)
    record.occurred_at_source, record.occurred_at_raw = source, raw
    record.timezone_assumed = True
    record.metadata.update(date_only=True, occurred_on=day.isoformat())

"""Times: everything stored in UTC ISO 8601, local times read in the case timezone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_utc(moment: datetime) -> str:
    """`2024-03-01T21:41:05Z` style, second precision unless the source had more."""
    moment = moment.astimezone(timezone.utc)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def iso(moment: datetime) -> str:
    """ISO 8601 keeping the moment's own offset (how the source wrote it)."""
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


@dataclass(frozen=True)
class LocalTime:
    """A wall-clock time placed in a zone, with what that placing had to assume."""

    moment: datetime
    ambiguous: bool = False     # the clock showed this time twice (autumn DST change)
    nonexistent: bool = False   # the clock skipped this time (spring DST change)


def localize(naive: datetime, zone: str | ZoneInfo) -> LocalTime:
    """Read a zone-less wall-clock time in `zone`, flagging DST gaps and overlaps.

    An ambiguous time takes the earlier reading (fold=0) and says so.
    """
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    ambiguous = first.utcoffset() != second.utcoffset()
    round_trip = first.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None)
    nonexistent = round_trip != naive
    return LocalTime(first, ambiguous=ambiguous and not nonexistent, nonexistent=nonexistent)


def parse_user_time(text: str, zone: str) -> LocalTime:
    """A time typed by the user (`--at`, `--since`): ISO 8601, with or without zone."""
    from ingest.model.errors import UsageError

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"Could not read the time {text!r}.",
                         hint="Write it like 2024-03-01 21:40 or 2024-03-01T21:40:00+00:00.") from None
    if moment.tzinfo is None:
        return localize(moment, zone)
    return LocalTime(moment)

"""Times: everything stored in UTC ISO 8601, local times read in the case timezone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
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


@dataclass(frozen=True)
class TypedTime(LocalTime):
    """A time as a person typed it (`note --at`, `--since`), with what the typing left open."""

    zone_given: bool = False        # the text carried its own zone or offset
    date_only: bool = False         # a day without a time: `moment` is its first instant, the time is unknown
    approximate: str | None = None  # the word that said so ("about 9pm" -> "about")
    day_order: str | None = None    # "day/month" or "month/day" when a numeric date could be read either way


USER_TIME_FORMS = ("2024-03-01, 2024-03-01 21:40, 2024-03-01 9pm, 01/03/2024 (in the case region's "
                   "day/month order), a time alone for today, 'about 9pm', or with a zone 2024-03-01T21:40+01:00")
APPROXIMATE = re.compile(r"(about|around|approx\.?|approximately|roughly|circa|c\.|~)\s*", re.I)
ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
NUMERIC_DATE = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4}|\d{2})")
CLOCK = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?")


def parse_user_time(text: str, zone: str, *, month_first: bool = False, today: date | None = None) -> TypedTime:
    """A time typed by a person: ISO 8601 with or without a zone, or as people write it
    ("2024-10-02 5pm", "03/04/2024 10:00" read day/month unless `month_first`, "about 9pm").
    A date alone is a day with its time unknown, never midnight; a time alone is on `today`
    (default: today in `zone`)."""
    from ingest.model.errors import UsageError

    cleaned = " ".join(text.split())
    try:
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is not None:
        if moment.tzinfo is not None:
            return TypedTime(moment, zone_given=True)
        return _typed(localize(moment, zone), date_only=ISO_DATE.fullmatch(cleaned) is not None)
    words = _read_words(cleaned, month_first, today or datetime.now(ZoneInfo(zone)).date())
    if words is None:
        raise UsageError(f"Could not read the time {text!r}.",
                         hint="Write it like 2024-03-01 21:40, 2024-03-01 9pm or 01/03/2024.")
    naive, date_only, approximate, day_order = words
    return _typed(localize(naive, zone), date_only=date_only, approximate=approximate, day_order=day_order)


def _typed(local: LocalTime, **fields) -> TypedTime:
    return TypedTime(local.moment, local.ambiguous, local.nonexistent, **fields)


def _read_words(text: str, month_first: bool, today: date):
    """(naive datetime, date only, approximate word, day order) or None when not a time."""
    rest, approximate = _approximate(text)
    day, day_order, rest = _leading_date(rest, month_first)
    rest = re.sub(r"^(?:at|,)\s*", "", rest, flags=re.I)
    if approximate is None:
        rest, approximate = _approximate(rest)
    if not rest:
        return (datetime(day.year, day.month, day.day), True, approximate, day_order) if day else None
    clock = CLOCK.fullmatch(rest)
    if clock is None:
        return None
    hour, minute, second = int(clock[1]), int(clock[2] or 0), int(clock[3] or 0)
    half = (clock[4] or "").replace(".", "").lower()
    if not half and clock[2] is None:
        return None            # "2024-03-01 5": five o'clock in the morning or the evening?
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    day = day or today
    try:
        return datetime(day.year, day.month, day.day, hour, minute, second), False, approximate, day_order
    except ValueError:
        return None


def _approximate(text: str) -> tuple[str, str | None]:
    found = APPROXIMATE.match(text)
    if not found:
        return text, None
    return text[found.end():].strip(), found[1].lower().rstrip(".")


def _leading_date(text: str, month_first: bool) -> tuple[date | None, str | None, str]:
    """The date a text starts with, how an ambiguous day/month was read, and what follows."""
    found = ISO_DATE.match(text)
    order = None
    if found:
        year, month, day = int(found[1]), int(found[2]), int(found[3])
    else:
        found = NUMERIC_DATE.match(text)
        if not found:
            return None, None, text
        first, second, year = int(found[1]), int(found[2]), int(found[3])
        year += 2000 if year < 100 else 0
        if first > 12 or (second <= 12 and not month_first):
            day, month = first, second
        else:
            month, day = first, second
        if first <= 12 and second <= 12 and first != second:
            order = "month/day" if month_first else "day/month"
    try:
        return date(year, month, day), order, text[found.end():].strip()
    except ValueError:
        return None, None, "not a date"

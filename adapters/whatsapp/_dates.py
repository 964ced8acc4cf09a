"""Dates and clocks as WhatsApp writes them: the day/month order decided from the whole file,
other calendars (Japanese imperial, Buddhist) converted, and 12-hour clocks in many languages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.kit.dayorder import month_first

from ._grammar import STRIP_MARKS

_DATE_FIELDS = re.compile(r"[A-Z]?\d+")
_CLOCK = re.compile(r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?")
_PM_WORDS = ("p", "nachm", "م", "μμ", "ch", "午後", "下午", "오후", "หลังเที่ยง")
_AM_WORDS = ("a", "vorm", "ص", "πμ", "sa", "午前", "上午", "오전", "ก่อนเที่ยง")
ERAS = {"R": 2018, "H": 1988, "S": 1925, "T": 1911, "M": 1867}   # Japanese imperial calendar: year 1 = base + 1
BUDDHIST_OFFSET = 543


@dataclass
class DateOrder:
    order: str = "dmy"            # for dates with the year last: "dmy" or "mdy"
    year_first_order: str = "ymd"
    reason: str = ""
    calendars: set = field(default_factory=set)


def date_fields(date_text: str) -> tuple[str, str, str]:
    fields = _DATE_FIELDS.findall(date_text.translate(STRIP_MARKS))
    return fields[0], fields[1], fields[2]


def decide_order(date_texts: set[str], region: str | None) -> DateOrder:
    """Day/month order from every date in the file: a field above 12 settles it, else the region."""
    decision = DateOrder()
    first_max = second_max = 0
    year_first_second_max = 0
    for text in date_texts:
        a, b, c = date_fields(text)
        if len(a) >= 3:
            year_first_second_max = max(year_first_second_max, int(b))
            continue
        first_max, second_max = max(first_max, int(a)), max(second_max, int(b))
        if c[0].isalpha():
            decision.calendars.add("japanese")
        elif len(c) == 4 and int(c) >= 2400 or "BE" in text:
            decision.calendars.add("buddhist")
    if year_first_second_max > 12:
        decision.year_first_order = "ydm"
    if first_max > 12 and second_max <= 12:
        decision.order, decision.reason = "dmy", "a day above 12 settles it"
    elif second_max > 12 and first_max <= 12:
        decision.order, decision.reason = "mdy", "a day above 12 settles it"
    elif first_max > 12 and second_max > 12:
        decision.order = "dmy" if first_max >= second_max else "mdy"
        decision.reason = "the file mixes both orders; each date is read the only way it can be where it can"
    elif first_max or second_max:
        decision.order = "mdy" if month_first(region) else "dmy"
        decision.reason = f"no day above 12, so the case region {region or 'unset'} decides"
    else:
        decision.order = decision.year_first_order
        decision.reason = "they are written year first"
    return decision


def to_year(text: str) -> int:
    if text[0].isalpha():
        return ERAS.get(text[0], 2018) + int(text[1:])
    year = int(text)
    if year < 100:
        return 2000 + year
    if year >= 2400:
        return year - BUDDHIST_OFFSET
    return year


def read_date(date_text: str, decision: DateOrder) -> tuple[int, int, int, bool]:
    """(year, month, day, read against the file's order)."""
    a, b, c = date_fields(date_text)
    if len(a) >= 3:
        year = to_year(a)
        month, day = (int(b), int(c)) if decision.year_first_order == "ymd" else (int(c), int(b))
    else:
        year = to_year(c)
        month, day = (int(b), int(a)) if decision.order == "dmy" else (int(a), int(b))
    if month > 12 >= day:
        return year, day, month, True
    return year, month, day, False


def read_clock(time_text: str) -> tuple[int, int, int, bool]:
    """(hour, minute, second, the clock contradicted its AM/PM) from '9:05 p.\u202fm.', '午後3:04', '21:41:55'."""
    found = _CLOCK.search(time_text)
    hour, minute, second = int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)
    marker = (time_text[:found.start()] + time_text[found.end():]).translate(STRIP_MARKS)
    marker = marker.replace(".", "").replace(" ", "").replace("\u00a0", "").replace("\u202f", "").casefold()
    if not marker:
        return hour, minute, second, False
    is_pm = marker in _PM_WORDS or marker == "pm"
    is_am = marker in _AM_WORDS or marker == "am"
    if hour > 12 or hour == 0:
        return hour % 24, minute, second, hour > 12 and is_am
    if is_pm and hour < 12:
        hour += 12
    elif is_am and hour == 12:
        hour = 0
    return hour, minute, second, False


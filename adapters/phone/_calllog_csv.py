"""Call-log CSVs in the dialects phones, carriers and apps write, read as declared fields.

Like plaso's dsv parsers, a dialect is a set of declared columns (`FIELDS`: each field
with the header names it goes by) plus `CallLogCsv.parse_row`. What varies is found
from the file itself:
- encoding: UTF-8 with or without BOM, UTF-16 (Excel's "Unicode Text", BOM or not),
  else cp1252;
- delimiter: comma, semicolon or tab, from the first lines;
- columns: from the header row by name; with no header, from what the values look
  like (a date, a phone number, a duration, a direction word); `--map field=Column`
  (a header name, or a column number counting from 1) settles what detection missed;
- date order: year first is unambiguous; otherwise day/month or month/day is decided
  from the whole file (a first field above 12 means day first, a second field above
  12 means month first) and, when nothing decides it, from the case region. The
  choice is stated in the run summary.

Rows are numbered as a spreadsheet shows them: the header is row 1. A row that
cannot be read is reported with its number and skipped; the file is kept whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Callable, Iterator

from ingest.kit.dayorder import month_first
from ingest.model.records import ParseWarning

# Field -> header names it goes by (normalised: lower case, separators as spaces), best first.
FIELDS: dict[str, tuple[str, ...]] = {
    "number": ("number", "phone number", "phone", "telephone", "tel", "caller id", "caller", "contact number",
               "other party", "remote number", "msisdn", "mobile", "phone no", "number dialed", "numero"),
    "caller": ("calling number", "from number", "from", "a number", "originating number"),
    "callee": ("receiving number", "called number", "to number", "to", "b number", "destination number", "receiver",
               "receiver number", "recipient", "called party"),
    "datetime": ("timestamp", "date time", "datetime", "date and time", "start time date", "call start",
                 "start", "started", "call date time", "time stamp"),
    "date": ("date", "call date", "start date", "day"),
    "time": ("time", "call time", "start time", "hour"),
    "duration": ("duration", "call duration", "duration s", "duration seconds", "duration sec", "length",
                 "dur", "seconds", "duration hh mm ss"),
    "direction": ("direction", "call direction", "call type", "type", "call status", "status", "kind"),
    "name": ("name", "contact", "contact name", "remoteparty", "remote party", "caller name", "display name"),
    # what kind of event a row is, where a log mixes calls and texts (Nokia LogExport's "Type")
    "event": ("type", "event type", "log type", "event"),
}
CALLER_WORDS = ("caller", "caller id", "caller number")
NOT_A_CALL = ("message", "sms", "mms", "text")
DIRECTIONS = {
    "incoming": ("incoming", "in", "i", "received", "incoming call", "answered", "inbound", "1"),
    "outgoing": ("outgoing", "out", "o", "dialled", "dialed", "outgoing call", "outbound", "placed", "2"),
    "missed": ("missed", "m", "missed call", "unanswered", "no answer", "busy/no answer", "3"),
    "voicemail": ("voicemail", "voice mail", "4"),
    "rejected": ("rejected", "declined", "5"),
    "blocked": ("blocked", "6"),
}
DIRECTION_OF = {word: direction for direction, words in DIRECTIONS.items() for word in words}
SAMPLE_ROWS = 50

_DATE = re.compile(r"^\s*(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})[,T ]*"
                   r"(?:(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:[.,](\d{1,6}))?)?\s*([aApP])?\.?\s?[mM]?\.?)?\s*$")
_TIME = re.compile(r"^\s*(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:[.,](\d{1,6}))?)?\s*(?:([aApP])\.?\s?[mM]\.?)?\s*$")
_NAMED_FORMATS = ("%d %b %Y %H:%M:%S", "%d %b %Y %H:%M", "%d %B %Y %H:%M:%S", "%d %B %Y %H:%M", "%b %d, %Y %I:%M:%S %p",
                  "%b %d, %Y %I:%M %p", "%B %d, %Y %I:%M:%S %p", "%b %d, %Y %H:%M:%S", "%d %b %Y", "%b %d, %Y")
_PHONE = re.compile(r"^\s*\+?[\d ()./-]{3,}\s*$")


class CsvTrouble(Exception):
    """The file cannot be read as a call log at all: the message says what to do."""


@dataclass
class CallRow:
    row: int
    moment: datetime                 # naive (read in the case zone) or aware (the file gave a zone)
    moment_raw: str
    number: str | None = None
    caller: str | None = None
    callee: str | None = None
    duration: float | None = None
    direction: str | None = None
    direction_raw: str | None = None
    name: str | None = None
    columns: dict = field(default_factory=dict)
    date_only: bool = False          # the row gives a day and no time of day


def normalise(header: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", header.lower()).split())


def detect_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.count(b"\x00") > len(head) // 4:
        # UTF-16 without a BOM: ASCII text has its zero bytes on one side
        return "utf-16-le" if head[1::2].count(b"\x00") > head[0::2].count(b"\x00") else "utf-16-be"
    return "utf-8"


def parse_time_of_day(text: str) -> tuple[int, int, int, int] | None:
    match = _TIME.match(text)
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    second = int(match[3] or 0)
    micro = int((match[4] or "0").ljust(6, "0")[:6])
    return _twelve_hour(hour, match[5]), minute, second, micro


def _twelve_hour(hour: int, marker: str | None) -> int:
    if marker and marker.lower() == "p" and hour < 12:
        return hour + 12
    if marker and marker.lower() == "a" and hour == 12:
        return 0
    return hour


def date_fields(text: str) -> tuple[int, int] | None:
    """The first two numbers of an ambiguous numeric date (d/m or m/d), else None."""
    match = _DATE.match(text)
    if not match or len(match[1]) == 4:
        return None
    return int(match[1]), int(match[2])


def parse_when(text: str, day_first: bool) -> datetime | None:
    """A date with an optional time: ISO 8601 (zone kept if given), numeric, or with a month name."""
    text = text.strip()
    if not text:
        return None
    match = _DATE.match(text)
    if match:
        first, second, third = match[1], int(match[2]), match[3]
        if len(first) == 4:
            year, month, day = int(first), second, int(third)
        else:
            day, month = (int(first), second) if day_first else (second, int(first))
            year = int(third)
            if len(third) <= 2:
                year += 2000 if year < 70 else 1900
        hour = _twelve_hour(int(match[4] or 0), match[8])
        micro = int((match[7] or "0").ljust(6, "0")[:6])
        try:
            return datetime(year, month, day, hour, int(match[5] or 0), int(match[6] or 0), micro)
        except ValueError:
            return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    for pattern in _NAMED_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def names_a_time(text: str) -> bool:
    """Whether a date cell also gives the time of day ('03/04/2024 10:00', ISO with 'T...')."""
    match = _DATE.match(text)
    return match[4] is not None if match else ":" in text


def parse_duration(text: str) -> float | None:
    """Seconds, from `83`, `83.0`, `1:23` (m:ss) or `0:01:23` (h:mm:ss)."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        pass
    parts = text.split(":")
    if 2 <= len(parts) <= 3 and all(part.strip().isdigit() for part in parts):
        total = 0
        for part in parts:
            total = total * 60 + int(part)
        return float(total)
    return None


def _looks_like(kind: str, value: str) -> bool:
    value = value.strip()
    if kind == "datetime":
        return bool(_DATE.match(value)) or (len(value) >= 10 and parse_when(value, True) is not None)
    if kind == "number":
        digits = sum(ch.isdigit() for ch in value)
        return bool(_PHONE.match(value)) and digits >= 7
    if kind == "duration":
        return parse_duration(value) is not None and not _looks_like("number", value)
    if kind == "direction":
        return value.lower() in DIRECTION_OF
    return False


class CallLogCsv:
    """One call-log CSV: `rows()` yields a CallRow per readable row and a ParseWarning per other."""

    def __init__(self, opener: Callable[[], BinaryIO], mapping: dict[str, str] | None, region: str, label: str):
        self.opener = opener
        self.mapping = mapping or {}
        self.region = region
        self.label = label
        self.notes: list[str] = []
        with opener() as handle:
            head = handle.read(65536)
        if not head.strip(b"\x00\r\n\t \xef\xbb\xbf\xff\xfe"):
            raise CsvTrouble("The file is empty: there are no calls in it (it is kept as it is).")
        self.encoding = detect_encoding(head)
        self.delimiter = ","
        self.columns: dict[str, int] = {}
        self.header: list[str] | None = None
        self.day_first = True
        self._settle()

    # reading -------------------------------------------------------------------------
    def _reader(self, encoding: str) -> Iterator[list[str]]:
        with self.opener() as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
            yield from csv.reader(text, delimiter=self.delimiter)

    def _sample(self) -> str:
        with self.opener() as raw:
            head = raw.read(65536)
        decoded = codecs.getincrementaldecoder(self.encoding)(errors="replace").decode(head)
        return "\n".join(decoded.splitlines()[:20])

    def _settle(self) -> None:
        """Encoding, delimiter, columns and date order, from the file before any row is read."""
        try:
            self._settle_with(self.encoding)
        except UnicodeDecodeError:
            self.encoding = "cp1252"   # not UTF-8 after all: the Windows code page Excel saves in
            self._settle_with(self.encoding)

    def _settle_with(self, encoding: str) -> None:
        self.delimiter = pick_delimiter(self._sample().splitlines())
        rows = self._reader(encoding)
        first_row = next(rows, [])
        sample_rows = [first_row]
        found = self._from_header(first_row)
        if found is not None:
            self.header = [cell.strip() for cell in first_row]
            self.columns = found
        for row in rows:
            if len(sample_rows) < SAMPLE_ROWS:
                sample_rows.append(row)
            else:
                break
        rows.close()
        if self.header is None and _names_columns(first_row, sample_rows[1:]):
            self.header = [cell.strip() for cell in first_row]   # a header, in words ingest does not know
            sample_rows = sample_rows[1:]
        elif self.header is None:
            self.columns = self._from_values(sample_rows)
        self._apply_mapping()
        if "date" not in self.columns and "datetime" not in self.columns:
            raise CsvTrouble(self._missing("the date"))
        if not {"number", "caller", "callee"} & self.columns.keys():
            raise CsvTrouble(self._missing("the phone number"))
        self._decide_order(encoding)

    def _from_header(self, cells: list[str]) -> dict[str, int] | None:
        names = [normalise(cell) for cell in cells]
        found: dict[str, int] = {}
        for field_name, aliases in FIELDS.items():
            for alias in aliases:
                if alias in names and names.index(alias) not in found.values():
                    found[field_name] = names.index(alias)
                    break
        number = found.get("number")
        if "callee" in found and "caller" not in found and number is not None and names[number] in CALLER_WORDS:
            # "Caller" beside "Receiver": a log naming both ends (a carrier's), not the other party alone
            found["caller"] = found.pop("number")
        when = "date" in found or "datetime" in found
        who = bool({"number", "caller", "callee", "name"} & found.keys())
        # A header names its columns; a data row would not match two of these names.
        return found if (when or who) and len(found) >= 2 else None

    def _from_values(self, rows: list[list[str]]) -> dict[str, int]:
        """No header: tell the columns apart by what their values look like."""
        width = max((len(row) for row in rows), default=0)
        found: dict[str, int] = {}
        numbers: list[int] = []
        for index in range(width):
            values = [row[index] for row in rows if index < len(row) and row[index].strip()]
            if not values:
                continue

            def most(kind: str) -> bool:
                return sum(_looks_like(kind, value) for value in values) >= 0.8 * len(values)

            if "datetime" not in found and most("datetime"):
                found["datetime"] = index
            elif most("number"):
                numbers.append(index)
            elif "direction" not in found and most("direction"):
                found["direction"] = index
            elif "duration" not in found and "datetime" in found and most("duration"):
                found["duration"] = index
        if len(numbers) >= 2:
            found["caller"], found["callee"] = numbers[:2]
        elif numbers:
            found["number"] = numbers[0]
        return found

    def _apply_mapping(self) -> None:
        for field_name, column in self.mapping.items():
            key = normalise(field_name)
            if key not in FIELDS:
                raise CsvTrouble(f"--map {field_name}=... names no field ingest knows; use one of: "
                                 f"{', '.join(FIELDS)}.")
            if column.strip().isdigit() and int(column) >= 1:
                index = int(column) - 1
            elif self.header and normalise(column) in [normalise(cell) for cell in self.header]:
                index = [normalise(cell) for cell in self.header].index(normalise(column))
            else:
                have = f"it has: {', '.join(self.header)}" if self.header else "it has no header row, so give a column number"
                raise CsvTrouble(f"--map {field_name}={column} names a column {self.label} does not have ({have}).")
            self.columns = {name: at for name, at in self.columns.items() if at != index}
            self.columns[key] = index
            if key == "date" and "datetime" in self.columns:
                del self.columns["datetime"]

    def _missing(self, what: str) -> str:
        if self.header:
            return (f"Could not tell which column of {self.label} holds {what} (its columns are: "
                    f"{', '.join(self.header)}). Name it with --map, e.g. --map date='Call Date'.")
        return (f"{self.label} has no header row and the column holding {what} could not be recognised. "
                "Name the columns with --map and their number, e.g. --map date=3 --map number=2.")

    def _decide_order(self, encoding: str) -> None:
        """Day or month first, from the whole file (read to its end, which also proves the
        encoding); the region decides when no date does."""
        column = self.columns.get("date", self.columns.get("datetime"))
        day_proof = month_proof = None
        ambiguous = False
        for number, row in enumerate(self._reader(encoding), start=1):
            if number == 1 and self.header is not None or column >= len(row):
                continue
            fields = date_fields(row[column])
            if fields is None:
                continue
            ambiguous = True
            if fields[0] > 12 and day_proof is None:
                day_proof = (number, row[column].strip())
            elif fields[1] > 12 and month_proof is None:
                month_proof = (number, row[column].strip())
        if not ambiguous:
            return    # year first, ISO, or month names: nothing to decide
        if day_proof and month_proof:
            self.day_first = True
            self.notes.append(f"{self.label}: dates are written both ways (row {day_proof[0]} has {day_proof[1]}, "
                              f"row {month_proof[0]} has {month_proof[1]}); read as day/month. Check them.")
        elif day_proof or month_proof:
            self.day_first = bool(day_proof)
            row, text = day_proof or month_proof
            order = "day/month" if self.day_first else "month/day"
            self.notes.append(f"{self.label}: dates read as {order} (row {row} has {text}).")
        else:
            self.day_first = not month_first(self.region)
            order = "day/month" if self.day_first else "month/day"
            self.notes.append(f"{self.label}: no date in the file shows its order; read as {order}, "
                              f"as usual in {self.region.upper()}.")

    # rows ----------------------------------------------------------------------------
    def rows(self) -> Iterator[CallRow | ParseWarning]:
        event = self.columns.get("event")
        texts = 0
        for number, cells in enumerate(self._reader(self.encoding), start=1):
            if number == 1 and self.header is not None:
                continue
            if not any(cell.strip() for cell in cells):
                continue
            if event is not None and event < len(cells) and any(word in cells[event].lower() for word in NOT_A_CALL):
                texts += 1
                continue
            yield self.parse_row(number, cells)
        if texts:
            self.notes.append(f"{self.label}: {texts} row(s) are text messages, not calls; they are kept in the "
                              "file but not made call records.")

    def parse_row(self, number: int, cells: list[str]) -> CallRow | ParseWarning:
        def cell(name: str) -> str | None:
            index = self.columns.get(name)
            return cells[index].strip() if index is not None and index < len(cells) else None

        date_text = cell("date") if "date" in self.columns else cell("datetime")
        time_text = cell("time")
        when_raw = " ".join(part for part in (date_text, time_text) if part)
        moment = parse_when(date_text or "", self.day_first) if date_text else None
        if moment is not None and time_text:
            clock = parse_time_of_day(time_text)
            if clock is None:
                moment = None
            else:
                moment = moment.replace(hour=clock[0], minute=clock[1], second=clock[2], microsecond=clock[3])
        locator = f"row {number}"
        if moment is None:
            shown = when_raw or "nothing"
            return ParseWarning(f"could not read the date and time ({shown!r}), so this row was not made a "
                                "record; the file is kept whole.", locator=locator)
        duration_text = cell("duration")
        direction_raw = cell("direction")
        names = [name.strip() for name in (self.header or [])]
        columns = {(names[i] if i < len(names) and names[i] else f"column {i + 1}"): value
                   for i, value in enumerate(cells)}
        return CallRow(row=number, moment=moment, moment_raw=when_raw, number=cell("number"), caller=cell("caller"),
                       date_only=not time_text and not names_a_time(date_text),
                       callee=cell("callee"), duration=parse_duration(duration_text or ""),
                       direction=DIRECTION_OF.get((direction_raw or "").lower()), direction_raw=direction_raw,
                       name=cell("name") or None, columns=columns)


def _names_columns(first: list[str], rest: list[list[str]]) -> bool:
    """A first row of words above rows holding dates or numbers is a header."""
    def telling(row: list[str]) -> bool:
        return any(_looks_like("datetime", cell) or _looks_like("number", cell) for cell in row)

    return bool(rest) and not telling(first) and any(telling(row) for row in rest)


def pick_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the first lines into the same number (above one) of fields,
    the most fields winning; quoted fields are respected ("Doe, Jamie" in a tab file)."""
    lines = [line for line in lines[:20] if line.strip()]

    def score(delimiter: str) -> tuple[bool, int]:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not widths:
            return False, 0
        return len(set(widths)) == 1 and widths[0] > 1, sorted(widths)[len(widths) // 2]

    return max("\t;,", key=score)


def looks_like_call_log(head: bytes) -> bool:
    """For sniffing: a first line naming a date and a phone-number column."""
    encoding = detect_encoding(head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head[:4096])
    lines = text.splitlines()
    names = {normalise(cell) for cell in next(csv.reader(lines[:1], delimiter=pick_delimiter(lines)), [])}
    has = {name for name, aliases in FIELDS.items() if names & set(aliases)}
    return bool({"date", "datetime"} & has) and bool({"number", "caller", "callee"} & has)

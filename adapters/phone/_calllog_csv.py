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
import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO, Callable, Iterator

from ingest.kit.adapter import plainly_binary
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
    # yes/no columns some apps write instead of a direction (incoming_call = true, missed_call = false)
    "incoming_flag": ("incoming call", "incoming", "is incoming", "inbound"),
    "outgoing_flag": ("outgoing call", "outgoing", "is outgoing", "outbound"),
    "missed_flag": ("missed call", "missed", "is missed", "unanswered"),
    # when the call ended: with the start, it gives the duration when no column does
    "end": ("end", "end time", "call end", "ended", "end date time", "call end time", "finish time", "stop time"),
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
YES = {"true", "yes", "y", "1", "t", "x"}
NO = {"false", "no", "n", "0", "f", ""}
# A unit after a duration's name: "Call duration (s)", "Duration (sec)", "Duration in minutes".
DURATION_UNIT = re.compile(r" (?:in )?(s|sec|secs|second|seconds|ms|msec|milliseconds|min|mins|minute|minutes)$")
UNIT_SECONDS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "ms": 0.001, "msec": 0.001,
                "milliseconds": 0.001, "min": 60, "mins": 60, "minute": 60, "minutes": 60}
REPLACEMENT = "\ufffd"

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
    damaged: bool = False            # a byte in the row is no character in the file's encoding (shown as U+FFFD)
    date_only: bool = False          # the row gives a day and no time of day
    duration_from: str | None = None    # "start and end" when the duration was worked out from them


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
    parts = [part.strip() for part in text.split(":")]
    if 2 <= len(parts) <= 3 and all(part.isdigit() and part.isascii() for part in parts):
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
        self.errors = "strict"            # "replace" once a byte is found that is no character
        self.delimiter = ","
        self.columns: dict[str, int] = {}
        self.header: list[str] | None = None
        self.header_row = 1               # the spreadsheet row where the table starts (its header, if any)
        self.skipped = ""                 # a damaged first line not read as part of the table
        self.width = 0                    # cells in a row, once the header (or the first rows) said
        self.day_first = True
        self.duration_scale = 1.0        # seconds per unit of the duration column
        self._settle()

    # reading -------------------------------------------------------------------------
    def _reader(self, encoding: str) -> Iterator[list[str]]:
        """The rows. A quoted cell running over several lines into a row of the wrong width (or
        past csv's field limit) is a stray quote, not a cell: those lines are read one by one,
        the quote as a character, so one damaged byte never swallows the rows after it."""
        with self.opener() as raw, io.TextIOWrapper(raw, encoding=encoding, errors=self.errors,
                                                              newline="") as text:
            lines = _Lines(text)
            while True:
                reader = csv.reader(lines, delimiter=self.delimiter)
                try:
                    for row in reader:
                        if len(lines.taken) > 1 and self.width and len(row) != self.width:
                            yield from self._line_by_line(lines.taken)
                        else:
                            yield row
                        lines.taken.clear()
                    return
                except csv.Error:
                    yield from self._line_by_line(lines.taken)
                    lines.taken.clear()

    def _line_by_line(self, lines: list[str]) -> Iterator[list[str]]:
        for line in lines:
            yield next(csv.reader([line], delimiter=self.delimiter, quoting=csv.QUOTE_NONE), [])

    def _sample(self) -> str:
        with self.opener() as raw:
            head = raw.read(65536)
        decoded = codecs.getincrementaldecoder(self.encoding)(errors="replace").decode(head)
        return "\n".join(decoded.splitlines()[:20])

    def _settle(self) -> None:
        """Encoding, delimiter, columns and date order, from the file before any row is read."""
        try:
            self._settle_at(self.encoding)
        except UnicodeDecodeError:
            self.encoding = self._damaged_encoding()
            self._settle_at(self.encoding)

    def _settle_at(self, encoding: str) -> None:
        """The table starts at the first line, or else at the second: a stray line break in the
        header leaves a fragment above it, which is then not read as part of the table."""
        try:
            self._settle_with(encoding, skip=0)
        except CsvTrouble as trouble:
            if not self._first_line_is_a_fragment(encoding):
                raise
            self.header, self.columns = None, {}
            try:
                self._settle_with(encoding, skip=1)
            except CsvTrouble:
                raise trouble from None
            self.notes.append(f"{self.label}: its first line ({self.skipped!r}) is not part of the table and was "
                              "not read as a call.")

    def _damaged_encoding(self) -> str:
        """The file is not clean in the encoding its head suggested. Mostly UTF-8 (or UTF-16)
        with a stray byte stays that, the stray byte shown as U+FFFD on the row holding it;
        otherwise it is Windows-1252, the code page Excel saves in, where five byte values
        mean nothing and are shown as U+FFFD too."""
        if self.encoding == "utf-8" and not self._has_utf8_characters():
            self.encoding = "cp1252"
            if self._decodes_cleanly("cp1252"):
                return "cp1252"
        self.errors = "replace"
        return self.encoding

    def _has_utf8_characters(self) -> bool:
        """Does the file hold any well-formed UTF-8 character beyond ASCII?"""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with self.opener() as raw:
            while block := raw.read(1 << 20):
                if not decoder.decode(block).replace(REPLACEMENT, "").isascii():
                    return True
        return False

    def _decodes_cleanly(self, encoding: str) -> bool:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with self.opener() as raw:
                while block := raw.read(1 << 20):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
        return True

    def _first_line_is_a_fragment(self, encoding: str) -> bool:
        """Fewer cells on the first line than on the next: the start of a line broken in two."""
        rows = self._reader(encoding)
        widths = [len(row) for row in itertools.islice((row for row in rows if any(map(str.strip, row))), 2)]
        rows.close()
        return len(widths) == 2 and widths[0] < widths[1]

    def _settle_with(self, encoding: str, skip: int) -> None:
        self.delimiter = pick_delimiter(self._sample().splitlines()[skip:])
        rows = self._reader(encoding)
        first_row: list[str] | None = None
        self.header_row = 0
        while skip >= 0:
            first_row = next(rows, None)
            self.header_row += 1
            if first_row is None:
                break
            if any(cell.strip() for cell in first_row):   # blank lines (a stray line break) are passed over
                if skip:
                    self.skipped = self.delimiter.join(first_row)
                skip -= 1
        first_row = first_row or []
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
        if found is not None:
            self._fill_from_values(sample_rows[1:])
        if self.header is None and _names_columns(first_row, sample_rows[1:]):
            self.header = [cell.strip() for cell in first_row]   # a header, in words ingest does not know
            sample_rows = sample_rows[1:]
        elif self.header is None:
            self.columns = self._from_values(sample_rows)
        self._apply_mapping()
        self.width = len(self.header) if self.header else max(map(len, sample_rows), default=0)
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
        if "duration" not in found:
            for index, name in enumerate(names):
                unit = DURATION_UNIT.search(name)
                if unit and index not in found.values() and DURATION_UNIT.sub("", name) in FIELDS["duration"]:
                    found["duration"], self.duration_scale = index, UNIT_SECONDS[unit.group(1)]
                    break
        number = found.get("number")
        if "callee" in found and "caller" not in found and number is not None and names[number] in CALLER_WORDS:
            # "Caller" beside "Receiver": a log naming both ends (a carrier's), not the other party alone
            found["caller"] = found.pop("number")
        when = "date" in found or "datetime" in found
        who = bool({"number", "caller", "callee", "name"} & found.keys())
        # A header names its columns; a data row would not match two of these names.
        return found if (when or who) and len(found) >= 2 else None

    def _fill_from_values(self, rows: list[list[str]]) -> None:
        """A header that names most columns but not the date or the number (a damaged or misspelt
        name): the column is recognised by what it holds, and the choice said."""
        detected = self._from_values(rows, share=0.5)   # most values, where withheld callers are many
        numbers = ("number", "caller", "callee")
        for needed, present, candidates in (("the date", ("date", "datetime"), ("datetime",)),
                                            ("the phone number", numbers, numbers)):
            if any(name in self.columns for name in present):
                continue
            for name in candidates:
                index = detected.get(name)
                if index is not None and not {"date", "datetime", *numbers} & {
                        field for field, at in self.columns.items() if at == index}:
                    # the date and number matter more than a name or direction the header put there
                    self.columns = {field: at for field, at in self.columns.items() if at != index}
                    self.columns[name] = index
                    title = self.header[index] if index < len(self.header) else ""
                    self.notes.append(f"{self.label}: column {index + 1} ({title!r}) was read as {needed} "
                                      "from what it holds; its name is not one ingest knows.")

    def _from_values(self, rows: list[list[str]], share: float = 0.8) -> dict[str, int]:
        """No header: tell the columns apart by what their values look like (`share` of them)."""
        width = max((len(row) for row in rows), default=0)
        found: dict[str, int] = {}
        numbers: list[int] = []
        for index in range(width):
            values = [row[index] for row in rows if index < len(row) and row[index].strip()]
            if not values:
                continue

            def most(kind: str) -> bool:
                return sum(_looks_like(kind, value) for value in values) >= share * len(values)

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
            if column.strip().isdigit() and column.isascii() and int(column) >= 1:
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
            if number < self.header_row or number == self.header_row and self.header is not None \
                    or column >= len(row):
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
            if number < self.header_row or number == self.header_row and self.header is not None:
                continue
            if not any(cell.strip() for cell in cells):
                continue
            if event is not None and event < len(cells) and any(word in cells[event].lower() for word in NOT_A_CALL):
                texts += 1
                continue
            try:
                yield self.parse_row(number, cells)
            except (ValueError, OverflowError) as error:   # a value no dialect foresaw: this row only
                yield ParseWarning(f"could not be read ({error}), so this row was not made a record; the file is "
                                   "kept whole.", locator=f"row {number}")
        if texts:
            self.notes.append(f"{self.label}: {texts} row(s) are text messages, not calls; they are kept in the "
                              "file but not made call records.")

    def unread_columns(self) -> list[str]:
        """Header names no field was read from (their values stay in each record's `row`)."""
        used = set(self.columns.values())
        return [name for index, name in enumerate(self.header or []) if index not in used and name]

    def _direction(self, cell: Callable[[str], str | None], raw: str | None) -> str | None:
        """From a direction column, else from yes/no columns (missed, then incoming, then outgoing)."""
        if raw:
            return DIRECTION_OF.get(raw.lower())
        flags = {name: (cell(f"{name}_flag") or "").lower() for name in ("missed", "incoming", "outgoing")
                 if f"{name}_flag" in self.columns}
        if flags.get("missed") in YES:
            return "missed"
        if flags.get("incoming") in YES:
            return "incoming"
        if flags.get("outgoing") in YES or (flags.get("incoming") in NO and flags.get("incoming") is not None
                                             and flags.get("missed", "") in NO and "outgoing" not in flags):
            return "outgoing"
        return None

    def _duration_from_end(self, start: datetime, end_text: str) -> float | None:
        """Seconds from the start to an end written as a date and time, or as a time of day."""
        end = parse_when(end_text, self.day_first) if names_a_time(end_text) and _DATE.match(end_text) else None
        if end is None:
            clock = parse_time_of_day(end_text)
            if clock is None:
                return None
            end = start.replace(hour=clock[0], minute=clock[1], second=clock[2], microsecond=clock[3])
            if end < start:              # it ended after midnight
                end += timedelta(days=1)
        if (end.tzinfo is None) != (start.tzinfo is None):
            return None
        seconds = (end - start).total_seconds()
        return seconds if seconds >= 0 else None

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
            try:
                moment = None if clock is None else moment.replace(hour=clock[0], minute=clock[1], second=clock[2],
                                                                   microsecond=clock[3])
            except ValueError:   # 25:61 and the like
                moment = None
        locator = f"row {number}"
        if moment is None:
            shown = when_raw or "nothing"
            return ParseWarning(f"could not read the date and time ({shown!r}), so this row was not made a "
                                "record; the file is kept whole.", locator=locator)
        duration_text = cell("duration")
        direction_raw = cell("direction")
        duration = parse_duration(duration_text or "")
        if duration is not None:
            duration *= self.duration_scale
        duration_from = None
        if duration is None and cell("end"):
            duration = self._duration_from_end(moment, cell("end"))
            duration_from = "start and end" if duration is not None else None
        names = [name.strip() for name in (self.header or [])]
        columns = {(names[i] if i < len(names) and names[i] else f"column {i + 1}"): value
                   for i, value in enumerate(cells)}
        return CallRow(row=number, moment=moment, moment_raw=when_raw, number=cell("number"), caller=cell("caller"),
                       date_only=not time_text and not names_a_time(date_text),
                       callee=cell("callee"), duration=duration, duration_from=duration_from,
                       direction=self._direction(cell, direction_raw), direction_raw=direction_raw,
                       name=cell("name") or None, columns=columns,
                       damaged=self.errors == "replace" and any(REPLACEMENT in value for value in cells))


class _Lines:
    """The text's lines, remembering those the csv reader took for the row it is reading."""

    def __init__(self, text):
        self.text = text
        self.taken: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.text)
        self.taken.append(line)
        return line


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
    if plainly_binary(head):
        return False
    encoding = detect_encoding(head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head[:4096])
    lines = text.splitlines()
    names = {normalise(cell) for cell in next(csv.reader(lines[:1], delimiter=pick_delimiter(lines)), [])}
    has = {name for name, aliases in FIELDS.items() if names & set(aliases)}
    return bool({"date", "datetime"} & has) and bool({"number", "caller", "callee"} & has)

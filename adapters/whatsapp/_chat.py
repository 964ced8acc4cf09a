"""Reading a chat text: its lines (streamed, never whole), a survey pass that finds the
headers and dates, and the state the parse pass carries from message to message, which
turns each message into a record.

Identity (so an overlapping export, taken again later, adds only new messages): a
hash of the chat's name, the message's wall-clock time as read, the sender as written,
the text, and an occurrence number counting identical (time, sender, text) messages
earlier in the same file, so two identical "ok"s in one minute stay two. The occurrence
counters live only for the last few hundred distinct times (repeats share a time, and
exports are in order), so memory stays flat.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Iterator

import blake3

from ingest.kit.context import Context
from ingest.kit.dating import date_whole_file, local_moment
from ingest.model.records import Record, StoredOriginal
from ingest.model.times import iso

from ._dates import DateOrder, read_clock, read_date
from ._grammar import (ANDROID_ATTACHED, DELETED, EDITED, FILE_ATTACHED, IOS_ATTACHED, MAP_LINK, MARKS,
                       MEDIA_OMITTED, PHONE_IN_TEXT, PHONE_SENDER, POLL, QUOTES, SYSTEM_EVENTS, URL, WA_MEDIA_NAME,
                       fold, match_header)

MAX_LINE = 1 << 20            # characters of one line kept; a longer line is cut (and said)
MAX_TEXT = 4 << 20            # characters of one message kept in its record
MAX_LEADING_LINES = 200       # lines before the first message before we call it "not an export"
MAX_SENDERS_KEPT = 1000       # participants remembered (and listed) per chat
GROUP_SENDERS = 3             # a chat with this many names speaking is a group
PLACEHOLDER_MAX = 120         # "<Media omitted>", "This message was deleted" and kin are short
REPEAT_WINDOW = 256           # distinct times whose occurrence counters are remembered
MAX_MOMENTS_KEPT = 4096       # (date, time) pairs whose reading is remembered
MAX_EVENTS_KEPT = 4096        # notices whose event is remembered...
EVENT_TEXT_KEPT = 256         # ...when no longer than this
UNKNOWN = object()
NOT_A_NAME = object()


def _encoding(opener: Callable[[], BinaryIO]) -> str:
    with opener() as handle:
        start = handle.read(4)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return "utf-8-sig"


def read_lines(opener: Callable[[], BinaryIO]) -> Iterator[tuple[str, bool]]:
    """(line without its ending, was cut) for every line; CRLF, LF and lone CR all end a line.

    Streams: a line longer than MAX_LINE is cut rather than held whole."""
    encoding = _encoding(opener)
    with opener() as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline=None)
        readline = text.readline
        while True:
            line = readline(MAX_LINE)
            if not line:
                break
            if line[-1] == "\n":
                yield line[:-1], False
                continue
            if len(line) < MAX_LINE:   # the last line, without an ending
                yield line, False
                break
            while True:              # the rest of an over-long line: read and dropped
                more = readline(MAX_LINE)
                if not more or more[-1] == "\n":
                    break
            yield line, True
        # A damaged zip member ends its stream early and says why: every line before is read first.
        problem = getattr(getattr(raw, "raw", raw), "problem", None)
        if problem:
            raise OSError(problem)


def survey_chat(opener: Callable[[], BinaryIO]) -> dict:
    """First pass: how many headers, which dates (to decide their order), what comes before the first."""
    dates: set[str] = set()
    senders: set[str] = set()           # a few names that speak: three or more make a group
    marked: set[str] = set()            # names whose lines WhatsApp marked as its own (a group's name, in a group)
    headers = leading = 0
    leading_text = False
    platforms: dict[str, int] = {}
    names: dict = {}
    stopped = None
    try:
        for line, _cut in read_lines(opener):
            header = match_header(line)
            if header is None:
                if headers == 0:
                    leading += 1
                    leading_text = leading_text or bool(line.strip())
                    if leading > MAX_LEADING_LINES:
                        break
                continue
            platform, _stamp, date, _time, rest = header
            headers += 1
            platforms[platform] = platforms.get(platform, 0) + 1
            dates.add(date)
            sender, body = split_sender(rest, names)
            if sender is not None and len(senders) < 16:
                senders.add(sender)
                if body[:1] in MARKS and len(marked) < 16 and whatsapp_event(body):
                    marked.add(sender)
    except OSError as error:     # a damaged text: what came before the damage still counts
        stopped = str(error)
    group_names = marked if len(senders - marked) >= GROUP_SENDERS - 1 and len(senders) >= GROUP_SENDERS else set()
    return {"headers": headers, "dates": dates, "leading": leading, "leading_text": leading_text,
            "group_names": group_names,
            "platform": max(platforms, key=platforms.get) if platforms else None, "stopped": stopped}


@dataclass(slots=True)
class Message:
    platform: str
    stamp: str
    date: str
    time: str
    first: int
    rest: str
    lines: list[str]
    last: int
    cut: bool = False
    size: int = 0                 # characters held so far, so a huge message is cut, not grown


def whatsapp_event(body: str) -> bool:
    """Is this (marked) text one of WhatsApp's own notices, not a person's placeholder (a deleted
    message, an omitted photo, a poll, a missed call)?"""
    return any(pattern.search(body) for event, pattern in SYSTEM_EVENTS if event != "missed_call")


def split_sender(rest: str, names: dict[str, str | None | object] | None = None) -> tuple[str | None, str]:
    """'Name: text' -> (Name, text); a system line (no name) -> (None, rest).

    `names` remembers what each sender as written was read as: a chat has a few senders, each
    line names one."""
    sender, sep, body = rest.partition(": ")
    if not sep:
        if rest.endswith(":") and ":" not in rest[:-1]:     # 'Name:' with an empty body
            return rest[:-1].strip(MARKS) or None, ""
        sender, sep, body = rest.partition(":")
        if not sep or not sender or len(sender) > 60 or body[:1] not in (".", ""):
            return None, rest
    if names is None:
        name = _sender_name(sender)
    else:
        name = names.get(sender, UNKNOWN)
        if name is UNKNOWN:
            name = _sender_name(sender)
            if len(names) < MAX_SENDERS_KEPT:
                names[sender] = name
    return (None, rest) if name is NOT_A_NAME else (name, body)


def _sender_name(sender: str) -> str | None | object:
    """The name before a line's first colon; None when it is only bidi marks; NOT_A_NAME when no one
    is named there."""
    if len(sender) > 60 or QUOTES.search(sender):     # 'X changed the subject from "a: b"'
        return NOT_A_NAME
    return sender.strip(MARKS) or None


class ChatState:
    """What the parse pass carries from message to message: caches, counters, references."""

    def __init__(self, ctx: Context, decision: DateOrder, chat: str, member: str | None, members: dict,
                 references: dict, group_names: set[str] = frozenset()):
        self.ctx = ctx
        # In a group, WhatsApp writes its own events under the group's name (iOS, often without a
        # bidi mark: "[11/5/25, 12:46:01 AM] SF PARC: Neha added you"); a group cannot write messages.
        self.group_names = group_names
        self.decision = decision
        self.chat = chat
        self.member = member
        self.members = members
        self.references = references
        self.dates: dict[str, tuple] = {}
        self.clocks: dict[str, tuple] = {}
        self.hour_offsets: dict[tuple, timezone | None] = {}
        self.day_offsets: dict[tuple, timezone | None] = {}     # a day with no clock change: its offset
        self.moments: dict[tuple[str, str], tuple] = {}     # (date, time) as written -> _read_moment's reading
        self.names: dict = {}                               # for split_sender
        self.events: dict[str, str] = {}                    # notice text -> event
        self.hasher = blake3.blake3()                       # for identities
        self.identity_prefix = f"whatsapp\x00{chat}\x00"
        self.repeats: OrderedDict[str, tuple | dict] = OrderedDict()     # by wall-clock time in ISO form
        self.first_time: str | None = None      # wall-clock times in ISO form
        self.last_time: str | None = None
        self.senders: dict[str, str | None] = {}     # sender as written -> E.164 when a phone number
        self.leading: str | None = None     # stray text before the first message, kept on it

    def locator(self, first: int, last: int) -> str:
        lines = f"line {first}" if first == last else f"line {first}-{last}"
        return f"{self.member} {lines}" if self.member else lines

    def _read_moment(self, message: Message) -> tuple:
        """A message's time, read once for each (date, time) as written (messages in one minute share it):
        (moment, or None in an hour the clocks change; the wall-clock time in ISO form; read against the
        file's date order; the clock contradicts its AM/PM; the wall-clock time; why there is no time)."""
        try:
            date = self.dates.get(message.date)
            if date is None:
                year, month, day, against = read_date(message.date, self.decision)
                date = self.dates[message.date] = (year, month, day, against, f"{year:04d}-{month:02d}-{day:02d}")
                if len(self.dates) > 65536:
                    self.dates.clear()
            clock = self.clocks.get(message.time)
            if clock is None:
                hour, minute, second, contradicts = read_clock(message.time)
                clock = self.clocks[message.time] = (hour, minute, second, contradicts,
                                                     f"{hour:02d}:{minute:02d}:{second:02d}")
                if len(self.clocks) > 65536:
                    self.clocks.clear()
        except (ValueError, OverflowError) as error:
            known = (None, None, False, False, None, str(error))
        else:
            hour = (date[0], date[1], date[2], clock[0])
            try:
                offset = self.hour_offsets.get(hour, UNKNOWN)
                if offset is UNKNOWN:
                    offset = self.hour_offsets[hour] = self._steady_offset(datetime(*hour))
                    if len(self.hour_offsets) > 4096:
                        self.hour_offsets.clear()
                if offset is None:     # the clocks change in this hour: each time is placed (and flagged) on its own
                    moment, naive = None, datetime(date[0], date[1], date[2], clock[0], clock[1], clock[2])
                else:
                    moment, naive = datetime(date[0], date[1], date[2], clock[0], clock[1], clock[2], 0, offset), None
            except (ValueError, OverflowError) as error:
                known = (None, None, date[3], clock[3], None, str(error))
            else:
                # datetime.isoformat's own form, from parts read once a day and once a minute
                known = (moment, f"{date[4]}T{clock[4]}", date[3], clock[3], naive, None)
        if len(self.moments) >= MAX_MOMENTS_KEPT:
            self.moments.clear()
        self.moments[(message.date, message.time)] = known
        return known

    def _steady_offset(self, hour: datetime) -> timezone | None:
        """The zone's offset throughout this wall-clock hour, or None when the clocks change in it.

        Placing each time with `ctx.localize` costs more than parsing its line; an hour whose
        first and last second have one offset, neither doubled nor skipped, has no change inside.
        So has every hour of a day whose first and last second are so: no zone changes its clocks
        twice within 48 hours (none in the tz database does), so one change inside a day shows at
        its ends. Asked once a day, not once an hour (a chat spread thin has a new hour every few lines)."""
        day = (hour.year, hour.month, hour.day)
        whole_day = self.day_offsets.get(day, UNKNOWN)
        if whole_day is UNKNOWN:
            try:
                whole_day = self._offset_between(hour.replace(hour=0), hour.replace(hour=23, minute=59, second=59))
            except (ValueError, OverflowError):     # at the ends of the calendar: each hour is asked on its own
                whole_day = None
            if len(self.day_offsets) >= 4096:
                self.day_offsets.clear()
            self.day_offsets[day] = whole_day
        if whole_day is not None:
            return whole_day
        return self._offset_between(hour, hour.replace(minute=59, second=59))

    def _offset_between(self, first: datetime, last: datetime) -> timezone | None:
        """The zone's offset from `first` to `last` (an hour or a day, wall-clock), or None when the
        clocks change or are doubled or skipped at either end."""
        start, end = self.ctx.localize(first), self.ctx.localize(last)
        if start.ambiguous or start.nonexistent or end.ambiguous or end.nonexistent:
            return None
        if start.moment.utcoffset() != end.moment.utcoffset():
            return None
        return timezone(start.moment.utcoffset())

    def record(self, message: Message, counts: dict) -> Record:
        meta: dict = {}
        known = self.moments.get((message.date, message.time)) or self._read_moment(message)
        moment, naive_iso, against, contradicts, naive, problem = known
        if against:
            meta["date_read_against_file_order"] = True
        if contradicts:
            meta["clock_contradicts_am_pm"] = True
        if moment is None and problem is None:     # the clocks change in this hour: each time is placed on its own
            try:
                moment = local_moment(naive, self.ctx, meta)
            except (ValueError, OverflowError) as error:
                problem = str(error)
        if problem is not None:
            naive_iso = None
            meta["time_unreadable"] = f"{message.stamp}: {problem}"
        rest = message.rest
        sender, body = split_sender(rest, self.names)
        if sender is not None and sender in self.group_names:
            meta["group_name"] = sender
            sender, rest = None, body
        text = body if sender is not None else rest
        if message.lines:
            lines = [text, *message.lines]
            while len(lines) > 1 and not lines[-1].strip():
                lines.pop()
            text = "\n".join(lines)
        if message.cut:
            meta["text_cut"] = True
        if self.leading:
            meta["text_before_first_message"], self.leading = self.leading, None
        if sender is not None:
            meta["sender"] = sender
            number = self.senders.get(sender, UNKNOWN)
            if number is UNKNOWN:
                number = self._sender_number(sender)
                if len(self.senders) < MAX_SENDERS_KEPT:
                    self.senders[sender] = number
            if number:
                meta["sender_e164"] = number
                from_ = [number]
            else:
                from_ = [sender]
            system = self._classify(body, text, meta)
        else:
            from_ = []
            meta["event"] = self._event(rest)
            system = True
        if system:
            meta["system"] = True
            counts["system"] += 1
            numbers = PHONE_IN_TEXT.findall(text)
            if numbers:
                meta["numbers"] = [{"raw": raw, "e164": self.ctx.phone(raw)} for raw in numbers[:10]]
        else:
            counts["messages"] += 1
        if "attachment" in meta and not meta.get("attachment_missing"):
            counts["attachments"] += 1
        if "media_omitted" in meta:
            counts["media_omitted"] += 1
        if message.platform == "ios":
            meta["format"] = "ios"
        locator = self.locator(message.first, message.last)
        clean = text.lstrip(MARKS)
        identity = None
        if naive_iso is not None:
            # ISO forms of one length order as the times do
            if self.first_time is None or naive_iso < self.first_time:
                self.first_time = naive_iso
            if self.last_time is None or naive_iso > self.last_time:
                self.last_time = naive_iso
            identity = self._identity(naive_iso, sender or "", clean)
            attachment = meta.get("attachment")
            if attachment and attachment in self.members and attachment not in self.references:
                self.references[attachment] = (locator, {"occurred_at": iso(moment),
                                                         "occurred_at_source": "whatsapp:line",
                                                         "occurred_at_raw": message.stamp})
        return Record(kind="whatsapp", locator=locator, occurred_at=moment,
                      occurred_at_source="whatsapp:line" if moment else None, occurred_at_raw=message.stamp,
                      timezone_assumed=moment is not None, from_=from_, text=clean, metadata=meta,
                      identity=identity)

    def _classify(self, body: str, text: str, meta: dict) -> bool:
        """Mark what WhatsApp wrote in a sender's name (media, deletions, edits, notices); True for a notice.

        Cheap character checks come first: most messages are plain text and skip every pattern."""
        if len(body) <= PLACEHOLDER_MAX:
            folded = fold(body)
            if folded in DELETED:
                meta["deleted"] = True
                return False
            if ":" in body and POLL.match(body):
                meta["poll"] = True
                return False
            if folded in MEDIA_OMITTED:
                meta["media_omitted"] = True
                return False
        marked = "\u200e" in body or "\u200f" in body
        if marked:
            last_mark = max(body.rfind("\u200e"), body.rfind("\u200f"))
            if last_mark > 0 and fold(body[last_mark:]) in MEDIA_OMITTED:    # "Some file.txt ‎document omitted"
                meta["media_omitted"] = True
                meta["attachment_name"] = body[:last_mark].split(" • ")[0].strip()
                return False
        attached = False
        if "<" in text:
            found = IOS_ATTACHED.search(text)
            if found:
                attached = self._attachment(found.group("name").strip(), meta)
            if EDITED.search(text):
                meta["edited"] = True
        if not attached and body.endswith(")"):
            found = ANDROID_ATTACHED.fullmatch(body)
            if found and (found.group("name").strip() in self.members or fold(found.group("label")) in FILE_ATTACHED
                          or WA_MEDIA_NAME.match(found.group("name"))):
                attached = self._attachment(found.group("name").strip(MARKS).strip(), meta)
        urls = URL.findall(body) if "http" in body else ()
        if body[:1] in MARKS and not attached and not urls:
            # iOS marks what WhatsApp itself wrote (encryption notice, security code change) with a bidi mark.
            event = self._event(body)
            meta["event"] = event
            return event != "missed_call"
        if urls and (body[:1] in MARKS or MAP_LINK.search(urls[0])):
            meta["location"] = urls[0]
        return False

    def _sender_number(self, sender: str) -> str | None:
        """E.164 for a sender shown as a phone number (a contact not saved), else None."""
        if PHONE_SENDER.fullmatch(sender) and sum(ch.isdigit() for ch in sender) >= 7:
            return self.ctx.phone(sender)
        return None

    def _attachment(self, name: str, meta: dict) -> bool:
        meta["attachment"] = name
        if self.members and name not in self.members:
            meta["attachment_missing"] = True
        return True

    def _event(self, text: str) -> str:
        """Which of WhatsApp's own notices this is. They repeat ("X joined", "Missed voice call"), and
        trying every language's pattern on one costs more than the rest of its record: remembered."""
        event = self.events.get(text)
        if event is None:
            event = next((event for event, pattern in SYSTEM_EVENTS if pattern.search(text)), "system")
            if len(text) <= EVENT_TEXT_KEPT and len(self.events) < MAX_EVENTS_KEPT:
                self.events[text] = event
        return event

    def _identity(self, naive_iso: str, sender: str, text: str) -> str:
        key = (sender, text)
        seen = self.repeats.get(naive_iso)
        if seen is None:      # most messages: the only one at their time, remembered without a dict
            self.repeats[naive_iso] = key
            if len(self.repeats) > REPEAT_WINDOW:
                self.repeats.popitem(last=False)
            occurrence = 1
        elif type(seen) is tuple:      # the second at this time (setting a key keeps its place in the window)
            self.repeats[naive_iso] = {key: 2} if seen == key else {seen: 1, key: 1}
            occurrence = 2 if seen == key else 1
        else:
            occurrence = seen[key] = seen.get(key, 0) + 1
        material = f"{self.identity_prefix}{naive_iso}\x00{sender}\x00{text}\x00{occurrence}"
        hasher = self.hasher     # one hasher reset for each message: cheaper than a new one
        hasher.reset()
        hasher.update(material.encode("utf-8", "surrogatepass"))
        return hasher.digest(16).hex()      # the first 16 bytes of its digest (hexdigest(16) spells them slower)

    def own_record(self, stored: StoredOriginal, counts: dict, survey: dict, order_name: str) -> Record:
        meta = dict(stored.source_meta)
        # a container: its messages are the events, not the export itself (see Index.incidents)
        meta.update(container=True, chat=self.chat, chat_member=self.member, platform=survey["platform"],
                    date_order=order_name,
                    messages=counts["messages"], system_messages=counts["system"], lines=counts["lines"],
                    attachments=counts["attachments"], media_omitted=counts["media_omitted"],
                    participants=sorted(self.senders)[:100])
        if self.first_time:
            meta["first_message"] = self.first_time
            meta["last_message"] = self.last_time
        record = Record(kind=stored.kind_hint or "file", subject=f"WhatsApp chat: {self.chat}" if self.chat else
                        "WhatsApp chat", metadata=meta)
        date_whole_file(record, meta)
        return record

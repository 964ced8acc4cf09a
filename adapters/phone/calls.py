"""The `calls` parser: call logs. "SMS Backup & Restore" / "Call Logs Backup & Restore"
calls.xml (`<calls>` of `<call>`), SuperBackup's `<alllogs>` of `<log>`, the `calls`
table of Android's contacts2.db / calllog.db (locator "table calls, row N"; its
`normalized_number` is used when it is E.164), and call-log CSVs (dialects: see
`adapters.phone._calllog_csv`).

Each call is a record of kind "call" with `direction`, `duration_s`, the other party
in E.164 where it has one ("withheld"/"unknown" for a private caller; the raw number
kept in metadata) and the contact name as given. XML locators are "element N" (the
N-th element inside the root, from 1); CSV locators are "row N" (the header is row 1).
XML times are `date`, ms since the epoch, UTC; CSV times are read in the case
timezone (`timezone_assumed`) unless the file gives a zone.

Android call types: 1 incoming, 2 outgoing, 3 missed, 4 voicemail, 5 rejected, 6
blocked, 7 answered on another device (direction incoming, `answered_elsewhere`).
Unknown codes are kept in metadata with no direction.

Call identity (a newer log overlapping an older one adds only new calls): a hash of
the start time (ms for XML; as written, in UTC, for CSV), the other party, the
direction and the duration. Identical repeats in one log stay distinct (three missed
calls in the same minute are three calls; see `adapters.phone._telephony.Identities`).
"""

from __future__ import annotations

from typing import Iterator

from adapters.phone import _phonedb as phonedb
from adapters.phone._backupxml import DAMAGED, BrokenXml, UnsafeXml, elements
from adapters.phone._calllog_csv import CallLogCsv, CallRow, CsvTrouble, looks_like_call_log
from adapters.phone._telephony import (ME, PRESENTATION, Identities, Parties, apple_time, backup_record,
                                       damage_warning, end_of_xml, epoch, party, stated_count)
from ingest.kit.adapter import AskSecret, Option, Parser
from ingest.kit.dating import date_only, local_moment
from ingest.kit.registry import register
from ingest.kit.context import Context
from ingest.model.errors import UsageError
from ingest.model.records import NotThisFormat, ParseWarning, Record, StoredOriginal
from ingest.model.times import iso_utc

ROOTS = {"calls": ("SMS Backup & Restore", "call"), "alllogs": ("SuperBackup", "log")}
CALL_TYPES = {"1": ("incoming", "incoming"), "2": ("outgoing", "outgoing"), "3": ("missed", "missed"),
              "4": ("voicemail", "voicemail"), "5": ("rejected", "rejected"), "6": ("blocked", "blocked"),
              "7": ("incoming", "answered elsewhere")}
ITEMS = frozenset(item for _format, item in ROOTS.values())
UNKNOWN_TYPE = (None, None)
NOT_A_NAME = {"", "null", "(Unknown)"}


@register
class CallsParser(Parser):
    name = "calls"
    version = "1"
    presets = {"calls": "files"}
    priority = 50
    cli_options = (
        Option("--map", "map", "Call-log CSV: name the column holding a field the detection missed (number, date, "
                               "time, duration, direction, name).", metavar="FIELD=Column", multiple=True),
    )

    @classmethod
    def check_options(cls, options: dict, ask_secret: AskSecret | None = None) -> dict:
        """`--map number='Phone Number'` pairs become {field: column}."""
        mapping = {}
        for pair in options.get("map", ()):
            field, sep, column = pair.partition("=")
            if not sep or not field.strip() or not column.strip():
                raise UsageError(f"--map {pair!r} is not FIELD=Column.", hint="e.g. --map number='Phone Number'")
            mapping[field.strip()] = column.strip()
        return {"map": mapping} if mapping else {}

    @staticmethod
    def _has_xml_root(head: bytes) -> bool:
        return any(f"<{root}".encode() in head[:4096] for root in ROOTS)

    def _looks_like_xml(self, head: bytes) -> bool:
        """A call-log root, or a first line that is a tag (a CSV header damaged into "<ate,..." is not)."""
        first_line = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
        return self._has_xml_root(head) or first_line.startswith(b"<") and b">" in first_line

    def sniff(self, head: bytes, filename: str | None) -> bool:
        if self._has_xml_root(head):
            return True
        if head.startswith(phonedb.SQLITE_MAGIC):     # by its tables, whatever the file is called
            return phonedb.sniff_database(head, phonedb.CALL_TABLES, phonedb.MESSAGE_TABLES)
        return not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and looks_like_call_log(head)

    def apart(self, stored: StoredOriginal) -> bool:
        return True

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning]:
        head = stored.head(4096)
        if not head:
            yield ParseWarning("The file is empty: there are no calls in it (it is kept as it is).", fatal=True)
        elif head.startswith(phonedb.SQLITE_MAGIC):
            yield from self._database(stored, ctx)
        elif self._looks_like_xml(head):
            yield from self._xml(stored, ctx)
        else:
            yield from self._csv(stored, ctx)

    # --- XML --------------------------------------------------------------------------
    def _xml(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning]:
        container = stored.filename or stored.source_key
        identities, party_of = Identities(), Parties(ctx.phone)
        root_format = item_tag = problem = root_tag = None
        root_attrs: dict = {}
        stated: int | None = None
        number = read = damaged = 0
        with stored.open() as handle:
            try:
                for tag, attrs, line, depth in elements(handle, items=ITEMS, root="calls"):
                    if tag == DAMAGED:         # the file stops being XML here; reading resumed after it
                        damaged += 1
                        number += attrs["in_root"]     # before the root (the declaration) no call is lost
                        locator = f"element {number}" if attrs["in_root"] else None
                        yield damage_warning(attrs["problem"], "call", locator)
                    elif depth == 1:
                        if tag in ("smses", "allsms"):
                            yield ParseWarning(f"This is not a call log: its XML starts with <{tag}>. "
                                               "Try --source sms.", fatal=True)
                            return
                        root_tag, root_attrs = tag, attrs
                        root_format, item_tag = ROOTS.get(tag, (f"unknown (<{tag}>)", None))
                        stated = stated_count(attrs.get("count"))
                        if stated is not None:
                            ctx.expect(container, stated, "call", "backup")
                    elif depth == 2 or tag in ITEMS:   # an item inside another is one a damaged tag left open
                        number += 1
                        if tag == item_tag or item_tag is None and tag in ITEMS:
                            read += 1
                            yield self._xml_call(attrs, f"element {number}", line, party_of, identities)
            except (BrokenXml, UnsafeXml) as error:
                problem = str(error)
        warnings = end_of_xml(root_tag, ROOTS, read, stated, problem, backup="a call log", app="call-log app",
                              noun="call")
        yield from warnings
        if any(warning.fatal for warning in warnings):
            return
        ctx.acquired(container, read)
        yield backup_record(stored, root_attrs.get("backup_date"), "calls:backup_date", format=root_format,
                            count_stated=stated, calls_read=read, backup=root_attrs, problem=problem,
                            places_damaged=damaged or None)

    def _database(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning | NotThisFormat]:
        """Android's call log database (contacts2.db, calllog.db): its `calls` table holds the
        columns the backup app writes out, so each row is read exactly as a <call> element.
        iOS's CallHistory.storedata (`ZCALLRECORD`) is read row by row too. A message database
        is handed on to the sms parser."""
        try:
            tables = phonedb.tables(stored.path)
        except phonedb.NotReadable:
            tables = set()
        if "calls" not in tables and "ZCALLRECORD" in tables:
            yield from self._ios(stored, ctx)
            return
        if "calls" not in tables and phonedb.holds(tables, phonedb.MESSAGE_TABLES):
            yield NotThisFormat("Databases of messages given as calls were read as messages.")
            return
        party_of, identities = Parties(ctx.phone), Identities()
        rows = phonedb.TableRead()
        yield from rows.records(stored.path, "calls", "Android's call log",
                                lambda row, locator: self._xml_call(row, locator, None, party_of, identities))
        if not rows.fatal:
            yield backup_record(stored, None, "", format="Android call log database", calls_read=rows.read,
                                problem=None)

    def _ios(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning]:
        """iOS call history: ZDATE in seconds since 2001 (UTC), ZORIGINATED 1 for a call made,
        ZANSWERED 0 for one not picked up, ZDURATION in seconds, ZADDRESS the other number."""
        party_of, identities = Parties(ctx.phone), Identities()
        rows = phonedb.TableRead()
        yield from rows.records(stored.path, "ZCALLRECORD", "iOS's call history",
                                lambda row, locator: self._ios_call(row, locator, party_of, identities))
        if not rows.fatal:
            yield backup_record(stored, None, "", format="iOS call history", calls_read=rows.read, problem=None)

    def _ios_call(self, row: dict, locator: str, party_of: Parties, identities: Identities) -> Record:
        raw_date = row.pop("ZDATE", None)
        moment = apple_time(raw_date)
        outgoing, answered = row.get("ZORIGINATED") == "1", row.get("ZANSWERED") != "0"
        direction = "outgoing" if outgoing else "incoming" if answered else "missed"
        other = party_of(row.get("ZADDRESS"))[0]
        if row.get("ZNAME") not in (None, "null", ""):
            row["contact_name"] = row["ZNAME"]
        return self._record(locator, direction, other, _seconds(row.get("ZDURATION")), row, identities,
                            occurred_at=moment, occurred_at_source="ios:ZDATE" if moment else None,
                            occurred_at_raw=raw_date, stamp=raw_date)

    def _xml_call(self, attrs: dict, locator: str, line: int | None, party_of: Parties,
                  identities: Identities) -> Record:
        raw_date = attrs.pop("date", None)
        moment, unit, ms = epoch(raw_date)
        code = attrs.get("type")
        # Android's own database may hold the number already normalised with the phone's country
        raw_number = attrs.get("normalized_number", "")
        if not raw_number.startswith("+"):
            raw_number = attrs.get("number")
        presentation = attrs.get("presentation")
        other = (party_of(raw_number)[0] if presentation not in PRESENTATION
                 else party(raw_number, party_of.phone, presentation))
        duration = _seconds(attrs.get("duration", attrs.get("dur")))
        direction, type_name = CALL_TYPES.get(code, UNKNOWN_TYPE)
        attrs["type_name"] = type_name
        if line is not None:
            attrs["line"] = line
        if code == "7":
            attrs["answered_elsewhere"] = True
        if presentation in PRESENTATION:
            attrs["presentation_name"] = PRESENTATION[presentation]
        if unit == "s":
            attrs["date_unit"] = "s"
        return self._record(locator, direction, other, duration, attrs, identities,
                            occurred_at=moment, occurred_at_source="calls:date" if moment else None,
                            occurred_at_raw=raw_date, stamp=ms)

    # --- CSV --------------------------------------------------------------------------
    def _csv(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning]:
        label = stored.filename or stored.source_key
        try:
            log = CallLogCsv(stored.open, self.options.get("map"), ctx.region, label)
        except CsvTrouble as trouble:
            yield ParseWarning(str(trouble), fatal=True)
            return
        identities, party_of = Identities(), Parties(ctx.phone)
        unread = log.unread_columns()
        if unread:
            yield ParseWarning(f"column(s) not read as any part of a call: {', '.join(unread)}. Their values are "
                               "kept in each call's metadata (row); name one with --map if it matters.")
        read = skipped = 0
        for item in log.rows():
            if isinstance(item, ParseWarning):
                skipped += 1
                yield item
            else:
                read += 1
                if item.damaged:
                    yield ParseWarning(f"a byte in this row is not a character in the file's encoding "
                                       f"({log.encoding}); it is shown as \ufffd (the file is kept exactly as it was).",
                                       locator=f"row {item.row}")
                yield self._csv_call(item, ctx, party_of, identities)
        for note in log.notes:
            ctx.note(note)
        yield backup_record(stored, None, "", format="call-log CSV", encoding=log.encoding,
                            delimiter=log.delimiter, header=log.header, day_first=log.day_first,
                            columns={name: index + 1 for name, index in log.columns.items()},
                            calls_read=read, rows_not_read=skipped, problem=None)

    def _csv_call(self, row: CallRow, ctx: Context, party_of: Parties, identities: Identities) -> Record:
        meta = {"row": row.columns, "number_raw": row.number, "direction_raw": row.direction_raw}
        if row.duration_from:
            meta["duration_from"] = row.duration_from
        if row.name and row.name not in NOT_A_NAME:
            meta["contact_name"] = row.name
        if row.moment.tzinfo is None:
            moment, assumed = local_moment(row.moment, ctx, meta), True
        else:
            moment, assumed = row.moment, False
        extra = {}
        if row.number is None and (row.caller or row.callee):
            # a carrier record names both ends and not which one is the owner
            extra = {"from_": party_of(row.caller), "to": party_of(row.callee)}
            meta.update(caller_raw=row.caller, callee_raw=row.callee)
        other = party_of(row.number)[0]
        record = self._record(f"row {row.row}", row.direction, other, row.duration, meta, identities,
                              occurred_at=moment, occurred_at_source="csv:date", occurred_at_raw=row.moment_raw,
                              timezone_assumed=assumed, stamp=iso_utc(moment), **extra)
        if row.date_only:
            date_only(record, row.moment.date(), row.moment_raw, "csv:date", ctx)
        return record

    # --- both -------------------------------------------------------------------------
    @staticmethod
    def _record(locator: str, direction: str | None, other: str, duration: float | None, meta: dict,
                identities: Identities, *, stamp, **fields) -> Record:
        name = meta.get("contact_name", meta.get("name"))
        if name in NOT_A_NAME:
            name = None
        if "from_" not in fields:
            mine = direction == "outgoing"
            fields["from_"], fields["to"] = ([ME], [other]) if mine else ([other], [ME] if direction else [])
        return Record(kind="call", locator=locator, direction=direction, duration_s=duration, metadata=meta,
                      text=name, identity=identities(f"call\x1f{stamp}\x1f{','.join(fields['from_'] + fields['to'])}"
                                                     f"\x1f{direction}\x1f{duration}"), **fields)


def _seconds(raw: str | None) -> float | None:
    try:
        return float(raw) if raw not in (None, "", "null") else None
    except ValueError:
        return None

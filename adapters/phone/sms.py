"""The `sms` parser: "SMS Backup & Restore" XML (`<smses>` of `<sms>` and `<mms>`),
SuperBackup's `<allsms>`, and the `sms` table of Android's own mmssms.db (its rows are
the columns the backup app writes out; locator "table sms, row N"; its MMS tables are
counted, not read yet), and iOS Messages' chat.db (locator "table message, row N";
identity: the message's own `guid`).

Each message is a record with locator "element N": the N-th element inside the root,
counting from 1 in file order (sms and mms alike). Times are the backup's `date`, in
ms since the epoch, UTC (seconds when a tool wrote seconds; said in metadata as
`date_unit`). `readable_date` is a locale display string and is never parsed. Every
attribute except `date` and `body` (the record's occurred_at_raw and text) is kept in
`metadata` exactly as written (even the app's "null", its word for a missing value),
with `box` (received, sent, draft, outbox, failed, queued) and `line` (where the element
starts in the file) added. A "null" body or subject is read as absent.

MMS: `text/plain` parts become the record's text; every part with base64 `data` (a
photo, a video, a vCard) becomes a child original whose parent is the MMS record, so
it is kept, hashed and parsed (EXIF, OCR) like any file. `<addr>` lists give the From
and To of group messages.

Message identity (so a newer backup that overlaps an older one adds only what is
new): a hash of what the message is, never of the file that carried it:
- SMS: the other party (E.164 where possible), `date` in ms, whether it was the
  owner's (sent, outbox, failed, queued, draft) or received, and the body.
- MMS: `date` in ms, owner's or received, the sorted parties, the text and `m_id`
  (the network's message id, when given).
`read`, `contact_name` and `type` changes between backups (unread then read, a
contact added, outbox then sent) do not change it. Identical repeats in one backup stay
distinct (see `adapters.phone._telephony.Identities`).

Safety and tolerance (see `adapters.phone._backupxml`): streamed in chunks, memory flat; a
DTD is refused, so no entity is expanded or fetched; surrogate-pair emoji references
are repaired. A file cut short keeps every message before the break and is marked
partial; the count the backup states is compared with what was read.
"""

from __future__ import annotations

import binascii
from typing import Iterator

from ingest.kit.adapter import Parser
from ingest.kit.zips import leaf_name
from adapters.phone import _phonedb as phonedb
from adapters.phone._backupxml import DAMAGED, BrokenXml, Repairs, UnsafeXml, elements
from ingest.model.records import Child, NotThisFormat, ParseWarning, Record, StoredOriginal
from ingest.kit.registry import register
from ingest.kit.context import Context
from adapters.phone._telephony import (ME, Identities, Parties, apple_time, backup_record, damage_warning, end_of_xml,
                                       epoch, stated_count)
from ingest.model.times import iso

ROOTS = {"smses": "SMS Backup & Restore", "allsms": "SuperBackup"}
# Telephony.Sms type: (direction, box). Only type 1 was received.
SMS_TYPES = {"1": ("incoming", "received"), "2": ("outgoing", "sent"), "3": (None, "draft"),
             "4": ("outgoing", "outbox"), "5": ("outgoing", "failed"), "6": ("outgoing", "queued")}
MMS_BOXES = {"1": ("incoming", "received"), "2": ("outgoing", "sent"), "3": (None, "draft"),
             "4": ("outgoing", "outbox"), "5": ("outgoing", "failed")}
MMS_TYPES = {"132": "1", "128": "2"}   # m_type retrieve_conf / send_req, when msg_box is missing
ADDR_FROM, ADDR_TO = "137", ("151", "130", "129")   # PDU headers From; To, Cc, Bcc
OWN_ADDRESS = "insert-address-token"   # Android's placeholder for the owner in a sent MMS
UNKNOWN_TYPE = (None, None)
MMS_END = frozenset({"mms"})
ITEMS = frozenset({"sms", "mms"})
RESUME_AT = ITEMS | {"parts"}      # after damage: the next message, or the parts of an MMS whose tag was damaged
IOS_TABLES = {"message", "handle"}
IOS_QUERY = ('SELECT m.*, m.attributedBody IS NOT NULL AS has_attributed_body, h.id AS handle '
             "FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id ORDER BY m.ROWID")


def _given(value: str | None) -> str | None:
    return None if value is None or value == "null" else value


class _Mms:
    """An <mms> being read: its parts and addresses arrive as child elements."""

    def __init__(self, attrs: dict, number: int, line: int):
        self.attrs, self.number, self.line = attrs, number, line
        self.locator = f"element {number}"
        self.moment, self.unit, self.ms = epoch(attrs.get("date"))
        self.texts: list[str] = []
        self.parts: list[dict] = []
        self.addrs: list[tuple[str, str]] = []


@register
class SmsBackupParser(Parser):
    name = "sms"
    version = "1"
    presets = {"sms": "files"}
    priority = 50

    def sniff(self, head: bytes, filename: str | None) -> bool:
        if head.startswith(phonedb.SQLITE_MAGIC):     # by its tables, whatever the file is called
            return phonedb.sniff_database(head, phonedb.MESSAGE_TABLES, phonedb.CALL_TABLES)
        return any(f"<{root}".encode() in head[:4096] for root in ROOTS)

    def apart(self, stored: StoredOriginal) -> bool:
        return True      # records, and MMS parts as bytes

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | Child | ParseWarning]:
        container = stored.filename or stored.source_key
        identities = Identities()
        party_of = Parties(ctx.phone)
        repairs = Repairs()
        root_format: str | None = None
        root_tag: str | None = None
        root_attrs: dict = {}
        stated: int | None = None
        number = read = damaged = 0
        damaged_at: str | None = None
        mms: _Mms | None = None
        problem: str | None = None
        with stored.open() as handle:
            head = handle.read(16)
            if not head:
                yield ParseWarning("The file is empty: there are no messages in it (it is kept as it is).", fatal=True)
                return
            if head.startswith(phonedb.SQLITE_MAGIC):
                yield from self._database(stored, ctx)
                return
            handle.seek(0)
            try:
                for tag, attrs, line, depth in elements(handle, repairs, ends=MMS_END, items=RESUME_AT,
                                                        root="smses"):
                    if tag == "sms" and depth == 2:     # most elements (the last branch below, tested first)
                        number += 1
                        read += 1
                        yield self._sms(attrs, f"element {number}", line, party_of, identities)
                    elif attrs is None:        # the end of an <mms>: its parts and addresses are in
                        if mms is not None:
                            yield self._mms_record(mms, party_of, identities)
                            mms = None
                    elif tag == DAMAGED:       # the file stops being XML here; reading resumed after it
                        if mms is not None:
                            mms.attrs["incomplete"] = True
                            locator = mms.locator
                            yield self._mms_record(mms, party_of, identities)
                            mms = None
                        elif attrs["in_root"]:
                            number += 1
                            locator = f"element {number}"
                        else:                          # the XML declaration or the root tag: no message
                            locator = None
                        # (the end tags of an MMS whose own tag was damaged break once more: said once)
                        if locator is None or locator != damaged_at:
                            damaged += 1
                            yield damage_warning(attrs["problem"], "message", locator)
                        damaged_at = locator
                    elif tag == "parts" and mms is None and depth <= 3:
                        # an MMS whose own tag was damaged (lost its "<", or its name): its parts are still read
                        if depth == 2 and damaged_at != f"element {number}":
                            number += 1
                        mms = _Mms({"damaged": True}, number, line)
                        read += 1
                    elif depth == 1:
                        if tag not in ROOTS and tag in ("calls", "alllogs"):
                            yield ParseWarning(f"This is not an SMS backup: its XML starts with <{tag}>. "
                                               "Try --source calls.", fatal=True)
                            return
                        root_tag, root_attrs = tag, attrs
                        root_format = ROOTS.get(tag, f"unknown (<{tag}>)")
                        stated = stated_count(attrs.get("count"))
                        if stated is not None:
                            ctx.expect(container, stated, "message", "backup")
                    elif mms is not None and tag in ("parts", "addrs"):
                        pass                           # an MMS's lists (at depth 2 when its own tag was damaged)
                    elif depth == 2 or tag in ITEMS:   # an item inside another is one a damaged tag left open
                        number += 1
                        if tag == "sms":
                            read += 1
                            yield self._sms(attrs, f"element {number}", line, party_of, identities)
                        elif tag == "mms":
                            read += 1
                            if mms is not None:
                                mms.attrs["incomplete"] = True
                                yield self._mms_record(mms, party_of, identities)
                            mms = _Mms(attrs, number, line)
                    elif mms is not None and tag == "part":
                        yield from self._part(mms, attrs)
                    elif mms is not None and tag == "addr":
                        mms.addrs.append((attrs.get("address", ""), attrs.get("type", "")))
            except (BrokenXml, UnsafeXml) as error:
                problem = str(error)
        if mms is not None:   # cut short inside an MMS: keep what arrived, say it is incomplete
            mms.attrs["incomplete"] = True
            yield self._mms_record(mms, party_of, identities)
        warnings = end_of_xml(root_tag, ROOTS, read, stated, problem, backup="an SMS backup", app="SMS backup app",
                              noun="message")
        yield from warnings
        if any(warning.fatal for warning in warnings):
            return
        if repairs.count:
            ctx.note(f"{container}: {repairs.count} character(s) the XML could not carry were shown as \ufffd "
                     "(the original is kept exactly as it was).")
        ctx.acquired(container, read)
        yield backup_record(stored, root_attrs.get("backup_date"), "sms:backup_date", format=root_format,
                            count_stated=stated, messages_read=read, backup=root_attrs, problem=problem,
                            characters_repaired=repairs.count, places_damaged=damaged or None)

    def _database(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning]:
        """Android's own message store (mmssms.db): its `sms` table holds the columns the
        backup app writes out, so each row is read exactly as an <sms> element."""
        try:
            tables = phonedb.tables(stored.path)
            if "sms" not in tables and IOS_TABLES <= tables:
                yield from self._ios(stored, ctx)
                return
            if "sms" not in tables and phonedb.holds(tables, phonedb.CALL_TABLES):
                yield NotThisFormat("Call-log databases given as sms were read as call logs.")
                return
        except phonedb.NotReadable as error:
            yield ParseWarning(f"This database could not be read: {error}. It is kept exactly as it is.", fatal=True)
            return
        party_of, identities = Parties(ctx.phone), Identities()
        rows = phonedb.TableRead()
        yield from rows.records(stored.path, "sms", "Android's message store",
                                lambda row, locator: self._sms(row, locator, None, party_of, identities))
        if rows.fatal:
            return
        unread = phonedb.count(stored.path, "pdu")
        if unread:
            yield ParseWarning(f"{unread} MMS in this database were not read (only its SMS are); "
                               "the database is kept whole.")
        yield backup_record(stored, None, "", format="Android mmssms.db", messages_read=rows.read, problem=None)

    def _ios(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning]:
        """iOS / macOS Messages (chat.db): each row of `message`, with its `handle`. Text that
        newer iOS keeps only in the `attributedBody` blob is not decoded (said in metadata)."""
        party_of, identities = Parties(ctx.phone), Identities()
        read, problem = 0, None
        try:
            for row in phonedb.select(stored.path, IOS_QUERY):
                read += 1
                yield self._imessage(row, party_of, identities)
        except phonedb.NotReadable as error:
            problem = str(error)
        if problem and not read:
            yield ParseWarning(f"Could not read this Messages database: {problem}.", fatal=True)
            return
        if problem:
            yield ParseWarning(f"Only partly read: {problem}. The {read} message(s) before that point were kept.")
        yield backup_record(stored, None, "", format="iOS Messages chat.db", messages_read=read, problem=problem)

    @staticmethod
    def _imessage(row: dict, party_of, identities: Identities) -> Record:
        raw_date = row.pop("date", None)
        moment = apple_time(raw_date)
        text = _given(row.pop("text", None))
        mine = row.get("is_from_me") == "1"
        others = [] if _given(row.get("handle")) is None else party_of(row["handle"])
        if text is None and row.get("has_attributed_body") == "1":
            row["text_only_in_attributedBody"] = True
        return Record(
            kind="sms", locator=f"table message, row {row['ROWID']}", occurred_at=moment,
            occurred_at_source="imessage:date" if moment else None, occurred_at_raw=raw_date,
            direction="outgoing" if mine else "incoming", from_=[ME] if mine else others,
            to=others if mine else [ME], text=text, metadata=row,
            identity=identities(f"imessage\x1f{row.get('guid')}"))

    # --- one record each ------------------------------------------------------------
    def _sms(self, attrs: dict, locator: str, line: int | None, party_of, identities: Identities) -> Record:
        # The hot path of a 500 MB backup: the element's own attribute dict becomes the metadata.
        raw_date = attrs.pop("date", None)
        body = attrs.pop("body", None)
        if body == "null":             # _given, spelt out: two calls fewer per message
            body = None
        subject = attrs.pop("subject", None)
        if subject == "null":
            subject = None
        moment, unit, ms = epoch(raw_date)
        direction, box = SMS_TYPES.get(attrs.get("type"), UNKNOWN_TYPE)
        mine = box is not None and box != "received"
        others, parties = party_of.with_key(attrs.get("address"))
        attrs["box"] = box
        if line is not None:
            attrs["line"] = line
        if unit == "s":
            attrs["date_unit"] = "s"
        return Record(
            kind="sms", locator=locator, occurred_at=moment,
            occurred_at_source="sms:date" if moment else None, occurred_at_raw=raw_date,
            direction=direction, from_=[ME] if mine else others, to=others if mine else [ME],
            subject=subject, text=body, metadata=attrs,
            identity=identities(f"sms\x1f{parties}\x1f{ms}\x1f{mine}\x1f{body}"))

    def _part(self, mms: _Mms, attrs: dict) -> Iterator[Child | ParseWarning]:
        index = len(mms.parts) + 1
        content_type = (_given(attrs.get("ct")) or "application/octet-stream").lower()
        name = next((value for key in ("cl", "name", "fn") if (value := _given(attrs.get(key)))), None)
        name = leaf_name(name)     # a name, never a path to follow
        entry = {"seq": attrs.get("seq"), "ct": content_type, "name": name}
        mms.parts.append(entry)
        text, data = _given(attrs.get("text")), _given(attrs.get("data"))
        if content_type == "text/plain" and text:
            mms.texts.append(text)
        if not data:
            return
        try:
            payload = _base64(data)
        except ValueError:   # binascii.Error, or a character that is not ASCII at all
            entry["error"] = "data is not valid base64"
            yield ParseWarning(f"Part {index} of this MMS ({content_type}) holds data that is not valid base64, "
                               "so it could not be extracted; the backup itself is kept whole.", locator=mms.locator)
            return
        entry["size"] = len(payload)
        if content_type == "text/plain" and not text:
            mms.texts.append(payload.decode("utf-8", errors="replace"))
        meta = {"content_type": content_type, "mms_part_seq": attrs.get("seq")}
        if mms.moment:
            meta.update(occurred_at=iso(mms.moment), occurred_at_source="mms:date",
                        occurred_at_raw=mms.attrs.get("date"))
        yield Child(data=payload, locator=f"{mms.locator} part {index}", filename=name,
                    parent_locator=mms.locator, kind_hint="attachment", media_type=content_type, source_meta=meta)

    def _mms_record(self, mms: _Mms, party_of, identities: Identities) -> Record:
        attrs = mms.attrs
        raw_date = attrs.pop("date", None)
        box_code = attrs.get("msg_box") if attrs.get("msg_box") in MMS_BOXES else MMS_TYPES.get(attrs.get("m_type"))
        direction, box = MMS_BOXES.get(box_code, UNKNOWN_TYPE)
        mine = box is not None and box != "received"
        if mms.addrs:
            senders = [one for raw, kind in mms.addrs if kind == ADDR_FROM and raw != OWN_ADDRESS
                       for one in party_of(raw)]
            receivers = [one for raw, kind in mms.addrs if kind in ADDR_TO and raw != OWN_ADDRESS
                         for one in party_of(raw)]
        else:
            others = party_of(attrs.get("address"))
            senders, receivers = ([], others) if mine else (others, [])
        text = "\n".join(mms.texts) or None
        attrs.update(box=box, line=mms.line, parts=mms.parts,
                     addrs=[{"address": raw, "type": kind} for raw, kind in mms.addrs])
        if mms.unit == "s":
            attrs["date_unit"] = "s"
        subject = _given(attrs.pop("sub", None))
        return Record(
            kind="mms", locator=mms.locator, occurred_at=mms.moment,
            occurred_at_source="mms:date" if mms.moment else None, occurred_at_raw=raw_date,
            direction=direction, from_=[ME] if mine else senders, to=receivers or ([] if mine else [ME]),
            subject=subject, text=text, metadata=attrs,
            identity=identities(f"mms\x1f{mms.ms}\x1f{mine}\x1f{','.join(sorted(set(senders + receivers)))}"
                                f"\x1f{text}\x1f{_given(attrs.get('m_id')) or ''}"))




def _base64(data: str) -> bytes:
    """Strict base64 (garbage is refused, not silently skipped); line breaks and missing padding tolerated."""
    if any(space in data for space in " \n\r\t"):
        data = "".join(data.split())
    if len(data) % 4 in (2, 3):
        data += "=" * (4 - len(data) % 4)
    return binascii.a2b_base64(data, strict_mode=True)

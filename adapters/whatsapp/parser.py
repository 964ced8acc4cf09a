"""The `whatsapp` parser: an "Export chat" text (.txt), or the .zip that holds it with the media.

The export is the original. Each message (and each system line: encryption notice,
joins, leaves, number changes) is a record whose locator is its line range in the
chat text ("line 12-14"; in a zip "_chat.txt line 12-14"). Each file in the zip is a
child original linked to the message that names it. Every line of the chat text
belongs to exactly one record: a message runs from its dated header line to the line
before the next header, blank lines and all.

The text is read twice, streaming, never whole: a survey pass decides the date order
from the whole file (any first or second field above 12 settles it; otherwise the case
region), then the parse pass yields records.

Identity (so an overlapping export, taken again later, adds only new messages) is made
from the chat's name, the message's time, sender and text and an occurrence count (see
`_chat`). A later export lists the same messages in the same order, so it gives the same
identities, even when WhatsApp has dropped the oldest messages from it. Every doubt falls
on the side of keeping twice rather than losing: a renamed export, a different date order
or an edited text gives a new identity, so the message is kept again, never dropped.

Zips are read, never unpacked to disk, with the kit's zip safety (`ingest.kit.zips`):
member names cleaned, bombs and oversized members refused (said, and the zip kept
whole). A zip cut short (no directory at its end) still gives its chat text, read from
the member's own header, up to the cut.

The grammar of a line is in `_grammar`, dates and clocks in `_dates`, reading the text
and making records in `_chat`.
"""

from __future__ import annotations

import mimetypes
import zipfile
from typing import BinaryIO, Callable, Iterator

from ingest.kit.context import Context
from ingest.kit.adapter import Parser
from ingest.kit.registry import register
from ingest.kit.zips import (MAX_TOTAL, ZIP_END, ZIP_LOCAL, bomb_reason, first_local_member, head_members,
                             member_opener, safe_member_name, unique_names)
from ingest.model.records import Child, NotThisFormat, ParseWarning, Record, StoredOriginal

from ._chat import MAX_LEADING_LINES, MAX_TEXT, ChatState, Message, read_lines, survey_chat
from ._dates import decide_order
from ._grammar import chat_name, is_chat_member_name, match_header, text_looks_like_chat

MEMBER_LIST_SHOWN = 20


def _chat_member(name: str) -> bool:
    return is_chat_member_name(name) and not name.startswith("__MACOSX/")


@register
class WhatsAppParser(Parser):
    name = "whatsapp"
    version = "1"
    presets = {"whatsapp": "files"}
    priority = 20

    def sniff(self, head: bytes, filename: str | None) -> bool:
        if head.startswith(ZIP_LOCAL):
            if any(is_chat_member_name(name) or (name.casefold().endswith(".txt") and "/" not in name
                                                 and text_looks_like_chat(start))
                   for name, start in head_members(head)):
                return True
            return bool(filename) and filename.casefold().startswith("whatsapp chat") and \
                filename.casefold().endswith(".zip")
        return text_looks_like_chat(head)

    def apart(self, stored: StoredOriginal) -> bool:
        return not stored.head().startswith((ZIP_LOCAL, ZIP_END))    # a zip's media open its members

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | Child | ParseWarning | NotThisFormat]:
        head = stored.head()
        if head.startswith((ZIP_LOCAL, ZIP_END)):
            yield from self._parse_zip(stored, ctx)
            return
        if not stored.media_type.startswith("text/") and stored.media_type not in ("application/octet-stream",
                                                                                     "inode/x-empty"):
            # A photo or video saved beside an unzipped chat: the pipeline reads it as what it is.
            if not self.sniff(head, stored.filename):
                yield NotThisFormat("Files given as WhatsApp that are not chat text (pictures, videos) were read as "
                                    "what they are.")
                return
        yield from self._parse_chat(stored.open, stored, ctx, member=None, members={})

    # zip ---------------------------------------------------------------------------------------
    def _parse_zip(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | Child | ParseWarning]:
        handle = stored.open()
        try:
            try:
                archive = zipfile.ZipFile(handle)
                infos = archive.infolist()
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
                yield from self._parse_damaged_zip(stored, ctx, str(error))
                return
            yield from self._parse_archive(archive, infos, stored, ctx)
        finally:
            handle.close()

    def _parse_damaged_zip(self, stored: StoredOriginal, ctx: Context, error: str):
        """A zip cut short has no directory at its end, but its chat text usually comes first:
        read it from its own header at the front, as far as it goes."""
        found = first_local_member(stored.open, _chat_member)
        if found is None:
            yield ParseWarning(f"this zip is damaged or incomplete ({error}), perhaps cut short while copying; "
                               "it is kept exactly as it is. Export the chat again to get a complete copy.",
                               fatal=True)
            return
        name, opener = found
        yield ParseWarning(f"this zip is damaged or incomplete ({error}), perhaps cut short while copying. The chat "
                           "text was read from the part that is there; no media could be unpacked. The zip is kept "
                           "exactly as it is; export the chat again to get a complete copy.")
        summary = yield from self._parse_chat(opener, stored, ctx, member=name, members={})
        if summary is not None:
            summary.metadata["zip_incomplete"] = True
            yield summary

    def _parse_archive(self, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], stored: StoredOriginal,
                       ctx: Context) -> Iterator[Record | Child | ParseWarning]:
        files = [info for info in infos if not info.is_dir()]
        unsafe = [info.filename for info in files if safe_member_name(info.filename) != info.filename]
        for name in unsafe[:MEMBER_LIST_SHOWN]:
            yield ParseWarning(f"the zip member {name!r} has a path that points outside the zip; "
                               f"it is named {safe_member_name(name)!r} and nothing is written outside the case")
        chats = [info for info in files if is_chat_member_name(info.filename)
                 and not info.filename.startswith("__MACOSX/")]
        if not chats:
            texts = [info for info in files if info.filename.lower().endswith(".txt") and "/" not in info.filename]
            chats = [info for info in texts if self._member_is_chat(archive, info)][:1]
        if not chats:
            yield ParseWarning("this zip holds no WhatsApp chat text (no _chat.txt or 'WhatsApp Chat … .txt'); "
                               "it is kept exactly as it is. Check it is the zip WhatsApp's 'Export chat' made.",
                               fatal=True)
            return
        chat = chats[0]
        reason = bomb_reason(chat)
        if reason:
            yield ParseWarning(f"the chat text {safe_member_name(chat.filename)} was not unpacked: {reason}. "
                               "The zip is kept exactly as it is.", fatal=True)
            return
        media = [info for info in files if info is not chat and not info.filename.startswith("__MACOSX/")]
        members = unique_names(media)
        references: dict[str, tuple[str, dict]] = {}
        summary = yield from self._parse_chat(member_opener(archive, chat), stored, ctx,
                                              member=safe_member_name(chat.filename), members=members,
                                              references=references)
        if summary is None:
            return
        total = 0
        skipped: list[str] = [info.filename for info in files if info.filename.startswith("__MACOSX/")]
        for name, info in members.items():
            reason = bomb_reason(info)
            if reason is None and total + info.file_size > MAX_TOTAL:
                reason = f"the zip's members together would unpack to more than {MAX_TOTAL} bytes"
            if reason is None and info.flag_bits & 0x1:
                reason = "it is encrypted"
            if reason:
                skipped.append(name)
                yield ParseWarning(f"the zip member {name} was not unpacked: {reason}. The zip is kept exactly as "
                                   "it is.", locator=name)
                continue
            total += info.file_size
            parent, meta = references.get(name, (None, {}))
            guess = mimetypes.guess_type(name, strict=False)[0]
            meta = dict(meta, zip_member=name, zip_date_time="%04d-%02d-%02d %02d:%02d:%02d" % info.date_time)
            yield Child(data=None, open=member_opener(archive, info), locator=name,
                        filename=name.rsplit("/", 1)[-1], parent_locator=parent, kind_hint="attachment",
                        media_type=guess, source_meta=meta)
        summary.metadata["zip_members"] = len(files)
        if skipped:
            summary.metadata["zip_members_not_unpacked"] = skipped[:MEMBER_LIST_SHOWN]
            summary.metadata["zip_members_not_unpacked_count"] = len(skipped)
        yield summary

    @staticmethod
    def _member_is_chat(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
        if bomb_reason(info):
            return False
        try:
            with member_opener(archive, info)() as handle:
                return text_looks_like_chat(handle.read(8192))
        except OSError:
            return False

    # chat text ---------------------------------------------------------------------------------
    def _parse_chat(self, opener: Callable[[], BinaryIO], stored: StoredOriginal, ctx: Context, *,
                    member: str | None, members: dict, references: dict | None = None):
        """Yield a record per message; return the export's own record (the caller yields it),
        or None after a fatal warning. A plain .txt yields its own record here."""
        where = f"{stored.filename or stored.source_key}" + (f" ({member})" if member else "")
        survey = survey_chat(opener)
        if survey["headers"] == 0 and survey["stopped"]:
            yield ParseWarning(f"the chat text could not be read ({survey['stopped']}); the export is kept exactly "
                               "as it is.", fatal=True)
            return None
        if survey["headers"] == 0 or survey["leading"] > MAX_LEADING_LINES:
            yield ParseWarning("this is not a WhatsApp chat export: no line starts with a date and time the way "
                               "WhatsApp writes them (like '18/03/2022, 15:10 - Name: text'); it is kept as it is.",
                               fatal=True)
            return None
        decision = decide_order(survey["dates"], ctx.region)
        order_name = {"dmy": "day/month", "mdy": "month/day", "ymd": "year/month/day",
                      "ydm": "year/day/month"}[decision.order]
        if decision.reason:
            ctx.note(f"{where}: dates read as {order_name} ({decision.reason}).")
        if "buddhist" in decision.calendars:
            ctx.note(f"{where}: years are in the Buddhist calendar (2565 BE = 2022) and were converted.")
        if "japanese" in decision.calendars:
            ctx.note(f"{where}: years are in the Japanese imperial calendar (R4 = Reiwa 4 = 2022) "
                     "and were converted.")
        chat = chat_name(stored.filename) or chat_name(member)
        state = ChatState(ctx, decision, chat, member, members, references if references is not None else {},
                          survey["group_names"])
        counts = {"messages": 0, "system": 0, "attachments": 0, "media_omitted": 0, "lines": 0}
        current: Message | None = None
        leading: list[str] = []
        number = 0
        stopped = None
        try:
            for number, (line, cut) in enumerate(read_lines(opener), start=1):
                header = match_header(line)
                if header is None:
                    if current is None:      # blank or stray lines before the first message
                        if line.strip() and sum(map(len, leading)) < MAX_TEXT:
                            leading.append(line)
                        continue
                    current.last = number
                    current.size += len(line) + 1
                    if current.cut or current.size > MAX_TEXT:
                        current.cut = True
                    else:
                        current.lines.append(line)
                    current.cut = current.cut or cut
                    continue
                if current is not None:
                    yield state.record(current, counts)
                elif leading:
                    state.leading = "\n".join(leading)
                platform, stamp, date, time, rest = header
                # the first message starts at line 1: what comes before it is read as part of it
                current = Message(platform, stamp, date, time, 1 if current is None else number, rest, [], number,
                                  cut, len(rest))
        except OSError as error:
            stopped = str(error)
        if current is not None:
            if stopped:
                current.cut = True
            yield state.record(current, counts)
        if stopped:
            yield ParseWarning(f"reading the chat text stopped after line {number}: {stopped}. Everything before "
                               "it was kept; the export is kept whole.")
        if survey["leading_text"]:
            yield ParseWarning(f"lines 1-{survey['leading']} come before the first dated message and are read as "
                               "part of it", locator=state.locator(1, survey["leading"]))
        counts["lines"] = number
        own = state.own_record(stored, counts, survey, order_name)
        if member is None:
            yield own
        return own

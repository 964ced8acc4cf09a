"""The `email` parser: one RFC 5322 message (an .eml file, a Maildir file, a message
from an mbox or an IMAP server) read into one record of kind `email`, with each
attachment handed back as a child original.

Built on the standard library's `email` package with the compat32 policy: it
never raises on malformed mail (it records defects instead), keeps every header
exactly as written (8-bit bytes included, via surrogate escapes), and is about
2.5 times faster than mail-parser, which wraps the same parser. Decoding
(RFC 2047 words, charsets, dates) is done here, with fallbacks that say what
they assumed, because that is where real mail goes wrong.

At under 700 lines this stays one module: headers, dates, trace headers and
body parts all lean on the same decoding helpers, and mbox and imap reuse it whole.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import pickle
import quopri
import re
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import Message
from email.parser import BytesParser
from email._parseaddr import _parsedate_tz
from email.utils import getaddresses
from html.parser import HTMLParser
from functools import partial
from typing import Iterator

from adapters._mailparts import CUT_MIN, CutBodies, DecodedPieces, Skeleton
from adapters._mailworker import Apart, Noted
from ingest.kit.adapter import Parser
from ingest.kit.dating import date_by_file_time, local_moment
from ingest.kit.zips import leaf_name
from ingest.model.records import Child, ParseWarning, Record, StoredOriginal
from ingest.kit.registry import register
from ingest.kit.context import Context
from ingest.model.times import iso

TEXT_LIMIT = 1_000_000          # characters of body text kept searchable in the record
HEAD_LINES = 60                 # lines of the head that sniffing looks at
# Header names that make a block of "Name: value" lines a mail message rather than any text.
MAIL_HEADERS = {b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"received", b"return-path",
                b"mime-version", b"content-type", b"delivered-to", b"sender", b"reply-to", b"newsgroups",
                b"x-mozilla-status", b"in-reply-to", b"references"}
HEADER_LINE = re.compile(rb"^([!-9;-~]+)[ \t]*:")
FROM_ENVELOPE = re.compile(rb"^(?:\xef\xbb\xbf)?From [^\r\n]*\r?\n")
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
BETWEEN_ENCODED_WORDS = re.compile(r"(\?=)[ \t\r\n]+(?==\?[^?\s]+\?[QqBb]\?)")
ADDRESS = re.compile(r"[^\s<>\"',;:@()\[\]]+@[^\s<>\"',;:@()\[\]]+")
UNQUOTED_DISPLAY = re.compile(r'(^|,)\s*([^,<>"]*@[^,<>"]*?)\s*<(?=[^<>]*@[^<>]*>)')
MAILDIR_NAME = re.compile(r"^\d{9,}\.[^/]+$")     # delivery time, then a unique name (and :2,FLAGS)
SURROGATE = re.compile("[\udc80-\udcff]")
FOLD = re.compile(r"\r?\n(?=[ \t])")
QUOTED_FROM = re.compile(r"^>(>*From )", re.MULTILINE)
# Control files a Maildir or Dovecot keeps beside the messages: kept, but not read as mail. The
# zero-byte markers (.noindex, .noupdate...) say something to an indexer by existing, nothing more.
MAIL_STORE_FILES = re.compile(r"^(dovecot[-.].*|subscriptions|maildirfolder|courierimap.*|\.uidvalidity"
                              r"|\.no(index|update|sync|select|inferiors))$")
# Labels some mailers write that Python's codecs do not know, mapped to what they mean.
CHARSET_ALIASES = {"iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6", "iso-8859-8-e": "iso-8859-8",
                   "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "gb2312": "gb18030", "gbk": "gb18030",
                   "x-gbk": "gb18030", "shift_jis": "cp932", "x-sjis": "cp932", "iso-2022-jp": "iso2022_jp_ext",
                   "x-user-defined": "cp1252", "unicode-1-1-utf-7": "utf-7", "iso-8859-1": "cp1252",
                   "latin1": "cp1252", "us-ascii": "ascii", "ansi_x3.4-1968": "ascii", "utf8": "utf-8",
                   "x-mac-roman": "mac_roman", "windows-874": "cp874", "tis-620": "cp874"}
MBOX_FROM_DATE = re.compile(r"(\w{3}) +(\w{3}) +(\d{1,2}) +(\d{1,2}):(\d{2})(?::(\d{2}))? +(?:[+-]\d{4} +)?(\d{4})")
MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
AUTH_RESULT = re.compile(r"(?:^|[;\s])([a-z][a-z0-9-]*)\s*=\s*([a-z]+)\b((?:\s*\([^)]*\))?(?:\s+[a-z]+\.[a-z0-9-]+\s*=\s*"
                         r"[^\s;]+)*)", re.IGNORECASE)
AUTH_PROPERTY = re.compile(r"([a-z]+\.[a-z0-9-]+)\s*=\s*([^\s;]+)", re.IGNORECASE)
AUTH_METHODS = {"spf", "dkim", "dmarc", "arc", "iprev", "auth", "dkim-atps", "bimi", "smime", "rrvs", "dkim-adsp",
                "sender-id", "domainkeys", "x-dkim"}
RECEIVED_PART = re.compile(r"\b(from|by|via|with|id|for)\s+(<[^>]*>|\S+)", re.IGNORECASE)
ORIGINATING_HEADERS = ("X-Originating-IP", "X-Sender-IP", "X-Mailer", "User-Agent", "X-Google-Original-From")


def sniff_mail(head: bytes) -> bool:
    """Does this look like the start of a mail message: header lines, some of them mail's own?"""
    lines = head.split(b"\n", HEAD_LINES)[:HEAD_LINES]
    if lines and FROM_ENVELOPE.match(lines[0] + b"\n"):
        lines = lines[1:]
    known = 0
    for line in lines:
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue
        match = HEADER_LINE.match(line)
        if not match:
            return False
        known += match.group(1).lower() in MAIL_HEADERS
    return known >= 2 or (known == 1 and len(lines) >= 2 and lines[1].strip() == b"")


@register
class EmailParser(Parser):
    name = "email"
    version = "1"
    presets = {"eml": "files", "maildir": "files", "imap": "imap"}
    priority = 10

    def __init__(self, options: dict | None = None):
        super().__init__(options)
        self._apart = Apart(_read_apart)

    def sniff(self, head: bytes, filename: str | None) -> bool:
        if filename and (filename.lower().endswith(".eml") or MAILDIR_NAME.match(filename)):
            return True
        return sniff_mail(head)

    def prefetch(self, stored: StoredOriginal, ctx: Context) -> None:
        if stored.digest.size < CUT_MIN:     # a large one streams its parts out of the store: read here
            self._apart.start(stored, ctx)

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | Child | ParseWarning]:
        done = self._apart.take(stored)
        if done is None:
            yield from self.read(stored, ctx)
            return
        items, calls, error = done
        for call, text in calls:
            getattr(ctx, call)(text)
        yield from items
        if error is not None:
            raise error

    def read(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | Child | ParseWarning]:
        shape = None
        if stored.digest.size >= CUT_MIN:     # large: its big bodies are streamed, not held (see _mailparts)
            shape = Skeleton.of(stored.path, stored.digest.size)
            raw = shape.data
        else:
            with stored.open() as handle:
                raw = handle.read()
        name = stored.filename or ""
        if MAIL_STORE_FILES.match(name) and not sniff_mail(raw[:64 * 1024]):
            record = Record(kind="file", metadata=dict(stored.source_meta, note="a mail folder's own index file"))
            date_by_file_time(record, stored.source_meta)
            yield record
            return
        if not raw.strip():
            yield ParseWarning("empty: there is no message in it", fatal=True)
            return
        headerless = not sniff_mail(raw[:64 * 1024]) and not _has_mail_headers(raw)
        if headerless and not _in_mailbox(stored.source_meta):
            yield ParseWarning("not an email: no message headers were found", fatal=True)
            return
        if headerless:
            # A message in a mailbox (IMAP, mbox, Maildir) is a message even with no headers: its
            # bytes are all body, read as such and searchable.
            yield ParseWarning("this message has no headers (no sender, recipients, subject or date); "
                               "all of it was read as its text")
            raw = b"\n" + raw
        try:
            items = list(normalise(raw, stored, ctx, shape))
        except RecursionError:   # parts inside parts, thousands deep: Python's parser cannot follow
            yield ParseWarning("its parts are nested too deeply to be read; the message is kept whole", fatal=True)
            return
        yield from items


def _read_apart(stored: StoredOriginal, timezone: str, region: str
                ) -> tuple[list, list[tuple[str, str]], Exception | None] | None:
    """In a worker process: the message read as `EmailParser.read` reads it, with the notes it
    made; None when the error that stopped it could not travel back (then it is read again there)."""
    ctx = Noted(timezone, region)
    items: list = []
    try:
        for item in EmailParser().read(stored, ctx):
            items.append(item)      # what came before an error is kept, as in the pipeline
    except Exception as error:
        try:
            travels = type(pickle.loads(pickle.dumps(error))) is type(error)
        except Exception:
            travels = False
        return (items, ctx.calls, error) if travels else None
    return items, ctx.calls, None


def _in_mailbox(meta: dict) -> bool:
    """Did this come from a mailbox: an mbox, an IMAP folder or a Maildir?"""
    return "mbox_message" in meta or "uid" in meta or _maildir_info(meta.get("path")) is not None


def _has_mail_headers(raw: bytes) -> bool:
    """A looser check than sniffing, for a forced `--source eml`: any mail header in the head."""
    head = raw[:64 * 1024].split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    names = {match.group(1).lower() for match in re.finditer(rb"^([!-9;-~]+)[ \t]*:", head, re.MULTILINE)}
    return bool(names & MAIL_HEADERS)


def normalise(raw: bytes, stored: StoredOriginal, ctx: Context, shape: Skeleton | None = None
              ) -> Iterator[Record | Child | ParseWarning]:
    """The one reading of a message shared by .eml, Maildir, mbox and IMAP. `raw` is the message,
    or its skeleton `shape` with the large bodies cut out (read back from the stored original)."""
    meta_in = stored.source_meta
    message = BytesParser(policy=policy.compat32).parsebytes(raw)
    problems: list[str] = []
    fallback_charset = message.get_content_charset() or None
    headers = Headers(message, fallback_charset, problems)

    record = Record(kind="email")
    metadata = record.metadata
    date_problem = _date(record, headers.first("Date"), headers.first("Received"), meta_in, stored, ctx)
    if date_problem:
        problems.append(date_problem)

    senders = headers.addresses("From")
    record.from_ = [address for address, _name in senders]
    recipients = {field: headers.addresses(field) for field in ("To", "Cc", "Bcc")}
    record.to = list(dict.fromkeys(address for field in recipients.values() for address, _name in field))
    record.subject = headers.first("Subject")
    names = {address: name for address, name in senders + [pair for field in recipients.values() for pair in field]
             if name}
    if names:
        metadata["names"] = names
    # a display name that is itself another address (a common spoofing trick) is said plainly
    mismatched = [{"field": field, "name": name, "address": address}
                  for field, pairs in (("from", senders), *((key.lower(), found) for key, found in recipients.items()))
                  for address, name in pairs
                  if ADDRESS.search(name) and ADDRESS.search(name).group(0).lower() != address]
    if mismatched:
        metadata["display_name_differs"] = mismatched
        for item in mismatched:
            problems.append(f"{item['field'].capitalize()}: the name shown, {item['name']!r}, looks like an address "
                            f"but the message was sent with the address {item['address']}")
    for field, found in recipients.items():
        if found:
            metadata[field.lower()] = [address for address, _name in found]
    for field in ("Message-ID", "Reply-To", "Sender", "Return-Path", "Delivered-To", "In-Reply-To", "References",
                  *ORIGINATING_HEADERS):
        value = headers.first(field)
        if value:
            metadata[field.lower().replace("-", "_")] = value
    if message.get_unixfrom():
        metadata["envelope_from_line"] = _text(message.get_unixfrom())
    received = [_received(value) for value in headers.all("Received")]
    if received:
        metadata["received"] = received
    auth = [_authentication_results(value) for value in headers.all("Authentication-Results")]
    if auth:
        metadata["authentication_results"] = auth
        # The topmost header was added by the receiving server; lower ones travel with the
        # message and could have been written by anyone, so the summary comes from the top one.
        metadata["auth"] = {method: verdicts[0] for method, verdicts in auth[0]["verdicts"].items()}
    for field in ("Received-SPF", "ARC-Authentication-Results"):
        values = headers.all(field)
        if values:
            metadata[field.lower().replace("-", "_")] = values
    dkim_domains = [_tag(value, "d") for value in headers.all("DKIM-Signature")]
    if dkim_domains:
        metadata["dkim_signature_domains"] = dkim_domains
    imap = {key: meta_in[key] for key in ("folder", "uid", "uidvalidity", "flags", "internaldate", "rfc822_size")
            if key in meta_in}
    if imap:
        metadata["imap"] = imap
    maildir = _maildir_info(meta_in.get("path"))
    if maildir:
        metadata["maildir"] = maildir
        if maildir["subfolder"] == "tmp":
            # tmp/ holds what the mail server was still writing when the folder was copied
            maildir["still_being_delivered"] = True
            ctx.note("Messages in a Maildir's tmp/ folder were still being delivered when the folder was copied; "
                     "they were read and are marked so (maildir.still_being_delivered). One also in new/ or cur/ "
                     "is kept once.")

    body = Body(message, problems, unquote_from=bool(meta_in.get("mbox_from_quoted")),
                cut=CutBodies(shape, stored.path) if shape is not None and shape.spans else None)
    record.text = body.text
    if body.truncated:
        metadata["text_truncated_at"] = TEXT_LIMIT
    if body.attachments:
        metadata["attachments"] = [{key: value for key, value in part.items() if key not in ("child", "open")}
                                   for part in body.attachments]
    defects = sorted({type(defect).__name__ for part in message.walk() for defect in part.defects})
    if defects:
        metadata["defects"] = defects
        yield ParseWarning(f"the message is not well-formed ({', '.join(defects)}); it was read as well as possible")
    if problems:
        metadata["problems"] = problems
    yield record

    dated = {"occurred_at": iso(record.occurred_at), "occurred_at_source": f"parent:{record.occurred_at_source}",
             "occurred_at_raw": record.occurred_at_raw} if record.occurred_at else {}
    for part in body.attachments:
        yield Child(data=part["child"], open=part.get("open"), locator=f"part {part['part']}",
                    filename=part.get("filename"),
                    kind_hint="attachment", media_type=part["content_type"],
                    source_meta={**dated, "content_type": part["content_type"], "filename": part.get("filename")})


# headers --------------------------------------------------------------------
class Headers:
    """Header values decoded to text: unfolded, 8-bit bytes and RFC 2047 words read with fallbacks."""

    def __init__(self, message: Message, fallback_charset: str | None, problems: list[str]):
        self.values: dict[str, list[str]] = {}
        self.fallback_charset = fallback_charset
        self.problems = problems
        for name, value in message.raw_items():
            self.values.setdefault(name.strip().lower(), []).append(value)

    def all(self, name: str) -> list[str]:
        return [self.decode(name, value) for value in self.values.get(name.lower(), [])]

    def first(self, name: str) -> str | None:
        values = self.values.get(name.lower())
        return self.decode(name, values[0]) if values else None

    def decode(self, name: str, value) -> str:
        if not isinstance(value, str):          # a Header object from a hand-built message
            value = str(value)
        if _has_8bit(value):
            raw = value.encode("ascii", "surrogateescape")
            value, used = decode_bytes(raw, self.fallback_charset)
            self.problems.append(f"{name}: 8-bit header without declared charset, read as {used}")
        value = FOLD.sub("", value).strip()
        if "=?" in value:
            value = decode_words(value, self.problems, name)
        return value

    def addresses(self, name: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for value in self.all(name):
            # `alice@example.com <bob@example.com>`: the text before <...> is a name, even when it
            # looks like an address; quoted, so the address parser does not read two addresses
            value = UNQUOTED_DISPLAY.sub(lambda m: f'{m.group(1)}"{m.group(2).strip()}" <', value)
            pairs = [(address.strip().lower(), display.strip()) for display, address in _getaddresses(value)
                     if ADDRESS.fullmatch(address.strip())]
            if not pairs:
                # not RFC 5322, but an officer still wants whatever addresses are there
                pairs = [(address.lower(), "") for address in ADDRESS.findall(value)]
            found.extend(pairs)
        return list(dict.fromkeys(found))


def _getaddresses(value: str) -> list[tuple[str, str]]:
    try:
        return getaddresses([value])
    except Exception:   # the address parser has raised on pathological input in some Python versions
        return []


def decode_words(value: str, problems: list[str], name: str) -> str:
    """RFC 2047 encoded words, decoded with charset fallbacks (an unknown charset never loses the text).

    Adjacent words in one charset are joined before decoding, so a character split across two survives.
    """
    value = BETWEEN_ENCODED_WORDS.sub(r"\1", value)
    pieces: list[str] = []
    position = 0
    run_charset, run = None, bytearray()

    def flush() -> None:
        if run_charset is not None:
            text, used = decode_bytes(bytes(run), run_charset)
            if used != _codec(run_charset):
                problems.append(f"{name}: charset {run_charset!r} could not be used, read as {used}")
            pieces.append(text)

    for match in ENCODED_WORD.finditer(value):
        charset = match.group(1).split("*")[0]
        data = _word_bytes(match.group(2).upper(), match.group(3))
        joins = run_charset is not None and match.start() == position and charset.lower() == run_charset.lower()
        if not joins:
            flush()
            pieces.append(value[position:match.start()])
            run_charset, run = charset, bytearray()
        if data is None:
            problems.append(f"{name}: an encoded word could not be decoded; kept as written")
            flush()
            pieces.append(match.group(0))
            run_charset, run = None, bytearray()
        else:
            run += data
        position = match.end()
    flush()
    pieces.append(value[position:])
    return "".join(pieces)


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding == "B":
            return base64.b64decode(payload + "=" * (-len(payload) % 4))
        return quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return None


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip('"').lower()
    label = CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):   # ValueError: a label holding a NUL byte
        return None


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str]:
    """Text from bytes and the codec that gave it: the declared charset if it fits, else UTF-8;
    failing both, a damaged multi-byte text keeps its declared charset (with replacement marks),
    and anything else is read as Windows-1252, the usual truth behind a wrong label."""
    codec = _codec(charset)
    for candidate in [codec] + (["utf-8"] if codec is None or not data.isascii() else []):
        if candidate:
            try:
                return data.decode(candidate), candidate
            except UnicodeDecodeError:
                continue
    if codec and codec not in ("utf-8", "ascii"):
        return data.decode(codec, errors="replace"), f"{codec} (damaged characters replaced)"
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _text(value) -> str:
    """A header value compat32 kept with undeclared 8-bit bytes as surrogates, as readable text."""
    if isinstance(value, str):
        value = value.encode("ascii", "surrogateescape")
    return decode_bytes(value, None)[0] if isinstance(value, bytes) else str(value)


# dates ------------------------------------------------------------------------
def _date(record: Record, raw_date: str | None, received: str | None, meta: dict, stored: StoredOriginal,
          ctx: Context) -> str | None:
    """Fill occurred_at from the Date header, else the topmost Received header (when the recipient's
    server took it), INTERNALDATE, the mbox From line, a Maildir file name's delivery time, or the
    file's mtime; each says where its time came from.

    Returns what was wrong with the Date header, if anything.
    """
    problem = None
    if raw_date:
        moment, naive = _parse_date(raw_date)
        if moment is None and naive is None:
            problem = f"Date header {raw_date!r} could not be read as a date"
        elif not _plausible(moment or naive.replace(tzinfo=timezone.utc), stored.acquired_at):
            problem = f"Date header {raw_date!r} is impossible (before email existed or in the future)"
        else:
            record.occurred_at_source, record.occurred_at_raw = "header:Date", raw_date
            record.occurred_at = moment or _local(record, naive, ctx)
            return None
    else:
        problem = "no Date header"
    record.metadata["date_header"] = raw_date
    envelope_date = _mbox_date(meta.get("mbox_from_line") or "")
    received_when = received.rpartition(";")[2].strip() if received and ";" in received else None
    received_moment, received_naive = _parse_date(received_when) if received_when else (None, None)
    delivered = _maildir_delivery(meta.get("path"))
    if (received_moment or received_naive) and _plausible(
            received_moment or received_naive.replace(tzinfo=timezone.utc), stored.acquired_at):
        record.occurred_at_source, record.occurred_at_raw = "header:Received", received_when
        record.occurred_at = received_moment or _local(record, received_naive, ctx)
    elif meta.get("internaldate"):
        record.occurred_at = datetime.fromisoformat(meta["internaldate"])
        record.occurred_at_source, record.occurred_at_raw = "imap:INTERNALDATE", meta["internaldate"]
    elif envelope_date:
        record.occurred_at_source, record.occurred_at_raw = "mbox:From_", meta["mbox_from_line"]
        record.occurred_at = _local(record, envelope_date, ctx)
    elif delivered:
        record.occurred_at, record.occurred_at_source, record.occurred_at_raw = (
            datetime.fromtimestamp(int(delivered), timezone.utc), "maildir:delivery_time", delivered)
    else:
        date_by_file_time(record, meta)
    return problem


def _maildir_delivery(path: str | None) -> str | None:
    """The delivery time (seconds since 1970, UTC) a Maildir file name starts with."""
    if not _maildir_info(path):
        return None
    seconds = path.replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
    return seconds if seconds.isdigit() and 0 < int(seconds) < 1 << 36 else None


def _local(record: Record, naive: datetime, ctx: Context) -> datetime:
    """A time written without a zone, read in the case's zone and marked as assumed."""
    record.timezone_assumed = True
    return local_moment(naive, ctx, record.metadata)


def _parse_date(raw: str) -> tuple[datetime | None, datetime | None]:
    """(aware moment, None) when the Date has a zone; (None, naive) when it has none; (None, None) if unreadable.

    `-0000` means "UTC, sender's zone unknown" (RFC 5322), so it is UTC, not zone-less.
    """
    try:
        # the private form keeps "no zone" apart from "+0000" (the public one says 0 for both);
        # comments such as "(EDT)" are not zones
        parts = _parsedate_tz(re.sub(r"\([^)]*\)", " ", raw))
        if parts is None:
            return None, None
        naive = datetime(*parts[:6])
        offset = parts[9]
        if offset is None:
            if re.search(r"-0000|\b(UT|GMT|UTC|Z)\b", raw):
                return naive.replace(tzinfo=timezone.utc), None
            return None, naive
        return naive.replace(tzinfo=timezone(timedelta(seconds=offset))), None
    except (ValueError, TypeError, IndexError, OverflowError):  # impossible fields, an offset of a day or more
        return None, None


def _plausible(moment: datetime, acquired_at: datetime) -> bool:
    return datetime(1971, 1, 1, tzinfo=timezone.utc) <= moment <= acquired_at + timedelta(days=2)


def _mbox_date(line: str) -> datetime | None:
    """The asctime-style date of an mbox `From ` line (no zone: the writer's local time)."""
    match = MBOX_FROM_DATE.search(line)
    if not match or match.group(2).lower() not in MONTHS:
        return None
    _weekday, month, day, hour, minute, second, year = match.groups()
    try:
        return datetime(int(year), MONTHS[month.lower()], int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return None


# trace headers -------------------------------------------------------------------
def _received(value: str) -> dict:
    """One Received header: what it says, split where it can be, always with the text as written."""
    entry: dict = {"raw": value}
    clauses, _sep, when = value.rpartition(";")
    if clauses:
        moment, naive = _parse_date(when.strip())
        if moment or naive:
            entry["date"] = iso(moment or naive)
    else:
        clauses = value
    for word, argument in RECEIVED_PART.findall(clauses):
        entry.setdefault(word.lower(), argument)
    return entry


def _authentication_results(value: str) -> dict:
    """RFC 8601: the server that checked, then method=result pairs (spf=pass dkim=fail ...)."""
    server, _sep, rest = value.partition(";")
    verdicts: dict[str, list[str]] = {}
    details = []
    for method, result, properties in AUTH_RESULT.findall(rest):
        method = method.lower()
        if method not in AUTH_METHODS:
            continue
        verdicts.setdefault(method, []).append(result.lower())
        details.append({"method": method, "result": result.lower(),
                        **{key.lower(): val for key, val in AUTH_PROPERTY.findall(properties)}})
    return {"server": server.strip(), "verdicts": verdicts, "results": details, "raw": value}


def _tag(value: str, tag: str) -> str | None:
    match = re.search(rf"(?:^|;)\s*{tag}\s*=\s*([^;\s]+)", value)
    return match.group(1) if match else None


def _maildir_info(path: str | None) -> dict | None:
    """A Maildir file name carries the flags the mail program set: `...:2,RS` = replied, seen."""
    if not path:
        return None
    parts = path.replace("\\", "/").split("/")
    if len(parts) < 2 or parts[-2] not in ("cur", "new", "tmp") or not MAILDIR_NAME.match(parts[-1]):
        return None
    info = {"subfolder": parts[-2]}
    _name, sep, flags = parts[-1].rpartition(":2,")
    if sep:
        names = {"D": "draft", "F": "flagged", "P": "passed", "R": "replied", "S": "seen", "T": "trashed"}
        info["flags"] = [names.get(flag, flag) for flag in flags if flag.isalpha()]
    return info


# body -----------------------------------------------------------------------------
class Body:
    """The readable text of a message and the parts that are attachments, numbered as IMAP numbers them."""

    def __init__(self, message: Message, problems: list[str], *, unquote_from: bool = False,
                 cut: CutBodies | None = None):
        self.problems = problems
        self.cut = cut
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[dict] = []
        self.walk(message, "")
        text = "\n\n".join(self.plain) if self.plain else "\n\n".join(html_to_text(page) for page in self.html)
        if unquote_from:
            text = QUOTED_FROM.sub(r"\1", text)
        self.truncated = len(text) > TEXT_LIMIT
        self.text = (text[:TEXT_LIMIT] if self.truncated else text).strip() or None

    def walk(self, part: Message, number: str) -> None:
        # compat32 parses an attached message (message/rfc822, a bounce's report) into parts of its
        # own; it is one attachment here, never mixed into this message's text.
        if part.is_multipart() and part.get_content_maintype() != "message":
            children = part.get_payload()
            if isinstance(children, list):
                for index, child in enumerate(children, 1):
                    if isinstance(child, Message):
                        self.walk(child, f"{number}.{index}" if number else str(index))
            return
        number = number or "1"
        content_type = part.get_content_type()
        if part.get_content_maintype() == "multipart":
            # the boundary was never found: the parts cannot be told apart, so it is all text
            self.problems.append(f"part {number}: its parts could not be separated (broken boundary); read as text")
            self.plain.append(self.part_text(part, number))
            return
        filename = _filename(part)
        disposition = (_raw_header(part, "Content-Disposition") or "").split(";")[0].strip().lower()
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = self.part_text(part, number)
            (self.plain if content_type == "text/plain" else self.html).append(text)
            return
        pieces = self.cut.pieces(part) if self.cut else None
        if pieces is None:
            data = self.part_bytes(part, number)
            entry = {"part": number, "content_type": content_type, "size": len(data), "child": data}
        else:   # too large to hold: decoded on its way into the store, its size known once stored
            entry = {"part": number, "content_type": content_type, "streamed": True, "child": None,
                     "open": partial(DecodedPieces, self.cut.path, pieces, self.cut.encoding(part))}
        if filename:
            entry["filename"] = filename
        content_id = _raw_header(part, "Content-ID")
        if content_id:
            entry["content_id"] = content_id.strip()
        if disposition:
            entry["disposition"] = disposition
        self.attachments.append(entry)

    def part_bytes(self, part: Message, number: str) -> bytes:
        if part.get_content_maintype() == "message" and isinstance(part.get_payload(), list):
            # compat32 parsed the attached message; it is written back out with its bytes as they were
            try:
                return b"\n".join(inner.as_bytes() for inner in part.get_payload())
            except Exception as error:
                self.problems.append(f"part {number}: the attached message could not be written out ({error})")
                return b""
        try:
            data = part.get_payload(decode=True)
        except Exception as error:  # a broken transfer encoding: keep the bytes as they are in the message
            self.problems.append(f"part {number}: could not be decoded ({error}); kept as written")
            data = None
        if data is None:
            payload = part.get_payload()
            data = payload.encode("ascii", "surrogateescape") if isinstance(payload, str) else b""
        return data

    def part_text(self, part: Message, number: str) -> str:
        pieces = self.cut.pieces(part) if self.cut else None
        data = self.part_bytes(part, number) if pieces is None else self.cut.text_bytes(part, pieces, TEXT_LIMIT * 4)
        charset = part.get_content_charset()
        text, used = decode_bytes(data, charset)
        if charset and used != _codec(charset) and not (used == "utf-8" and _codec(charset) == "ascii"):
            self.problems.append(f"part {number}: declared charset {charset!r} does not fit, read as {used}")
        return text


def _raw_header(part: Message, name: str) -> str | None:
    """A header as text even when it holds undeclared 8-bit bytes (compat32 would hand back a Header object)."""
    for key, value in part.raw_items():
        if key.lower() == name.lower():
            return _text(value) if isinstance(value, str) else str(value)
    return None


def _filename(part: Message) -> str | None:
    probe = part
    if any(_has_8bit(value) for key, value in part.raw_items()
           if key.lower() in ("content-disposition", "content-type")):
        # undeclared 8-bit bytes in the name: read the two headers as text first, then their parameters
        probe = Message()
        for field in ("Content-Disposition", "Content-Type"):
            value = _raw_header(part, field)
            if value is not None:
                probe[field] = value
    try:
        name = probe.get_filename()
    except Exception:  # malformed RFC 2231 parameters
        return None
    if not name:
        return None
    if "=?" in name:
        name = decode_words(name, [], "filename")
    return leaf_name(name)    # only the last path element: a name like ../../x must never point anywhere


def _has_8bit(value) -> bool:
    """compat32 keeps undeclared 8-bit header bytes as lone surrogates."""
    return isinstance(value, str) and SURROGATE.search(value) is not None


class _HtmlText(HTMLParser):
    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr"}
    SKIP = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.out.append(data)


def html_to_text(page: str) -> str:
    reader = _HtmlText()
    try:
        reader.feed(page)
        reader.close()
    except Exception:  # html.parser is lenient, but a reader of evidence must never stop on a page
        return re.sub(r"<[^>]*>", " ", page)
    text = "".join(reader.out)
    text = re.sub(r"[ \t\r\f\v\xa0]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()

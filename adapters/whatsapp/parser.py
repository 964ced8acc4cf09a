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

Identity (so an overlapping export, taken again later, adds only new messages): a
hash of the chat's name (the export's file name without extension, copy suffix such
as " (1)" and case), the message's wall-clock time as read, the sender as written,
the text, and an occurrence number counting identical (time, sender, text) messages
earlier in the same file, so two identical "ok"s in one minute stay two. A later
export lists the same messages in the same order, so it gives the same identities,
even when WhatsApp has dropped the oldest messages from it. Every doubt falls on the
side of keeping twice rather than losing: a renamed export, a different date order or
an edited text gives a new identity, so the message is kept again, never dropped.
The occurrence counters live only for the last few hundred distinct times (repeats
share a time, and exports are in order), so memory stays flat.

Zips are read, never unpacked to disk: each member is handed to the pipeline as a
stream. A member's name is cleaned of roots, drives and '..' before it names anything.
A member is refused (said, and the zip kept whole) when it declares more than
MAX_MEMBER bytes, or more than BOMB_FLOOR bytes at over BOMB_RATIO times its packed
size, or when all members together pass MAX_TOTAL; and no stream ever yields more than
its member declared. A zip cut short (no directory at its end) still gives its chat
text, read from the member's own header, up to the cut.
"""

from __future__ import annotations

import io
import mimetypes
import re
import struct
import unicodedata
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Iterator

import blake3

from adapters.file import date_from_source_meta
from ingest.kit import registry
from ingest.kit.adapter import Parser
from ingest.model.records import Child, ParseWarning, Record, StoredOriginal
from ingest.kit.registry import register
from ingest.model.times import iso

# --- limits --------------------------------------------------------------------------------
MAX_LINE = 1 << 20            # characters of one line kept; a longer line is cut (and said)
MAX_TEXT = 4 << 20            # characters of one message kept in its record
MAX_LEADING_LINES = 200       # lines before the first message before we call it "not an export"
MAX_MEMBER = 4 << 30          # a WhatsApp document is at most 2 GB; more is not an export's
MAX_TOTAL = 64 << 30          # all members of one zip together
BOMB_RATIO = 100              # expansion above this on a member over BOMB_FLOOR bytes is a bomb
BOMB_FLOOR = 16 << 20
MEMBER_LIST_SHOWN = 20
MAX_SENDERS_KEPT = 1000       # participants remembered (and listed) per chat
PLACEHOLDER_MAX = 120         # "<Media omitted>", "This message was deleted" and kin are short
REPEAT_WINDOW = 256           # distinct times whose occurrence counters are remembered
_UNKNOWN = object()

# --- the line grammar ------------------------------------------------------------------------
MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_M = f"[{MARKS}]*"
_SP = "[ \u00a0\u202f]"
_SEP = rf"{_M}[./\-]{_SP}?{_M}"
_DATE = rf"\d{{1,4}}{_SEP}\d{{1,2}}{_SEP}(?:\d{{1,4}}(?:{_SP}?BE)?|[A-Z]\d{{1,2}})\.?"
_AMPM_BEFORE = "午前|午後|上午|下午|오전|오후"
_AMPM_AFTER = (rf"[AaPp]\.?{_SP}?[Mm]\.?|vorm\.|nachm\.|ص|م|πμ|μμ|π\.μ\.|μ\.μ\.|SA|CH|sa|ch|"
               rf"午前|午後|ก่อนเที่ยง|หลังเที่ยง")
_TIME = (rf"(?:(?:{_AMPM_BEFORE}){_SP}?)?\d{{1,2}}[:.]\d{{2}}(?:[:.]\d{{2}})?"
         rf"(?:{_SP}*(?:{_AMPM_AFTER}))?")
_DATE_TIME = rf"(?P<date>{_DATE}){_M}[,،]?{_SP}*(?:klo{_SP}|à{_SP}|um{_SP})?{_M}(?P<time>{_TIME})"
_TIME_DATE = rf"(?P<time>{_TIME}){_M}[,،]?{_SP}*{_M}(?P<date>{_DATE})"
# Android: "18/03/2022, 15:10 - Name: text"; iOS: "[18/03/2022, 15:10:01] Name: text"; Vietnamese iOS puts the time first.
HEADERS = (
    ("android", re.compile(rf"{_M}(?P<stamp>{_DATE_TIME}){_M}\.?{_SP}[-–]{_SP}(?P<rest>.*)", re.S)),
    ("ios", re.compile(rf"{_M}\[{_M}(?P<stamp>{_DATE_TIME}){_M}\]{_SP}?(?P<rest>.*)", re.S)),
    ("ios", re.compile(rf"{_M}\[{_M}(?P<stamp>{_TIME_DATE}){_M}\]{_SP}?(?P<rest>.*)", re.S)),
    ("android", re.compile(rf"{_M}(?P<stamp>{_TIME_DATE}){_M}{_SP}[-–]{_SP}(?P<rest>.*)", re.S)),
)
_HEADER_START = re.compile(rf"{_M}[\[\d午上오]")
_DATE_FIELDS = re.compile(r"[A-Z]?\d+")
_CLOCK = re.compile(r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?")
_PM_WORDS = ("p", "nachm", "م", "μμ", "ch", "午後", "下午", "오후", "หลังเที่ยง")
_AM_WORDS = ("a", "vorm", "ص", "πμ", "sa", "午前", "上午", "오전", "ก่อนเที่ยง")
ERAS = {"R": 2018, "H": 1988, "S": 1925, "T": 1911, "M": 1867}   # Japanese imperial calendar: year 1 = base + 1
BUDDHIST_OFFSET = 543
MONTH_FIRST_REGIONS = {"US", "PR", "GU", "VI", "AS", "MP", "UM", "PH", "FM", "MH", "PW"}
LOG_LEVELS = {"INFO", "DEBUG", "WARN", "WARNING", "ERROR", "TRACE", "CRITICAL", "FATAL", "NOTICE"}


def _words(*phrases: str) -> frozenset[str]:
    return frozenset(_fold(phrase) for phrase in phrases)


def _fold(text: str) -> str:
    """Compare placeholders the way people read them: marks, case, a final dot and Unicode forms ignored."""
    return unicodedata.normalize("NFC", text.translate(_STRIP_MARKS)).strip().rstrip(".。").casefold()


_STRIP_MARKS = {ord(mark): None for mark in MARKS}

# What WhatsApp writes in place of media left out of the export, per language.
MEDIA_OMITTED = _words(
    "<Media omitted>", "image omitted", "video omitted", "audio omitted", "sticker omitted", "GIF omitted",
    "Contact card omitted", "document omitted", "video note omitted", "media omitted",
    "<Medien ausgeschlossen>", "<Medien weggelassen>", "Bild weggelassen", "Video weggelassen", "Audio weggelassen",
    "Kontaktkarte ausgelassen", "Dokument weggelassen", "Sticker weggelassen", "GIF weggelassen",
    "<Médias omis>", "image absente", "vidéo absente", "audio omis", "sticker omis", "GIF retiré",
    "carte de contact omise", "document omis", "Fiche contact manquante", "document manquant", "GIF absent",
    "autocollant omis",
    "<Multimedia omitido>", "<Media omitido>", "<Archivo omitido>", "imagen omitida", "video omitido",
    "audio omitido", "sticker omitido", "GIF omitido", "tarjeta de contacto omitida", "documento omitido",
    "<Mídia oculta>", "<Arquivo de mídia oculto>", "imagem ocultada", "vídeo omitido", "áudio ocultado",
    "figurinha omitida",
    "<Media omessi>", "immagine omessa", "video omesso", "audio omesso", "sticker omesso", "documento omesso",
    "<Media weggelaten>", "afbeelding weggelaten", "video weggelaten", "audio weggelaten", "sticker weggelaten",
    "document weggelaten",
    "<Без медиафайлов>", "изображение отсутствует", "видео отсутствует", "аудиофайл отсутствует",
    "Карточка контакта отсутствует", "стикер не добавлен", "документ отсутствует", "GIF отсутствует",
    "<Média vynechány>", "<Medya dahil edilmedi>", "<pominięto multimedia>", "<Media tidak disertakan>",
    "<Media utelämnad>", "<Media udeladt>", "<Media utelatt>",
    "画像は含まれていません", "ビデオは含まれていません", "音声は含まれていません", "スタンプは含まれていません",
    "GIFは含まれていません", "連絡先カードを省略", "ドキュメントは含まれていません", "<メディアなし>",
    "फ़ोटो हटाई गई", "ऑडियो हटाई गयी", "वीडियो छोड़ा गया", "स्टिकर छोड़ा गया", "GIF छोड़ा गया",
    "कॉन्टैक्ट कार्ड छोड़ा गया", "डॉक्यूमेंट छोड़ा गया", "<मीडिया के बिना>",
    "đã bỏ qua hình ảnh", "đã bỏ video", "bỏ qua tệp âm thanh", "đã bỏ sticker", "Đã bỏ qua ảnh GIF",
    "Bỏ qua thẻ liên lạc", "đã bỏ qua tài liệu", "<Tệp phương tiện bị bỏ qua>",
    "لم يتم إدراج الصورة", "لم يتم إدراج الفيديوهات", "لم يتم إدراج المقاطع الصوتية", "تم حذف الملصقات",
    "لم يتم إدراج صورة GIF", "لم يتم إدراج بطاقة جهة اتصال", "لم يتم إدراج المستند", "<تم استبعاد الوسائط>",
)
DELETED = _words(
    "This message was deleted", "You deleted this message", "Dit bericht is verwijderd",
    "U hebt dit bericht verwijderd", "Данное сообщение удалено", "Вы удалили данное сообщение",
    "Tato zpráva byla odstraněna", "Tuto zprávu jste odstranil/a", "Diese Nachricht wurde gelöscht",
    "Du hast diese Nachricht gelöscht", "Se eliminó este mensaje", "Eliminaste este mensaje",
    "Este mensaje fue eliminado", "Ce message a été supprimé", "Vous avez supprimé ce message",
    "Questo messaggio è stato eliminato", "Hai eliminato questo messaggio", "Essa mensagem foi apagada",
    "Você apagou esta mensagem", "Mensagem apagada", "このメッセージは削除されました", "このメッセージを削除しました",
    "यह मैसेज डिलीट कर दिया गया है", "आपने यह मैसेज डिलीट किया", "Tin nhắn này đã bị xóa",
    "Tin nhắn này đã bị xoá", "Bạn đã xoá tin nhắn này", "Bạn đã xóa tin nhắn này", "تم حذف هذه الرسالة",
    "لقد حذَفت هذه الرسالة", "Bu mesaj silindi", "Bu mesajı sildiniz", "Ta wiadomość została usunięta",
    "Usunięto tę wiadomość", "Pesan ini telah dihapus", "Anda menghapus pesan ini",
)
# Android: "IMG-20240301-WA0003.jpg (file attached)" and its translations.
FILE_ATTACHED = _words(
    "file attached", "bestand bijgevoegd", "Datei angehängt", "archivo adjunto", "fichier joint",
    "arquivo anexado", "file allegato", "файл добавлен", "soubor byl přiložen", "dosya ekli", "plik załączony",
    "file terlampir", "fil bifogad", "ファイル添付", "फ़ाइल संलग्न है", "tệp đính kèm", "ملف مرفق", "ไฟล์แนบ",
)
_ANDROID_ATTACHED = re.compile(rf"{_M}(?P<name>[^\n<>]+?\.\w{{1,6}}){_SP}\((?P<label>[^()\n]{{3,40}})\)")
_IOS_ATTACHED = re.compile(rf"<[^<>:\n]{{2,30}}:{_SP}?(?P<name>\d{{8}}-[^<>\n]+)>")
_WA_MEDIA_NAME = re.compile(r"(?:IMG|VID|PTT|AUD|STK|DOC|PHOTO|VIDEO|AUDIO)-\d{8}-WA\d{4}", re.I)
_EDITED = re.compile(r"<[^<>\n]*(?:edited|bearbeitet|modifié|editad|editó|modificato|bewerkt|изменено|"
                     r"düzenlendi|edytowan|diedit|編集済み|đã chỉnh sửa|تم تعديل)[^<>\n]*>\s*$", re.I)
_URL = re.compile(r"https?://\S+")
_QUOTES = re.compile('["“”«»„]')
_MAP_LINK = re.compile(r"//(?:maps\.google\.|www\.google\.[a-z.]+/maps|foursquare\.com/v/|maps\.apple\.com)")
_PHONE_IN_TEXT = re.compile(r"\+\d[\d \u00a0\-()]{5,}\d")
_PHONE_SENDER = re.compile(r"\+?[\d \u00a0\-().\u2011]{6,}")
SYSTEM_EVENTS = tuple((event, re.compile(pattern, re.I)) for event, pattern in (
    ("encryption_notice", r"end-to-end|encrypt|verschlüsselt|chiffré|шифрован|暗号化|एन्क्रिप्ट|مشفرة|mã hóa|šifrován|"
                          r"versleuteld|cifrad|criptografad|crittografat|szyfrowan|şifrelen|enkripsi"),
    ("security_code_changed", r"security code|Sicherheitsnummer|code de sécurité|код безопасности|"
                              r"セキュリティコード|सुरक्षा कोड|رمز أمان|mã bảo mật|bezpečnostní kód|beveiligingscode|"
                              r"código de seguridad|código de segurança|codice di sicurezza"),
    ("number_changed", r"changed (?:their|your) phone number|changed to \+?\d|changed (?:to )?a new number"),
    ("group_created", r"created (?:the )?group"),
    ("joined", r"joined using|\bjoined\b"),
    ("left", r"\bleft$"),
    ("removed", r"\bremoved\b"),
    ("added", r"\badded\b|\bwere added\b"),
    ("subject_changed", r"changed the (?:subject|group name)"),
    ("icon_changed", r"changed (?:this|the) group'?s? icon|deleted this group's icon"),
    ("description_changed", r"changed the group description"),
    ("settings_changed", r"changed (?:this|the) group'?s? settings"),
    ("admin", r"\badmin\b"),
    ("disappearing_messages", r"message timer|disappearing messages"),
    ("blocked", r"blocked this contact|unblocked this contact"),
    ("missed_call", r"missed (?:voice|video|group) call"),
))
_ZIP_LOCAL = b"PK\x03\x04"
_CHAT_NAME_PREFIX = re.compile(r"^(?:whatsapp chat (?:with|-) |chat whatsapp s |чат whatsapp с )", re.I)


# --- reading lines -----------------------------------------------------------------------------
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


def match_header(line: str):
    """(platform, match) when the line opens a message, else None."""
    if not line or not _HEADER_START.match(line):
        return None
    for platform, pattern in HEADERS:
        found = pattern.match(line)
        if found:
            return platform, found
    return None


# --- dates and clocks --------------------------------------------------------------------------
@dataclass
class DateOrder:
    order: str = "dmy"            # for dates with the year last: "dmy" or "mdy"
    year_first_order: str = "ymd"
    reason: str = ""
    calendars: set = field(default_factory=set)


def date_fields(date_text: str) -> tuple[str, str, str]:
    fields = _DATE_FIELDS.findall(date_text.translate(_STRIP_MARKS))
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
        month_first = (region or "").upper() in MONTH_FIRST_REGIONS
        decision.order = "mdy" if month_first else "dmy"
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
    marker = (time_text[:found.start()] + time_text[found.end():]).translate(_STRIP_MARKS)
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


# --- zip safety ---------------------------------------------------------------------------------
def safe_member_name(name: str) -> str:
    """A zip member's path made harmless: no drive, no root, no '..', no control characters."""
    cleaned = "".join(ch for ch in name.replace("\\", "/") if ch >= " " and ch != "\x7f")
    parts = [part for part in cleaned.split("/") if part not in ("", ".", "..")]
    if parts and re.fullmatch(r"[A-Za-z]:", parts[0]):
        parts = parts[1:]
    return "/".join(parts) or "unnamed"


def unique_names(infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Members by safe name; two that clean up to the same name ('../a.jpg', 'a.jpg') both stay."""
    named: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = base = safe_member_name(info.filename)
        copy = 1
        while name in named:
            copy += 1
            stem, dot, extension = base.rpartition(".")
            name = f"{stem} ({copy}).{extension}" if dot and stem else f"{base} ({copy})"
        named[name] = info
    return named


def bomb_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a member's declared sizes make it unsafe to unpack, or None."""
    if info.file_size > MAX_MEMBER:
        return f"it says it unpacks to {info.file_size} bytes, more than the {MAX_MEMBER} allowed"
    if info.file_size > BOMB_FLOOR and info.file_size > BOMB_RATIO * max(info.compress_size, 1):
        return (f"it would expand {info.file_size // max(info.compress_size, 1)} times "
                f"({info.compress_size} to {info.file_size} bytes), the mark of a zip bomb")
    return None


class MemberStream(io.RawIOBase):
    """A zip member read as a stream, never past the size it declared; damage becomes an OSError
    (what the pipeline expects from a stream), said in plain words."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo):
        self.info = info
        self.count = 0
        try:
            self.inner = archive.open(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as error:
            raise OSError(f"the zip member {safe_member_name(info.filename)} cannot be opened ({error})") from None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.inner.read(min(len(buffer), 1 << 20))
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
            raise OSError(f"the zip member {safe_member_name(self.info.filename)} is damaged ({error})") from None
        self.count += len(data)
        if self.count > self.info.file_size:   # zipfile stops at the declared size; this is a second guard
            raise OSError(f"the zip member {safe_member_name(self.info.filename)} is larger than it declared")
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed and hasattr(self, "inner"):
            self.inner.close()
        super().close()


class LocalMemberStream(io.RawIOBase):
    """One member read from its local header onwards, for a zip whose directory is missing.

    Stops at the size the header declares (or the bomb limit when it declares none). Data
    that ends early or fails its checksum ends the stream and is named in `problem`, so the
    reader still gets every byte that is there (`read_lines` then says what went wrong)."""

    def __init__(self, handle: BinaryIO, name: str, method: int, compressed: int | None, size: int | None,
                 crc: int | None):
        self.handle, self.name, self.method = handle, name, method
        self.left_in = compressed
        self.limit = size if size is not None else MAX_MEMBER
        self.crc_expected, self.crc, self.count = crc, 0, 0
        self.inflater = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
        self.done = False
        self.problem: str | None = None

    def readable(self) -> bool:
        return True

    def _take(self, size: int) -> bytes:
        if self.left_in is not None:
            size = min(size, self.left_in)
        data = self.handle.read(size) if size else b""
        if self.left_in is not None:
            self.left_in -= len(data)
        return data

    def readinto(self, buffer) -> int:
        if self.done:
            return 0
        want = min(len(buffer), 1 << 20)
        while True:
            if self.inflater is None:
                data = self._take(want)
                if not data and self.left_in:
                    return self._stop(f"{self.name} ends early: the zip was cut short")
            elif self.inflater.eof:
                data = b""
            else:
                chunk = self.inflater.unconsumed_tail or self._take(1 << 16)
                if not chunk:
                    return self._stop(f"{self.name} ends early: the zip was cut short")
                data = self.inflater.decompress(chunk, want)
                if not data:
                    continue
            break
        if not data:
            self.done = True
            if self.crc_expected is not None and self.crc != self.crc_expected:
                self.problem = f"{self.name} is damaged (its checksum does not match)"
            return 0
        self.count += len(data)
        if self.count > self.limit:
            return self._stop(f"{self.name} is larger than it declared")
        self.crc = zlib.crc32(data, self.crc)
        buffer[:len(data)] = data
        return len(data)

    def _stop(self, problem: str) -> int:
        self.problem, self.done = problem, True
        return 0

    def close(self) -> None:
        if not self.closed:
            self.handle.close()
        super().close()


def first_local_chat(open_original: Callable[[], BinaryIO]):
    """(safe name, opener) of the chat text found by walking local headers from the front, or None."""
    with open_original() as handle:
        offset = 0
        while True:
            handle.seek(offset)
            header = handle.read(30)
            if len(header) < 30 or not header.startswith(_ZIP_LOCAL):
                return None
            flags, method, _time, _date, crc, compressed, size, name_len, extra_len = struct.unpack(
                "<HHHHIIIHH", header[6:30])
            raw_name = handle.read(name_len)
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
            data_at = offset + 30 + name_len + extra_len
            described = not flags & 0x08       # sizes and checksum are in this header, not after the data
            readable = method == zipfile.ZIP_DEFLATED or (method == zipfile.ZIP_STORED and described)
            if is_chat_member_name(name) and not name.startswith("__MACOSX/") and readable and not flags & 0x1:
                def opener(at=data_at, method=method, compressed=compressed, size=size, crc=crc):
                    stream = open_original()
                    stream.seek(at)
                    member = LocalMemberStream(stream, safe_member_name(name), method,
                                               compressed if described else None, size if described else None,
                                               crc if described else None)
                    return io.BufferedReader(member, buffer_size=1 << 20)
                return safe_member_name(name), opener
            if not described:
                return None                    # the next header cannot be found without the directory
            offset = data_at + compressed


def member_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], BinaryIO]:
    return lambda: io.BufferedReader(MemberStream(archive, info), buffer_size=1 << 20)


def is_chat_member_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    folded = base.casefold()
    return folded == "_chat.txt" or (folded.endswith(".txt") and "whatsapp" in folded and "/" not in name)


def chat_name(filename: str | None) -> str:
    """The chat's name from an export's file name: 'WhatsApp Chat with Jo (1).zip' -> 'jo'."""
    stem = (filename or "").rsplit("/", 1)[-1]
    stem = re.sub(r"\.(txt|zip)$", "", stem, flags=re.I)
    stem = re.sub(r"\s*\(\d+\)$", "", stem)
    stem = re.sub(r"[\s\u00a0]+", " ", stem).strip()
    return _CHAT_NAME_PREFIX.sub("", stem).casefold()


# --- sniffing ------------------------------------------------------------------------------------
def text_looks_like_chat(head: bytes) -> bool:
    """The first non-blank line is a dated WhatsApp header, and the header lines are not a log file's."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(head) >= 8192 and len(lines) > 1:
        lines = lines[:-1]       # the last line may be cut off mid-way
    lines = [line for line in lines if line.strip()]
    if not lines or not match_header(lines[0]):
        return False
    headers = [header[1] for header in map(match_header, lines[:50]) if header]
    senders = [found.group("rest").split(":", 1)[0].strip() for found in headers]
    return sum(sender.upper() in LOG_LEVELS for sender in senders) * 2 < len(senders)


def zip_head_names(head: bytes) -> Iterator[str]:
    """Member names visible in the first bytes of a zip (local headers, in order)."""
    offset = 0
    while head.startswith(_ZIP_LOCAL, offset) and offset + 30 <= len(head):
        flags, compressed, name_len, extra_len = (struct.unpack_from("<H", head, offset + 6)[0],
                                                  struct.unpack_from("<I", head, offset + 18)[0],
                                                  *struct.unpack_from("<HH", head, offset + 26))
        raw = head[offset + 30:offset + 30 + name_len]
        yield raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        if flags & 0x08:      # sizes come after the data: the next header cannot be found from here
            return
        offset += 30 + name_len + extra_len + compressed


# --- the parser -----------------------------------------------------------------------------------
@dataclass
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


@register
class WhatsAppParser(Parser):
    name = "whatsapp"
    version = "1"
    presets = {"whatsapp": "files"}
    priority = 20

    def sniff(self, head: bytes, filename: str | None) -> bool:
        if head.startswith(_ZIP_LOCAL):
            if any(is_chat_member_name(name) for name in zip_head_names(head)):
                return True
            return bool(filename) and filename.casefold().startswith("whatsapp chat") and \
                filename.casefold().endswith(".zip")
        return text_looks_like_chat(head)

    def parse(self, stored: StoredOriginal, ctx) -> Iterator[Record | Child | ParseWarning]:
        head = stored.head()
        if head.startswith((_ZIP_LOCAL, b"PK\x05\x06")):
            yield from self._parse_zip(stored, ctx)
            return
        if not stored.media_type.startswith("text/") and stored.media_type not in ("application/octet-stream",
                                                                                     "inode/x-empty"):
            # A photo or video saved beside an unzipped chat: read it as what it is, not as a failed chat.
            other = registry.sniff(head, stored.filename, self.options)
            if other.name != self.name:
                ctx.note("Files given as WhatsApp that are not chat text (pictures, videos) were read as what "
                         "they are.")
                yield from other.parse(stored, ctx)
                return
        yield from self._parse_chat(stored.open, stored, ctx, member=None, members={})

    # zip ---------------------------------------------------------------------------------------
    def _parse_zip(self, stored: StoredOriginal, ctx) -> Iterator[Record | Child | ParseWarning]:
        handle = stored.open()
        try:
            try:
                archive = zipfile.ZipFile(handle)
                infos = archive.infolist()
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
                yield from self._parse_damaged_zip(stored, ctx, str(error))
                return
            yield from self._parse_archive(archive, infos, stored, ctx)
        finally:
            handle.close()

    def _parse_damaged_zip(self, stored: StoredOriginal, ctx, error: str):
        """A zip cut short has no directory at its end, but its chat text usually comes first:
        read it from its own header at the front, as far as it goes."""
        found = first_local_chat(stored.open)
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
                       ctx) -> Iterator[Record | Child | ParseWarning]:
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
    def _parse_chat(self, opener: Callable[[], BinaryIO], stored: StoredOriginal, ctx, *, member: str | None,
                    members: dict, references: dict | None = None):
        """Yield a record per message; return the export's own record (the caller yields it),
        or None after a fatal warning. A plain .txt yields its own record here."""
        where = f"{stored.filename or stored.source_key}" + (f" ({member})" if member else "")
        survey = self._survey(opener)
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
        state = _ChatState(ctx, decision, chat, member, members, references if references is not None else {})
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
                platform, found = header
                current = Message(platform, found.group("stamp"), found.group("date"), found.group("time"),
                                  number if counts["messages"] + counts["system"] else 1, found.group("rest"),
                                  [], number, cut, len(found.group("rest")))
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

    @staticmethod
    def _survey(opener: Callable[[], BinaryIO]) -> dict:
        """First pass: how many headers, which dates (to decide their order), what comes before the first."""
        dates: set[str] = set()
        headers = leading = 0
        leading_text = False
        platforms: dict[str, int] = {}
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
                headers += 1
                platforms[header[0]] = platforms.get(header[0], 0) + 1
                dates.add(header[1].group("date"))
        except OSError as error:     # a damaged text: what came before the damage still counts
            stopped = str(error)
        return {"headers": headers, "dates": dates, "leading": leading, "leading_text": leading_text,
                "platform": max(platforms, key=platforms.get) if platforms else None, "stopped": stopped}


class _ChatState:
    """What the parse pass carries from message to message: caches, counters, references."""

    def __init__(self, ctx, decision: DateOrder, chat: str, member: str | None, members: dict, references: dict):
        self.ctx = ctx
        self.decision = decision
        self.chat = chat
        self.member = member
        self.members = members
        self.references = references
        self.dates: dict[str, tuple] = {}
        self.clocks: dict[str, tuple] = {}
        self.hour_offsets: dict[tuple, timezone | None] = {}
        self.repeats: OrderedDict[datetime, dict] = OrderedDict()
        self.first_time: datetime | None = None
        self.last_time: datetime | None = None
        self.senders: dict[str, str | None] = {}     # sender as written -> E.164 when a phone number
        self.leading: str | None = None     # stray text before the first message, kept on it

    def locator(self, first: int, last: int) -> str:
        lines = f"line {first}" if first == last else f"line {first}-{last}"
        return f"{self.member} {lines}" if self.member else lines

    def _moment(self, message: Message, meta: dict):
        date = self.dates.get(message.date)
        if date is None:
            date = self.dates[message.date] = read_date(message.date, self.decision)
            if len(self.dates) > 65536:
                self.dates.clear()
        clock = self.clocks.get(message.time)
        if clock is None:
            clock = self.clocks[message.time] = read_clock(message.time)
            if len(self.clocks) > 65536:
                self.clocks.clear()
        if date[3]:
            meta["date_read_against_file_order"] = True
        if clock[3]:
            meta["clock_contradicts_am_pm"] = True
        hour = (date[0], date[1], date[2], clock[0])
        offset = self.hour_offsets.get(hour, _UNKNOWN)
        if offset is _UNKNOWN:
            offset = self.hour_offsets[hour] = self._steady_offset(datetime(*hour))
            if len(self.hour_offsets) > 4096:
                self.hour_offsets.clear()
        if offset is not None:
            moment = datetime(date[0], date[1], date[2], clock[0], clock[1], clock[2], tzinfo=offset)
            return moment.replace(tzinfo=None), moment
        naive = datetime(date[0], date[1], date[2], clock[0], clock[1], clock[2])
        local = self.ctx.localize(naive)
        if local.ambiguous:
            meta["dst_ambiguous"] = True
        if local.nonexistent:
            meta["dst_nonexistent"] = True
        return naive, local.moment

    def _steady_offset(self, hour: datetime) -> timezone | None:
        """The zone's offset throughout this wall-clock hour, or None when the clocks change in it.

        Placing each time with `ctx.localize` costs more than parsing its line; an hour whose
        first and last second have one offset, neither doubled nor skipped, has no change inside."""
        start, end = self.ctx.localize(hour), self.ctx.localize(hour.replace(minute=59, second=59))
        if start.ambiguous or start.nonexistent or end.ambiguous or end.nonexistent:
            return None
        if start.moment.utcoffset() != end.moment.utcoffset():
            return None
        return timezone(start.moment.utcoffset())

    def record(self, message: Message, counts: dict) -> Record:
        meta: dict = {}
        try:
            naive, moment = self._moment(message, meta)
        except (ValueError, OverflowError) as error:
            naive, moment = None, None
            meta["time_unreadable"] = f"{message.stamp}: {error}"
        rest = message.rest
        sender, body = self._split_sender(rest)
        lines = [body, *message.lines] if sender is not None else [rest, *message.lines]
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        text = "\n".join(lines)
        if message.cut:
            meta["text_cut"] = True
        if self.leading:
            meta["text_before_first_message"], self.leading = self.leading, None
        system = sender is None
        from_: list[str] = []
        if sender is not None:
            meta["sender"] = sender
            number = self.senders.get(sender, _UNKNOWN)
            if number is _UNKNOWN:
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
            event = self._event(rest)
            meta["event"] = event
        if system:
            meta["system"] = True
            counts["system"] += 1
            numbers = _PHONE_IN_TEXT.findall(text)
            if numbers:
                meta["numbers"] = [{"raw": raw, "e164": self.ctx.phone(raw)} for raw in numbers[:10]]
        else:
            counts["messages"] += 1
        if "attachment" in meta and not meta.get("attachment_missing"):
            counts["attachments"] += 1
        if meta.get("media_omitted"):
            counts["media_omitted"] += 1
        if message.platform == "ios":
            meta["format"] = "ios"
        locator = self.locator(message.first, message.last)
        clean = text.lstrip(MARKS)
        identity = None
        if naive is not None:
            self.first_time = min(self.first_time or naive, naive)
            self.last_time = max(self.last_time or naive, naive)
            identity = self._identity(naive, sender or "", clean)
            attachment = meta.get("attachment")
            if attachment and attachment in self.members and attachment not in self.references:
                self.references[attachment] = (locator, {"occurred_at": iso(moment),
                                                         "occurred_at_source": "whatsapp:line",
                                                         "occurred_at_raw": message.stamp})
        return Record(kind="whatsapp", locator=locator, occurred_at=moment,
                      occurred_at_source="whatsapp:line" if moment else None, occurred_at_raw=message.stamp,
                      timezone_assumed=moment is not None, from_=from_, text=clean, metadata=meta,
                      identity=identity)

    @staticmethod
    def _split_sender(rest: str) -> tuple[str | None, str]:
        """'Name: text' -> (Name, text); a system line (no name) -> (None, rest)."""
        sender, sep, body = rest.partition(": ")
        if not sep:
            if rest.endswith(":") and ":" not in rest[:-1]:     # 'Name:' with an empty body
                return rest[:-1].strip(MARKS) or None, ""
            sender, sep, body = rest.partition(":")
            if not sep or not sender or len(sender) > 60 or body[:1] not in (".", ""):
                return None, rest
        if len(sender) > 60 or _QUOTES.search(sender):     # 'X changed the subject from "a: b"'
            return None, rest
        return sender.strip(MARKS) or None, body

    def _classify(self, body: str, text: str, meta: dict) -> bool:
        """Mark what WhatsApp wrote in a sender's name (media, deletions, edits, notices); True for a notice.

        Cheap character checks come first: most messages are plain text and skip every pattern."""
        if len(body) <= PLACEHOLDER_MAX:
            folded = _fold(body)
            if folded in DELETED:
                meta["deleted"] = True
                return False
            if folded in MEDIA_OMITTED:
                meta["media_omitted"] = True
                return False
        marked = "\u200e" in body or "\u200f" in body
        if marked:
            last_mark = max(body.rfind("\u200e"), body.rfind("\u200f"))
            if last_mark > 0 and _fold(body[last_mark:]) in MEDIA_OMITTED:    # "Some file.txt ‎document omitted"
                meta["media_omitted"] = True
                meta["attachment_name"] = body[:last_mark].split(" • ")[0].strip()
                return False
        attached = False
        if "<" in text:
            found = _IOS_ATTACHED.search(text)
            if found:
                attached = self._attachment(found.group("name").strip(), meta)
            if _EDITED.search(text):
                meta["edited"] = True
        if not attached and body.endswith(")"):
            found = _ANDROID_ATTACHED.fullmatch(body)
            if found and (found.group("name").strip() in self.members or _fold(found.group("label")) in FILE_ATTACHED
                          or _WA_MEDIA_NAME.match(found.group("name"))):
                attached = self._attachment(found.group("name").strip(MARKS).strip(), meta)
        urls = _URL.findall(body) if "http" in body else ()
        if body[:1] in MARKS and not attached and not urls:
            # iOS marks what WhatsApp itself wrote (encryption notice, security code change) with a bidi mark.
            event = self._event(body)
            meta["event"] = event
            return event != "missed_call"
        if urls and (body[:1] in MARKS or _MAP_LINK.search(urls[0])):
            meta["location"] = urls[0]
        return False

    def _sender_number(self, sender: str) -> str | None:
        """E.164 for a sender shown as a phone number (a contact not saved), else None."""
        if _PHONE_SENDER.fullmatch(sender) and sum(ch.isdigit() for ch in sender) >= 7:
            return self.ctx.phone(sender)
        return None

    def _attachment(self, name: str, meta: dict) -> bool:
        meta["attachment"] = name
        if self.members and name not in self.members:
            meta["attachment_missing"] = True
        return True

    @staticmethod
    def _event(text: str) -> str:
        for event, pattern in SYSTEM_EVENTS:
            if pattern.search(text):
                return event
        return "system"

    def _identity(self, naive: datetime, sender: str, text: str) -> str:
        seen = self.repeats.get(naive)
        if seen is None:
            seen = self.repeats[naive] = {}
            if len(self.repeats) > REPEAT_WINDOW:
                self.repeats.popitem(last=False)
        key = (sender, text)
        occurrence = seen[key] = seen.get(key, 0) + 1
        material = "\x00".join(("whatsapp", self.chat, naive.isoformat(), sender, text, str(occurrence)))
        return blake3.blake3(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def own_record(self, stored: StoredOriginal, counts: dict, survey: dict, order_name: str) -> Record:
        meta = dict(stored.source_meta)
        meta.update(chat=self.chat, chat_member=self.member, platform=survey["platform"], date_order=order_name,
                    messages=counts["messages"], system_messages=counts["system"], lines=counts["lines"],
                    attachments=counts["attachments"], media_omitted=counts["media_omitted"],
                    participants=sorted(self.senders)[:100])
        if self.first_time:
            meta["first_message"] = self.first_time.isoformat()
            meta["last_message"] = self.last_time.isoformat()
        record = Record(kind=stored.kind_hint or "file", subject=f"WhatsApp chat: {self.chat}" if self.chat else
                        "WhatsApp chat", metadata=meta)
        date_from_source_meta(record, meta)
        return record

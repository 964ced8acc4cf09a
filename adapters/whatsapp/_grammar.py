"""The line grammar of a WhatsApp "Export chat" text: message headers, the placeholders and
system phrases WhatsApp writes, per language, and what tells a chat text from other text.

Android writes "18/03/2022, 15:10 - Name: text"; iOS "[18/03/2022, 15:10:01] Name: text";
Vietnamese iOS puts the time first. Bidi marks (U+200E...) may sit anywhere in a header.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from ingest.kit.adapter import plainly_binary

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


@functools.cache
def _headers() -> tuple[tuple[str, re.Pattern, bool], ...]:
    """(platform, pattern, time first?) of every header form: Android "18/03/2022, 15:10 - Name: text",
    iOS "[18/03/2022, 15:10:01] Name: text", and each with the time first (Vietnamese). Compiled when a
    line first needs them: they took ~20 ms, a twentieth of every command's start, most never reading a chat."""
    return (
        ("android", re.compile(rf"{_M}(?P<stamp>{_DATE_TIME}){_M}\.?{_SP}[-–]{_SP}(?P<rest>.*)", re.S), False),
        ("ios", re.compile(rf"{_M}\[{_M}(?P<stamp>{_DATE_TIME}){_M}\]{_SP}?(?P<rest>.*)", re.S), False),
        ("ios", re.compile(rf"{_M}\[{_M}(?P<stamp>{_TIME_DATE}){_M}\]{_SP}?(?P<rest>.*)", re.S), True),
        ("android", re.compile(rf"{_M}(?P<stamp>{_TIME_DATE}){_M}{_SP}[-–]{_SP}(?P<rest>.*)", re.S), True),
    )


# The plain forms most exports use ("18/03/2022, 15:10 - ", "[3/18/22, 3:10:01 PM] "), without marks or
# narrow spaces, matched ~3x faster than by `_headers()`. Where one matches, its first pattern there
# matches the same way (each field is a whole run of digits), so it only ever saves time.
_PLAIN_DATE_TIME = (r"(?P<date>[0-9]{1,4}[./\-][0-9]{1,2}[./\-][0-9]{1,4}),? "     # [0-9]: cheaper than \d's Unicode test
                    r"(?P<time>[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?: [AaPp][Mm])?)")
_PLAIN_ANDROID = re.compile(rf"(?P<stamp>{_PLAIN_DATE_TIME}) - (?P<rest>.*)", re.S).match
_PLAIN_IOS = re.compile(rf"\[(?P<stamp>{_PLAIN_DATE_TIME})\] (?P<rest>.*)", re.S).match
_HEADER_FIRST = frozenset("[午上오")    # or a digit, after any marks: what a header starts with
LOG_LEVELS = {"INFO", "DEBUG", "WARN", "WARNING", "ERROR", "TRACE", "CRITICAL", "FATAL", "NOTICE"}


def _words(*phrases: str) -> frozenset[str]:
    return frozenset(fold(phrase) for phrase in phrases)


def fold(text: str) -> str:
    """Compare placeholders the way people read them: marks, case, a final dot and Unicode forms ignored."""
    if text.isascii():      # most messages: no marks, already NFC (and the check costs nothing)
        return text.strip().rstrip(".。").casefold()
    return unicodedata.normalize("NFC", text.translate(STRIP_MARKS)).strip().rstrip(".。").casefold()


STRIP_MARKS = {ord(mark): None for mark in MARKS}

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
# A poll is a message by the person who posted it (iOS marks the word with a bidi mark).
POLL = re.compile(rf"{_M}(?:POLL|ENCUESTA|UMFRAGE|SONDAGE|ENQUETE|SONDAGGIO|PEILING|ОПРОС|ANKET|ANKIETA|"
                  rf"POLLING|投票|मतदान|BÌNH CHỌN|استطلاع){_M}:", re.I)
# Android: "IMG-20240301-WA0003.jpg (file attached)" and its translations.
FILE_ATTACHED = _words(
    "file attached", "bestand bijgevoegd", "Datei angehängt", "archivo adjunto", "fichier joint",
    "arquivo anexado", "file allegato", "файл добавлен", "soubor byl přiložen", "dosya ekli", "plik załączony",
    "file terlampir", "fil bifogad", "ファイル添付", "फ़ाइल संलग्न है", "tệp đính kèm", "ملف مرفق", "ไฟล์แนบ",
)
ANDROID_ATTACHED = re.compile(rf"{_M}(?P<name>[^\n<>]+?\.\w{{1,6}}){_SP}\((?P<label>[^()\n]{{3,40}})\)")
IOS_ATTACHED = re.compile(rf"<[^<>:\n]{{2,30}}:{_SP}?(?P<name>\d{{8}}-[^<>\n]+)>")
WA_MEDIA_NAME = re.compile(r"(?:IMG|VID|PTT|AUD|STK|DOC|PHOTO|VIDEO|AUDIO)-\d{8}-WA\d{4}", re.I)
EDITED = re.compile(r"<[^<>\n]*(?:edited|bearbeitet|modifié|editad|editó|modificato|bewerkt|изменено|"
                     r"düzenlendi|edytowan|diedit|編集済み|đã chỉnh sửa|تم تعديل)[^<>\n]*>\s*$", re.I)
URL = re.compile(r"https?://\S+")
QUOTES = re.compile('["“”«»„]')
MAP_LINK = re.compile(r"//(?:maps\.google\.|www\.google\.[a-z.]+/maps|foursquare\.com/v/|maps\.apple\.com)")
PHONE_IN_TEXT = re.compile(r"\+\d[\d \u00a0\-()]{5,}\d")
PHONE_SENDER = re.compile(r"\+?[\d \u00a0\-().\u2011]{6,}")
SYSTEM_EVENTS = tuple((event, re.compile(pattern, re.I)) for event, pattern in (
    ("encryption_notice", r"end-to-end|encrypt|verschlüsselt|chiffré|шифрован|暗号化|एन्क्रिप्ट|مشفرة|mã hóa|šifrován|"
                          r"versleuteld|cifrad|criptografad|crittografat|szyfrowan|şifrelen|enkripsi"),
    ("security_code_changed", r"security code|Sicherheitsnummer|code de sécurité|код безопасности|"
                              r"セキュリティコード|सुरक्षा कोड|رمز أمان|mã bảo mật|bezpečnostní kód|beveiligingscode|"
                              r"código de seguridad|código de segurança|codice di sicurezza"),
    ("number_changed", r"changed (?:their|your) phone number|changed to \+?\d|changed (?:to )?a new number"),
    # group events, in the languages whose placeholders are above (English, German, French, Spanish,
    # Portuguese, Italian, Dutch, Russian, Turkish, Polish, Indonesian)
    ("group_created", r"created (?:the )?group|hat die Gruppe .* erstellt|a créé (?:le )?groupe|"
                      r"creó (?:el|este) grupo|criou (?:o|este) grupo|ha creato (?:il )?gruppo|heeft (?:de )?groep "
                      r".*aangemaakt|создал(?:а)? групп|grubunu oluşturdu|utworzył(?:a)? grupę|membuat grup"),
    ("subject_changed", r"changed the (?:subject|group name)|hat den (?:Betreff|Gruppennamen)|a modifié (?:le sujet|"
                        r"le nom du groupe)|cambió (?:el asunto|el nombre del grupo)|mudou (?:o assunto|o nome do "
                        r"grupo)|ha (?:cambiato|modificato) (?:l'oggetto|il nome del gruppo)|heeft de "
                        r"(?:groepsnaam|onderwerp)|изменил(?:а)? (?:тему|название группы)|grup adını değiştirdi|"
                        r"zmienił(?:a)? (?:temat|nazwę grupy)|mengubah (?:subjek|nama grup)"),
    ("joined", r"joined using|\bjoined\b|beigetreten|a rejoint|se unió|entrou (?:usando|no grupo)|si è unit[oa]|"
               r"neemt deel|is lid geworden|присоединил(?:ся|ась)|katıldı|dołączył(?:a)?|bergabung"),
    ("left", r"\bleft$|hat die Gruppe verlassen|ist ausgetreten|est parti(?:e)?$|salió$|saiu$|è uscit[oa]$|"
             r"is vertrokken|heeft de groep verlaten|вышел(?:а)?(?: из группы)?$|ayrıldı$|opuścił(?:a)?|keluar$"),
    ("removed", r"\bremoved\b|hat .* entfernt|a retiré|eliminó a|quitó a|removeu|ha rimosso|heeft .* verwijderd|"
                r"удалил(?:а)? (?!данное)|çıkardı|usunął|usunęła|mengeluarkan"),
    ("added", r"\badded\b|\bwere added\b|hat .* hinzugefügt|a ajouté|añadió|agregó|adicionou|ha aggiunto|"
              r"heeft .* toegevoegd|добавил(?:а)?|ekledi|dodał(?:a)?|menambahkan"),
    ("icon_changed", r"changed (?:this|the) group'?s? icon|deleted this group's icon"),
    ("description_changed", r"changed the group description"),
    ("settings_changed", r"changed (?:this|the) group'?s? settings"),
    ("admin", r"\badmin\b"),
    ("disappearing_messages", r"message timer|disappearing messages"),
    ("blocked", r"blocked this contact|unblocked this contact"),
    ("missed_call", r"missed (?:voice|video|group) call"),
))
_CHAT_NAME_PREFIX = re.compile(r"^(?:whatsapp chat (?:with|-) |chat whatsapp s |чат whatsapp с )", re.I)


def match_header(line: str) -> tuple[str, str, str, str, str] | None:
    """(platform, stamp, date, time, rest) when the line opens a message, else None."""
    if not line:
        return None
    first = line[0]     # most lines are told apart here, without a pattern (a call costs more than the test)
    if first == "[" or first.isdecimal():
        found = (_PLAIN_IOS if first == "[" else _PLAIN_ANDROID)(line)
        if found:
            stamp, date, time, rest = found.groups()
            return "ios" if first == "[" else "android", stamp, date, time, rest
    elif first in MARKS:
        first = line.lstrip(MARKS)[:1]
    if not (first.isdecimal() or first in _HEADER_FIRST):     # isdecimal: what \d matches
        return None
    for platform, pattern, time_first in _headers():
        found = pattern.match(line)
        if found:
            stamp, one, two, rest = found.groups()     # by number: cheaper than by name, on every line
            return (platform, stamp, two, one, rest) if time_first else (platform, stamp, one, two, rest)
    return None


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


def text_looks_like_chat(head: bytes) -> bool:
    """The first non-blank line is a dated WhatsApp header, and the header lines are not a log file's."""
    if plainly_binary(head):
        return False
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
    headers = [header for header in map(match_header, lines[:50]) if header]
    senders = [rest.split(":", 1)[0].strip() for _platform, _stamp, _date, _time, rest in headers]
    return sum(sender.upper() in LOG_LEVELS for sender in senders) * 2 < len(senders)


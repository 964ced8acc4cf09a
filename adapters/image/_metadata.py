"""What a picture says about itself: when (EXIF, XMP, IPTC, PNG text, the file name), where
(GPS) and with what (make, model, software), read from its header without decoding pixels.

Reading changes no process-wide state for longer than the read: exifread's log messages
(its way of saying EXIF is damaged) and Pillow's warnings are caught around each call
and become the parser's warnings. `setup()` registers the HEIF opener with Pillow; the
parser calls it when first made, never at import.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Iterator

import exifread
from PIL import ExifTags, Image, IptcImagePlugin, UnidentifiedImageError

from ingest.model.records import StoredOriginal

EXIF_VALUE_LIMIT = 256     # characters of one tag's value kept in metadata
_setup_lock = threading.Lock()
_set_up = False


def setup() -> None:
    """Teach Pillow to open HEIC/HEIF (iPhone photos). Idempotent; run before the first picture."""
    global _set_up
    with _setup_lock:
        if not _set_up:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _set_up = True


# `warnings.catch_warnings` swaps process-wide state while it is open, so two threads using it at
# once could leave each other's filters behind: every use here (the probe, the OCR threads) takes
# this lock, and the filters are as they were once it is released.
_warnings_lock = threading.Lock()


@contextmanager
def pillow_warnings():
    """Pillow's warnings in this block recorded (the list yielded), never printed."""
    with _warnings_lock, warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        yield said


# Each pattern finds, in a name without its extension, the local wall-clock time a phone or
# computer wrote into it (copies like "... (1).png" included).
FILENAME_PATTERNS = [
    # Android: Screenshot_20240301-214105.png, Samsung: Screenshot_20240301-214105_WhatsApp.jpg
    re.compile(r"Screenshot_(?P<Y>\d{4})(?P<m>\d\d)(?P<d>\d\d)-(?P<H>\d\d)(?P<M>\d\d)(?P<S>\d\d)"
               r"(?:_(?P<app>[A-Za-z][\w.]*))?"),
    # MIUI and others: Screenshot_2024-03-01-21-41-05-123_com.whatsapp.jpg
    re.compile(r"Screenshot_(?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)-(?P<H>\d\d)-(?P<M>\d\d)-(?P<S>\d\d)"
               r"(?:-(?P<ms>\d{1,3}))?(?:_(?P<app>[A-Za-z][\w.]*))?"),
    # iOS and macOS: Screenshot 2024-03-01 at 21.41.05.png, older macOS: Screen Shot ... at 9.41.05 PM.png
    re.compile(r"Screen ?[Ss]hot (?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d) at (?P<H>\d{1,2})\.(?P<M>\d\d)\.(?P<S>\d\d)"
               r"(?:[\s\u202f]*(?P<ampm>[AaPp][Mm]))?"),
    # Windows Snipping Tool: Screenshot 2024-03-01 214105.png
    re.compile(r"Screenshot (?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d) (?P<H>\d\d)(?P<M>\d\d)(?P<S>\d\d)"),
]
SCREENSHOT_WORDS = re.compile(r"screen ?shot|screen_?capture|bildschirmfoto|capture d.[ée]cran|schermafbeelding|"
                              r"captura de pantalla|snapshot", re.IGNORECASE)


@dataclass
class FileNameTime:
    naive: datetime
    raw: str
    app: str | None


def time_from_filename(filename: str | None) -> FileNameTime | None:
    """The capture time a screenshot tool wrote into the file name, as local wall-clock time."""
    if not filename:
        return None
    stem = os.path.splitext(filename)[0]    # so an app name never takes in the extension
    for pattern in FILENAME_PATTERNS:
        found = pattern.search(stem)
        if not found:
            continue
        parts = found.groupdict()
        hour = int(parts["H"])
        ampm = (parts.get("ampm") or "").upper()
        if ampm:
            hour = hour % 12 + (12 if ampm == "PM" else 0)
        try:
            naive = datetime(int(parts["Y"]), int(parts["m"]), int(parts["d"]), hour, int(parts["M"]),
                             int(parts["S"]), int((parts.get("ms") or "0").ljust(3, "0")) * 1000)
        except ValueError:
            continue
        return FileNameTime(naive, filename, parts.get("app"))
    return None


@dataclass
class Metadata:
    """What the picture says about itself, whichever reader found it."""

    tags: dict[str, Any] = field(default_factory=dict)        # "EXIF DateTimeOriginal" -> value
    printable: dict[str, str] = field(default_factory=dict)   # the same, as text, for `metadata`
    problems: list[str] = field(default_factory=list)

    def text(self, key: str) -> str | None:
        value = self.tags.get(key)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            return None
        value = value.replace("\x00", "").strip()
        return value or None

    def numbers(self, key: str) -> list[float] | None:
        value = self.tags.get(key)
        if isinstance(value, (int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            return None
        try:
            return [float(item) for item in value]
        except (TypeError, ValueError, ZeroDivisionError):
            return None




class _LogCollector(logging.Handler):
    """exifread reports damaged EXIF through logging; collect this thread's messages as warnings."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


_exifread_lock = threading.Lock()    # the logger is changed only while one read holds this
# exifread says these of perfectly good pictures that simply carry no EXIF.
_NOT_PROBLEMS = ("does not have exif", "no exif", "exif not found", "no values found for gps")


def read_exifread(stored: StoredOriginal) -> Metadata:
    found = Metadata()
    collector = _LogCollector()
    logger = logging.getLogger("exifread")
    with _exifread_lock:
        propagate = logger.propagate
        logger.addHandler(collector)
        logger.propagate = False    # its messages become ParseWarnings, not stray stderr lines
        try:
            with stored.open() as handle:
                tags = exifread.process_file(handle, details=False, extract_thumbnail=False)
        except Exception as error:  # exifread raises many kinds on damaged files; the picture is still kept
            found.problems.append(f"its EXIF data is damaged and could not be read ({type(error).__name__}: {error})")
            tags = {}
        finally:
            logger.removeHandler(collector)
            logger.propagate = propagate
    found.problems.extend(f"its EXIF data looks damaged ({message})" for message in collector.messages
                          if not any(phrase in message.lower() for phrase in _NOT_PROBLEMS))
    for key, tag in tags.items():
        if key.startswith(("JPEGThumbnail", "TIFFThumbnail", "Thumbnail ")) or key == "EXIF MakerNote":
            continue
        values = getattr(tag, "values", tag)
        found.tags[key] = values
        found.printable[key] = str(getattr(tag, "printable", values))[:EXIF_VALUE_LIMIT]
    return found


def read_pillow_exif(image: Image.Image) -> Metadata:
    """Pillow's EXIF reader, for files exifread finds nothing in (some WebP, some JPEG layouts)."""
    found = Metadata()
    try:
        exif = image.getexif()
        groups = [("Image", dict(exif), ExifTags.TAGS),
                  ("EXIF", dict(exif.get_ifd(ExifTags.IFD.Exif)), ExifTags.TAGS),
                  ("GPS", dict(exif.get_ifd(ExifTags.IFD.GPSInfo)), ExifTags.GPSTAGS)]
    except Exception as error:  # damaged EXIF: keep going without it
        found.problems.append(f"its EXIF data is damaged and could not be read ({type(error).__name__}: {error})")
        return found
    for prefix, values, names in groups:
        for number, value in values.items():
            if prefix == "Image" and number in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
                continue
            name = names.get(number, f"Tag 0x{number:04X}")
            key = f"{prefix} {name}"
            found.tags[key] = list(value) if isinstance(value, tuple) else value
            found.printable[key] = str(value)[:EXIF_VALUE_LIMIT]
    return found


EXIF_TIME = re.compile(r"(\d{4})[:-](\d\d)[:-](\d\d)[ T](\d\d):(\d\d):(\d\d)")
OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)$")


def exif_time(text: str | None) -> datetime | None:
    """'2024:03:01 21:41:05' as a naive datetime; blank or zeroed values ('0000:00:00 ...') are None."""
    found = EXIF_TIME.search(text or "")
    if not found:
        return None
    try:
        return datetime(*(int(part) for part in found.groups()))
    except ValueError:
        return None


def offset_zone(text: str | None) -> timezone | None:
    found = OFFSET.match((text or "").strip())
    if not found:
        return None
    sign, hours, minutes = found.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        return None
    return timezone(-delta if sign == "-" else delta)


XMP_FIELDS = [("xmp:DateTimeOriginal", "exif:DateTimeOriginal"), ("xmp:DateCreated", "photoshop:DateCreated"),
              ("xmp:CreateDate", "xmp:CreateDate")]


def xmp_times(xmp: str) -> Iterator[tuple[str, str]]:
    """(source name, value) for the capture times an XMP packet holds, attribute or element form."""
    for source, name in XMP_FIELDS:
        found = re.search(rf'{re.escape(name)}\s*=\s*"([^"]+)"|<{re.escape(name)}>([^<]+)</', xmp)
        if found:
            yield source, (found.group(1) or found.group(2)).strip()


def iso_time(text: str) -> datetime | None:
    """An XMP/ISO 8601 time with at least hours and minutes ('2013-07-05T03:18:27Z')."""
    text = text.strip().replace("Z", "+00:00")
    if not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def gps_position(meta: Metadata) -> dict | None:
    lat, lon = meta.numbers("GPS GPSLatitude"), meta.numbers("GPS GPSLongitude")
    if not lat or not lon or len(lat) != 3 or len(lon) != 3:
        return None
    latitude = lat[0] + lat[1] / 60 + lat[2] / 3600
    longitude = lon[0] + lon[1] / 60 + lon[2] / 3600
    if (meta.text("GPS GPSLatitudeRef") or "N").upper().startswith("S"):
        latitude = -latitude
    if (meta.text("GPS GPSLongitudeRef") or "E").upper().startswith("W"):
        longitude = -longitude
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180) or (latitude == 0 and longitude == 0):
        return None
    position = {"latitude": round(latitude, 7), "longitude": round(longitude, 7)}
    altitude = meta.numbers("GPS GPSAltitude")
    if altitude:
        below = (meta.numbers("GPS GPSAltitudeRef") or [0])[0] == 1
        position["altitude_m"] = round(-altitude[0] if below else altitude[0], 2)
    stamp, day = meta.numbers("GPS GPSTimeStamp"), meta.text("GPS GPSDate")
    if stamp and len(stamp) == 3 and day:
        position["time_utc_raw"] = f"{day} {int(stamp[0]):02d}:{int(stamp[1]):02d}:{stamp[2]:02.0f}"
    return position


def gps_utc(meta: Metadata) -> tuple[datetime, str] | None:
    """(naive UTC time, as written) from GPSDateStamp and GPSTimeStamp (exifread names the first
    GPSDate, Pillow GPSDateStamp), or None when either is missing or unreadable."""
    day = meta.text("GPS GPSDate") or meta.text("GPS GPSDateStamp")
    stamp = meta.numbers("GPS GPSTimeStamp")
    found = re.match(r"(\d{4})[:-](\d\d)[:-](\d\d)$", (day or "").strip())
    if not found or not stamp or len(stamp) != 3:
        return None
    try:
        moment = datetime(*(int(part) for part in found.groups())) + timedelta(
            hours=stamp[0], minutes=stamp[1], seconds=stamp[2])
    except (ValueError, OverflowError):
        return None
    return moment.replace(microsecond=0), f"{day.strip()} {int(stamp[0]):02d}:{int(stamp[1]):02d}:{stamp[2]:02.0f}"


@dataclass
class Probe:
    """What opening the picture (header only, nothing decoded) told us."""

    format: str | None = None
    size: tuple[int, int] | None = None
    mode: str | None = None
    orientation: int = 1
    info: dict = field(default_factory=dict)
    pillow_exif: Metadata | None = None
    iptc: dict = field(default_factory=dict)
    refused: str | None = None       # too large to decode safely
    error: str | None = None         # not a picture at all


def probe(stored: StoredOriginal) -> Probe:
    """Open the header only. Pillow's pixel limit refuses a decompression bomb before any decoding."""
    result = Probe()
    try:
        with pillow_warnings() as said:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stored.path) as image:
                result.format, result.size, result.mode = image.format, image.size, image.mode
                result.info = {key: value for key, value in image.info.items() if key != "icc_profile"}
                # Pillow looks for a PNG's EXIF after its pixels by decoding them all: skip that (exifread
                # reads a PNG's eXIf chunk wherever it is, without decoding anything).
                skip = image.format == "PNG" and "exif" not in image.info
                result.pillow_exif = Metadata() if skip else read_pillow_exif(image)
                result.orientation = int((result.pillow_exif.numbers("Image Orientation") or [1])[0])
                if image.format == "JPEG":
                    result.iptc = IptcImagePlugin.getiptcinfo(image) or {}
        # Pillow warns (rather than fails) about damaged metadata while reading the header.
        result.pillow_exif.problems.extend(f"its EXIF data looks damaged ({' '.join(str(w.message).split())})"
                                           for w in said)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        result.refused = str(error)
    except UnidentifiedImageError:
        result.error = "is not a picture: its bytes are not PNG, JPEG, WebP, GIF, HEIC or TIFF"
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        result.error = f"is a picture that cannot be opened ({str(error) or type(error).__name__})"
    return result


def bomb_message(probe_: Probe) -> str:
    pixels = re.search(r"\((\d+) pixels\)", probe_.refused or "")
    claimed = f"{int(pixels.group(1)):,} pixels" if pixels else "more pixels than can be opened safely"
    return (f"claims {claimed}, too many to open safely (a possible 'decompression bomb'); it is kept exactly "
            "as it is, but it was not opened and its text was not read")



def xmp_packet(found: Probe) -> str:
    value = found.info.get("xmp") or found.info.get("XML:com.adobe.xmp") or ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def iptc_text(value) -> str:
    if isinstance(value, list):
        value = b"; ".join(value)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def rfc1123_time(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None

"""The `image` parser: screenshots and photos (PNG, JPEG, WebP, GIF, HEIC/HEIF, TIFF).

It reads when the picture was taken (EXIF, XMP, IPTC, PNG text, the file name,
the file's modification time, in that order), where (GPS) and with what (make,
model, software), and what it says: tesseract reads the text, kept with its word
boxes and a thumbnail as derived artifacts beside the untouched original.

OCR is the slow part. `prefetch` hands each image to a pool with one tesseract
process per core (tesseract's own threads are much slower here, see FACTS.md), so
`parse` usually finds the text already read. Text once read from some bytes is
never read again (`ctx.cached_derived`).
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Iterator

import exifread
import PIL
from PIL import ExifTags, Image, IptcImagePlugin, UnidentifiedImageError
from pillow_heif import register_heif_opener

from ingest.kit.adapter import Parser
from ingest.model.records import Derived, ParseWarning, Record, StoredOriginal
from ingest.kit.registry import register

register_heif_opener()
# One tesseract process per core, each single-threaded: OpenMP threads make it ~6x slower here.
# (pytesseract itself is imported inside the functions that run OCR: it imports pandas when that
# is installed, ~0.2 s that every ingest command would otherwise pay, OCR or not.)
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
# Pillow warns about damaged EXIF each time a JPEG is opened. `probe` records those warnings and
# reports them as ParseWarnings; the OCR threads open the file again and must not print them.
warnings.filterwarnings("ignore", category=UserWarning, module="PIL.TiffImagePlugin")

OCR_LANGUAGE = "eng"
OCR_TIMEOUT_S = 300
THUMBNAIL_SIZE = (320, 320)
EXIF_VALUE_LIMIT = 256     # characters of one tag's value kept in metadata
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}

# --- file names --------------------------------------------------------------------
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


# --- metadata --------------------------------------------------------------------------
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
    """exifread reports damaged EXIF through logging; collect it per thread as warnings."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        messages = getattr(self.local, "messages", None)
        if messages is not None:
            messages.append(record.getMessage())


_collector = _LogCollector()
logging.getLogger("exifread").addHandler(_collector)
logging.getLogger("exifread").propagate = False   # its messages become ParseWarnings, not stray stderr lines
# exifread says these of perfectly good pictures that simply carry no EXIF.
_NOT_PROBLEMS = ("does not have exif", "no exif", "exif not found", "no values found for gps")


def read_exifread(stored: StoredOriginal) -> Metadata:
    found = Metadata()
    _collector.local.messages = []
    try:
        with stored.open() as handle:
            tags = exifread.process_file(handle, details=False, extract_thumbnail=False)
    except Exception as error:  # exifread raises many kinds on damaged files; the picture is still kept
        found.problems.append(f"its EXIF data is damaged and could not be read ({type(error).__name__}: {error})")
        tags = {}
    finally:
        messages, _collector.local.messages = _collector.local.messages, None
    found.problems.extend(f"its EXIF data looks damaged ({message})" for message in messages
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


# --- opening the picture safely ----------------------------------------------------------
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
    """Open the header only. Pillow's pixel limit refuses a decompression bomb before any decoding.
    Runs on the pipeline's thread only: `warnings.catch_warnings` is not thread-safe."""
    result = Probe()
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
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


# --- the slow part: thumbnail and OCR, run in a pool ----------------------------------------
@dataclass
class Analysis:
    thumbnail: bytes | None = None
    ocr_text: bytes | None = None
    ocr_tsv: bytes | None = None
    problems: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def tesseract_tool() -> str | None:
    """'tesseract 5.3.0', or None when tesseract is not installed."""
    import pytesseract

    try:
        return f"tesseract {pytesseract.get_tesseract_version()}"
    except (pytesseract.TesseractNotFoundError, OSError):
        return None


THUMBNAIL_TOOL = f"Pillow {PIL.__version__}"
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def ocr_pool() -> ThreadPoolExecutor:
    """One tesseract at a time per core; threads suffice, as tesseract runs as its own process."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="ocr")
        return _pool


# EXIF orientation -> what turns the stored pixels upright (as ImageOps.exif_transpose, without
# re-reading EXIF in a worker thread, where its warnings could not be caught safely).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}


def upright(image: Image.Image, orientation: int) -> Image.Image:
    method = UPRIGHT.get(orientation)
    return image.transpose(method) if method is not None else image


def flatten(image: Image.Image) -> Image.Image:
    """RGB or greyscale pixels; anything transparent laid on white, as a screen would show it."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def make_thumbnail(pixels: Image.Image) -> bytes:
    pixels.thumbnail(THUMBNAIL_SIZE)
    out = io.BytesIO()
    pixels.save(out, "JPEG", quality=80)
    return out.getvalue()


def ocr(grey: Image.Image) -> tuple[bytes, bytes]:
    """Text and word boxes (TSV) from one tesseract run. It is handed the pixels already decoded,
    upright and grey, as PGM: tesseract reads that faster than the PNG or JPEG it came from, and
    HEIC, WebP and sideways photos need no special case."""
    import pytesseract

    with tempfile.TemporaryDirectory(prefix="ingest-ocr-") as folder:
        page = os.path.join(folder, "page.pgm")
        grey.save(page)
        text, tsv = pytesseract.run_and_get_multiple_output(page, extensions=["txt", "tsv"], lang=OCR_LANGUAGE,
                                                            timeout=OCR_TIMEOUT_S, return_bytes=True)
    return text, tsv


def decode(path: str, orientation: int, *, reduced: bool) -> Image.Image:
    """Upright RGB or grey pixels of the whole picture, detached from the file."""
    with Image.open(path) as image:
        if reduced and image.format == "JPEG":
            image.draft("RGB", THUMBNAIL_SIZE)   # a thumbnail alone needs only a reduced decode
        image.load()
        pixels = upright(flatten(image), orientation)
        return image.copy() if pixels is image else pixels


def analyse(path: str, probe_: Probe, want_ocr: bool, want_thumbnail: bool) -> Analysis:
    """Decode once (which also proves the pixels are whole), then OCR and the thumbnail."""
    result = Analysis()
    try:
        pixels = decode(path, probe_.orientation, reduced=not want_ocr)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        result.problems.append(f"the picture could not be fully decoded ({error}); its text was not read")
        return result
    if want_ocr:
        import pytesseract

        try:
            result.ocr_text, result.ocr_tsv = ocr(pixels.convert("L"))
        except pytesseract.TesseractError as error:
            result.problems.append(f"tesseract could not read text from it ({' '.join(str(error.message).split())})")
        except (RuntimeError, OSError, ValueError) as error:
            result.problems.append(f"its text could not be read ({error})")
    if want_thumbnail:
        result.thumbnail = make_thumbnail(pixels)
    return result


def ocr_summary(tsv: bytes) -> dict:
    """Word count and mean confidence from tesseract's TSV (level 5 rows are words)."""
    words, confidence = 0, 0.0
    for line in tsv.decode("utf-8", "replace").splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) == 12 and cells[0] == "5" and cells[11].strip():
            try:
                score = float(cells[10])
            except ValueError:
                continue
            if score >= 0:
                words += 1
                confidence += score
    return {"words": words, "mean_confidence": round(confidence / words, 1) if words else None,
            "language": OCR_LANGUAGE}


# --- the parser ---------------------------------------------------------------------------
@dataclass
class Job:
    probe: Probe
    future: Future | None


@register
class ImageParser(Parser):
    name = "image"
    version = "1"
    presets = {"screenshots": "files"}
    priority = 40

    def __init__(self, options: dict | None = None):
        super().__init__(options)
        self._jobs: dict[str, Job] = {}

    def sniff(self, head: bytes, filename: str | None) -> bool:
        return (head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*"))
                or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
                or (head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS))

    # prefetch and parse -----------------------------------------------------------------
    def prefetch(self, stored: StoredOriginal, ctx) -> None:
        key = stored.digest.blake3
        if key not in self._jobs:
            self._jobs[key] = self._start(stored, ctx)

    def _start(self, stored: StoredOriginal, ctx) -> Job:
        found = probe(stored)
        if found.refused or found.error:
            return Job(found, None)
        tool = tesseract_tool()
        want_ocr = tool is not None and ctx.cached_derived(stored.digest.blake3, "ocr_text", tool) is None
        want_thumbnail = ctx.cached_derived(stored.digest.blake3, "thumbnail", THUMBNAIL_TOOL) is None
        if not want_ocr and not want_thumbnail:
            return Job(found, None)
        return Job(found, ocr_pool().submit(analyse, str(stored.path), found, want_ocr, want_thumbnail))

    def parse(self, stored: StoredOriginal, ctx) -> Iterator[Record | ParseWarning]:
        job = self._jobs.pop(stored.digest.blake3, None) or self._start(stored, ctx)
        found = job.probe
        if found.error:
            yield ParseWarning(found.error, fatal=True)
            return
        exif = read_exifread(stored)
        if not exif.tags and found.pillow_exif and found.pillow_exif.tags:
            exif = Metadata(found.pillow_exif.tags, found.pillow_exif.printable,
                            exif.problems + found.pillow_exif.problems)
        for problem in exif.problems:
            yield ParseWarning(problem)
        record = Record(kind="image", metadata=dict(stored.source_meta))
        self._describe(record, stored, found, exif)
        self._date(record, stored, found, exif, ctx)
        if found.refused:
            message = bomb_message(found)
            record.metadata["refused"] = message
            yield ParseWarning(message)
        else:
            yield from self._derive(record, stored, job, ctx)
        yield record

    # what the picture is ---------------------------------------------------------------------
    def _describe(self, record: Record, stored: StoredOriginal, found: Probe, exif: Metadata) -> None:
        meta = record.metadata
        meta.update({"format": found.format, "width": found.size[0] if found.size else None,
                     "height": found.size[1] if found.size else None, "mode": found.mode})
        for key, tag in (("make", "Image Make"), ("model", "Image Model"), ("software", "Image Software")):
            value = exif.text(tag)
            if value:
                meta[key] = value
        orientation = exif.numbers("Image Orientation")
        if orientation:
            meta["orientation"] = int(orientation[0])
        position = gps_position(exif)
        if position:
            meta["gps"] = position
        if exif.printable:
            meta["exif"] = exif.printable
        text_chunks = {key: value[:EXIF_VALUE_LIMIT] for key, value in found.info.items()
                       if isinstance(value, str) and key not in ("xmp", "XML:com.adobe.xmp")}
        if text_chunks:
            meta["text_chunks"] = text_chunks
        if found.iptc:
            meta["iptc"] = {f"{group}:{number}": _iptc_text(value)[:EXIF_VALUE_LIMIT]
                            for (group, number), value in found.iptc.items()}
        from_name = time_from_filename(stored.filename)
        if from_name and from_name.app:
            meta["screenshot_app"] = from_name.app
        if stored.kind_hint:
            meta["found_as"] = stored.kind_hint
        record.kind = "screenshot" if self._looks_like_screenshot(stored, found, meta, exif) else "image"

    @staticmethod
    def _looks_like_screenshot(stored: StoredOriginal, found: Probe, meta: dict, exif: Metadata) -> bool:
        if stored.filename and SCREENSHOT_WORDS.search(stored.filename):
            return True
        if meta.get("make"):
            return False    # a camera took it
        said = " ".join(filter(None, [exif.printable.get("EXIF UserComment"), meta.get("software"),
                                      *meta.get("text_chunks", {}).values(), _xmp(found)[:4096]]))
        if SCREENSHOT_WORDS.search(said):
            return True     # macOS and iOS say "Screenshot" in the file itself
        # Lossless, screen-sized and from no camera: what phones and computers save screenshots as.
        return (found.format in ("PNG", "WEBP") and bool(found.size) and min(found.size) >= 320
                and max(found.size) <= 8192)

    # when it happened ----------------------------------------------------------------------
    def _date(self, record: Record, stored: StoredOriginal, found: Probe, exif: Metadata, ctx) -> None:
        for source, raw, moment in self._times(stored, found, exif):
            record.occurred_at_source, record.occurred_at_raw = source, raw
            if moment.tzinfo is None:
                local = ctx.localize(moment)
                moment, record.timezone_assumed = local.moment, True
                if local.ambiguous:
                    record.metadata["dst_ambiguous"] = True
                if local.nonexistent:
                    record.metadata["dst_nonexistent"] = True
            record.occurred_at = moment
            return

    def _times(self, stored: StoredOriginal, found: Probe, exif: Metadata) -> Iterator[tuple[str, str, datetime]]:
        """Candidate times, best first: (occurred_at_source, raw text, datetime naive or aware)."""
        for tag, offset_tag in (("DateTimeOriginal", "OffsetTimeOriginal"), ("DateTimeDigitized", "OffsetTimeDigitized")):
            raw = exif.text(f"EXIF {tag}")
            moment = exif_time(raw)
            if moment:
                offset_raw = exif.text(f"EXIF {offset_tag}")
                zone = offset_zone(offset_raw)
                yield (f"exif:{tag}", f"{raw} {offset_raw}" if zone else raw,
                       moment.replace(tzinfo=zone) if zone else moment)
        xmp = _xmp(found)
        for source, raw in xmp_times(xmp) if xmp else ():
            moment = iso_time(raw)
            if moment:
                yield source, raw, moment
        day, clock = found.iptc.get((2, 55)), found.iptc.get((2, 60))
        if day and clock:
            raw = f"{_iptc_text(day)} {_iptc_text(clock)}"
            found_time = re.match(r"(\d{4})(\d\d)(\d\d) (\d\d)(\d\d)(\d\d)([+-]\d\d\d\d)?$", raw)
            if found_time:
                parts = found_time.groups()
                try:
                    moment = datetime(*(int(part) for part in parts[:6]))
                    zone = offset_zone(parts[6][:3] + ":" + parts[6][3:]) if parts[6] else None
                    yield "iptc:DateCreated", raw, moment.replace(tzinfo=zone) if zone else moment
                except ValueError:
                    pass
        creation = found.info.get("Creation Time")
        if isinstance(creation, str):
            moment = iso_time(creation) or _rfc1123(creation) or exif_time(creation)
            if moment:
                yield "png:Creation Time", creation, moment
        from_name = time_from_filename(stored.filename)
        if from_name:
            yield "filename", from_name.raw, from_name.naive
        raw = exif.text("Image DateTime")
        moment = exif_time(raw)
        if moment:
            zone = offset_zone(exif.text("EXIF OffsetTime"))
            yield "exif:DateTime", raw, moment.replace(tzinfo=zone) if zone else moment
        meta = stored.source_meta
        if meta.get("occurred_at"):   # a picture inside a message happened no later than the message
            yield (meta.get("occurred_at_source") or "parent", meta.get("occurred_at_raw") or meta["occurred_at"],
                   datetime.fromisoformat(meta["occurred_at"].replace("Z", "+00:00")))
        if meta.get("mtime"):
            yield ("file:mtime", str(meta.get("mtime_ns", meta["mtime"])),
                   datetime.fromisoformat(meta["mtime"].replace("Z", "+00:00")))

    # what it says ----------------------------------------------------------------------------
    def _derive(self, record: Record, stored: StoredOriginal, job: Job, ctx) -> Iterator[ParseWarning]:
        key = stored.digest.blake3
        tool = tesseract_tool()
        analysis = job.future.result() if job.future else Analysis()
        for problem in analysis.problems:
            yield ParseWarning(problem)
        if tool is None:
            ctx.note("Text in pictures was not read: tesseract is not installed (Debian: apt-get install tesseract-ocr).")
        else:
            text = analysis.ocr_text if analysis.ocr_text is not None else ctx.cached_derived(key, "ocr_text", tool)
            tsv = analysis.ocr_tsv if analysis.ocr_tsv is not None else ctx.cached_derived(key, "ocr_tsv", tool)
            if text is not None and tsv is not None:
                record.derived.append(Derived("ocr_text", text, tool, "text/plain; charset=utf-8"))
                record.derived.append(Derived("ocr_tsv", tsv, tool, "text/tab-separated-values"))
                record.text = text.decode("utf-8", "replace").replace("\x0c", "").strip() or None
                record.metadata["ocr"] = ocr_summary(tsv)
        thumbnail = analysis.thumbnail or ctx.cached_derived(key, "thumbnail", THUMBNAIL_TOOL)
        if thumbnail:
            record.derived.append(Derived("thumbnail", thumbnail, THUMBNAIL_TOOL, "image/jpeg"))


def _xmp(found: Probe) -> str:
    value = found.info.get("xmp") or found.info.get("XML:com.adobe.xmp") or ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _iptc_text(value) -> str:
    if isinstance(value, list):
        value = b"; ".join(value)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _rfc1123(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None

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

import re
from datetime import date, datetime, timedelta, timezone
from typing import Iterator

from ingest.kit.context import Context
from ingest.kit.adapter import Parser
from ingest.kit.dating import container_time, date_only, file_time, local_moment
from ingest.kit.registry import register
from ingest.model.records import Derived, ParseWarning, Record, StoredOriginal

from ._metadata import (EXIF_VALUE_LIMIT, SCREENSHOT_WORDS, Metadata, Probe, bomb_message, exif_time, gps_position,
                        gps_utc, iptc_text, iso_time, offset_zone, probe, read_exifread, rfc1123_time, setup,
                        time_from_filename, xmp_packet, xmp_times)
from ._ocr import THUMBNAIL_TOOL, Analysis, Job, analyse, ocr_pool, ocr_summary, tesseract_tool

# The picture's own times, in the order they are trusted when they disagree: the camera's EXIF
# (when taken, then when digitised), then XMP, then IPTC. The others are kept in metadata.
EMBEDDED = ("exif:DateTimeOriginal", "exif:DateTimeDigitized", "xmp:", "iptc:")
DISAGREEMENT = timedelta(minutes=1)
QUARTER_HOUR = timedelta(minutes=15)
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}


@register
class ImageParser(Parser):
    name = "image"
    version = "1"
    presets = {"screenshots": "files"}
    priority = 40

    def __init__(self, options: dict | None = None):
        super().__init__(options)
        setup()    # Pillow's HEIF opener: registered when a parser is made, never at import
        self._jobs: dict[str, Job] = {}

    def sniff(self, head: bytes, filename: str | None) -> bool:
        return (head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*"))
                or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
                or (head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS))

    # prefetch and parse -----------------------------------------------------------------
    def prefetch(self, stored: StoredOriginal, ctx: Context) -> None:
        key = stored.digest.blake3
        if key not in self._jobs:
            self._jobs[key] = self._start(stored, ctx)

    def _start(self, stored: StoredOriginal, ctx: Context) -> Job:
        found = probe(stored)
        if found.refused or found.error:
            return Job(found, None)
        tool = tesseract_tool()
        want_ocr = tool is not None and ctx.cached_derived(stored.digest.blake3, "ocr_text", tool) is None
        want_thumbnail = ctx.cached_derived(stored.digest.blake3, "thumbnail", THUMBNAIL_TOOL) is None
        if not want_ocr and not want_thumbnail:
            return Job(found, None)
        return Job(found, ocr_pool().submit(analyse, str(stored.path), found, want_ocr, want_thumbnail))

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | ParseWarning]:
        job = self._jobs.pop(stored.digest.blake3, None) or self._start(stored, ctx)
        found = job.probe
        if found.error:
            yield ParseWarning(found.error, fatal=True)
            return
        # exifread reads no GIF (it says "format not recognized", which is no damage): Pillow's reader only
        exif = read_exifread(stored) if found.format != "GIF" else Metadata()
        if not exif.tags and found.pillow_exif and found.pillow_exif.tags:
            exif = Metadata(found.pillow_exif.tags, found.pillow_exif.printable,
                            exif.problems + found.pillow_exif.problems)
        for problem in exif.problems:
            yield ParseWarning(problem)
        record = Record(kind="image", metadata=dict(stored.source_meta))
        self._describe(record, stored, found, exif)
        for problem in self._date(record, stored, found, exif, ctx):
            yield ParseWarning(problem)
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
            meta["iptc"] = {f"{group}:{number}": iptc_text(value)[:EXIF_VALUE_LIMIT]
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
                                      *meta.get("text_chunks", {}).values(), xmp_packet(found)[:4096]]))
        if SCREENSHOT_WORDS.search(said):
            return True     # macOS and iOS say "Screenshot" in the file itself
        # Lossless, screen-sized and from no camera: what phones and computers save screenshots as.
        return (found.format in ("PNG", "WEBP") and bool(found.size) and min(found.size) >= 320
                and max(found.size) <= 8192)

    # when it happened ----------------------------------------------------------------------
    def _date(self, record: Record, stored: StoredOriginal, found: Probe, exif: Metadata,
              ctx: Context) -> list[str]:
        """Date the record by the best time the picture gives (see EMBEDDED for the precedence);
        returns the warnings: its own times disagreeing by more than a minute."""
        chosen, others = None, []
        for candidate in self._times(stored, found, exif):
            if chosen is None:
                chosen = candidate
                if not candidate[0].startswith(EMBEDDED):
                    break
            elif candidate[0].startswith(EMBEDDED):
                others.append(candidate)
        if chosen is None:
            return []
        source, raw, value = chosen
        if type(value) is date:          # a day without a time (IPTC DateCreated alone)
            date_only(record, value, raw, source, ctx)
        else:
            record.occurred_at_source, record.occurred_at_raw = source, raw
            if value.tzinfo is None and source.startswith("exif:DateTime"):
                value = self._zone_from_gps(value, exif, record.metadata)
            if value.tzinfo is None:
                value, record.timezone_assumed = local_moment(value, ctx, record.metadata), True
            record.occurred_at = value
        differing = [(other_source, other_raw, other) for other_source, other_raw, other in others
                     if _disagree(value, other)]
        if not differing:
            return []
        record.metadata["other_times"] = [{"source": other_source, "raw": other_raw, "value": other.isoformat()}
                                          for other_source, other_raw, other in differing]
        return [f"its own times disagree: {source} says {raw!r}, "
                + ", ".join(f"{other_source} says {other_raw!r}" for other_source, other_raw, _ in differing)
                + f". {source} is used (the camera's EXIF is trusted before XMP, and XMP before IPTC); "
                  "the others are kept in the record's metadata (other_times)."]

    @staticmethod
    def _zone_from_gps(local: datetime, exif: Metadata, meta: dict) -> datetime:
        """A camera time without an offset, placed by the GPS time (always UTC) of the same photo:
        the difference, to the quarter hour, is the offset the camera's clock was in."""
        gps = gps_utc(exif)
        if gps is None:
            return local
        utc, gps_raw = gps
        offset = round((local - utc) / QUARTER_HOUR) * QUARTER_HOUR
        if abs(offset) > timedelta(hours=14):
            return local
        zone = timezone(offset)
        meta["timezone_from_gps"] = {"offset": local.replace(tzinfo=zone).strftime("%z"), "gps_utc": gps_raw}
        return local.replace(tzinfo=zone)

    def _times(self, stored: StoredOriginal, found: Probe,
               exif: Metadata) -> Iterator[tuple[str, str | None, datetime]]:
        """Candidate times, best first: (occurred_at_source, raw text, datetime naive or aware)."""
        for tag, offset_tag in (("DateTimeOriginal", "OffsetTimeOriginal"), ("DateTimeDigitized", "OffsetTimeDigitized")):
            raw = exif.text(f"EXIF {tag}")
            moment = exif_time(raw)
            if moment:
                offset_raw = exif.text(f"EXIF {offset_tag}")
                zone = offset_zone(offset_raw)
                yield (f"exif:{tag}", f"{raw} {offset_raw}" if zone else raw,
                       moment.replace(tzinfo=zone) if zone else moment)
        xmp = xmp_packet(found)
        for source, raw in xmp_times(xmp) if xmp else ():
            moment = iso_time(raw)
            if moment:
                yield source, raw, moment
        day, clock = found.iptc.get((2, 55)), found.iptc.get((2, 60))
        if day and not clock:
            found_day = re.match(r"(\d{4})(\d\d)(\d\d)$", iptc_text(day).strip())
            try:
                if found_day:
                    yield "iptc:DateCreated", iptc_text(day).strip(), date(*(int(part) for part in found_day.groups()))
            except ValueError:
                pass
        if day and clock:
            raw = f"{iptc_text(day)} {iptc_text(clock)}"
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
            moment = iso_time(creation) or rfc1123_time(creation) or exif_time(creation)
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
        # a picture inside a message happened no later than the message; else the file's own time
        for dating in (container_time(stored.source_meta), file_time(stored.source_meta)):
            if dating:
                yield dating.source, dating.raw, dating.moment


    # what it says ----------------------------------------------------------------------------
    def _derive(self, record: Record, stored: StoredOriginal, job: Job, ctx: Context) -> Iterator[ParseWarning]:
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

def _disagree(chosen: datetime | date, other: datetime | date) -> bool:
    """More than a minute apart (a day apart for a date only); wall clocks when either has no zone."""
    if type(chosen) is date or type(other) is date:
        as_day = [value if type(value) is date else value.date() for value in (chosen, other)]
        return as_day[0] != as_day[1]
    if chosen.tzinfo is None or other.tzinfo is None:
        chosen, other = chosen.replace(tzinfo=None), other.replace(tzinfo=None)
    return abs(chosen - other) > DISAGREEMENT

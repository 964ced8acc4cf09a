"""Pictures for the image tests, the OCR benchmark and examples/screenshots: phone-sized chat
screenshots rendered with Pillow in DejaVu Sans, and small JPEGs with known EXIF."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from PIL import ExifTags, Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FONT_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
PHONE = (1080, 2400)

# Fictional messages (no real person); numbers from Ofcom's drama range.
THREATS = [
    "You blocked me again but that will not stop me",
    "Saw you leave the gym at six tonight",
    "Nice blue coat by the way",
    "Your sister cannot protect you forever",
    "Answer the phone or I come round to the flat",
    "Everyone at your work will see those photos",
    "Do not make me wait outside again",
    "You know what happens if you call the police",
    "Tell Daniel to stay away from you",
    "Check your car before you drive tomorrow",
    "This number is new so do not bother blocking",
    "See you soon",
]
REPLIES = [
    "Please stop messaging me",
    "Leave me alone",
]


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_BOLD if bold else FONT), size)


def wrap(draw: ImageDraw.ImageDraw, text: str, face, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=face) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    return lines + [current]


def chat_screenshot(messages: list[tuple[str, bool]], *, contact: str = "+44 7700 900461",
                    clock: str = "21:41", size: tuple[int, int] = PHONE, ios: bool = False
                    ) -> tuple[Image.Image, str]:
    """A messaging app as a phone shows it: status bar, contact, bubbles (True = from them).
    Returns the picture and the message text that fitted on it."""
    width, height = size
    image = Image.new("RGB", size, (236, 229, 221) if not ios else (255, 255, 255))
    draw = ImageDraw.Draw(image)
    body, small = font(42), font(34)
    draw.rectangle((0, 0, width, 260), fill=(7, 94, 84) if not ios else (246, 246, 246))
    header_ink = (255, 255, 255) if not ios else (0, 0, 0)
    draw.text((48, 28), clock, font=small, fill=header_ink)
    draw.text((48, 140), contact, font=font(50, bold=True), fill=header_ink)
    y = 320
    drawn = []
    for text, theirs in messages:
        lines = wrap(draw, text, body, width - 360)
        box_width = max(draw.textlength(line, font=body) for line in lines) + 64
        box_height = 58 * len(lines) + 40
        if y + box_height > height - 40:
            break
        left = 40 if theirs else width - 40 - box_width
        if ios:
            fill = (233, 233, 235) if theirs else (10, 132, 255)
        else:
            fill = (255, 255, 255) if theirs else (220, 248, 198)
        ink = (0, 0, 0) if theirs or not ios else (255, 255, 255)
        draw.rounded_rectangle((left, y, left + box_width, y + box_height), radius=28, fill=fill)
        for number, line in enumerate(lines):
            draw.text((left + 32, y + 20 + 58 * number), line, font=body, fill=ink)
        y += box_height + 36
        drawn.append(text)
    return image, "\n".join(drawn)


def conversation(count: int = 14, start: int = 0) -> list[tuple[str, bool]]:
    """`count` messages, mostly theirs, cycling through the fixed sentences from `start`."""
    messages, threats = [], start
    for number in range(count):
        if number % 5 == 4:
            messages.append((REPLIES[number // 5 % len(REPLIES)], False))
        else:
            messages.append((THREATS[threats % len(THREATS)], True))
            threats += 1
    return messages


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def recall(expected: str, found: str) -> float:
    """Share of the expected words (with repeats) that OCR found."""
    wanted, have = words(expected), words(found)
    pool: dict[str, int] = {}
    for word in have:
        pool[word] = pool.get(word, 0) + 1
    hits = 0
    for word in wanted:
        if pool.get(word):
            pool[word] -= 1
            hits += 1
    return hits / len(wanted)


def exif_jpeg(path: Path, *, taken: str | None = None, offset: str | None = None, make: str | None = None,
              model: str | None = None, gps: tuple | None = None, size=(64, 48), orientation: int | None = None) -> Path:
    """A small JPEG with the EXIF given. gps: (lat_ref, (d, m, s), lon_ref, (d, m, s))."""
    exif = Image.Exif()
    if make:
        exif[ExifTags.Base.Make] = make
    if model:
        exif[ExifTags.Base.Model] = model
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    details = exif.get_ifd(ExifTags.IFD.Exif)
    if taken:
        details[ExifTags.Base.DateTimeOriginal] = taken
    if offset:
        details[ExifTags.Base.OffsetTimeOriginal] = offset
    if gps:
        position = exif.get_ifd(ExifTags.IFD.GPSInfo)
        lat_ref, lat, lon_ref, lon = gps
        position[ExifTags.GPS.GPSLatitudeRef] = lat_ref
        position[ExifTags.GPS.GPSLatitude] = lat
        position[ExifTags.GPS.GPSLongitudeRef] = lon_ref
        position[ExifTags.GPS.GPSLongitude] = lon
    Image.new("RGB", size, (200, 180, 160)).save(path, "JPEG", exif=exif, quality=85)
    return path


def png_bomb(path: Path, side: int = 30000) -> Path:
    """A valid 1-bit PNG of side x side white pixels: ~110 KB on disk, 900 million pixels decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])   # bit depth 1, greyscale
    squeeze = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    body = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path

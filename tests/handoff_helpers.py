"""A small case of several kinds for the hand-off tests (timeline, report, export).

Everything is written here, by the test: fictional people, Ofcom drama numbers,
example.com addresses. Times are fixed so that ids, orders and counts are exact.
"""

from __future__ import annotations

import os
import struct
import zlib
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

STALKER = "+447700900123"
STALKER_MAIL = "j.smith@example.com"


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid, tiny PNG (no Pillow needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def write_evidence(folder: Path) -> Path:
    """A letter (text file), an SMS backup of three messages and an email with a photo attached."""
    folder.mkdir(parents=True, exist_ok=True)
    letter = folder / "letter-left-at-door.txt"
    letter.write_text("I saw you at the station on Tuesday. I will be waiting.\n", encoding="utf-8")
    os.utime(letter, (at("2024-02-05T09:00:00"), at("2024-02-05T09:00:00")))

    sms = folder / "sms-backup.xml"
    rows = [("1707123600000", "1", "Why are you ignoring me?"),         # 2024-02-05 09:00 UTC
            ("1707642000000", "1", "I know where you live now"),          # 2024-02-11 09:00 UTC
            ("1707728400000", "2", "Please stop contacting me")]          # 2024-02-12 09:00 UTC
    body = "".join(f'  <sms protocol="0" address="07700 900123" date="{date}" type="{kind}" subject="null" '
                   f'body="{text}" read="1" status="-1" locked="0" date_sent="0" contact_name="J Smith" />\n'
                   for date, kind, text in rows)
    sms.write_text("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
                   f'<smses count="{len(rows)}">\n{body}</smses>\n', encoding="utf-8")

    mail = EmailMessage()
    mail["From"] = f"J Smith <{STALKER_MAIL}>"
    mail["To"] = "Alex Doe <alex@example.org>"
    mail["Subject"] = "Saw you today"
    mail["Date"] = "Wed, 14 Feb 2024 20:15:00 +0000"
    mail["Message-ID"] = "<valentine-1@example.com>"
    mail.set_content("You looked lovely in the red coat. See the photo.\n")
    mail.add_attachment(png(), maintype="image", subtype="png", filename="outside.png")
    (folder / "saw-you.eml").write_bytes(bytes(mail))
    return folder


def build_mixed(ingest, folder: Path) -> None:
    """Files, SMS, an email with a photo, and two diary notes in the case `ingest` works on."""
    summary = ingest.json("run", "--source", "files", write_evidence(folder), "--json")
    assert summary["failed"] == 0 and summary["unparsed"] == 0
    ingest.json("note", "Grey Ford Focus AB12 CDE parked opposite", "--at", "2024-02-10 21:40", "--where", "Home", "--json")
    ingest.json("note", "Followed from the station", "--at", "2024-02-13T08:10:00+00:00", "--json")


def screenshot(path: Path, text: str, when: str) -> Path:
    """A chat-like screenshot with `text` in large print, dated by its mtime."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (900, 220), "white")
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 56)
    ImageDraw.Draw(image).text((30, 70), text, fill="black", font=font)
    image.save(path, "PNG")
    os.utime(path, (at(when), at(when)))
    return path

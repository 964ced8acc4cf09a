"""The slow part, run in a pool: decoding the pixels once, the thumbnail, and tesseract's OCR.

One tesseract process per core, each single-threaded: OpenMP threads make it about six
times slower here (FACTS.md). That limit is given to each tesseract process in its own
environment (OMP_THREAD_LIMIT=1); this process's environment is never changed.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

import PIL
from PIL import Image

from ._metadata import Probe, pillow_warnings

OCR_LANGUAGE = "eng"
OCR_TIMEOUT_S = 300
THUMBNAIL_SIZE = (320, 320)


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


class OcrFailed(Exception):
    """Tesseract ran but could not read the page; the message is what it said."""


def ocr(grey: Image.Image) -> tuple[bytes, bytes]:
    """Text and word boxes (TSV) from one tesseract run. It is handed the pixels already decoded,
    upright and grey, as PGM: tesseract reads that faster than the PNG or JPEG it came from, and
    HEIC, WebP and sideways photos need no special case.

    Run as pytesseract would (its command, `-c tessedit_create_tsv=1 txt`), but with the thread
    limit in the child's own environment, which pytesseract cannot be given."""
    import pytesseract

    with tempfile.TemporaryDirectory(prefix="ingest-ocr-") as folder:
        page, base = os.path.join(folder, "page.pgm"), os.path.join(folder, "page")
        grey.save(page)
        try:
            done = subprocess.run([pytesseract.pytesseract.tesseract_cmd, page, base, "-l", OCR_LANGUAGE,
                                   "-c", "tessedit_create_tsv=1", "txt"], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=OCR_TIMEOUT_S,
                                  env={**os.environ, "OMP_THREAD_LIMIT": "1"})
        except subprocess.TimeoutExpired:
            raise OcrFailed(f"it took longer than {OCR_TIMEOUT_S} seconds") from None
        if done.returncode:
            raise OcrFailed(" ".join(done.stderr.decode("utf-8", "replace").split()) or f"exit {done.returncode}")
        with open(base + ".txt", "rb") as text, open(base + ".tsv", "rb") as tsv:
            return text.read(), tsv.read()


def decode(path: str, orientation: int, *, reduced: bool) -> Image.Image:
    """Upright RGB or grey pixels of the whole picture, detached from the file."""
    with pillow_warnings():    # damaged EXIF warns as the header is read; the probe has said so already
        image = Image.open(path)
    with image:
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
        try:
            result.ocr_text, result.ocr_tsv = ocr(pixels.convert("L"))
        except OcrFailed as error:
            result.problems.append(f"tesseract could not read text from it ({error})")
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


@dataclass
class Job:
    probe: Probe
    future: Future | None


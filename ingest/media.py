"""Media types from content: file signatures first (filetype), then libmagic, with the
file name only to refine a generic answer."""

import mimetypes

import filetype
import magic

from ingest.kit.adapter import plainly_binary

GENERIC = {"application/octet-stream", "text/plain", "application/zip", "inode/x-empty"}
# libmagic's cost grows with what it is given and it decides on the first few KiB anyway.
MAGIC_BYTES = 4096
_detector = magic.Magic(mime=True)
# filetype tries ~80 signatures in Python, ~50 us for bytes it does not know; eight of them search
# the first KiBs (~35 us of it), and each of those matches only bytes that begin with one given
# signature (a zip's local header: Office and OpenDocument files; EBML: Matroska and WebM). For
# bytes that begin otherwise they are passed over: the same answer, sooner.
_SEARCHING = {"PK\x03\x04": ("Docx", "Xlsx", "Pptx", "Odt", "Ods", "Odp"), "\x1a\x45\xdf\xa3": ("Mkv", "Webm")}
_STARTS = tuple(start.encode("latin-1") for start in _SEARCHING)
_OTHERS = [matcher for matcher in filetype.types
           if type(matcher).__name__ not in {name for names in _SEARCHING.values() for name in names}]


def _signature(head: bytes) -> str | None:
    """filetype's answer (`filetype.guess_mime`), without the searches that cannot match."""
    kind = filetype.match(head, filetype.types if head.startswith(_STARTS) else _OTHERS)
    return kind.mime if kind else None


def media_type(head: bytes, filename: str | None) -> str:
    if not head:
        return "inode/x-empty"
    kind = _signature(head)
    if kind and kind != "application/zip":
        found = kind
    elif not kind and plainly_binary(head):
        # Bytes that are not text and whose signature filetype does not know: libmagic (a fixed
        # ~300-500 us a call) would almost always say the same.
        found = "application/octet-stream"
    else:
        found = _detector.from_buffer(head[:MAGIC_BYTES])
    if found in GENERIC and filename:
        guessed, _encoding = mimetypes.guess_type(filename, strict=False)
        # The name may only narrow what the bytes say: a .jpg that is text stays text.
        if guessed and (found == "application/octet-stream"
                        or (found == "text/plain" and guessed.startswith(("text/", "message/")))
                        or (found == "application/zip" and guessed.endswith("zip"))):
            return guessed
    return found

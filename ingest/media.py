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


def media_type(head: bytes, filename: str | None) -> str:
    if not head:
        return "inode/x-empty"
    kind = filetype.guess_mime(head)
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

"""Media types from content: file signatures first (filetype), then libmagic, with the
file name only to refine a generic answer."""

import mimetypes

import filetype
import magic

GENERIC = {"application/octet-stream", "text/plain", "application/zip", "inode/x-empty"}
# libmagic's cost grows with what it is given and it decides on the first few KiB anyway.
MAGIC_BYTES = 4096
_detector = magic.Magic(mime=True)


def media_type(head: bytes, filename: str | None) -> str:
    if not head:
        return "inode/x-empty"
    kind = filetype.guess_mime(head)
    found = kind if kind and kind != "application/zip" else _detector.from_buffer(head[:MAGIC_BYTES])
    if found in GENERIC and filename:
        guessed, _encoding = mimetypes.guess_type(filename, strict=False)
        # The name may only narrow what the bytes say: a .jpg that is text stays text.
        if guessed and (found == "application/octet-stream"
                        or (found == "text/plain" and guessed.startswith(("text/", "message/")))
                        or (found == "application/zip" and guessed.endswith("zip"))):
            return guessed
    return found

"""Media types from content (libmagic), with the file name only to refine a generic answer."""

import mimetypes

import magic

GENERIC = {"application/octet-stream", "text/plain", "application/zip", "inode/x-empty"}
_detector = magic.Magic(mime=True)


def media_type(head: bytes, filename: str | None) -> str:
    found = _detector.from_buffer(head) if head else "inode/x-empty"
    if found in GENERIC and filename:
        guessed, _encoding = mimetypes.guess_type(filename, strict=False)
        # The name may only narrow what the bytes say: a .jpg that is text stays text.
        if guessed and (found == "application/octet-stream"
                        or (found == "text/plain" and guessed.startswith(("text/", "message/")))
                        or (found == "application/zip" and guessed.endswith("zip"))):
            return guessed
    return found

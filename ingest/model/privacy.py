"""What may leave the case: local paths shown short, the host name never.

A bundle is read by the officer, the prosecution and the defence. The folder a
victim keeps evidence in (`/home/<name>/...`) says where they live and what
they are called, so outside the case a local path is shown as its last two
parts, e.g. `letters/2024-03-01.txt` for `/home/sam/Evidence/letters/2024-03-01.txt`
(and `chat.zip!media/photo.jpg` for a member of a zip). The full path stays in
the case: in the index, and in each custody line's private block, which the
log's hash chain covers only through its BLAKE3 (store/custody.py).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

# An absolute path: a / or ~/ or C:\ not inside a word or a URL (imap://user@host/INBOX is not local).
# A space belongs to the path when another separator follows in the next word (".../My Evidence/a").
LOCAL_PATH = re.compile(r"(?<![\w.:/\\~-])(?:~?/|[A-Za-z]:[\\/])"
                        r"(?:[^\s\"'<>|!,;:]|\s(?=[^\s\"'<>|!,;:/\\]*[/\\]))*")
SHOWN_PARTS = 2
# Leading parts that name a person: /home/<name>, /Users/<name> (macOS), C:\\Users\\<name>, /root.
HOME_ROOTS = {"home": 2, "Users": 2, "root": 1}
SEPARATORS = re.compile(r"[\\/]+")
# Text that is one local path and nothing else (most source keys): shown short without the search.
PLAIN_PATH = re.compile(r"~?/[^\s\"'<>|!,;:]*")


def _home() -> str:
    """The home folder, as `expanduser("~")` says it, without its cost (~15 us) on every string."""
    home = os.environ.get("HOME")
    return (home.rstrip("/") or "/") if home is not None else os.path.expanduser("~")


def display_path(path: str) -> str:
    """The last two parts of a local path (folder and name), never a home folder's name."""
    home = _home()
    if home not in ("", "/", "~") and (path == home or path.startswith(home.rstrip("/") + "/")):
        path = path[len(home):]
    parts = [part for part in SEPARATORS.split(path) if part and part != "~" and not _drive(part)]
    if parts and parts[0] in HOME_ROOTS:
        parts = parts[HOME_ROOTS[parts[0]]:]
    return "/".join(parts[-SHOWN_PARTS:]) or "."


def _drive(part: str) -> bool:
    """`C:` and the like (a regex here cost a tenth of showing a path)."""
    return len(part) == 2 and part[1] == ":" and part[0].isascii() and part[0].isalpha()


def scrub_text(text: str) -> str:
    """The text with every local path in it shortened."""
    if "/" not in text and "\\" not in text:      # every local path has a separator (most text has none)
        return text
    if PLAIN_PATH.fullmatch(text):      # the whole text is the one path LOCAL_PATH would find
        return display_path(text)
    home = _home()
    return _scrubbed(text, home) if len(text) <= 1024 else _scrubbed.__wrapped__(text, home)


@functools.lru_cache(maxsize=256)     # an original's path is shown in both its custody lines
def _scrubbed(text: str, home: str) -> str:
    """`home` is part of the key: display_path reads it, and a test may change it."""
    return LOCAL_PATH.sub(lambda match: display_path(match.group(0)), text)


def scrub(value: Any) -> Any:
    """A copy of a JSON-like value with local paths shortened in every string (keys kept)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


def scrub_record(record: dict) -> dict:
    """A record as it is shown outside the case: its source key and metadata without local paths.
    What the evidence itself says (text, subject, parties) is never changed."""
    shown = dict(record)
    shown["source"] = dict(record["source"], key=scrub_text(record["source"]["key"] or ""))
    shown["metadata"] = scrub(record.get("metadata") or {})
    return shown

"""One-byte mutations of a valid sample of every registered parser's formats, shared by the
bounded fuzz test (tests/test_fuzz.py) and the longer run (bench/fuzz_parsers.py).

The promise checked: whatever one byte of a file becomes, no exception escapes
`parser.parse`, and at most one record (or child original) is lost against the unmutated file (a damaged
item may be lost; the others never are). Where the bytes are compressed or checksummed
as a whole (a zip member, a PNG's deflated pixels) one byte can spoil everything it
covers, so only the first half of the promise is checked (`loss_bound=None`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ingest.model.records import Child, Record
from parser_helpers import parse

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
WHATSAPP_ZIP = EXAMPLES / "whatsapp" / "WhatsApp Chat with Jordan Pike.zip"


@dataclass(frozen=True)
class Sample:
    parser: str
    name: str                      # the file name the parser is told
    loss_bound: int | None = 1     # records a one-byte change may lose; None: only "no exception"

    def data(self) -> bytes:
        return MAKERS[self.name]()


def _example(folder: str, name: str):
    return lambda: (EXAMPLES / folder / name).read_bytes()


def _chat_text() -> bytes:
    with zipfile.ZipFile(WHATSAPP_ZIP) as archive:
        return archive.read("WhatsApp Chat with Jordan Pike.txt")


def _note() -> bytes:
    document = {"@format": "ingest-note/1", "at": "2024-03-02T07:45:00+00:00", "at_typed": "2 March 07:45",
                "text": "A letter was pushed under my door overnight.", "where": "home",
                "written_at": "2024-03-02T08:00:00Z", "operator": "Sam"}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


MAKERS = {
    "sms-20240304083000.xml": _example("sms", "sms-20240304083000.xml"),
    "calls-20240304083000.xml": _example("calls", "calls-20240304083000.xml"),
    "landline-call-log.csv": _example("calls", "landline-call-log.csv"),
    "2024-03-03-outside-your-flat.eml": _example("eml", "2024-03-03-outside-your-flat.eml"),
    "Inbox-export.mbox": _example("mbox", "Inbox-export.mbox"),
    "WhatsApp Chat with Jordan Pike.txt": _chat_text,
    "WhatsApp Chat with Jordan Pike.zip": lambda: WHATSAPP_ZIP.read_bytes(),
    "Screenshot_20240301-214105.png": _example("screenshots", "Screenshot_20240301-214105.png"),
    "letter-left-at-door.txt": _example("files", "letter-left-at-door.txt"),
    "note.json": _note,
}

SAMPLES = [
    Sample("sms", "sms-20240304083000.xml"),
    Sample("calls", "calls-20240304083000.xml"),
    Sample("calls", "landline-call-log.csv"),
    Sample("email", "2024-03-03-outside-your-flat.eml"),
    Sample("mbox", "Inbox-export.mbox"),
    Sample("whatsapp", "WhatsApp Chat with Jordan Pike.txt"),
    Sample("whatsapp", "WhatsApp Chat with Jordan Pike.zip", loss_bound=None),
    Sample("image", "Screenshot_20240301-214105.png", loss_bound=None),
    Sample("file", "letter-left-at-door.txt"),
    Sample("note", "note.json"),
]


def items(parser: str, path: Path, name: str) -> int:
    """How many records and child originals (an mbox's messages, an MMS's photos) the parser makes
    of the file; any exception escapes to the caller."""
    return sum(isinstance(item, (Record, Child)) for item in parse(parser, path, name))


def mutated(data: bytes, position: int, value: int) -> bytes:
    return data[:position] + bytes([value]) + data[position + 1:]

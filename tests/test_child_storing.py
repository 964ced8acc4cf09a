"""A mailbox's messages are stored on a second thread a few ahead of their reading (libmagic and
the writes release the GIL): the case is the one storing each at once makes, line for line."""

from __future__ import annotations

import base64
import io
import json
import threading

import pytest
from PIL import Image

import ingest.pipeline
from conftest import Ingest
from email_helpers import mbox, message
from ingest.case import Case
from ingest.pipeline import Pipeline

def photo(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 120, 90)).save(out, "JPEG")
    return out.getvalue()


def forward(subject: bytes) -> bytes:
    """Three forwarded messages, each followed by a photo: children read ahead (both prefetch)
    whose order must hold though only the messages go to the child-storing thread."""
    parts = b"".join(b"--ww\nContent-Type: message/rfc822\n\n" + message(index) + b"\n"
                     b"--ww\nContent-Type: image/jpeg; name=\"p%d.jpg\"\nContent-Transfer-Encoding: base64\n\n" % index
                     + base64.encodebytes(photo(index * 10)) for index in (4, 8, 12))
    return (b"From: claire.moss@example.org\nTo: sam.patel@example.org\nSubject: " + subject + b"\n"
            b"Date: Fri, 1 Mar 2024 22:00:05 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=ww\n\n"
            b"--ww\nContent-Type: text/plain\n\nsee below\n" + parts + b"--ww--\n")


def ingested(tmp_path, name: str, inputs) -> tuple[dict, list, list]:
    """(summary, records, custody lines without their times) of one run over `inputs`."""
    root = tmp_path / name
    Case.init(root, name="t", timezone="Europe/London", region="GB", operator="Tester").close()
    ingest = Ingest(root)
    result = ingest("run", "--source", "files", *inputs, "--json")
    assert result.exit_code == 0, result.output
    records = [{key: value for key, value in record.items() if key != "acquired_at"}
               for record in ingest.json("list", "--json")]
    lines = []
    for line in (root / "custody.jsonl").read_text().splitlines()[1:]:
        entry = json.loads(line)
        lines.append((entry["action"], entry["subjects"], {key: value for key, value in entry["detail"].items()
                                                           if key not in ("acquired_at", "public_key_fingerprint")}))
    return json.loads(result.stdout), records, lines


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Inbox.mbox").write_bytes(mbox([message(index) for index in range(30)] + [forward(b"in the mailbox"), message(2)]))
    (folder / "forward.eml").write_bytes(forward(b"on its own"))
    return [folder / "Inbox.mbox", folder / "forward.eml"]


def test_a_mailbox_is_kept_line_for_line_as_storing_each_message_at_once_keeps_it(tmp_path, monkeypatch, inputs):
    stored_on: dict[str, str] = {}
    store_child = Pipeline.store_child

    def watched(self, child, parent, stream=None):
        stored_on[f"{parent.source_key}!{child.locator}"] = threading.current_thread().name
        return store_child(self, child, parent, stream)

    monkeypatch.setattr(Pipeline, "store_child", watched)
    found = {}
    for storing in (4, 0):      # 0: each child stored here, as it comes
        monkeypatch.setattr(ingest.pipeline, "CHILDREN_STORING", storing)
        stored_on.clear()
        found[storing] = ingested(tmp_path, f"case-{storing}", inputs)
        threads = {key: name for key, name in stored_on.items() if key.startswith(str(inputs[0]))}
        messages = {key: name for key, name in threads.items() if key.count("!") == 1}
        assert len(messages) == 32
        if storing:     # the messages on the child-storing thread; what is inside them here
            assert {name.rsplit("_", 1)[0] for name in messages.values()} == {"store child"}
            [forward] = [key for key in messages if f"{key}!part 7" in threads]
            inside = [threads[f"{forward}!part {number}"].rsplit("_", 1)[0] for number in range(2, 8)]
            assert inside == ["store child", "MainThread"] * 3       # forwarded messages; photos
            photos = {name for key, name in threads.items() if key.count("!") == 2 and not key.startswith(forward)}
            assert photos == {"MainThread"}
        else:
            assert set(threads.values()) == {"MainThread"}
    assert found[4] == found[0]
    summary, records, lines = found[0]
    assert summary["records"] == len(records) == 54
    # the forwarded messages and the photos are read in the order they were written
    actions = [(action, detail.get("source_key", "")) for action, _subjects, detail in lines]
    forwarded = [key.rsplit("!", 1)[1] for action, key in actions
                 if action == "extract" and "forward.eml!" in key and key.count("!") == 1]
    assert forwarded == ["part 2", "part 3", "part 4", "part 5", "part 6", "part 7"]


def test_a_message_whose_bytes_cannot_be_read_is_said_and_the_others_are_kept(tmp_path, monkeypatch, inputs):
    from adapters import mbox as mbox_parser

    opened = mbox_parser.ByteRange.__init__

    def failing(self, path, start, end):
        if start > 40_000 and not getattr(failing, "done", False):
            failing.done = True
            raise OSError(5, "Input/output error")
        opened(self, path, start, end)

    monkeypatch.setattr(mbox_parser.ByteRange, "__init__", failing)
    summary, records, _lines = ingested(tmp_path, "case", inputs[:1])
    emails = [record for record in records if record["kind"] == "email"]
    assert len(emails) == 32 + 3 - 1
    assert summary["warnings"] >= 1 and summary["failed"] == 0

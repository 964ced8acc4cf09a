"""Large mail is streamed: a message read through its skeleton (big bodies cut out and read back
from the stored bytes) gives exactly what reading it whole gives, and a 200 MB message is
ingested by a real `ingest run` in far less memory than its size."""

from __future__ import annotations

import base64
import json
import os
import quopri
import subprocess
import sys
from dataclasses import asdict

import pytest

import adapters._mailparts as mailparts
import adapters.email as email_adapter
from email_helpers import message, write_big_message
from parser_helpers import parse

CRLF_MIXED = (b"From: a@example.com\r\nTo: b@example.org\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\n"
              b"Subject: crlf\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
              b"preamble\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
              b"quoted-printable\r\n\r\n" + quopri.encodestring("caf\u00e9 \u2014 I saw you. ".encode() * 40)
              .replace(b"\n", b"\r\n") + b"\r\n--b\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Disposition: attachment; filename=raw.bin\r\n\r\nbinary\x00\xff\r\n-- not a boundary\r\n"
              b"\r\nmore\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
              b"Content-Disposition: attachment; filename=p.png\r\n\r\n"
              + base64.encodebytes(bytes(range(256)) * 9).replace(b"\n", b"\r\n") + b"--b--\r\nepilogue\r\n")
FORWARDED = (b"From: c@example.com\nDate: Fri, 1 Mar 2024 21:41:05 +0000\nSubject: fwd\nMIME-Version: 1.0\n"
             b"Content-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: text/plain\n\nsee below\n"
             b"--outer\nContent-Type: message/rfc822\n\n" + message(4, attachment_bytes=5000) + b"\n--outer--\n")
DIGEST = (b"From: d@example.com\nDate: Fri, 1 Mar 2024 21:41:05 +0000\nSubject: digest\nMIME-Version: 1.0\n"
          b"Content-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: e@example.com\nSubject: one\n\nfirst\n"
          b"--d\n\nFrom: f@example.com\nSubject: two\n\nsecond\n--d--\n")
PLAIN_NO_NEWLINE = b"From: g@example.com\nDate: Fri, 1 Mar 2024 21:41:05 +0000\nSubject: plain\n\n" + b"words " * 300
BROKEN_BOUNDARY = (b"From: h@example.com\nSubject: broken\nContent-Type: multipart/mixed; boundary=zz\n\n"
                   b"--zz\nContent-Type: image/jpeg\nContent-Transfer-Encoding: base64\n\n" + b"QUJD" * 500 + b"\n")
MESSAGES = {f"generated-{i}": message(i, attachment_bytes=3000 * (i % 3)) for i in range(12)}
MESSAGES.update(crlf=CRLF_MIXED, forwarded=FORWARDED, digest=DIGEST, plain=PLAIN_NO_NEWLINE, broken=BROKEN_BOUNDARY)


def comparable(items) -> list:
    out = []
    for item in items:
        fields = asdict(item)
        for entry in fields.get("metadata", {}).get("attachments", []):
            entry.pop("size", None)
            entry.pop("streamed", None)
        out.append((type(item).__name__, fields))
    return out


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_the_skeleton_reads_exactly_as_the_whole_message(tmp_path, monkeypatch, name):
    path = tmp_path / f"{name}.eml"
    path.write_bytes(MESSAGES[name])
    whole = parse("email", path)
    monkeypatch.setattr(email_adapter, "CUT_MIN", 0)    # every message takes the streamed path...
    monkeypatch.setattr(mailparts, "CUT_MIN", 1)        # ...and every leaf body is cut out of it
    shape = mailparts.Skeleton.of(path, path.stat().st_size)
    assert shape.spans or name in ("digest", "forwarded")
    streamed = parse("email", path)
    assert comparable(streamed) == comparable(whole)


def test_a_token_in_the_message_itself_is_only_text(tmp_path, monkeypatch):
    # a small part quoting what a token looks like (without this run's random nonce) is read as written
    data = CRLF_MIXED.replace(b"\r\n\r\nmore", b"\r\n\r\ningest-streamed-part-0123456789abcdef-1")
    path = tmp_path / "quoted.eml"
    path.write_bytes(data)
    monkeypatch.setattr(email_adapter, "CUT_MIN", 0)
    monkeypatch.setattr(mailparts, "CUT_MIN", 1000)
    assert len(mailparts.Skeleton.of(path, len(data)).spans) == 2
    raw = next(item for item in parse("email", path) if getattr(item, "filename", None) == "raw.bin")
    assert raw.data == b"binary\x00\xff\r\n-- not a boundary\r\n\r\ningest-streamed-part-0123456789abcdef-1"


PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True)
sys.stderr.buffer.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_kib(*command) -> tuple[int, int]:
    """(exit code, peak resident memory in KiB) of `command`, measured in a fresh process so no
    other child of this test run counts."""
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, *map(str, command)], capture_output=True, text=True,
                          check=True)
    code, peak = done.stdout.split()
    return int(code), int(peak)


def test_a_200_mb_message_is_ingested_in_bounded_memory(tmp_path, case_dir):
    mbox = tmp_path / "one-big-message.mbox"
    expected = write_big_message(mbox, 150_000_000)
    assert mbox.stat().st_size > 200_000_000
    ingest = os.path.join(os.path.dirname(sys.executable), "ingest")
    code, peak = peak_rss_kib(ingest, "--case", case_dir, "run", "--source", "mbox", mbox)
    assert code == 0
    assert peak < 600 * 1024, f"peak resident memory {peak // 1024} MiB"
    listed = subprocess.run([ingest, "--case", case_dir, "list", "--json"], capture_output=True, check=True)
    records = json.loads(listed.stdout)
    [clip] = [record for record in records if record["kind"] == "attachment"]
    assert (clip["original"]["size"], clip["original"]["sha256"]) == (150_000_000, expected)
    [email] = [record for record in records if record["kind"] == "email"]
    assert email["text"] == "Watch this."
    assert email["metadata"]["attachments"] == [{"part": "2", "content_type": "video/mp4", "streamed": True,
                                                 "filename": "clip.mp4", "disposition": "attachment"}]

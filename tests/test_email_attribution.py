"""Issue 13, email: who sent it (a display name is a name, even when it looks like an address), when
(the fall-backs when there is no Date header, each saying its source), and a message with no
headers in a mailbox. Maildir: tmp/ read and said, never counted twice; marker files are quiet."""

from __future__ import annotations

import json
import os

from test_email import eml

NO_DATE = (b"Received: from mx.example.net by mail.example.org with ESMTP id 42; Sat, 2 Mar 2024 08:15:00 +0100\r\n"
           b"Received: from laptop by mx.example.net; Fri, 1 Mar 2024 23:59:00 +0000\r\n"
           b"From: j@example.net\r\nSubject: no date\r\n\r\nWhere were you?\r\n")
MTIME = 1709337600          # 2024-03-02T00:00:00Z


def run(ingest, *args, expect_exit: int = 0) -> dict:
    result = ingest("run", *map(str, args), "--json")
    assert result.exit_code == expect_exit, result.output
    return json.loads(result.stdout)


def emails(ingest) -> dict[str, dict]:
    return {r["original"]["filename"]: r for r in ingest.json("list", "--json") if r["kind"] == "email"}


def test_a_display_name_that_looks_like_an_address_is_a_name_and_is_said(ingest, tmp_path):
    eml(tmp_path, "spoof.eml", b"From: alice@example.com <bob@example.com>\r\n"
        b"To: \"sam@example.org\" <sam.other@example.net>, Sam Patel <sam@example.org>\r\n"
        b"Cc: carol@example.com <carol@example.com>\r\n"
        b"Subject: it's me\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\n\r\nhello\r\n")
    run(ingest, "--source", "eml", tmp_path)
    record = emails(ingest)["spoof.eml"]
    assert record["from"] == ["bob@example.com"]
    assert record["to"] == ["sam.other@example.net", "sam@example.org", "carol@example.com"]
    assert record["metadata"]["names"]["bob@example.com"] == "alice@example.com"
    assert record["metadata"]["display_name_differs"] == [
        {"field": "from", "name": "alice@example.com", "address": "bob@example.com"},
        {"field": "to", "name": "sam@example.org", "address": "sam.other@example.net"}]
    assert ("From: the name shown, 'alice@example.com', looks like an address but the message was sent with the "
            "address bob@example.com") in record["metadata"]["problems"]


def test_no_date_header_dates_by_the_topmost_received_header(ingest, tmp_path):
    eml(tmp_path, "nodate.eml", NO_DATE, mtime=MTIME)
    run(ingest, "--source", "eml", tmp_path)
    record = emails(ingest)["nodate.eml"]
    assert (record["occurred_at"], record["occurred_at_source"], record["occurred_at_raw"],
            record["timezone_assumed"]) == ("2024-03-02T08:15:00+01:00", "header:Received",
                                            "Sat, 2 Mar 2024 08:15:00 +0100", False)
    assert "no Date header" in record["metadata"]["problems"]


def test_no_date_and_no_received_dates_by_the_maildir_delivery_time_then_the_file_time(ingest, tmp_path):
    box = tmp_path / "Maildir"
    bare = b"From: j@example.net\r\nSubject: undated\r\n\r\nStill here.\r\n"
    eml(box / "cur", "1709329265.M1P1.host:2,S", bare, mtime=MTIME)
    eml(tmp_path / "loose", "undated.eml", bare.replace(b"undated", b"loose"), mtime=MTIME)
    run(ingest, box, tmp_path / "loose")
    found = emails(ingest)
    maildir = found["1709329265.M1P1.host:2,S"]
    assert (maildir["occurred_at"], maildir["occurred_at_source"], maildir["occurred_at_raw"]) == (
        "2024-03-01T21:41:05+00:00", "maildir:delivery_time", "1709329265")
    loose = found["undated.eml"]
    assert (loose["occurred_at"], loose["occurred_at_source"]) == ("2024-03-02T00:00:00+00:00", "file:mtime")


def test_a_message_without_headers_in_an_mbox_or_maildir_is_an_email_with_its_text(ingest, tmp_path):
    box = tmp_path / "Maildir"
    eml(box / "new", "1709329266.M2P1.host", b"just a body, no headers at all\nsecond line\n")
    (tmp_path / "box.mbox").write_bytes(b"From someone Fri Mar  1 21:41:05 2024\n"
                                        b"nothing but words here\n\n"
                                        b"From someone Fri Mar  1 21:42:05 2024\n"
                                        b"From: j@example.net\nSubject: with headers\n\nbody\n")
    result = ingest("run", box, tmp_path / "box.mbox", "--json")
    assert result.exit_code == 0, result.output
    assert "this message has no headers (no sender, recipients, subject or date); all of it was read as its text" \
        in result.stderr
    records = ingest.json("list", "--json")
    assert not [r for r in records if r["kind"] == "unparsed"]
    texts = {r["text"] for r in records if r["kind"] == "email"}
    assert {"just a body, no headers at all\nsecond line", "nothing but words here"} <= texts
    hits = ingest.json("search", "words", "--json")
    assert [r["kind"] for r in hits] == ["email"]
    # a loose file with no headers is still not called an email
    eml(tmp_path / "loose", "notes.eml", b"shopping list\r\n")
    assert run(ingest, "--source", "eml", tmp_path / "loose", expect_exit=1)["unparsed"] == 1


def test_maildir_tmp_is_read_and_said_and_a_copy_in_new_is_not_counted_twice(ingest, tmp_path):
    box = tmp_path / "Maildir"
    message = (b"From: j@example.net\r\nSubject: arriving\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\n\r\nhi\r\n")
    eml(box / "new", "1709329265.M1P1.host", message)
    eml(box / "tmp", "1709329265.M1P1.host", message)
    eml(box / "tmp", "1709329299.M9P1.host", message.replace(b"arriving", b"half-written"))
    for marker in (".noindex", ".noupdate"):
        eml(box, marker, b"")
    result = ingest("run", "--source", "maildir", box, "--json")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    summary = json.loads(result.stdout)
    assert (summary["new"], summary["already_held"], summary["unparsed"]) == (3, 2, 0)
    assert any("tmp/ folder were still being delivered" in note for note in summary["notes"])
    found = [r for r in ingest.json("list", "--json") if r["kind"] == "email"]
    assert sorted((r["subject"], r["metadata"]["maildir"]["subfolder"],
                   r["metadata"]["maildir"].get("still_being_delivered", False)) for r in found) == [
        ("arriving", "new", False), ("half-written", "tmp", True)]
    markers = [r for r in ingest.json("list", "--json") if r["original"]["filename"] in (".noindex", ".noupdate")]
    assert [r["kind"] for r in markers] == ["file"]        # both markers are the same (empty) bytes: one object
    assert os.listdir(box / "tmp")     # nothing in the user's folder was moved

"""Which parser reads a child its container declares to be a message (an mbox's message, a
forwarded message/rfc822 part): the email parser, when its bytes look like mail, before the
parsers that outrank it by sniffing (SMS, calls, WhatsApp). Anything else is sniffed as before."""

from __future__ import annotations

import json

from email_helpers import mbox

SMS_QUOTE = (b"From: Dan Reeve <dan.reeve@example.com>\nTo: sam.patel@example.org\nSubject: my backup\n"
             b"Date: Fri, 1 Mar 2024 21:41:05 +0000\n\nhere is what it says:\n<?xml version='1.0'?>\n"
             b"<smses count=\"1\">\n<sms address=\"+447700900123\" date=\"1709329265000\" type=\"1\" body=\"hi\" />\n"
             b"</smses>\n")
CALL_LOG = b"number,date,duration,type\n" + b"".join(
    b"+4477009001%02d,2024-03-01 21:%02d:05,%d,%s\n" % (minute, minute, minute * 7, (b"incoming", b"missed")[minute % 2])
    for minute in range(10, 20))
CHAT = b"01/03/2024, 21:41 - Dan: I know where you are\n01/03/2024, 21:42 - Dan: answer me\n"


def forwarded(inner: bytes, content_type: str = "message/rfc822") -> bytes:
    return (b"From: claire.moss@example.org\nTo: sam.patel@example.org\nSubject: forwarded\n"
            b"Date: Fri, 1 Mar 2024 22:00:05 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=ww\n\n"
            b"--ww\nContent-Type: text/plain\n\nsee below\n--ww\nContent-Type: " + content_type.encode() + b"\n\n"
            + inner + b"\n--ww--\n")


def readers(ingest, path, source: str) -> dict[str, tuple[str, str]]:
    """source key -> (kind, parser) of the record each original was read into."""
    result = ingest("run", "--source", source, path, "--json")
    assert result.exit_code == 0, result.output
    return {record["source"]["key"]: (record["kind"], record["source"]["parser"])
            for record in ingest.json("list", "--json") if record["source"]["locator"] is None}


def test_a_mailbox_message_quoting_an_sms_backup_is_read_as_mail(ingest, tmp_path):
    path = tmp_path / "Inbox.mbox"
    path.write_bytes(mbox([SMS_QUOTE]))
    found = readers(ingest, path, "mbox")
    assert found[f"{path}!bytes 50-{len(SMS_QUOTE) + 49}"] == ("email", "email 1")
    [email] = ingest.json("list", "--kind", "email", "--json")
    assert email["subject"] == "my backup" and "<smses" in email["text"]
    assert not ingest.json("list", "--kind", "sms", "--json")


def test_a_forwarded_message_part_quoting_an_sms_backup_is_read_as_mail(ingest, tmp_path):
    path = tmp_path / "forwarded.eml"
    path.write_bytes(forwarded(SMS_QUOTE))
    found = readers(ingest, path, "eml")
    assert found[f"{path}!part 2"] == ("email", "email 1")
    assert sorted(email["subject"] for email in ingest.json("list", "--kind", "email", "--json")) == \
        ["forwarded", "my backup"]


def test_a_message_part_that_is_not_mail_is_sniffed_as_before(ingest, tmp_path):
    """No headers in it: declared a message, yet not forced into the email parser. The chat is read
    as a chat; the call log (written back out by the parser of its parent with a blank first line)
    is kept as a plain attachment, as before."""
    calls, chat = tmp_path / "calls.eml", tmp_path / "chat.eml"
    calls.write_bytes(forwarded(CALL_LOG))
    chat.write_bytes(forwarded(CHAT))
    found = readers(ingest, tmp_path, "eml")
    assert found[f"{calls}!part 2"] == ("attachment", "file 1")
    assert found[f"{chat}!part 2"] == ("attachment", "whatsapp 1")


def test_only_a_declared_message_skips_the_other_parsers(ingest, tmp_path):
    """The same mail attached as a plain file (not declared message/rfc822) is sniffed: SMS wins, as ever."""
    path = tmp_path / "attached.eml"
    path.write_bytes(forwarded(SMS_QUOTE, "application/octet-stream"))
    found = readers(ingest, path, "eml")
    assert found[f"{path}!part 2"][1] == "sms 1"


def test_a_declared_message_that_looks_like_mail_is_typed_without_libmagic(ingest, tmp_path, monkeypatch):
    """libmagic (~0.7 ms a message) is asked only of what no container vouches for: the mailbox and
    the .eml themselves, and a part declared a message that has no mail headers."""
    import ingest.media as media
    asked = []
    real = media._detector.from_buffer
    monkeypatch.setattr(media._detector, "from_buffer", lambda head: asked.append(head[:19]) or real(head))
    box = tmp_path / "Inbox.mbox"
    box.write_bytes(mbox([SMS_QUOTE, SMS_QUOTE.replace(b"my backup", b"again")]))
    assert ingest("run", "--source", "mbox", box).exit_code == 0
    assert asked == [b"From sender0@exampl"]
    assert [record["original"]["media_type"] for record in ingest.json("list", "--kind", "email", "--json")] == \
        ["message/rfc822", "message/rfc822"]
    asked.clear()
    (tmp_path / "chat.eml").write_bytes(forwarded(CHAT))
    assert ingest("run", "--source", "eml", tmp_path / "chat.eml").exit_code == 0
    assert asked == [b"From: claire.moss@e", b"\n" + CHAT[:18]]

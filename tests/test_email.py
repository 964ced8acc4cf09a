"""The email parser (`--source eml`, `--source maildir`): one normaliser for every message, and
malformed mail kept and read as well as it can be, never lost."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from adapters.email import EmailParser, decode_words, html_to_text, sniff_mail

PLAIN = (b"From: Dan Reeve <dan.reeve@example.com>\r\nTo: Sam Patel <sam.patel@example.org>\r\n"
         b"Subject: %s\r\nDate: %s\r\nMessage-ID: <1@example.com>\r\n\r\nI saw you at the station.\r\n")


def eml(folder, name, data: bytes, mtime=1709329265):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def one_email(ingest, path, source="eml"):
    summary = ingest.json("run", "--source", source, path, "--json")
    records = ingest.json("list", "--json")
    return summary, [r for r in records if r["kind"] == "email"], records


def test_a_plain_message_gives_people_time_subject_and_text(ingest, tmp_path):
    path = eml(tmp_path, "a.eml", PLAIN % (b"You again", b"Fri, 1 Mar 2024 21:41:05 +0000"))
    summary, [record], _ = one_email(ingest, path)
    assert (summary["new"], summary["records"], summary["unparsed"]) == (1, 1, 0)
    assert record["from"] == ["dan.reeve@example.com"] and record["to"] == ["sam.patel@example.org"]
    assert record["subject"] == "You again" and record["text"] == "I saw you at the station."
    assert (record["occurred_at"], record["occurred_at_source"], record["occurred_at_raw"]) == \
        ("2024-03-01T21:41:05+00:00", "header:Date", "Fri, 1 Mar 2024 21:41:05 +0000")
    assert record["metadata"]["message_id"] == "<1@example.com>"
    assert record["metadata"]["names"] == {"dan.reeve@example.com": "Dan Reeve", "sam.patel@example.org": "Sam Patel"}
    assert record["original"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["source"]["parser"] == "email 1"


@pytest.mark.parametrize("date, expected, source", [
    (None, "2024-03-01T21:41:05+00:00", "file:mtime"),
    (b"next Tuesday", "2024-03-01T21:41:05+00:00", "file:mtime"),
    (b"", "2024-03-01T21:41:05+00:00", "file:mtime"),
    (b"Mon, 30 Jun 3609 15:33:50 +0600", "2024-03-01T21:41:05+00:00", "file:mtime"),
    (b"Mon, 29 Feb 2023 10:00:00 +0000", "2024-03-01T21:41:05+00:00", "file:mtime"),
    (b"Wed, 20 Sep 1995 00:19:00 (EDT) -0400", "1995-09-20T00:19:00-04:00", "header:Date"),
    (b"Fri, 1 Mar 2024 21:41:05 -0000", "2024-03-01T21:41:05+00:00", "header:Date"),
    (b"01 Mar 24 21:41 +0100", "2024-03-01T21:41:00+01:00", "header:Date"),
])
def test_missing_or_unreadable_dates_fall_back_and_say_so(ingest, tmp_path, date, expected, source):
    head = PLAIN.replace(b"Date: %s\r\n", b"") % b"x" if date is None else PLAIN % (b"x", date)
    _summary, [record], _ = one_email(ingest, eml(tmp_path, "d.eml", head))
    assert (record["occurred_at"], record["occurred_at_source"], record["timezone_assumed"]) == \
        (expected, source, False)
    if source == "file:mtime":
        assert record["metadata"]["date_header"] == (date.decode() if date is not None else None)
        assert record["metadata"]["problems"][0].startswith("no Date header" if not date else "Date header ")


def test_a_date_without_zone_is_read_in_the_case_zone_and_flagged(ingest, tmp_path):
    _s, [summer], _ = one_email(ingest, eml(tmp_path, "s.eml", PLAIN % (b"x", b"Mon, 1 Jul 2024 21:41:05")))
    assert (summer["occurred_at"], summer["timezone_assumed"]) == ("2024-07-01T21:41:05+01:00", True)
    assert "dst_ambiguous" not in summer["metadata"]


def test_a_zoneless_date_in_the_repeated_autumn_hour_is_flagged_ambiguous(ingest, tmp_path):
    _s, [record], _ = one_email(ingest, eml(tmp_path, "a.eml", PLAIN % (b"x", b"Sun, 27 Oct 2024 01:30:00")))
    assert (record["occurred_at"], record["timezone_assumed"]) == ("2024-10-27T01:30:00+01:00", True)
    assert record["metadata"]["dst_ambiguous"] is True


def test_undeclared_8bit_headers_are_read_as_utf8_then_windows_1252(ingest, tmp_path):
    data = ("From: Zoë Ward <zoe@example.com>\r\nTo: sam@example.org\r\nSubject: café at 8\r\n"
            "Date: Fri, 1 Mar 2024 21:41:05 +0000\r\n\r\nbody\r\n").encode("utf-8")
    latin = data.replace("café".encode(), "café".encode("latin-1")).replace("Zoë".encode(), "Zoë".encode("latin-1"))
    _s, [utf8], _ = one_email(ingest, eml(tmp_path / "u", "u.eml", data))
    assert (utf8["subject"], utf8["metadata"]["names"]["zoe@example.com"]) == ("café at 8", "Zoë Ward")
    assert utf8["metadata"]["problems"] == ["From: 8-bit header without declared charset, read as utf-8",
                                            "Subject: 8-bit header without declared charset, read as utf-8"]
    _s, emails, _ = one_email(ingest, eml(tmp_path / "l", "l.eml", latin))
    latin_record = next(r for r in emails if r["original"]["sha256"] == hashlib.sha256(latin).hexdigest())
    assert latin_record["subject"] == "café at 8"
    assert "Subject: 8-bit header without declared charset, read as cp1252" in latin_record["metadata"]["problems"]


def test_wrong_and_unknown_charsets_never_lose_the_text(ingest, tmp_path):
    data = ("From: a@example.com\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\n"
            "Subject: =?x-klingon?Q?Qapla=27?=\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").encode() + \
        "Ça va très bien?\r\n".encode("latin-1") + \
        b"--b\r\nContent-Type: text/plain; charset=x-unknown-charset\r\n\r\nplain words\r\n--b--\r\n"
    _s, [record], _ = one_email(ingest, eml(tmp_path, "c.eml", data))
    assert record["subject"] == "Qapla'"
    assert record["text"] == "Ça va très bien?\n\nplain words"
    assert record["metadata"]["problems"] == [
        "Subject: charset 'x-klingon' could not be used, read as utf-8",
        "part 1: declared charset 'utf-8' does not fit, read as cp1252",
        "part 2: declared charset 'x-unknown-charset' does not fit, read as utf-8"]


def test_rfc2047_words_are_decoded_even_when_a_character_is_split_between_two():
    encoded = base64.b64encode("Привет".encode()).decode()
    first, second = base64.b64encode("Привет".encode()[:5]).decode(), base64.b64encode("Привет".encode()[5:]).decode()
    assert decode_words(f"=?UTF-8?B?{encoded}?=", [], "Subject") == "Привет"
    assert decode_words(f"=?UTF-8?B?{first}?=\r\n =?UTF-8?B?{second}?= !", [], "Subject") == "Привет !"
    assert decode_words("=?ISO-8859-1?Q?caf=E9_at_8?= and =?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=", [], "S") == \
        "café at 8 and テスト"
    problems = []
    assert decode_words("=?utf-8?B?not*base64?=", problems, "Subject") == "=?utf-8?B?not*base64?="
    assert problems == ["Subject: an encoded word could not be decoded; kept as written"]


def test_a_broken_boundary_keeps_the_text_and_says_so(ingest, tmp_path):
    never_found = (b"From: a@example.com\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: multipart/mixed; boundary=\"nowhere\"\r\n\r\n"
                   b"--elsewhere\r\nContent-Type: text/plain\r\n\r\nWatch your back.\r\n--elsewhere--\r\n")
    summary, [record], _ = one_email(ingest, eml(tmp_path / "a", "a.eml", never_found))
    assert summary["unparsed"] == 0 and summary["warnings"] == 1
    assert "Watch your back." in record["text"]
    assert record["metadata"]["defects"] == ["MultipartInvariantViolationDefect", "StartBoundaryNotFoundDefect"]
    assert record["metadata"]["problems"] == ["part 1: its parts could not be separated (broken boundary); read as text"]


def test_a_missing_closing_boundary_still_gives_every_part(ingest, tmp_path):
    unclosed = (b"From: a@example.com\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee this.\r\n"
                b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.bin\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\nZXhoaWJpdCBB\r\n")
    _s, [record], records = one_email(ingest, eml(tmp_path, "u.eml", unclosed))
    assert record["text"] == "See this."
    assert record["metadata"]["defects"] == ["CloseBoundaryNotFoundDefect"]
    [attachment] = [r for r in records if r["kind"] == "attachment"]
    assert attachment["original"]["sha256"] == hashlib.sha256(b"exhibit A").hexdigest()


def test_each_attachment_is_a_child_original_dated_by_its_email(ingest, tmp_path):
    photo = os.urandom(3000)
    data = (b"From: dan.reeve@example.com\r\nTo: sam.patel@example.org\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\n"
            b"Subject: look\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nLook what I have.\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"../../../etc/your-house.jpg\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(photo).replace(b"\n", b"\r\n") +
            b"--b--\r\n")
    _s, [email], records = one_email(ingest, eml(tmp_path, "att.eml", data))
    [attachment] = [r for r in records if r["kind"] == "attachment"]
    assert attachment["original"]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert attachment["original"]["filename"] == "your-house.jpg"
    assert attachment["parent"] == email["id"]
    assert attachment["source"]["locator"] is None and attachment["source"]["key"].endswith("att.eml!part 2")
    assert (attachment["occurred_at"], attachment["occurred_at_source"]) == \
        ("2024-03-01T21:41:05+00:00", "parent:header:Date")
    assert email["metadata"]["attachments"] == [{"part": "2", "content_type": "application/octet-stream",
                                                 "size": 3000, "filename": "your-house.jpg",
                                                 "disposition": "attachment"}]


def test_a_20_mb_attachment_is_kept_whole(ingest, tmp_path):
    big = os.urandom(20 * 1024 * 1024)
    head = (b"From: a@example.com\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\nSubject: video\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhere\r\n"
            b"--b\r\nContent-Type: video/mp4\r\nContent-Disposition: attachment; filename=clip.mp4\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    path = tmp_path / "big.eml"
    with open(path, "wb") as handle:
        handle.write(head)
        handle.write(base64.encodebytes(big))
        handle.write(b"--b--\r\n")
    summary = ingest.json("run", "--source", "eml", path, "--json")
    assert (summary["new"], summary["failed"], summary["unparsed"]) == (2, 0, 0)
    [clip] = [r for r in ingest.json("list", "--json") if r["kind"] == "attachment"]
    assert (clip["original"]["size"], clip["original"]["sha256"]) == (len(big), hashlib.sha256(big).hexdigest())


def test_a_forwarded_message_is_its_own_email_under_the_one_that_carried_it(ingest, tmp_path):
    inner = PLAIN % (b"original threat", b"Thu, 29 Feb 2024 08:00:00 +0000")
    outer = (b"From: sam.patel@example.org\r\nTo: officer@example.org\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\n"
             b"Subject: Fwd: original threat\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
             b"--b\r\nContent-Type: text/plain\r\n\r\nForwarding this.\r\n"
             b"--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--b--\r\n")
    _s, emails, _ = one_email(ingest, eml(tmp_path, "fwd.eml", outer))
    carrier = next(r for r in emails if r["subject"] == "Fwd: original threat")
    forwarded = next(r for r in emails if r["subject"] == "original threat")
    assert carrier["text"] == "Forwarding this."
    assert forwarded["parent"] == carrier["id"] and forwarded["occurred_at"] == "2024-02-29T08:00:00+00:00"
    assert forwarded["text"] == "I saw you at the station."


def test_html_only_mail_gives_its_words_without_scripts_or_styles(ingest, tmp_path):
    data = (b"From: a@example.com\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"\r\n<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
            b"<body><p>I&#39;m watching&nbsp;you.</p><div>Always.<br>Sam</div></body></html>\r\n")
    _s, [record], _ = one_email(ingest, eml(tmp_path, "h.eml", data))
    assert record["text"] == "I'm watching you.\n\nAlways.\nSam"
    assert html_to_text("<p>unclosed <b>tags") == "unclosed tags"


def test_authentication_results_and_received_chain_are_kept_for_the_officer(ingest, tmp_path):
    data = (b"Received: from mx.example.net (mx.example.net [192.0.2.7]) by mail.example.org with ESMTPS id 42 "
            b"for <sam@example.org>; Fri, 1 Mar 2024 21:41:07 +0000\r\n"
            b"Received: from laptop ([198.51.100.9]) by mx.example.net with ESMTPSA; Fri, 1 Mar 2024 21:41:05 +0000\r\n"
            b"Authentication-Results: mail.example.org;\r\n spf=pass smtp.mailfrom=example.net;\r\n"
            b" dkim=fail (bad signature) header.d=example.net header.s=sel;\r\n dmarc=fail (p=REJECT) header.from=example.net\r\n"
            b"Authentication-Results: forged.example; spf=pass\r\n"
            b"DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=sel; b=abc\r\n"
            b"X-Originating-IP: [198.51.100.9]\r\n"
            b"From: a@example.net\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\n\r\nhi\r\n")
    _s, [record], _ = one_email(ingest, eml(tmp_path, "auth.eml", data))
    meta = record["metadata"]
    assert meta["auth"] == {"spf": "pass", "dkim": "fail", "dmarc": "fail"}
    first = meta["authentication_results"][0]
    assert first["server"] == "mail.example.org"
    assert first["results"][1] == {"method": "dkim", "result": "fail", "header.d": "example.net", "header.s": "sel"}
    assert meta["authentication_results"][1]["server"] == "forged.example"
    assert [(hop["from"], hop["by"], hop["date"]) for hop in meta["received"]] == [
        ("mx.example.net", "mail.example.org", "2024-03-01T21:41:07+00:00"),
        ("laptop", "mx.example.net", "2024-03-01T21:41:05+00:00")]
    assert meta["dkim_signature_domains"] == ["example.net"]
    assert meta["x_originating_ip"] == "[198.51.100.9]"


def test_what_is_not_mail_at_all_is_kept_as_unparsed(ingest, tmp_path):
    eml(tmp_path, "garbage.eml", os.urandom(2000).replace(b":", b"."))
    eml(tmp_path, "empty.eml", b"")
    result = ingest("run", "--source", "eml", tmp_path, "--json")
    assert result.exit_code == 1        # neither could be read as the source named, and the run says so
    summary = json.loads(result.stdout)
    assert (summary["new"], summary["unparsed"], summary["failed"]) == (2, 2, 0)
    assert sorted(summary["not_read"]) == [
        f"{name} could not be read as email; it is kept exactly as it is. The warning above says why."
        for name in ("empty.eml", "garbage.eml")]
    errors = sorted(r["metadata"]["error"] for r in ingest.json("list", "--json"))
    assert errors == ["empty: there is no message in it", "not an email: no message headers were found"]


def test_a_maildir_gives_flags_from_file_names_and_keeps_the_index_files_as_files(ingest, tmp_path):
    box = tmp_path / "Maildir"
    eml(box / "cur", "1709329265.M1P1.host:2,RS", PLAIN % (b"read and replied", b"Fri, 1 Mar 2024 21:41:05 +0000"))
    eml(box / "new", "1709329266.M2P1.host", PLAIN % (b"unread", b"Fri, 1 Mar 2024 21:42:05 +0000"))
    eml(box, "dovecot-uidlist", b"3 V1795000000 N3\n1 1709329265.M1P1.host\n")
    summary = ingest.json("run", "--source", "maildir", box, "--json")
    assert (summary["new"], summary["unparsed"]) == (3, 0)
    records = ingest.json("list", "--json")
    maildir = {r["subject"]: r["metadata"]["maildir"] for r in records if r["kind"] == "email"}
    assert maildir == {"read and replied": {"subfolder": "cur", "flags": ["replied", "seen"]},
                       "unread": {"subfolder": "new"}}
    assert [r["original"]["filename"] for r in records if r["kind"] == "file"] == ["dovecot-uidlist"]


def test_sniffing_picks_email_for_mail_and_not_for_text_that_has_a_colon():
    assert sniff_mail(b"Return-Path: <a@example.com>\nReceived: from x\n by y\nFrom: a@example.com\n\nhi")
    assert sniff_mail(b"From a@example.com Mon May  2 16:07:05 2005\nSubject: hi\nFrom: a@example.com\n\nx")
    assert not sniff_mail(b"Note: he came round again\nTime: 21:40\n\nHe knocked twice.")
    assert not sniff_mail(b"12/03/2024, 21:41 - Dan: hello\n")
    assert EmailParser().sniff(b"anything", "message.EML")


def test_parts_nested_thousands_deep_are_kept_and_said_unreadable(ingest, tmp_path):
    depth = 3000
    head = b"From: a@example.com\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\nMIME-Version: 1.0\r\n"
    nested = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
                      for level in range(depth))
    path = eml(tmp_path, "deep.eml", head + nested + b"Content-Type: text/plain\r\n\r\nbottom\r\n")
    result = ingest("run", "--source", "eml", path, "--json")
    summary = json.loads(result.stdout)
    assert result.exit_code == 1 and (summary["new"], summary["unparsed"], summary["failed"]) == (1, 1, 0)
    [record] = ingest.json("list", "--json")
    assert record["metadata"]["error"] == "its parts are nested too deeply to be read; the message is kept whole"


def test_a_charset_label_holding_a_nul_byte_is_read_as_unknown(ingest, tmp_path):
    # found by fuzzing: codecs.lookup raised ValueError ("embedded null character") out of the parser
    data = (b"From: a@example.com\r\nDate: Fri, 1 Mar 2024 21:41:05 +0000\r\nSubject: x\r\n"
            b"Content-Type: text/plain; charset=\"utf\x00-8\"\r\n\r\nI know where you live.\r\n")
    _s, [record], _ = one_email(ingest, eml(tmp_path, "nul.eml", data))
    assert record["text"] == "I know where you live."
    assert record["kind"] == "email"

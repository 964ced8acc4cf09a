"""The mbox parser: the mailbox kept whole, each message a child original located by its byte range."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tracemalloc

import pytest
from datetime import datetime, timezone

from adapters.mbox import MboxParser, Scanner
from email_helpers import mbox, message
from ingest.model.records import Child, Digest, Record, StoredOriginal

MESSAGE = (b"From: Dan Reeve <dan.reeve@example.com>\nTo: sam.patel@example.org\nSubject: %s\n"
           b"Date: Fri, 1 Mar 2024 21:4%d:05 +0000\n\n%s\n")


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run(ingest, path, source="mbox", expect_exit=0):
    result = ingest("run", "--source", source, path, "--json")
    assert result.exit_code == expect_exit, result.output
    summary = json.loads(result.stdout)
    records = ingest.json("list", "--json")
    return summary, records


def messages_of(records, path):
    """The email records of one mbox, in file order, with the byte range each came from."""
    found = [r for r in records if r["kind"] == "email" and r["source"]["key"].startswith(f"{path}!bytes ")]
    return sorted(found, key=lambda r: int(r["source"]["key"].rsplit("!bytes ", 1)[1].split("-")[0]))


def byte_range(record) -> tuple[int, int]:
    first, last = record["source"]["key"].rsplit("!bytes ", 1)[1].split("-")
    return int(first), int(last)


def test_each_message_is_a_child_whose_bytes_are_exactly_its_range(ingest, tmp_path):
    data = (b"From dan.reeve@example.com Fri Mar  1 21:41:05 2024\n" + MESSAGE % (b"one", 1, b"first") + b"\n"
            b"From dan.reeve@example.com Fri Mar  1 21:42:05 2024\n" + MESSAGE % (b"two", 2, b"second") + b"\n"
            b"From dan.reeve@example.com Fri Mar  1 21:43:05 2024\n" + MESSAGE % (b"three", 3, b"third") + b"\n")
    path = write(tmp_path / "Inbox.mbox", data)
    summary, records = run(ingest, path)
    assert (summary["new"], summary["records"], summary["unparsed"]) == (4, 4, 0)
    [box] = [r for r in records if r["kind"] == "file"]
    assert box["original"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert box["metadata"] == {"format": "mbox", "messages": 3, "container": True}
    emails = messages_of(records, path)
    assert [r["subject"] for r in emails] == ["one", "two", "three"]
    assert [byte_range(r) for r in emails] == [(52, 174), (228, 351), (405, 529)]
    for record in emails:
        first, last = byte_range(record)
        assert record["original"]["sha256"] == hashlib.sha256(data[first:last + 1]).hexdigest()
        assert record["parent"] == box["id"]
    assert data[52:175] == MESSAGE % (b"one", 1, b"first")          # no envelope line, no separator


def test_from_escaping_is_kept_in_the_bytes_and_undone_in_the_text(ingest, tmp_path):
    body = b"Read this.\n>From the day we met\n>>From a quote\nbye"
    path = write(tmp_path / "rd.mbox", b"From x@example.com Fri Mar  1 21:41:05 2024\n" + MESSAGE % (b"q", 1, body))
    _summary, records = run(ingest, path)
    [record] = messages_of(records, path)
    assert record["text"] == "Read this.\nFrom the day we met\n>From a quote\nbye"
    assert b">From the day we met" in (ingest.case_dir / "objects" / record["original"]["blake3"][:2] /
                                        record["original"]["blake3"]).read_bytes()


def test_an_unescaped_from_line_in_a_body_does_not_start_a_message(ingest, tmp_path):
    body = b"My favourite film:\n\nFrom Russia with love\nYear: 1963\n\nFrom me, obviously."
    path = write(tmp_path / "o.mbox", b"From - \n" + MESSAGE % (b"film", 1, body) + b"\n"
                 b"From - \n" + MESSAGE % (b"next", 2, b"second"))
    _summary, records = run(ingest, path)
    assert [r["subject"] for r in messages_of(records, path)] == ["film", "next"]
    assert "From Russia with love\nYear: 1963" in messages_of(records, path)[0]["text"]


def test_content_length_carries_a_message_over_an_unescaped_envelope_line(ingest, tmp_path):
    body = b"quoted:\n\nFrom someone@example.net Mon Jan  1 00:00:00 2001\nSubject: not a new message\n\nend\n"
    first = b"From: a@example.com\nSubject: netscape\nContent-Length: %d\n\n" % len(body) + body
    second = MESSAGE % (b"after", 2, b"second")
    path = write(tmp_path / "ns.mbox", b"From - Mon Jun  3 12:50:27 1996\n" + first + b"From - \n" + second)
    _summary, records = run(ingest, path)
    emails = messages_of(records, path)
    assert [r["subject"] for r in emails] == ["netscape", "after"]
    assert "Subject: not a new message" in emails[0]["text"]
    [box] = [r for r in records if r["kind"] == "file"]
    assert box["metadata"]["content_length_messages"] == 1


def test_a_wrong_content_length_is_ignored_not_trusted(ingest, tmp_path):
    first = b"From: a@example.com\nSubject: liar\nContent-Length: 9999\n\nshort body\n"
    path = write(tmp_path / "cl.mbox", b"From - \n" + first + b"\nFrom - \n" + MESSAGE % (b"after", 2, b"x"))
    _summary, records = run(ingest, path)
    emails = messages_of(records, path)
    assert [(r["subject"], r["text"]) for r in emails] == [("liar", "short body"), ("after", "x")]


def test_an_empty_mailbox_is_kept_and_said_to_be_empty(ingest, tmp_path):
    path = write(tmp_path / "Empty.mbox", b"")
    summary, records = run(ingest, path)
    assert (summary["new"], summary["records"], summary["unparsed"], summary["failed"]) == (1, 1, 0, 0)
    assert records[0]["kind"] == "file" and records[0]["metadata"] == {"format": "mbox", "messages": 0, "container": True}
    assert summary["notes"] == ["Empty.mbox is an empty mailbox: it was kept, with no messages in it."]


def test_a_truncated_last_message_is_kept_and_read_as_far_as_it_goes(ingest, tmp_path):
    cut = MESSAGE % (b"cut off", 2, b"I know where you l")
    data = b"From - \n" + MESSAGE % (b"whole", 1, b"fine") + b"\nFrom - \n" + cut[:-1]
    path = write(tmp_path / "cut.mbox", data)
    summary, records = run(ingest, path)
    assert (summary["unparsed"], summary["failed"]) == (0, 0)
    emails = messages_of(records, path)
    assert [(r["subject"], r["text"]) for r in emails] == [("whole", "fine"), ("cut off", "I know where you l")]
    first, last = byte_range(emails[1])
    assert last == len(data) - 1
    [box] = [r for r in records if r["kind"] == "file"]
    assert box["metadata"]["messages"] == 2
    custody = (ingest.case_dir / "custody.jsonl").read_text()
    assert f"the last message (bytes {first}-{last}) is cut off: the file ends in the middle of a line" in custody


def test_an_envelope_line_with_nothing_after_it_is_said_not_counted_as_mail(ingest, tmp_path):
    data = b"From - \nFrom - \n" + MESSAGE % (b"only", 1, b"real")
    path = write(tmp_path / "e.mbox", data)
    summary, records = run(ingest, path)
    assert [r["subject"] for r in messages_of(records, path)] == ["only"]
    assert summary["warnings"] == 1


def test_crlf_and_a_byte_order_mark_are_handled(ingest, tmp_path):
    data = (b"\xef\xbb\xbfFrom a@example.com Fri Mar  1 21:41:05 2024\r\n" +
            (MESSAGE % (b"one", 1, b"x")).replace(b"\n", b"\r\n") + b"\r\n"
            b"From a@example.com Fri Mar  1 21:42:05 2024\r\n" + (MESSAGE % (b"two", 2, b"y")).replace(b"\n", b"\r\n"))
    path = write(tmp_path / "crlf.mbox", data)
    _summary, records = run(ingest, path)
    emails = messages_of(records, path)
    assert [r["subject"] for r in emails] == ["one", "two"]
    first, last = byte_range(emails[0])
    assert data[first:last + 1] == (MESSAGE % (b"one", 1, b"x")).replace(b"\n", b"\r\n")


def test_a_message_without_date_is_dated_by_its_envelope_line_in_the_case_zone(ingest, tmp_path):
    path = write(tmp_path / "d.mbox", b"From a@example.com Mon Jul  1 21:41:05 2024\nFrom: a@example.com\n\nhi\n")
    _summary, records = run(ingest, path)
    [record] = messages_of(records, path)
    assert (record["occurred_at"], record["occurred_at_source"], record["timezone_assumed"]) == \
        ("2024-07-01T21:41:05+01:00", "mbox:From_", True)
    assert record["occurred_at_raw"] == "From a@example.com Mon Jul  1 21:41:05 2024"


def test_overlapping_exports_share_their_common_messages(ingest, tmp_path):
    one, two, three = (message(i, attachment_bytes=0) for i in (1, 2, 3))
    first = write(tmp_path / "a" / "export-march.mbox", mbox([one, two]))
    second = write(tmp_path / "b" / "export-april.mbox", mbox([two, three]))
    before, _ = run(ingest, first)
    after, records = run(ingest, second)
    assert (before["new"], before["records"]) == (3, 3)
    assert (after["new"], after["already_held"], after["records"]) == (2, 1, 2)   # the mbox and message three
    emails = [r for r in records if r["kind"] == "email"]
    assert sorted(r["subject"][-2:] for r in emails) == ["#1", "#2", "#3"]


def test_files_source_sniffs_an_mbox_as_mbox(ingest, tmp_path):
    path = write(tmp_path / "no-extension", mbox([message(1, attachment_bytes=0), message(2, attachment_bytes=0)]))
    summary, records = run(ingest, path, source="files")
    assert summary["new"] == 3
    assert sorted(r["source"]["parser"] for r in records) == ["email 1", "email 1", "mbox 1"]


def test_not_an_mbox_is_unparsed_but_a_lone_message_is_read(ingest, tmp_path):
    write(tmp_path / "x" / "notes.mbox", b"Just some notes\nnothing else\n")
    lone = write(tmp_path / "y" / "lone.mbox", MESSAGE % (b"lone", 1, b"just me"))
    summary, records = run(ingest, tmp_path / "x", expect_exit=1)
    assert summary["unparsed"] == 1
    assert records[0]["metadata"]["error"] == "not an mbox: it does not start with a 'From ' line"
    _summary, records = run(ingest, lone)
    [record] = [r for r in records if r["kind"] == "email"]
    assert record["subject"] == "lone" and record["source"]["key"] == f"{lone}!bytes 0-{lone.stat().st_size - 1}"


def test_splitting_streams_memory_does_not_grow_with_the_mailbox(tmp_path):
    one = message(4, attachment_bytes=20_000)
    path = write(tmp_path / "big.mbox", mbox([one] * 400))          # about 12 MB
    stored = StoredOriginal(digest=Digest("0", "0", path.stat().st_size), path=path, source_key=str(path),
                            filename="big.mbox", media_type="application/mbox", source_meta={},
                            acquired_at=datetime.now(timezone.utc))
    tracemalloc.start()
    count = 0
    for item in MboxParser().parse(stored, ctx=None):
        if isinstance(item, Child):
            handle = item.open()
            while handle.read(65536):
                pass
            handle.close()
            count += 1
        else:
            assert isinstance(item, Record)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 400
    assert peak < 2 * 1024 * 1024, peak          # the file is 12 MB; the parser holds a few lines at a time
    assert os.path.getsize(path) > 10 * 1024 * 1024


def test_a_damaged_first_envelope_line_loses_no_message(ingest, tmp_path):
    # found by fuzzing: "From " -> "\x00rom " made the whole mailbox "not an mbox"
    data = mbox([message(i) for i in range(3)])
    path = tmp_path / "in" / "damaged.mbox"
    path.parent.mkdir()
    path.write_bytes(b"\x00" + data[1:])
    result = ingest("run", "--source", "mbox", path, "--json")
    assert result.exit_code == 0, result.output
    emails = [record for record in ingest.json("list", "--json") if record["kind"] == "email"]
    assert sorted(record["metadata"]["message_id"] for record in emails) == ["<0.7@mail.example.net>",
                                                                             "<1.7@mail.example.net>",
                                                                             "<2.7@mail.example.net>"]
    assert "does not start with a 'From ' line (damaged?); bytes 0-" in result.output


class CountingFile(io.FileIO):
    """A file that counts the bytes read from the disk through it."""

    read_bytes = 0

    def readinto(self, buffer):
        count = super().readinto(buffer)
        CountingFile.read_bytes += count or 0
        return count


def test_splitting_reads_the_mailbox_about_once_however_many_messages_it_holds(tmp_path):
    # a block search per message read a whole 1 MiB block for each message: 400 MiB for this 12 MB file
    path = write(tmp_path / "many.mbox", mbox([message(4, attachment_bytes=20_000)] * 400))
    CountingFile.read_bytes = 0
    with io.BufferedReader(CountingFile(path)) as handle:
        found = list(Scanner(handle, path.stat().st_size).messages(0))
    assert len(found) == 400
    assert CountingFile.read_bytes < 2 * path.stat().st_size, CountingFile.read_bytes


def test_what_a_run_records_never_depends_on_when_it_commits(tmp_path, monkeypatch):
    """The same picture attached to two messages of one mailbox is read in each, whether or not the
    first message was committed when the second is read (commits fall every second); a later,
    overlapping mailbox adds only what is new."""
    import ingest.pipeline
    from conftest import Ingest
    from ingest.case import Case
    from phone_helpers import PNG_B64

    def with_photo(number: int) -> bytes:
        return (b"From: Dan Reeve <dan.reeve@example.com>\nTo: sam.patel@example.org\n"
                b"Subject: photo %d\nDate: Fri, 1 Mar 2024 21:4%d:05 +0000\nMIME-Version: 1.0\n"
                b"Content-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nlook %d\n"
                b"--XX\nContent-Type: image/png; name=photo.png\nContent-Transfer-Encoding: base64\n"
                b"Content-Disposition: attachment; filename=photo.png\n\n%s\n--XX--\n"
                % (number, number, number, PNG_B64.encode()))

    box = write(tmp_path / "in" / "mail.mbox", mbox([with_photo(1), with_photo(2)]))
    later = write(tmp_path / "later" / "mail.mbox", mbox([with_photo(1), with_photo(2), with_photo(3)]))
    found = {}
    for every in (0.0, 1000.0):          # a commit after every item; one commit at the end
        monkeypatch.setattr(ingest.pipeline, "BATCH_SECONDS", every)
        root = tmp_path / f"case-{every}"
        Case.init(root, name="t", timezone="Europe/London", region="GB", operator="Tester").close()
        case = Ingest(root)
        summary, records = run(case, box)
        found[every] = sorted((record["kind"], record["source"]["key"].split("!", 1)[-1]) for record in records)
        assert summary["records"] == 5         # the mailbox, two messages, a photo in each
        again, records = run(case, later)
        # the mailbox and message 3: messages 1 and 2 are the same bytes as before (already held), and
        # message 3's photo, bytes read inside another original, is one more source key of that object
        assert (again["records"], again["already_held"]) == (2, 3)
    assert found[0.0] == found[1000.0]
    assert sum(1 for kind, _key in found[0.0] if kind == "image") == 2


def test_the_messages_of_a_mailbox_parsed_by_the_email_worker_are_what_parsing_here_gives(tmp_path, monkeypatch):
    """An mbox's messages are stored a few ahead and parsed in the email worker meanwhile: the
    records (attachments, their parents, the times) are those of reading each one at once."""
    import ingest.pipeline
    from adapters import _mailworker
    from conftest import Ingest
    from ingest.case import Case

    if _mailworker._workers() < 1:
        pytest.skip("one core: nothing is parsed apart")
    box = write(tmp_path / "in" / "mail.mbox", mbox([message(index) for index in range(40)] + [message(3)]))
    taken = []
    take = _mailworker.Apart.take
    monkeypatch.setattr(_mailworker.Apart, "take", lambda self, stored: taken.append(take(self, stored)) or taken[-1])
    found = {}
    workers = _mailworker.pool
    for ahead in (0, 8):     # 0: each message parsed here as it is stored (no worker)
        monkeypatch.setattr(ingest.pipeline, "CHILDREN_AHEAD", ahead)
        monkeypatch.setattr(_mailworker, "pool", workers if ahead else lambda now=False: None)
        taken.clear()
        root = tmp_path / f"case-{ahead}"
        Case.init(root, name="t", timezone="Europe/London", region="GB", operator="Tester").close()
        summary, records = run(Ingest(root), box)
        found[ahead] = (summary, sorted(({key: value for key, value in record.items() if key != "acquired_at"}
                                         for record in records), key=lambda record: record["id"]))
        from_worker = sum(result is not None for result in taken)
        assert (from_worker >= 10) if ahead else (from_worker == 0), (ahead, from_worker)
    assert found[8] == found[0]
    assert found[0][0]["records"] == len(found[0][1]) > 41

"""Every real-world message in ../shared/corpus/email and mailbox in ../shared/corpus/mbox:
kept byte-exact, read without a traceback, and each mbox split into the messages it holds."""

from __future__ import annotations

import hashlib

import pytest

# What each mbox holds, and why that is the right count.
MBOX_MESSAGES = {
    # Thunderbird newsgroup store: one article under a `From - Sun Mar 11 ...` line.
    "memacs_thunderbird_newsgroup.mbox": 1,
    # Google Takeout style: four `From 18443...@xxx` lines with no date, each followed by headers.
    "mimekit_gmail_takeout_style.mbox": 4,
    # Netscape 1996-97 mail: 29 `From - ` lines, several not preceded by a blank line; the
    # Content-Length headers (25 of them usable) keep bodies with forwarded mail in one piece.
    "mimekit_netscape_content_length.mbox": 29,
    # A BOM before the first `From -`, and "From Russia with love" in both bodies, unescaped:
    # two messages, not four (the film title is followed by a blank line or "Year: 1963",
    # and has no envelope date, so it is body text).
    "mimekit_unmunged_bom.mbox": 2,
}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_corpus_email_is_kept_and_read(corpus, ingest):
    folder = corpus / "email"
    files = sorted(path for path in folder.iterdir() if path.is_file())
    summary = ingest.json("run", "--source", "eml", folder, "--json")
    assert summary["failed"] == 0
    records = ingest.json("list", "--json")
    top = {r["source"]["key"]: r for r in records if "!" not in r["source"]["key"]}
    assert sorted(top) == [str(path) for path in files]
    for path in files:
        record = top[str(path)]
        assert record["original"]["sha256"] == sha256(path), path.name
        assert record["kind"] == "email", (path.name, record["metadata"].get("error"))
    # the only original not understood is an attachment that is itself a cut-off PNG
    unparsed = [r["source"]["key"].rsplit("/", 1)[1] for r in records if r["kind"] == "unparsed"]
    assert unparsed == ["mail_raw_email_with_nested_attachment.eml!part 1.2"]
    assert not any("parser stopped" in line for line in (ingest.case_dir / "custody.jsonl").read_text().splitlines())


def test_corpus_edge_cases_read_as_a_person_would(corpus, ingest):
    ingest.json("run", "--source", "eml", corpus / "email", "--json")
    by_name = {r["source"]["key"].rsplit("/", 1)[1]: r for r in ingest.json("list", "--json")}
    assert by_name["mimekit_iso-2022-jp.eml"]["subject"] == "日本語メールテスト (testing Japanese emails)"
    assert by_name["mail_ks_c_5601-1987.eml"]["text"] == "스티해"
    assert by_name["mail_utf8_headers.eml"]["from"] == ["jdöe@mächine.example"]
    assert by_name["mail_bad_encoded_subject.eml"]["subject"] == "TEST"          # =?NONE?B?...?=
    # Date says year 3609: the topmost Received header (the recipient's server) dates it instead
    bad_time = by_name["mail_raw_email_bad_time.eml"]
    assert (bad_time["occurred_at"], bad_time["occurred_at_source"]) == ("2008-06-30T02:34:00-07:00", "header:Received")
    assert by_name["mail_raw_email_with_bad_date.eml"]["metadata"]["date_header"] == "Pn, 29 paX 2007 21:13:00 +0100"
    assert by_name["mimekit_disposition-notification.eml"]["occurred_at"] == "1995-09-20T00:19:00-04:00"
    assert by_name["mail_raw_email_string_in_date_field.eml"]["occurred_at"] == "2008-09-20T20:04:30+03:00"
    assert by_name["mail_raw_email_multiple_from.eml"]["from"] == ["tim@powerupdev.com", "concierge@powerupdev.com"]
    assert by_name["mail_attachment_nonascii_filename.eml!part 2"]["original"]["filename"] == "ciële.txt"
    assert by_name["mimekit_stack-overflow_huge_to_header.eml"]["to"] == ["test@test.com"]
    assert sum(1 for name in by_name if name.startswith("pmmp_m0028!part ")) == 10
    assert by_name["mail_missing_body.eml"]["metadata"]["defects"] == [
        "MultipartInvariantViolationDefect", "StartBoundaryNotFoundDefect"]


@pytest.mark.parametrize("name, count", sorted(MBOX_MESSAGES.items()))
def test_every_corpus_mbox_is_kept_and_split_into_its_messages(corpus, ingest, name, count):
    path = corpus / "mbox" / name
    summary = ingest.json("run", "--source", "mbox", path, "--json")
    assert (summary["failed"], summary["unparsed"]) == (0, 0)
    records = ingest.json("list", "--json")
    [box] = [r for r in records if r["source"]["key"] == str(path)]
    assert box["original"]["sha256"] == sha256(path)
    assert box["metadata"]["messages"] == count
    messages = [r for r in records if r["kind"] == "email" and r["source"]["key"].count("!") == 1]
    assert len(messages) == count
    data = path.read_bytes()
    for record in messages:
        first, last = map(int, record["source"]["key"].rsplit("!bytes ", 1)[1].split("-"))
        assert record["original"]["sha256"] == hashlib.sha256(data[first:last + 1]).hexdigest()


def test_the_corpus_mbox_folder_in_one_run(corpus, ingest):
    files = sorted((corpus / "mbox").iterdir())
    assert sorted(path.name for path in files) == sorted(MBOX_MESSAGES)   # a new corpus file needs its count here
    summary = ingest.json("run", "--source", "mbox", corpus / "mbox", "--json")
    assert summary["failed"] == 0
    boxes = [r for r in ingest.json("list", "--json") if r["kind"] == "file"]
    assert {r["source"]["key"].rsplit("/", 1)[1]: r["metadata"]["messages"] for r in boxes} == MBOX_MESSAGES

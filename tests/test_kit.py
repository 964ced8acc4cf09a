"""The adapter kit: one day/month table for every parser, one way to date from a file's time,
flag DST doubts and place a date without a time, and one way to name what comes out of a zip."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, timezone

import pytest

from conftest import Ingest
from ingest.case import Case
from ingest.kit import dayorder
from ingest.kit.dating import container_time, date_by_file_time, date_only, date_whole_file, local_moment
from ingest.kit.localfiles import walk
from ingest.kit.zips import bomb_reason, leaf_name, safe_member_name, unique_names
from ingest.model.records import Record
from ingest.model.times import localize
from phone_helpers import by_locator


# --- day/month order ------------------------------------------------------------------------------
def _case(tmp_path, region: str, zone: str) -> Ingest:
    root = tmp_path / f"{region}-case"
    Case.init(root, name=region, timezone=zone, region=region, operator="Tester").close()
    return Ingest(root)


def _ambiguous_chat_and_call_log(tmp_path, ingest: Ingest) -> tuple[str, str]:
    """The same ambiguous day, 03/04/2024 10:00, as a WhatsApp line and as a call-log row."""
    chat = tmp_path / "WhatsApp Chat with Jo.txt"
    chat.write_text("03/04/2024, 10:00 - Jo: are you home\n", encoding="utf-8")
    log = tmp_path / "log.csv"
    log.write_text("Date,Number\n03/04/2024 10:00,(416) 555-0143\n", encoding="utf-8")
    for source, path in (("whatsapp", chat), ("calls", log)):
        result = ingest("run", "--source", source, path)
        assert result.exit_code == 0, result.output
    found = by_locator(ingest)
    chat_line = next(record for record in found.values() if record["kind"] == "whatsapp")
    return chat_line["occurred_at"], found["row 2"]["occurred_at"]


@pytest.mark.parametrize(("region", "zone", "expected"), [
    ("CA", "America/Toronto", "2024-03-04T10:00:00-05:00"),     # month first (CA is chosen so: see dayorder)
    ("BZ", "America/Belize", "2024-04-03T10:00:00-06:00"),      # day first, as CLDR's en_BZ writes
    ("GB", "Europe/London", "2024-04-03T10:00:00+01:00"),
])
def test_a_case_reads_an_ambiguous_chat_and_call_log_the_same_way(tmp_path, region, zone, expected):
    assert _ambiguous_chat_and_call_log(tmp_path, _case(tmp_path, region, zone)) == (expected, expected)


def test_the_region_table_takes_codes_in_any_case_and_none():
    assert dayorder.month_first("us") and dayorder.month_first(" PH ") and dayorder.month_first("CA")
    assert not dayorder.month_first("GB") and not dayorder.month_first("") and not dayorder.month_first(None)


# --- dating -----------------------------------------------------------------------------------------
def test_a_whole_file_is_dated_by_its_container_before_its_mtime():
    meta = {"mtime": "2024-03-01T21:41:05Z", "mtime_ns": 1709329265000000000}
    alone = Record(kind="file")
    date_whole_file(alone, meta)
    assert (alone.occurred_at, alone.occurred_at_source, alone.occurred_at_raw) == \
        (datetime(2024, 3, 1, 21, 41, 5, tzinfo=timezone.utc), "file:mtime", "1709329265000000000")
    inside = Record(kind="file")
    date_whole_file(inside, dict(meta, occurred_at="2024-02-29T08:00:00+00:00", occurred_at_source="mms:date",
                                 occurred_at_raw="1709193600000"))
    assert (inside.occurred_at.isoformat(), inside.occurred_at_source, inside.occurred_at_raw) == \
        ("2024-02-29T08:00:00+00:00", "mms:date", "1709193600000")
    assert container_time(meta) is None
    nothing = Record(kind="file")
    date_by_file_time(nothing, {})
    assert (nothing.occurred_at, nothing.occurred_at_source) == (None, None)


class _Ctx:
    def localize(self, naive):
        return localize(naive, "Europe/London")


def test_dst_doubts_are_flagged_and_plain_times_are_not():
    meta: dict = {}
    assert local_moment(datetime(2024, 10, 27, 1, 30), _Ctx(), meta).isoformat() == "2024-10-27T01:30:00+01:00"
    assert meta == {"dst_ambiguous": True}
    meta = {}
    local_moment(datetime(2024, 3, 31, 1, 30), _Ctx(), meta)
    assert meta == {"dst_nonexistent": True}
    meta = {}
    assert local_moment(datetime(2024, 7, 1, 12, 0), _Ctx(), meta).isoformat() == "2024-07-01T12:00:00+01:00"
    assert meta == {}


def test_a_date_without_a_time_is_marked_as_a_date():
    record = Record(kind="image")
    date_only(record, date(2024, 7, 1), "20240701", "iptc:DateCreated", _Ctx())
    assert (record.occurred_at.isoformat(), record.occurred_at_source, record.occurred_at_raw,
            record.timezone_assumed) == ("2024-07-01T00:00:00+01:00", "iptc:DateCreated", "20240701", True)
    assert record.metadata == {"date_only": True, "occurred_on": "2024-07-01"}


def test_a_call_log_row_with_a_day_and_no_time_is_a_date(tmp_path, ingest):
    log = tmp_path / "log.csv"
    log.write_text("Date,Number\n13/04/2024,07700900123\n14/04/2024 09:30,07700900123\n14 Apr 2024,07700900123\n",
                   encoding="utf-8")
    assert ingest("run", "--source", "calls", log).exit_code == 0
    found = by_locator(ingest)
    day, timed, named = found["row 2"], found["row 3"], found["row 4"]
    assert (day["occurred_at"], day["occurred_at_raw"], day["metadata"]["date_only"], day["metadata"]["occurred_on"]) \
        == ("2024-04-13T00:00:00+01:00", "13/04/2024", True, "2024-04-13")
    assert named["metadata"]["occurred_on"] == "2024-04-14" and named["metadata"]["date_only"] is True
    assert timed["occurred_at"] == "2024-04-14T09:30:00+01:00" and "date_only" not in timed["metadata"]


# --- zips and names ------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "name"), [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\x\\photo.jpg", "photo.jpg"), ("a\x00b.jpg ", "ab.jpg"),
    ("/", None), ("", None), (None, None),
])
def test_an_attachment_name_is_only_ever_a_name(raw, name):
    assert leaf_name(raw) == name


def test_zip_member_names_never_leave_the_zip_and_never_collide():
    assert safe_member_name("../../x/../a.jpg") == "x/a.jpg"
    assert safe_member_name("C:/evil/\x01a.jpg") == "evil/a.jpg"
    assert safe_member_name("/..") == "unnamed"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../a.jpg", b"1")
        archive.writestr("a.jpg", b"2")
    named = unique_names(zipfile.ZipFile(buffer).infolist())
    assert {name: info.filename for name, info in named.items()} == {"a.jpg": "../a.jpg", "a (2).jpg": "a.jpg"}


def test_a_zip_bomb_is_named_by_its_declared_sizes():
    info = zipfile.ZipInfo("big.bin")
    info.file_size, info.compress_size = 200 << 20, 1 << 20
    assert bomb_reason(info) == ("it would expand 200 times (1048576 to 209715200 bytes), the mark of a zip bomb")
    info.file_size = 2 << 20
    assert bomb_reason(info) is None


# --- local files -----------------------------------------------------------------------------------
def test_walking_never_enters_the_folder_to_skip(tmp_path):
    (tmp_path / "case" / "objects").mkdir(parents=True)
    (tmp_path / "case" / "objects" / "held").write_bytes(b"x")
    (tmp_path / "b.txt").write_bytes(b"b")
    (tmp_path / "a.txt").write_bytes(b"a")
    assert [path.rsplit("/", 1)[-1] for path in walk([tmp_path], skip=(tmp_path / "case",))] == ["a.txt", "b.txt"]


# --- the binary gate before text sniffers ---------------------------------------------------------
def test_only_plainly_binary_bytes_skip_the_text_sniffers():
    import random

    from ingest.kit.adapter import plainly_binary
    from ingest.kit.registry import sniff

    noise = random.Random(7).randbytes(8192)
    chat = "12/03/2024, 21:04 - Sam: are you home?\n".encode() * 40
    assert plainly_binary(noise)
    assert not plainly_binary(chat)
    assert not plainly_binary(chat[:100] + b"\x00" + chat[101:])          # one damaged byte is still text
    assert not plainly_binary(chat.decode().encode("utf-16-le"))         # UTF-16 without its mark
    assert not plainly_binary("\ufeff12/03/2024".encode("utf-16"))
    assert sniff(noise, "f.bin").name == "file"
    assert sniff(chat[:100] + b"\x00" + chat[101:], "chat.txt").name == "whatsapp"
    calls = b"Date,Number,Type,Duration\n2024-03-12 21:04,+447700900123,incoming,65\n"
    assert sniff(calls + b"\x00\n", "calls.csv").name == "calls"


def test_media_types_skip_only_the_signature_searches_that_cannot_match():
    """filetype's own answer for every head, whether or not it begins with a zip header or EBML,
    including the Office, OpenDocument, Matroska and WebM files those searches find."""
    import io
    import random
    import zipfile

    import filetype
    from ingest import media

    rng = random.Random(11)
    heads = [bytes(rng.getrandbits(8) for _ in range(rng.choice((3, 100, 9000)))) for _ in range(200)]
    for member, text in (("word/document.xml", b"<w/>"), ("xl/workbook.xml", b"<x/>"), ("ppt/slides/1.xml", b"<p/>")):
        docx = io.BytesIO()
        with zipfile.ZipFile(docx, "w") as archive:
            archive.writestr("[Content_Types].xml", b"<Types/>")
            archive.writestr(member, text)
        heads.append(docx.getvalue())
    for kind in ("text", "spreadsheet", "presentation"):
        odf = io.BytesIO()
        with zipfile.ZipFile(odf, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("mimetype", f"application/vnd.oasis.opendocument.{kind}")
        heads.append(odf.getvalue())
    heads += [b"\x1a\x45\xdf\xa3" + bytes(20) + b"\x42\x82\x88matroska", b"\x1a\x45\xdf\xa3\x42\x82\x84webm",
              b"PK\x03\x04" + bytes(40), b"\x1a\x45\xdf\xa3", b"\x89PNG\r\n\x1a\n" + bytes(30), b"hello\n"]
    heads += [start + head for head in heads[:50] for start in (b"PK\x03\x04", b"\x1a\x45\xdf\xa3")]
    answers = [media._signature(head) for head in heads]
    assert answers == [filetype.guess_mime(head) for head in heads]
    assert {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "video/x-matroska",
            "video/webm", "application/vnd.oasis.opendocument.text", "image/png"} <= set(answers)

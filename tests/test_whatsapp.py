"""WhatsApp chat exports: the line grammar (exact times per format), then whole exports
through `ingest run --source whatsapp`, then bad input, each case on its own."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from adapters.whatsapp._chat import read_lines
from adapters.whatsapp._dates import DateOrder, decide_order, read_clock, read_date
from adapters.whatsapp._grammar import match_header
from adapters.whatsapp.parser import WhatsAppParser
from ingest.kit.zips import safe_member_name

# A 1x1 PNG, small enough to write inline.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5d5bd9e0000000049454e44ae426082")


def header_time(line: str, order: str = "dmy") -> tuple[str, datetime]:
    platform, _stamp, date, time, _rest = match_header(line)
    year, month, day, _against = read_date(date, DateOrder(order=order))
    hour, minute, second, _contradiction = read_clock(time)
    return platform, datetime(year, month, day, hour, minute, second)


# --- the line grammar -------------------------------------------------------------------------
@pytest.mark.parametrize("line, order, platform, expected", [
    ("18/03/2022, 15:10 - Dmitry S: Hello", "dmy", "android", "2022-03-18T15:10:00"),
    ("18.03.22 15:10 - Dmitry S: <Média vynechány>", "dmy", "android", "2022-03-18T15:10:00"),
    ("18-03-2022 15:10 - Dmitry S: <Media weggelaten>", "dmy", "android", "2022-03-18T15:10:00"),
    ("18.03.2022, 15:10 - Dmitry S: hi", "dmy", "android", "2022-03-18T15:10:00"),
    ("06-08-2016, 01:23:10 PM - Ash Ketchum: Hey guys!", "dmy", "android", "2016-08-06T13:23:10"),
    ("1/17/20, 20:49 - Jahn Doe: Lorem", "mdy", "android", "2020-01-17T20:49:00"),
    ("01/30/2019, 08:49 p. m. - Jahn Doe: x", "mdy", "android", "2019-01-30T20:49:00"),
    ("06/20/2020, 00:08 a. m. - +12 345 578 created group", "mdy", "android", "2020-06-20T00:08:00"),
    ("09/10/22, 10:37 p.\u00a0m. - John Doe: x", "dmy", "android", "2022-10-09T22:37:00"),
    ("9/24/2019 11:30 p.m. - John Doe: x", "mdy", "android", "2019-09-24T23:30:00"),
    ("2022/12/24, 11:35. - John-John Doe: x", "dmy", "android", "2022-12-24T11:35:00"),
    ("2016-08-06, 1:23 p.m. - Ash Ketchum: x", "dmy", "android", "2016-08-06T13:23:00"),
    ("3/27/24, 9:41\u202fPM - Jo: narrow no-break space", "mdy", "android", "2024-03-27T21:41:00"),
    ("12/03/2024, 12:05\u202fam - Jo: just after midnight", "dmy", "android", "2024-03-12T00:05:00"),
    ("3/27/24, 12:00 a.m. - Jo: midnight", "mdy", "android", "2024-03-27T00:00:00"),
    ("3/27/24, 12:30 pm - Jo: lunch", "mdy", "android", "2024-03-27T12:30:00"),
    ("2022. 03. 18. 15:10 - Jo: Hungarian", "dmy", "android", "2022-03-18T15:10:00"),
    ("2024/03/01 午後3:04 - Jo: Japanese clock", "dmy", "android", "2024-03-01T15:04:00"),
    ("18.3.2022 klo 15.10 - Jo: Finnish", "dmy", "android", "2022-03-18T15:10:00"),
    ("[2016/08/06 13:23] Ash Ketchum: Hey guys!", "dmy", "ios", "2016-08-06T13:23:00"),
    ("[10.23.21, 15:21:47] John-John Doe: x", "mdy", "ios", "2021-10-23T15:21:47"),
    ("[11/10/22 13:37:00 p.m.] John-John Doe: x", "dmy", "ios", "2022-10-11T13:37:00"),
    ("[15-01-20 04:18:42] +1 123 456 789: x", "dmy", "ios", "2020-01-15T04:18:42"),
    ("\u200e[3/27/22, 21:41:55] Dmitry S: \u200e<attached: 00000035-PHOTO-2022-03-27-21-41-55.jpg>", "mdy", "ios",
     "2022-03-27T21:41:55"),
    ("[\u200f18\u200f/3\u200f/2022\u060c 14:56:01] Elon Musk: \u200fArabic", "dmy", "ios", "2022-03-18T14:56:01"),
    ("[3/18/2565 BE, 14:56:01] Elon Musk: Buddhist calendar", "mdy", "ios", "2022-03-18T14:56:01"),
    ("[3/27/R4, 21:41:35] Dmitry S: Japanese imperial calendar", "mdy", "ios", "2022-03-27T21:41:35"),
    ("[14:56:01, 3/18/22] Musk Elon: Vietnamese, time first", "mdy", "ios", "2022-03-18T14:56:01"),
    ("[27/03/2024, 9:41:05\u202fPM] Jo: iOS 17", "dmy", "ios", "2024-03-27T21:41:05"),
    ("[20.06.19, 15:58:47] Loris created group \u201cX\u201d", "dmy", "ios", "2019-06-20T15:58:47"),
])
def test_header_formats_give_exact_times(line, order, platform, expected):
    assert header_time(line, order) == (platform, datetime.fromisoformat(expected))


@pytest.mark.parametrize("line", [
    "", "Hello at 12:00", "consectetur adipiscing elit.", "12/03/2022 is when it started",
    "https://maps.google.com/?q=51.5,-0.12", "[INFO] started", "18/03/2022, 15:10 Dmitry: no dash",
])
def test_continuation_lines_are_not_headers(line):
    assert match_header(line) is None


def test_a_clock_past_twelve_with_pm_is_read_as_written():
    assert read_clock("13:37:00 p.m.") == (13, 37, 0, False)
    assert read_clock("13:37 a.m.") == (13, 37, 0, True)


@pytest.mark.parametrize("dates, region, order, reason", [
    ({"13/01/2024", "01/02/2024"}, "GB", "dmy", "a day above 12 settles it"),
    ({"01/13/2024", "01/02/2024"}, "GB", "mdy", "a day above 12 settles it"),
    ({"01/02/2024", "03/04/2024"}, "GB", "dmy", "no day above 12, so the case region GB decides"),
    ({"01/02/2024", "03/04/2024"}, "US", "mdy", "no day above 12, so the case region US decides"),
    ({"2024/01/02"}, "US", "ymd", "they are written year first"),
])
def test_day_month_order_is_decided_from_the_whole_file(dates, region, order, reason):
    decision = decide_order(dates, region)
    assert (decision.order, decision.reason) == (order, reason)


def test_zip_member_names_are_made_safe():
    assert safe_member_name("../../etc/passwd") == "etc/passwd"
    assert safe_member_name("/abs/path/x.jpg") == "abs/path/x.jpg"
    assert safe_member_name("C:\\Users\\x\\..\\y.jpg") == "Users/x/y.jpg"
    assert safe_member_name("ok/\x00evil\x1b.jpg") == "ok/evil.jpg"
    assert safe_member_name("..") == "unnamed"


@pytest.mark.parametrize("head, filename, expected", [
    (b"18/03/2022, 15:10 - Dmitry S: Hello\n18/03/2022, 15:11 - Elon: Hi\n", "chat.txt", True),
    (b"\xef\xbb\xbf[3/27/22, 21:41:35] Dmitry S: Hello World\r\n", "_chat.txt", True),
    (b"Dear Sam,\n18/03/2022, 15:10 - this line is not first\n", "letter.txt", False),
    (b"[2022-03-18 15:10:00] INFO: started\n[2022-03-18 15:10:01] INFO: ready\n", "app.log", False),
    (b"date,number\n2022-03-18,+447700900123\n", "calls.csv", False),
])
def test_sniff_recognises_exports_and_nothing_else(head, filename, expected):
    assert WhatsAppParser().sniff(head, filename) is expected


def test_sniff_recognises_an_export_zip_by_its_chat_member():
    data = make_zip({"_chat.txt": "[3/27/22, 21:41:35] Jo: hi\r\n", "00000001-PHOTO-2022-03-27-21-41-35.png": PNG})
    assert WhatsAppParser().sniff(data[:8192], "export.zip") is True
    other = make_zip({"holiday.jpg": PNG})
    assert WhatsAppParser().sniff(other[:8192], "photos.zip") is False


def test_mixed_line_endings_count_as_lines(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_bytes(b"a\r\nb\nc\rd\r\n\ne")
    assert [line for line, _cut in read_lines(lambda: open(path, "rb"))] == ["a", "b", "c", "d", "", "e"]


# --- whole exports through the CLI ------------------------------------------------------------
ANDROID_CHAT = """\
01/06/2024, 09:00 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.
01/06/2024, 09:01 - Sam Taylor: Hi Alex, it's Sam. Can we talk?
01/06/2024, 09:01 - Alex Morgan: Please stop messaging me.
01/06/2024, 22:14 - +44 7700 900123: I know where you were tonight.
I saw you at the station.

Answer me.
02/06/2024, 07:30 - +44 7700 900123: <Media omitted>
02/06/2024, 07:31 - +44 7700 900123: This message was deleted
02/06/2024, 07:32 - Sam Taylor: You can't ignore me <This message was edited>
13/06/2024, 23:59 - Sam Taylor changed their phone number to a new number. Tap to message or add the new number.
13/06/2024, 23:59 - Sam Taylor: ok
13/06/2024, 23:59 - Sam Taylor: ok
"""


def run_json(ingest, *paths, source="whatsapp"):
    result = ingest("run", "--source", source, *paths, "--json")
    return result, json.loads(result.stdout)


def records_of(ingest) -> list[dict]:
    return ingest.json("list", "--json")


def by_locator(records: list[dict]) -> dict[str, dict]:
    return {record["source"]["locator"]: record for record in records if record["kind"] == "whatsapp"}


def test_android_export_end_to_end(ingest, tmp_path):
    path = tmp_path / "WhatsApp Chat with Sam Taylor.txt"
    path.write_text(ANDROID_CHAT, encoding="utf-8")
    result, summary = run_json(ingest, path)
    assert result.exit_code == 0, result.output
    assert (summary["new"], summary["records"], summary["unparsed"]) == (1, 11, 0)
    assert "WhatsApp Chat with Sam Taylor.txt: dates read as day/month (a day above 12 settles it)." \
        in summary["notes"]
    records = by_locator(records_of(ingest))
    assert sorted(records) == ["line 1", "line 10", "line 11", "line 12", "line 13", "line 2", "line 3",
                               "line 4-7", "line 8", "line 9"]
    notice = records["line 1"]
    assert notice["metadata"] == {"event": "encryption_notice", "system": True}
    assert notice["from"] == []
    threat = records["line 4-7"]
    assert threat["text"] == "I know where you were tonight.\nI saw you at the station.\n\nAnswer me."
    assert threat["from"] == ["+447700900123"]
    assert threat["metadata"] == {"sender": "+44 7700 900123", "sender_e164": "+447700900123"}
    assert threat["occurred_at"] == "2024-06-01T22:14:00+01:00"
    assert threat["occurred_at_raw"] == "01/06/2024, 22:14"
    assert threat["occurred_at_source"] == "whatsapp:line"
    assert threat["timezone_assumed"] is True
    assert records["line 8"]["metadata"]["media_omitted"] is True
    assert records["line 9"]["metadata"]["deleted"] is True
    assert records["line 10"]["metadata"]["edited"] is True
    assert records["line 11"]["metadata"] == {"event": "number_changed", "system": True}
    assert records["line 2"]["from"] == ["Sam Taylor"]
    # Two identical messages in the same minute are two messages.
    assert records["line 12"]["text"] == records["line 13"]["text"] == "ok"
    own = [record for record in records_of(ingest) if record["source"]["locator"] is None][0]
    assert own["kind"] == "file"
    assert own["subject"] == "WhatsApp chat: sam taylor"
    assert {key: own["metadata"][key] for key in ("messages", "system_messages", "lines", "media_omitted",
                                                  "date_order")} == {
        "messages": 8, "system_messages": 2, "lines": 13, "media_omitted": 1, "date_order": "day/month"}


def test_dst_ambiguous_and_nonexistent_times_are_flagged(ingest, tmp_path):
    path = tmp_path / "WhatsApp Chat with Jo.txt"
    path.write_text("29/10/2023, 01:30 - Jo: the clocks went back\n31/03/2024, 01:30 - Jo: and forward\n",
                    encoding="utf-8")
    result, _summary = run_json(ingest, path)
    records = by_locator(records_of(ingest))
    assert records["line 1"]["metadata"]["dst_ambiguous"] is True
    assert records["line 1"]["occurred_at"] == "2023-10-29T01:30:00+01:00"
    assert records["line 2"]["metadata"]["dst_nonexistent"] is True


def make_zip(members: dict[str, bytes | str], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, (2024, 6, 1, 12, 0, 0)),
                             data.encode() if isinstance(data, str) else data, compress_type=compression)
    return buffer.getvalue()


IOS_CHAT = ("[01/06/2024, 21:40:05] Sam Taylor: \u200eMessages and calls are end-to-end encrypted. No one outside of "
            "this chat, not even WhatsApp, can read or listen to them.\r\n"
            "[01/06/2024, 21:41:05] Sam Taylor: Look what I took\r\n"
            "\u200e[01/06/2024, 21:41:30] Sam Taylor: \u200e<attached: 00000002-PHOTO-2024-06-01-21-41-30.png>\r\n"
            "[13/06/2024, 08:00:00] Alex Morgan: Leave me alone\r\n")


def test_ios_zip_links_media_to_its_message(ingest, tmp_path):
    path = tmp_path / "WhatsApp Chat - Sam Taylor.zip"
    path.write_bytes(make_zip({"_chat.txt": IOS_CHAT, "00000002-PHOTO-2024-06-01-21-41-30.png": PNG}))
    result, summary = run_json(ingest, path)
    assert result.exit_code == 0, result.output
    assert summary["new"] == 2
    records = records_of(ingest)
    messages = by_locator(records)
    assert sorted(messages) == ["_chat.txt line 1", "_chat.txt line 2", "_chat.txt line 3", "_chat.txt line 4"]
    photo_message = messages["_chat.txt line 3"]
    assert photo_message["metadata"]["attachment"] == "00000002-PHOTO-2024-06-01-21-41-30.png"
    assert photo_message["occurred_at"] == "2024-06-01T21:41:30+01:00"
    photo = [record for record in records if record["original"]["filename"] == "00000002-PHOTO-2024-06-01-21-41-30.png"]
    assert len(photo) == 1
    assert photo[0]["parent"] == photo_message["id"]
    assert photo[0]["original"]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert photo[0]["occurred_at"] == "2024-06-01T21:41:30+01:00"
    assert photo[0]["source"]["key"].endswith("WhatsApp Chat - Sam Taylor.zip!00000002-PHOTO-2024-06-01-21-41-30.png")


def test_android_zip_with_file_attached_member(ingest, tmp_path):
    chat = ("01/06/2024, 21:41 - Sam Taylor: \u200eIMG-20240601-WA0003.png (file attached)\nlook at this\n"
            "01/06/2024, 21:42 - Sam Taylor: VID-20240601-WA0004.mp4 (file attached)\n")
    path = tmp_path / "WhatsApp Chat with Sam Taylor.zip"
    path.write_bytes(make_zip({"WhatsApp Chat with Sam Taylor.txt": chat, "IMG-20240601-WA0003.png": PNG}))
    result, _summary = run_json(ingest, path)
    records = records_of(ingest)
    messages = by_locator(records)
    first = messages["WhatsApp Chat with Sam Taylor.txt line 1-2"]
    assert first["metadata"]["attachment"] == "IMG-20240601-WA0003.png"
    assert first["text"] == "IMG-20240601-WA0003.png (file attached)\nlook at this"
    # Named in the chat but not in the zip: said, not hidden.
    assert messages["WhatsApp Chat with Sam Taylor.txt line 3"]["metadata"]["attachment_missing"] is True
    image = [record for record in records if record["original"]["filename"] == "IMG-20240601-WA0003.png"][0]
    assert image["parent"] == first["id"]


def test_overlapping_export_adds_only_new_messages(ingest, tmp_path):
    first = tmp_path / "june" / "WhatsApp Chat with Sam Taylor.txt"
    later = tmp_path / "july" / "WhatsApp Chat with Sam Taylor.txt"
    first.parent.mkdir()
    later.parent.mkdir()
    first.write_text(ANDROID_CHAT, encoding="utf-8")
    newer = ANDROID_CHAT + "13/06/2024, 23:59 - Sam Taylor: ok\n02/07/2024, 10:00 - Sam Taylor: Still here.\n"
    # WhatsApp leaves the oldest messages out of a later export; that must not matter.
    later.write_text(newer.split("\n", 1)[1], encoding="utf-8")
    _result, summary = run_json(ingest, first)
    assert summary["records"] == 11
    _result, summary = run_json(ingest, later)
    assert (summary["new"], summary["records"], summary["duplicates"]) == (1, 3, 9)
    texts = [record["text"] for record in records_of(ingest) if record["kind"] == "whatsapp"]
    assert texts.count("ok") == 3
    assert texts.count("Still here.") == 1


def test_renamed_copy_of_an_export_is_kept_again_not_lost(ingest, tmp_path):
    one = tmp_path / "WhatsApp Chat with Sam Taylor.txt"
    copy = tmp_path / "WhatsApp Chat with Sam Taylor (1).txt"
    other = tmp_path / "WhatsApp Chat with Kim.txt"
    one.write_text(ANDROID_CHAT, encoding="utf-8")
    copy.write_text(ANDROID_CHAT + "14/06/2024, 08:00 - Sam Taylor: new\n", encoding="utf-8")
    other.write_text(ANDROID_CHAT + "14/06/2024, 09:00 - Kim: hello\n", encoding="utf-8")
    _result, summary = run_json(ingest, one, copy, other)
    # The (1) copy is the same chat: one new message. Another chat with the same lines is a chat of its own.
    assert summary["duplicates"] == 10
    assert summary["records"] == 11 + 2 + 12


# --- bad input, each on its own -----------------------------------------------------------------
def test_zip_member_with_absolute_path_or_dot_dot_stays_inside_the_case(ingest, tmp_path, case_dir):
    evil = {"_chat.txt": "[01/06/2024, 21:41:05] Sam: see\r\n",
            "../../escaped.png": PNG, "/tmp/absolute-escape.png": PNG + b"2", "escaped.png": PNG + b"3"}
    path = tmp_path / "export" / "WhatsApp Chat - Sam.zip"
    path.parent.mkdir()
    path.write_bytes(make_zip(evil))
    result, summary = run_json(ingest, path)
    assert result.exit_code == 0, result.output
    assert "the zip member '../../escaped.png' has a path that points outside the zip; it is named 'escaped.png' " \
           "and nothing is written outside the case" in result.stderr
    assert "'/tmp/absolute-escape.png'" in result.stderr
    keys = sorted(record["source"]["key"].split("!")[-1] for record in records_of(ingest)
                  if record["kind"] == "attachment" or record["kind"] == "image")
    assert keys == ["escaped (2).png", "escaped.png", "tmp/absolute-escape.png"]
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path.parent / "escaped.png").exists()
    assert not Path("/tmp/absolute-escape.png").exists()
    inside = {str(p.relative_to(case_dir)) for p in case_dir.rglob("*")}
    assert not any("escaped" in name for name in inside)


def test_zip_bomb_is_refused_and_the_original_kept(ingest, tmp_path, case_dir):
    zeros = bytes(64 << 20)      # 64 MiB of zeros deflate to about 64 KB: a thousandfold expansion
    path = tmp_path / "WhatsApp Chat - Bomb.zip"
    path.write_bytes(make_zip({"_chat.txt": "[01/06/2024, 21:41:05] Sam: open this\r\n",
                               "00000002-DOCUMENT-bomb.bin": zeros}))
    del zeros
    result, summary = run_json(ingest, path)
    assert result.exit_code == 0, result.output
    assert summary["new"] == 1           # the export itself; the bomb was not unpacked
    assert "00000002-DOCUMENT-bomb.bin was not unpacked: it would expand" in result.stderr
    assert "the mark of a zip bomb" in result.stderr
    records = records_of(ingest)
    own = [record for record in records if record["source"]["locator"] is None]
    assert len(own) == 1
    assert own[0]["original"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert own[0]["metadata"]["zip_members_not_unpacked"] == ["00000002-DOCUMENT-bomb.bin"]
    stored = case_dir / "objects" / own[0]["original"]["blake3"][:2] / own[0]["original"]["blake3"]
    assert stored.read_bytes() == path.read_bytes()


def test_zip_with_no_chat_text_is_kept_unparsed(ingest, tmp_path):
    path = tmp_path / "WhatsApp Chat - Photos.zip"
    path.write_bytes(make_zip({"IMG-20240601-WA0003.png": PNG, "notes.md": "# not a chat\n"}))
    result, summary = run_json(ingest, path)
    assert (summary["new"], summary["unparsed"], summary["records"]) == (1, 1, 1)
    record = records_of(ingest)[0]
    assert record["kind"] == "unparsed"
    assert record["metadata"]["error"] == (
        "this zip holds no WhatsApp chat text (no _chat.txt or 'WhatsApp Chat … .txt'); it is kept exactly as it is. "
        "Check it is the zip WhatsApp's 'Export chat' made.")


def test_text_that_is_not_an_export_is_kept_unparsed_with_a_reason(ingest, tmp_path):
    path = tmp_path / "letter.txt"
    path.write_text("Dear Sam,\nPlease stop contacting me.\nAlex\n", encoding="utf-8")
    result, summary = run_json(ingest, path)
    assert (summary["new"], summary["unparsed"]) == (1, 1)
    record = records_of(ingest)[0]
    assert record["kind"] == "unparsed"
    assert record["metadata"]["error"].startswith(
        "this is not a WhatsApp chat export: no line starts with a date and time the way WhatsApp writes them")


def test_text_that_is_not_an_export_is_not_sniffed_as_one(ingest, tmp_path):
    path = tmp_path / "letter.txt"
    path.write_text("Dear Sam,\n18/03/2022, 15:10 - a date in a letter\n", encoding="utf-8")
    _result, summary = run_json(ingest, path, source="files")
    record = records_of(ingest)[0]
    assert (record["kind"], record["source"]["parser"]) == ("file", "file 1")


def test_mixed_line_endings_in_an_export(ingest, tmp_path):
    path = tmp_path / "WhatsApp Chat with Sam.txt"
    path.write_bytes(b"13/06/2024, 10:00 - Sam: one\r\nstill one\n13/06/2024, 10:01 - Sam: two\r"
                     b"13/06/2024, 10:02 - Sam: three\r\n\r\n13/06/2024, 10:03 - Sam: four")
    _result, summary = run_json(ingest, path)
    records = by_locator(records_of(ingest))
    assert {locator: record["text"] for locator, record in records.items()} == {
        "line 1-2": "one\nstill one", "line 3": "two", "line 4-5": "three", "line 6": "four"}


def test_truncated_zip_keeps_the_chat_text_that_is_there(ingest, tmp_path):
    whole = make_zip({"_chat.txt": IOS_CHAT, "00000002-PHOTO-2024-06-01-21-41-30.png": PNG})
    path = tmp_path / "WhatsApp Chat - Sam Taylor.zip"
    path.write_bytes(whole[:len(whole) - 60])       # the directory at the end is gone
    result, summary = run_json(ingest, path)
    assert (summary["new"], summary["unparsed"], summary["records"]) == (1, 0, 5)
    assert ("this zip is damaged or incomplete (File is not a zip file), perhaps cut short while copying. The chat "
            "text was read from the part that is there; no media could be unpacked.") in result.stderr
    records = records_of(ingest)
    assert sorted(by_locator(records)) == ["_chat.txt line 1", "_chat.txt line 2", "_chat.txt line 3",
                                           "_chat.txt line 4"]
    own = [record for record in records if record["source"]["locator"] is None][0]
    assert own["metadata"]["zip_incomplete"] is True
    assert own["original"]["size"] == len(whole) - 60


def test_zip_cut_inside_the_chat_text_keeps_the_messages_before_the_cut(ingest, tmp_path):
    chat = "".join(f"[01/06/2024, 21:{minute % 60:02d}:05] Sam: message {minute} " + "x" * 40 + "\r\n"
                   for minute in range(3000))
    whole = make_zip({"_chat.txt": chat}, compression=zipfile.ZIP_STORED)
    path = tmp_path / "WhatsApp Chat - Sam.zip"
    # Stored, not compressed: cut 45 bytes into line 1531, after its date, time and sender.
    line_1531 = chat.encode().index(b"\r\n[01/06/2024, 21:30:05] Sam: message 1530 ") + 2
    path.write_bytes(whole[:30 + len("_chat.txt") + line_1531 + 45])
    result, summary = run_json(ingest, path)
    messages = by_locator(records_of(ingest))
    assert summary["unparsed"] == 0
    assert len(messages) == 1531
    assert messages["_chat.txt line 1530"]["text"] == "message 1529 " + "x" * 40
    last = messages["_chat.txt line 1531"]
    assert (last["text"], last["metadata"]["text_cut"]) == ("message 1530 " + "x" * 4, True)
    assert "reading the chat text stopped after line 1531: _chat.txt ends early: the zip was cut short." \
           in result.stderr


def test_truncated_zip_with_nothing_readable_is_kept_unparsed(ingest, tmp_path):
    whole = make_zip({"_chat.txt": IOS_CHAT})
    path = tmp_path / "WhatsApp Chat - Sam Taylor.zip"
    path.write_bytes(whole[:20])
    result, summary = run_json(ingest, path)
    assert (summary["new"], summary["unparsed"]) == (1, 1)
    record = records_of(ingest)[0]
    assert record["kind"] == "unparsed"
    assert record["metadata"]["error"] == (
        "this zip is damaged or incomplete (File is not a zip file), perhaps cut short while copying; it is kept "
        "exactly as it is. Export the chat again to get a complete copy.")
    assert record["original"]["size"] == 20


def test_an_over_long_line_is_cut_not_held_whole(ingest, tmp_path):
    path = tmp_path / "WhatsApp Chat with Sam.txt"
    path.write_bytes(b"13/06/2024, 10:00 - Sam: " + b"x" * (3 << 20) + b"\n13/06/2024, 10:01 - Sam: after\n")
    _result, summary = run_json(ingest, path)
    records = by_locator(records_of(ingest))
    assert records["line 1"]["metadata"]["text_cut"] is True
    assert len(records["line 1"]["text"]) < (1 << 20)
    assert records["line 2"]["text"] == "after"


def test_a_picture_beside_an_unzipped_chat_is_read_as_a_picture(ingest, tmp_path):
    folder = tmp_path / "WhatsApp Chat with Sam Taylor"
    folder.mkdir()
    (folder / "WhatsApp Chat with Sam Taylor.txt").write_text(
        "01/06/2024, 21:41 - Sam Taylor: IMG-20240601-WA0003.png (file attached)\n", encoding="utf-8")
    (folder / "IMG-20240601-WA0003.png").write_bytes(PNG)
    result, summary = run_json(ingest, folder)
    assert (summary["new"], summary["unparsed"]) == (2, 0)
    picture = [record for record in records_of(ingest) if record["original"]["filename"] == "IMG-20240601-WA0003.png"]
    assert [record["kind"] for record in picture] == ["image"]
    assert ("Files given as WhatsApp that are not chat text (pictures, videos) were read as what they are."
            in summary["notes"])


def test_a_damaged_media_member_is_said_and_the_rest_kept(ingest, tmp_path):
    whole = bytearray(make_zip({"_chat.txt": IOS_CHAT, "00000002-PHOTO-2024-06-01-21-41-30.png": PNG},
                               compression=zipfile.ZIP_STORED))
    at = bytes(whole).index(PNG) + 20
    whole[at] ^= 0xFF                      # one flipped byte: the member fails its checksum
    path = tmp_path / "WhatsApp Chat - Sam Taylor.zip"
    path.write_bytes(bytes(whole))
    result, summary = run_json(ingest, path)
    assert result.exit_code == 0, result.output
    assert (summary["new"], summary["unparsed"], summary["records"]) == (1, 0, 5)
    assert ("00000002-PHOTO-2024-06-01-21-41-30.png: could not be extracted (the zip member "
            "00000002-PHOTO-2024-06-01-21-41-30.png is damaged (Bad CRC-32 for file "
            "'00000002-PHOTO-2024-06-01-21-41-30.png'))") in result.stderr


def test_media_of_a_chat_exported_again_joins_the_message_already_held(ingest, tmp_path):
    without = tmp_path / "first" / "WhatsApp Chat - Sam Taylor.zip"
    with_media = tmp_path / "later" / "WhatsApp Chat - Sam Taylor.zip"
    without.parent.mkdir()
    with_media.parent.mkdir()
    without.write_bytes(make_zip({"_chat.txt": IOS_CHAT}))
    with_media.write_bytes(make_zip({"_chat.txt": IOS_CHAT, "00000002-PHOTO-2024-06-01-21-41-30.png": PNG}))
    run_json(ingest, without)
    held = by_locator(records_of(ingest))["_chat.txt line 3"]
    _result, summary = run_json(ingest, with_media)
    assert (summary["new"], summary["duplicates"]) == (2, 4)
    photo = [record for record in records_of(ingest)
             if record["original"]["filename"] == "00000002-PHOTO-2024-06-01-21-41-30.png"]
    assert [record["parent"] for record in photo] == [held["id"]]


def test_a_utf16_export_is_read_like_any_other(ingest, tmp_path):
    path = tmp_path / "WhatsApp Chat with Sam Taylor.txt"
    path.write_bytes(ANDROID_CHAT.encode("utf-16"))
    assert WhatsAppParser().sniff(path.read_bytes()[:8192], path.name) is True
    _result, summary = run_json(ingest, path)
    assert (summary["records"], summary["unparsed"]) == (11, 0)
    assert by_locator(records_of(ingest))["line 4-7"]["text"].startswith("I know where you were tonight.")


def test_a_chat_text_that_is_a_zip_bomb_is_not_unpacked(ingest, tmp_path):
    path = tmp_path / "WhatsApp Chat - Sam.zip"
    path.write_bytes(make_zip({"_chat.txt": "[01/06/2024, 21:41:05] Sam: a\r\n" * (1 << 20)}))   # 31 MiB
    result, summary = run_json(ingest, path)
    assert (summary["new"], summary["unparsed"], summary["records"]) == (1, 1, 1)
    record = records_of(ingest)[0]
    assert record["kind"] == "unparsed"
    assert record["metadata"]["error"].startswith("the chat text _chat.txt was not unpacked: it would expand ")
    assert record["metadata"]["error"].endswith("the mark of a zip bomb. The zip is kept exactly as it is.")


def test_a_png_given_as_whatsapp_names_both_parsers_and_reparses_as_an_image(ingest, tmp_path):
    path = tmp_path / "IMG-20240601-WA0003.png"
    path.write_bytes(PNG)
    _result, summary = run_json(ingest, path)
    (record,) = records_of(ingest)
    assert (summary["new"], summary["unparsed"], record["kind"]) == (1, 0, "image")
    assert record["source"]["parser"] == "whatsapp 1 > image 1"
    log = [json.loads(line) for line in (ingest.case_dir / "custody.jsonl").read_text().splitlines()]
    assert [entry["detail"]["parser"] for entry in log if entry["action"] == "acquire"] == ["whatsapp 1 > image 1"]
    # the original is held as read by the image parser: a reparse sends it there, not to WhatsApp
    reparse = ingest.json("reparse", "--json")
    assert (reparse["already_held"], reparse["records"]) == (1, 0)

"""Every real WhatsApp export in the corpus: parsed, and no line dropped or read twice."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from adapters.files import FilesSource
from adapters.whatsapp._chat import read_lines
from adapters.whatsapp.parser import WhatsAppParser
from ingest import pipeline
from ingest.case import Case

LOCATOR = re.compile(r"(?:(?P<member>.+) )?line (?P<first>\d+)(?:-(?P<last>\d+))?")


@pytest.fixture(scope="module")
def exports(corpus) -> list[Path]:
    found = sorted(path for path in (corpus / "whatsapp").iterdir() if path.suffix in (".txt", ".zip"))
    assert len(found) == 30
    return found


@pytest.fixture(scope="module")
def parsed(exports, tmp_path_factory):
    case = Case.init(tmp_path_factory.mktemp("wa") / "case", timezone="Europe/London", region="GB")
    summary = pipeline.run(case, FilesSource(exports), WhatsAppParser())
    records = list(case.index.records())
    case.close()
    return summary, records


def chat_lines(path: Path) -> tuple[str | None, int]:
    if path.suffix == ".txt":
        return None, sum(1 for _ in read_lines(lambda: open(path, "rb")))
    with zipfile.ZipFile(path) as archive:
        return "_chat.txt", sum(1 for _ in read_lines(lambda: archive.open("_chat.txt")))


def test_every_export_is_read_without_a_warning(parsed):
    summary, _records = parsed
    assert (summary.new, summary.unparsed, summary.failed, summary.warnings) == (34, 0, 0, 0)


def test_no_line_is_dropped_or_read_twice(parsed, exports):
    _summary, records = parsed
    for path in exports:
        member, total = chat_lines(path)
        ranges = []
        for record in records:
            if record["source"]["key"] != str(path) or record["source"]["locator"] is None:
                continue
            found = LOCATOR.fullmatch(record["source"]["locator"])
            assert found and found.group("member") == member, record["source"]["locator"]
            first = int(found.group("first"))
            ranges.append((first, int(found.group("last") or first)))
        ranges.sort()
        covered = [line for first, last in ranges for line in range(first, last + 1)]
        assert covered == list(range(1, total + 1)), path.name


@pytest.mark.parametrize("name, locator, occurred_at, sender", [
    ("android_en_dd-mm-yyyy_24h_media.txt", "line 2", "2022-03-18T14:56:00+00:00", "Dmitry S"),
    ("cm_testlog_m-d-yy.txt", "line 3-4", "2020-01-17T20:49:00+00:00", "Jahn Doe"),
    ("ios_th_buddhist_calendar_2565BE.txt", "line 1", "2022-03-18T14:56:01+00:00", "Elon Musk"),
    ("ios_japanese_imperial_calendar_R4.txt", "line 2", "2022-03-27T21:41:35+01:00", "Dmitry S"),
    ("ios_vi_time_first.txt", "line 2", "2022-03-27T21:41:35+01:00", "Dmitry S"),
    ("ios_ar_Arabic_rlm.txt", "line 2", "2022-03-27T21:41:35+01:00", "Dmitry S"),
    ("cm_bracket_dd-mm-yy_seconds_p.m.txt", "line 1", "2022-10-09T23:37:00+01:00", "John Doe"),
    ("cm_nbsp_in_p.m._emoji_names.txt", "line 3", "2022-10-09T22:37:00+01:00", "🤓"),
    ("pustur_ios_export_with_media.zip", "_chat.txt line 16", "2019-06-20T16:00:15+01:00", "Loris"),
    ("ios_ru_Russian_export.zip", "_chat.txt line 2", "2022-03-27T21:41:35+01:00", "Dmitry Starkov"),
])
def test_times_and_senders_of_real_exports(parsed, name, locator, occurred_at, sender):
    _summary, records = parsed
    record = next(record for record in records if record["source"]["key"].endswith("/" + name)
                  and record["source"]["locator"] == locator)
    assert (record["occurred_at"], record["from"], record["timezone_assumed"]) == (occurred_at, [sender], True)


def test_system_lines_of_the_android_group_chat_are_records(parsed):
    _summary, records = parsed
    group = [record for record in records if record["source"]["key"].endswith("android_en_group_system_messages.txt")
             and record["kind"] == "whatsapp"]
    assert len(group) == 20
    assert sum(1 for record in group if record["metadata"].get("system")) == 16
    joined = next(record for record in group if record["metadata"].get("event") == "joined")
    assert joined["metadata"]["numbers"] == [{"raw": "+7 999 999-99-99", "e164": "+79999999999"}]


def test_media_in_the_real_ios_zip_are_linked_to_their_messages(parsed):
    _summary, records = parsed
    ids = {record["id"]: record for record in records}
    media = [record for record in records if "pustur_ios_export_with_media.zip!" in record["source"]["key"]
             and record["source"]["locator"] is None and "!" not in record["source"]["key"].split(".zip!", 1)[1]]
    assert sorted(record["original"]["filename"] for record in media) == [
        "00000001-PHOTO-2019-06-20-16-00-15.jpg", "00000002-VIDEO-2019-06-20-16-01-42.mp4",
        "00000003-AUDIO-2019-06-20-16-03-55.mp3", "00000004-whatsapp-chat-parser-example.zip"]
    for record in media:
        parent = ids[record["parent"]]
        assert parent["metadata"]["attachment"] == record["original"]["filename"]
        assert record["occurred_at"] == parent["occurred_at"]

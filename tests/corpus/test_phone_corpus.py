"""Real phone backups written by other people (../shared/corpus/sms and calls)."""

import hashlib

from phone_helpers import records, run


def xml_files(corpus, folder):
    return sorted((corpus / folder).glob("*.xml"))


def test_every_sms_xml_ingests_with_its_stated_count(corpus, ingest):
    files = xml_files(corpus, "sms")
    assert [path.name for path in files] == ["memacs_sbr_sms_old_schema.xml"]
    summary = run(ingest, "sms", *files)
    assert (summary["new"], summary["records"], summary["unparsed"], summary["warnings"]) == (1, 5, 0, 0)
    assert summary["expected"] == summary["acquired"] == {"memacs_sbr_sms_old_schema.xml": 4}
    messages = records(ingest, "sms")
    assert [(m["occurred_at"], m["direction"], m["from"], m["to"], m["text"]) for m in messages] == [
        ("2011-08-04T10:05:53+00:00", "incoming", ["+436812314123"], ["me"], "did you see the new sms memacs module?"),
        ("2011-08-04T16:04:55.759000+00:00", "outgoing", ["me"], ["+43612341234"], "Memacs FTW!"),
        ("2011-08-04T20:25:50.928000+00:00", "outgoing", ["me"], ["+43612341238"], "i like memacs"),
        ("2011-08-05T18:32:01.554000+00:00", "outgoing", ["me"], ["+4312341234"], "http://google.at"),
    ]
    assert messages[0]["metadata"]["service_center"] == "+436990008999"


def test_every_calls_xml_ingests(corpus, ingest):
    files = xml_files(corpus, "calls")
    assert [path.name for path in files] == ["memacs_sbr_calls_old_schema.xml", "memacs_superbackup_calls.xml"]
    summary = run(ingest, "calls", *files)
    assert (summary["new"], summary["records"], summary["unparsed"], summary["warnings"]) == (2, 12, 0, 0)
    assert summary["expected"] == summary["acquired"] == \
        {"memacs_sbr_calls_old_schema.xml": 8, "memacs_superbackup_calls.xml": 2}
    calls = {(c["original"]["filename"], c["source"]["locator"]): c for c in records(ingest, "call")}
    private = calls[("memacs_sbr_calls_old_schema.xml", "element 3")]
    assert (private["from"], private["metadata"]["number"], private["duration_s"], private["occurred_at"]) == \
        (["withheld"], "-1", 382.0, "2011-08-05T07:51:31.081000+00:00")
    missed = calls[("memacs_sbr_calls_old_schema.xml", "element 7")]
    assert (missed["direction"], missed["from"]) == ("missed", ["+436612341234"])
    superbackup = calls[("memacs_superbackup_calls.xml", "element 1")]
    assert (superbackup["direction"], superbackup["duration_s"], superbackup["text"], superbackup["occurred_at"]) == \
        ("incoming", 264.0, "TestPerson1", "2018-09-17T19:58:22.606000+00:00")
    assert superbackup["metadata"]["time"] == "17.09.2018 21:58:22"


def test_phone_databases_are_preserved_without_a_traceback(corpus, ingest):
    databases = sorted((corpus / "sms").glob("*.db")) + sorted((corpus / "calls").glob("*.db"))
    assert len(databases) == 3
    summary = run(ingest, "files", *databases)
    assert (summary["new"], summary["failed"]) == (3, 0)
    kept = {r["original"]["filename"]: r["original"]["sha256"] for r in records(ingest)}
    assert kept == {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in databases}


def test_android_message_store_is_read_row_by_row(corpus, ingest):
    summary = run(ingest, "sms", corpus / "sms" / "plaso_android_mmssms.db")
    assert (summary["new"], summary["records"], summary["unparsed"]) == (1, 10, 0)
    messages = records(ingest, "sms")
    assert len(messages) == 9
    first = messages[0]
    assert (first["source"]["locator"], first["occurred_at"], first["direction"], first["to"], first["text"]) == \
        ("table sms, row 1", "2013-10-29T16:56:28.038000+00:00", "outgoing", ["1 555-521-5554"],
         "Yo Fred this is my new number.")
    assert first["metadata"]["thread_id"] == "1" and "line" not in first["metadata"]


def test_android_call_log_database_is_read_row_by_row(corpus, ingest):
    summary = run(ingest, "calls", corpus / "calls" / "plaso_android_contacts2_calllog.db")
    assert (summary["new"], summary["records"], summary["unparsed"]) == (1, 4, 0)
    calls = records(ingest, "call")
    assert [(c["source"]["locator"], c["direction"], c["from"], c["to"], c["duration_s"], c["text"]) for c in calls] \
        == [("table calls, row 714", "missed", ["+15404561685"], ["me"], 0.0, "Barney"),
            ("table calls, row 715", "outgoing", ["me"], ["+15404561685"], 126.0, "Barney"),
            ("table calls, row 717", "incoming", ["+15404561685"], ["me"], 639.0, "Barney")]
    assert calls[0]["metadata"]["number"] == "5404561685"


def test_ios_messages_database_is_read_with_apple_times(corpus, ingest):
    summary = run(ingest, "sms", corpus / "sms" / "plaso_ios_imessage_chat.db")
    assert (summary["new"], summary["records"], summary["unparsed"]) == (1, 11, 0)
    messages = records(ingest, "sms")
    assert len(messages) == 10
    first, email_handle = messages[0], messages[7]
    assert (first["source"]["locator"], first["occurred_at"], first["occurred_at_raw"], first["direction"],
            first["from"]) == ("table message, row 1", "2015-11-22T18:09:46+00:00", "469908586", "incoming",
                               ["+447775455555"])
    assert first["text"].startswith("Hey Kenneth, it's Eireanne!")
    assert first["metadata"]["guid"] == "C78A4031-C135-4746-A974-C455B0C4F5E4"
    assert first["metadata"]["service"] == "iMessage"
    assert (email_handle["from"], email_handle["direction"]) == (["xxxxxx2015@icloud.com"], "incoming")

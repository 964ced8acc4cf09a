"""`ingest run --source sms`: SMS Backup & Restore XML, read as evidence."""

import base64
import hashlib
import threading

import pytest

from phone_helpers import PNG_B64, by_locator, records, run, sms, write_backup

MARCH_1 = 1709329265000          # 2024-03-01T21:41:05Z


def mms(date=MARCH_1 + 60000, data=PNG_B64, msg_box=1, addrs=None, text="Look who is outside"):
    addrs = addrs or [("+447700900123", 137), ("+447700900555", 151)]
    return (f'  <mms date="{date}" msg_box="{msg_box}" address="+447700900123" m_id="mid-0001@example.org" '
            f'sub="null" read="1" ct_t="application/vnd.wap.multipart.related" contact_name="Jamie Doe">\n'
            '    <parts>\n'
            '      <part seq="-1" ct="application/smil" name="null" chset="null" cl="smil.xml" text="&lt;smil/&gt;" />\n'
            f'      <part seq="0" ct="image/png" name="null" chset="null" cl="IMG_0001.png" text="null" data="{data}" />\n'
            f'      <part seq="1" ct="text/plain" name="null" chset="106" cl="text_0.txt" text="{text}" />\n'
            '    </parts>\n    <addrs>\n'
            + "".join(f'      <addr address="{a}" type="{t}" charset="106" />\n' for a, t in addrs)
            + "    </addrs>\n  </mms>\n")


def test_messages_become_records_with_times_directions_and_numbers(tmp_path, ingest):
    path = write_backup(tmp_path / "sms-20240302.xml", [
        sms(MARCH_1, body="I know where you live &#55357;&#56832;"),
        sms(MARCH_1 + 30000, type_=2, body="Leave me alone.", address="07700 900123"),
        mms(),
    ])
    summary = run(ingest, "sms", path)
    assert (summary["new"], summary["records"], summary["unparsed"]) == (2, 5, 0)   # backup + PNG; 3 messages + 2 own
    assert summary["expected"] == {"sms-20240302.xml": 3} and summary["acquired"] == {"sms-20240302.xml": 3}
    found = by_locator(ingest)
    first = found["element 1"]
    assert first["kind"] == "sms" and first["direction"] == "incoming"
    assert first["text"] == "I know where you live \U0001F600"
    assert (first["occurred_at"], first["occurred_at_source"], first["occurred_at_raw"]) == \
        ("2024-03-01T21:41:05+00:00", "sms:date", "1709329265000")
    assert first["timezone_assumed"] is False
    assert (first["from"], first["to"]) == (["+447700900123"], ["me"])
    assert first["metadata"]["address"] == "+447700900123"
    assert first["metadata"]["contact_name"] == "Jamie Doe"
    assert first["metadata"]["readable_date"] == "1 mars 2024 21:41:05"   # kept, never parsed
    assert first["metadata"]["box"] == "received" and first["metadata"]["read"] == "1"
    assert first["subject"] is None
    sent = found["element 2"]
    assert (sent["direction"], sent["from"], sent["to"]) == ("outgoing", ["me"], ["+447700900123"])
    assert sent["metadata"]["address"] == "07700 900123"
    picture = found["element 3"]
    assert picture["kind"] == "mms" and picture["direction"] == "incoming"
    assert picture["text"] == "Look who is outside"
    assert (picture["from"], picture["to"]) == (["+447700900123"], ["+447700900555"])
    assert picture["occurred_at"] == "2024-03-01T21:42:05+00:00"
    assert [part["ct"] for part in picture["metadata"]["parts"]] == ["application/smil", "image/png", "text/plain"]
    attachment = found["!element 3 part 2"]
    png = base64.b64decode(PNG_B64)
    assert attachment["parent"] == picture["id"]
    assert attachment["original"]["sha256"] == hashlib.sha256(png).hexdigest()
    assert attachment["original"]["size"] == len(png)
    assert attachment["original"]["filename"] == "IMG_0001.png"
    assert attachment["original"]["media_type"] == "image/png"
    whole = found[None]
    assert whole["kind"] == "file" and whole["metadata"]["messages_read"] == 3
    assert whole["occurred_at"] == "2024-03-02T17:20:00+00:00" and whole["occurred_at_source"] == "sms:backup_date"


def test_dates_in_seconds_and_null_strings(tmp_path, ingest):
    path = write_backup(tmp_path / "s.xml", [sms(1709329265, body="null", subject="null")])
    run(ingest, "sms", path)
    record = by_locator(ingest)["element 1"]
    assert record["occurred_at"] == "2024-03-01T21:41:05+00:00"
    assert record["metadata"]["date_unit"] == "s"
    assert (record["text"], record["subject"]) == (None, None)


def test_group_mms_lists_every_recipient_and_a_sent_mms_is_from_me(tmp_path, ingest):
    group = mms(msg_box=2, addrs=[("insert-address-token", 137), ("+447700900123", 151), ("07700 900456", 151),
                                  ("+447700900789", 130)])
    run(ingest, "sms", write_backup(tmp_path / "g.xml", [group]))
    record = by_locator(ingest)["element 1"]
    assert (record["direction"], record["from"]) == ("outgoing", ["me"])
    assert record["to"] == ["+447700900123", "+447700900456", "+447700900789"]


@pytest.mark.parametrize("address, party", [
    ("+44 (0)7700 900123", "+447700900123"),
    ("7535", "7535"),                 # a short code has no E.164 form: kept as written
    ("OTP Bank", "OTP Bank"),
    ("Unknown", "unknown"),
    ("-1", "withheld"),
])
def test_numbers_short_codes_and_withheld_senders(tmp_path, ingest, address, party):
    run(ingest, "sms", write_backup(tmp_path / "n.xml", [sms(MARCH_1, address=address)]))
    record = by_locator(ingest)["element 1"]
    assert record["from"] == [party]
    assert record["metadata"]["address"] == address


def test_truncated_backup_keeps_what_came_before_and_is_marked_partial(tmp_path, ingest):
    whole = write_backup(tmp_path / "full.xml", [sms(MARCH_1 + i * 1000, body=f"message {i}") for i in range(4)])
    text = whole.read_text()
    cut = tmp_path / "cut" / "sms-cut.xml"
    cut.parent.mkdir()
    cut.write_text(text[:text.index("message 2") + 4])
    summary = run(ingest, "sms", cut, expect_exit=1)    # the backup says 4; 2 are held: a shortfall
    assert (summary["records"], summary["unparsed"]) == (3, 0)
    assert summary["expected"] == {"sms-cut.xml": 4} and summary["acquired"] == {"sms-cut.xml": 2}
    found = by_locator(ingest)
    assert [found[f"element {i}"]["text"] for i in (1, 2)] == ["message 0", "message 1"]
    assert found[None]["metadata"]["partial"] is True
    assert found[None]["metadata"]["error"] == \
        "the file ends in the middle of the XML (at line 5): it looks cut short"
    result = ingest("run", "--source", "sms", whole)
    assert "full.xml: all 4 messages in the backup were kept." in result.output


def test_stated_count_that_disagrees_is_a_shortfall(tmp_path, ingest):
    result = ingest("run", "--source", "sms", write_backup(tmp_path / "c.xml", [sms(MARCH_1)], count=5))
    assert result.exit_code == 1
    assert ("c.xml: SHORTFALL: the backup says it holds 5 messages, but only 1 could be kept; 4 missing."
            in result.output)


def run_bounded(ingest, *args):
    """The CLI in a thread with a deadline: a parser that expanded or fetched would hang or balloon."""
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", ingest(*args)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the parser hung"
    return outcome["result"]


def test_entity_expansion_bomb_is_refused_not_expanded(tmp_path, ingest):
    levels = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 10))
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE smses [<!ENTITY l0 "lol">{levels}]>\n'
                    f'<smses count="1"><sms address="+447700900123" date="{MARCH_1}" type="1" body="&l9;" /></smses>\n')
    result = run_bounded(ingest, "run", "--source", "sms", bomb, "--json")
    assert result.exit_code == 1        # not read as the source named: said, and the run is not a success
    assert '"unparsed": 1' in result.stdout and '"records": 1' in result.stdout
    [record] = records(ingest)
    assert record["kind"] == "unparsed"
    assert record["metadata"]["error"] == (
        "Could not read this as an SMS backup: the file carries a document type declaration (<!DOCTYPE>, where "
        "XML entities live), which a phone backup never has; it was not read further, for safety.")
    assert record["original"]["sha256"] == hashlib.sha256(bomb.read_bytes()).hexdigest()


def test_external_entity_is_never_read(tmp_path, ingest):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET address: 1 Example Road")
    evil = tmp_path / "xxe.xml"
    evil.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE smses [<!ENTITY x SYSTEM "file://{secret}">]>\n'
                    f'<smses count="1"><sms address="+447700900123" date="{MARCH_1}" type="1" body="&x;" /></smses>\n')
    result = run_bounded(ingest, "run", "--source", "sms", evil, "--json")
    assert result.exit_code == 1 and "TOP SECRET" not in result.output
    [record] = records(ingest)
    assert record["kind"] == "unparsed" and "document type declaration" in record["metadata"]["error"]
    assert "TOP SECRET" not in ingest("list", "--json").stdout


def test_invalid_base64_in_an_mms_part_is_reported_and_the_message_kept(tmp_path, ingest):
    path = write_backup(tmp_path / "b.xml", [mms(data="not*base64*at*all")])
    summary = run(ingest, "sms", path)
    assert (summary["new"], summary["records"], summary["warnings"]) == (1, 2, 1)
    record = by_locator(ingest)["element 1"]
    assert record["kind"] == "mms" and record["text"] == "Look who is outside"
    assert record["metadata"]["parts"][1] == {"seq": "0", "ct": "image/png", "name": "IMG_0001.png",
                                              "error": "data is not valid base64"}
    assert "!element 1 part 2" not in by_locator(ingest)


def test_empty_file_is_kept_as_unparsed(tmp_path, ingest):
    empty = tmp_path / "sms-empty.xml"
    empty.write_bytes(b"")
    summary = run(ingest, "sms", empty, expect_exit=1)
    assert (summary["new"], summary["unparsed"], summary["records"]) == (1, 1, 1)
    [record] = records(ingest)
    assert record["kind"] == "unparsed"
    assert record["metadata"]["error"] == "The file is empty: there are no messages in it (it is kept as it is)."


def test_a_call_log_given_as_sms_says_which_source_to_use(tmp_path, ingest):
    path = tmp_path / "calls.xml"
    path.write_text('<?xml version="1.0"?>\n<calls count="0"></calls>\n')
    summary = run(ingest, "sms", path, expect_exit=1)
    [record] = records(ingest)
    assert record["metadata"]["error"] == "This is not an SMS backup: its XML starts with <calls>. Try --source calls."
    assert summary["not_read"] == ["calls.xml could not be read as sms; it is kept exactly as it is. It looks like "
                                   "calls: run ingest on it again without --source (or with --source calls)."]


def test_rerun_of_the_same_backup_adds_nothing(tmp_path, ingest):
    path = write_backup(tmp_path / "s.xml", [sms(MARCH_1 + i, body=f"m{i}") for i in range(3)])
    first = run(ingest, "sms", path)
    again = run(ingest, "sms", path)
    assert (first["records"], again["new"], again["records"], again["already_held"]) == (4, 0, 0, 1)
    copy = tmp_path / "copy" / "s.xml"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    assert run(ingest, "sms", copy)["records"] == 0


def test_newer_overlapping_backup_adds_only_the_new_messages(tmp_path, ingest):
    older = write_backup(tmp_path / "old" / "sms.xml", [
        sms(MARCH_1, body="one", read="0"), sms(MARCH_1 + 1000, body="two"), mms()])
    newer = write_backup(tmp_path / "new" / "sms.xml", [
        # read since, and the contact renamed: still the same messages
        sms(MARCH_1, body="one", read="1", contact_name="J"), sms(MARCH_1 + 1000, body="two"), mms(),
        sms(MARCH_1 + 2000, body="three"), sms(MARCH_1 + 2000, body="three"),   # sent twice: two messages
    ])
    assert run(ingest, "sms", older)["records"] == 5          # 3 messages, the backup, the PNG
    second = run(ingest, "sms", newer)
    assert (second["new"], second["records"], second["duplicates"]) == (1, 3, 3)   # 2 messages + the backup
    texts = sorted(r["text"] for r in records(ingest, "sms"))
    assert texts == ["one", "three", "three", "two"]


@pytest.mark.parametrize("chunk", [5, 7, 16, 33, 4096])
def test_surrogate_pairs_and_controls_are_repaired_across_read_chunks(monkeypatch, chunk):
    import io

    from adapters.phone import _backupxml as backupxml

    monkeypatch.setattr(backupxml, "CHUNK", chunk)
    body = "&#55357;&#56832; ok &#xD83D;&#xDE21;&#10;&#55357; lone &#1; bell \x07 &#55000;"
    document = f'<smses><sms body="{body * 3}" /></smses>'.encode()
    repairs = backupxml.Repairs()
    [(tag, attrs, line, depth)] = list(backupxml.elements(io.BytesIO(document), repairs))[1:]
    assert (tag, line, depth) == ("sms", 1, 2)
    assert attrs["body"] == "\U0001F600 ok \U0001F621\n\ufffd lone \ufffd bell \ufffd \ud6d8" * 3
    assert repairs.count == 9


def test_superbackup_sms(tmp_path, ingest):
    path = tmp_path / "superbackup-sms.xml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<allsms count="1">\n'
                    f'  <sms address="07700 900123" time="1 Mar 2024 21:41:05" date="{MARCH_1}" type="1" '
                    'body="Outside again." read="1" service_center="null" name="Jamie Doe" />\n</allsms>\n')
    summary = run(ingest, "sms", path)
    assert summary["expected"] == summary["acquired"] == {"superbackup-sms.xml": 1}
    record = by_locator(ingest)["element 1"]
    assert (record["from"], record["text"], record["occurred_at"], record["metadata"]["name"]) == \
        (["+447700900123"], "Outside again.", "2024-03-01T21:41:05+00:00", "Jamie Doe")
    assert by_locator(ingest)[None]["metadata"]["format"] == "SuperBackup"


def test_an_mms_part_name_is_never_a_path(tmp_path, ingest):
    hostile = mms().replace('cl="IMG_0001.png"', 'cl="../../etc/IMG_0001.png"')
    run(ingest, "sms", write_backup(tmp_path / "p.xml", [hostile]))
    assert by_locator(ingest)["!element 1 part 2"]["original"]["filename"] == "IMG_0001.png"


def test_a_database_that_is_no_message_store_is_kept_and_said_plainly(tmp_path, ingest):
    import sqlite3

    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    cut = tmp_path / "cut.db"
    cut.write_bytes(path.read_bytes()[:120])      # the SQLite header, then nothing
    summary = run(ingest, "sms", path, cut, expect_exit=1)
    assert (summary["new"], summary["unparsed"], summary["records"]) == (2, 2, 2)
    errors = {r["original"]["filename"]: r["metadata"]["error"] for r in records(ingest)}
    assert errors["notes.db"] == ("This is a database file (SQLite) with no 'sms' table, so not Android's message "
                                  "store; it is kept exactly as it is, but nothing in it was read.")
    assert errors["cut.db"].startswith("This database could not be read: the database could not be opened (")


def test_one_non_ascii_character_in_an_mms_part_loses_only_that_part(tmp_path, ingest):
    # One stray character inside one part's base64 must not stop the 205 messages after it.
    damaged = PNG_B64[:20] + "é" + PNG_B64[20:]
    path = write_backup(tmp_path / "b.xml", [mms(data=damaged)] + [sms(MARCH_1 + i * 1000, body=f"message {i}")
                                                                   for i in range(205)])
    result = ingest("run", "--source", "sms", path, "--json")
    assert result.exit_code == 0, result.output
    found = by_locator(ingest)
    assert sum(record["kind"] == "sms" for record in found.values()) == 205
    assert found["element 206"]["text"] == "message 204"
    assert found["element 1"]["metadata"]["parts"][1]["error"] == "data is not valid base64"
    assert ("b.xml (element 1): Part 2 of this MMS (image/png) holds data that is not valid base64, so it could "
            "not be extracted; the backup itself is kept whole.") in result.stderr
    assert found[None]["metadata"]["messages_read"] == 206


def test_one_damaged_byte_in_the_xml_loses_only_the_message_it_is_in(tmp_path, ingest):
    # A byte that makes the file stop being XML (here "<" inside a message's attribute) costs that
    # message: reading resumes at the next one, and the damage is named.
    elements = [sms(MARCH_1 + i * 1000, body=f"message {i}") for i in range(6)]
    elements[2] = elements[2].replace('read="1"', 'read="<"')
    path = write_backup(tmp_path / "b.xml", elements)
    result = ingest("run", "--source", "sms", path, "--json")
    assert result.exit_code == 1, result.output      # the backup said 6: a shortfall is never silent
    found = by_locator(ingest)
    assert [found[f"element {n}"]["text"] for n in (1, 2, 4, 5, 6)] == \
        ["message 0", "message 1", "message 3", "message 4", "message 5"]
    assert "element 3" not in found
    assert ("b.xml (element 3): This part of the backup is damaged (the XML is broken at line 5, column "
            in result.stderr)
    assert "reading went on with the next message. The file is kept exactly as it was." in result.stderr
    assert found[None]["metadata"]["places_damaged"] == 1
    assert "The backup says it holds 6 messages, but 5 were found in it." in result.stderr


@pytest.mark.parametrize("damage", ["unclosed", "declaration", "root"])
def test_damage_to_a_tag_or_the_head_of_the_file_loses_no_other_message(tmp_path, ingest, damage):
    elements = [sms(MARCH_1 + i * 1000, body=f"message {i}") for i in range(4)]
    if damage == "unclosed":              # "/>" lost its "/": the messages after it are inside it
        elements[1] = elements[1].replace(" />", " >")
    path = write_backup(tmp_path / "b.xml", elements)
    text = path.read_bytes()
    if damage == "declaration":
        text = text.replace(b"<?xml", b"\x00?xml", 1)
    elif damage == "root":
        text = text.replace(b"<smses", b"<smxes", 1).replace(b"</smses>", b"</smxes>")
    path.write_bytes(text)
    assert run(ingest, "sms", path)["records"] == 5
    assert sorted(record["text"] for record in records(ingest, "sms")) == [f"message {i}" for i in range(4)]


def test_an_mms_whose_own_tag_is_damaged_keeps_its_photo(tmp_path, ingest):
    damaged = mms().replace('msg_box="1"', 'msg_box="<"')
    path = write_backup(tmp_path / "b.xml", [sms(MARCH_1), damaged, sms(MARCH_1 + 120000, body="after")])
    ingest("run", "--source", "sms", path)
    found = by_locator(ingest)
    assert (found["element 2"]["kind"], found["element 2"]["text"]) == ("mms", "Look who is outside")
    assert found["element 2"]["metadata"]["damaged"] is True
    photo = found["!element 2 part 2"]
    assert photo["original"]["sha256"] == hashlib.sha256(base64.b64decode(PNG_B64)).hexdigest()
    assert found["element 3"]["text"] == "after"


def test_an_mms_that_lost_the_start_of_its_tag_keeps_its_photo(tmp_path, ingest):
    # found by fuzzing: "<mms" -> "`mms" is still XML, but the MMS and its photo were lost
    damaged = mms().replace("<mms ", "`mms ")
    path = write_backup(tmp_path / "b.xml", [sms(MARCH_1), damaged, sms(MARCH_1 + 120000, body="after")])
    ingest("run", "--source", "sms", path)
    found = by_locator(ingest)
    assert (found["element 2"]["kind"], found["element 2"]["metadata"]["damaged"]) == ("mms", True)
    assert "!element 2 part 2" in found and found["element 3"]["text"] == "after"


@pytest.mark.parametrize("renamed", ["<Cms ", "<4ms "])
def test_an_mms_whose_tag_name_is_damaged_keeps_its_photo(tmp_path, ingest, renamed):
    # found by fuzzing: "<mms" -> "<Cms" is still XML, an element no backup has, holding the MMS's parts
    damaged = mms().replace("<mms ", renamed).replace("</mms>", "</" + renamed[1:4] + ">")
    path = write_backup(tmp_path / "b.xml", [sms(MARCH_1), damaged, sms(MARCH_1 + 120000, body="after")])
    ingest("run", "--source", "sms", path)
    found = by_locator(ingest)
    assert (found["element 2"]["kind"], found["element 2"]["metadata"]["damaged"]) == ("mms", True)
    assert "!element 2 part 2" in found and found["element 3"]["text"] == "after"


def test_a_large_overlapping_backup_is_checked_in_runs_across_commits(tmp_path, ingest, monkeypatch):
    """Identities are asked of the index 500 records at a time, and a commit (here every 2,000
    records) falls inside a run: no message may be counted twice or lost at either boundary."""
    import ingest.pipeline as pipeline     # (`ingest` here is the fixture)
    monkeypatch.setattr(pipeline, "BATCH_RECORDS", 2000)
    monkeypatch.setattr(pipeline, "BATCH_SECONDS", 1000.0)
    messages = [sms(MARCH_1 + 1000 * number, body=f"message {number}") for number in range(2600)]
    older = write_backup(tmp_path / "old" / "sms.xml", messages[:1300] + [mms()] + messages[1300:])
    newer = write_backup(tmp_path / "new" / "sms.xml", [
        *messages[2000:], mms(), *[sms(MARCH_1 - 1000 * number, body=f"new {number}") for number in range(1, 101)],
        *messages[:2000]])
    first = run(ingest, "sms", older)
    assert (first["records"], first["duplicates"]) == (2603, 0)      # 2,601 messages, the backup, the PNG
    second = run(ingest, "sms", newer)
    assert (second["new"], second["records"], second["duplicates"]) == (1, 101, 2601)
    assert len(records(ingest, "sms")) == 2700


@pytest.mark.parametrize("every", [3, 4, 7])
def test_a_commit_between_asking_the_index_and_adding_a_record_loses_no_duplicate(tmp_path, ingest, monkeypatch,
                                                                                  every):
    """Two overlapping backups in one run, committed every few records: the second backup's
    identities are asked of the index while the first one's last messages are not committed
    yet, and a commit falls before they are compared. Each overlapping message is one record."""
    import ingest.pipeline as pipeline     # (`ingest` here is the fixture)
    monkeypatch.setattr(pipeline, "BATCH_RECORDS", every)
    monkeypatch.setattr(pipeline, "BATCH_SECONDS", 1000.0)
    messages = [sms(MARCH_1 + 1000 * number, body=f"message {number}") for number in range(10)]
    older = write_backup(tmp_path / "old" / "sms.xml", messages)
    fresh = [sms(MARCH_1 - 1000 * number, body=f"new {number}") for number in range(1, 9)]
    newer = write_backup(tmp_path / "new" / "sms.xml", [*fresh, *messages])    # new ones first: they commit
    summary = run(ingest, "sms", older, newer)
    assert (summary["new"], summary["records"], summary["duplicates"]) == (2, 20, 10)
    assert len(records(ingest, "sms")) == 18

"""Issue 13, WhatsApp: what the app wrote is not a person's message, and what a person wrote is
theirs (a poll, a deletion). The fixtures are written here, in the shapes iOS and Android export."""

from __future__ import annotations

import json

GROUP = """\
[11/5/25, 12:40:00 AM] SF PARC: \u200eMessages and calls are end-to-end encrypted. Only people in this chat can read, listen to, or share them.
[11/5/25, 12:45:00 AM] SF PARC: \u200eRavi created group “SF PARC”
[11/5/25, 12:46:01 AM] SF PARC: Neha added you
[11/5/25, 12:47:00 AM] Ravi: Welcome all
[11/5/25, 12:48:00 AM] Neha: \u200ePOLL:
Dinner where?
\u200eOPTION: Thai (2 votes)
\u200eOPTION: Pizza (1 vote)
[11/5/25, 12:49:00 AM] Ravi: \u200eThis message was deleted.
[11/5/25, 12:50:00 AM] You: \u200eYou deleted this message.
[11/5/25, 12:51:00 AM] Neha: \u200eimage omitted
[11/5/25, 12:52:00 AM] SF PARC: Ravi removed Tom
[11/5/25, 12:53:00 AM] SF PARC: Tom hat die Gruppe verlassen
[11/5/25, 12:54:00 AM] Ravi: I added you to the list, you left early
"""
ONE_TO_ONE = """\
[11/5/25, 12:40:00 AM] Jordan: \u200eMessages and calls are end-to-end encrypted. Only people in this chat can read, listen to, or share them.
[11/5/25, 12:46:01 AM] Jordan: Neha added you
[11/5/25, 12:47:00 AM] You: Who is Neha?
"""
ANDROID = """\
05/11/2025, 00:40 - Ravi a créé le groupe "SF PARC"
05/11/2025, 00:41 - Ravi a ajouté Neha
05/11/2025, 00:42 - Neha: POLL:
Dinner where?
OPTION: Thai (1 vote)
05/11/2025, 00:43 - Neha: This message was deleted
"""


def read(ingest, tmp_path, name: str, text: str) -> list[dict]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = ingest("run", "--source", "whatsapp", path, "--json")
    assert result.exit_code == 0, result.output
    return sorted((r for r in ingest.json("list", "--json") if r["kind"] == "whatsapp"),
                  key=lambda r: int(r["source"]["locator"].split()[1].split("-")[0]))


def test_ios_group_lines_under_the_group_name_are_events_not_messages(ingest, tmp_path):
    records = read(ingest, tmp_path, "_chat.txt", GROUP)
    by_line = {r["source"]["locator"].split("-")[0]: r for r in records}
    added = by_line["line 3"]
    assert (added["from"], added["text"], added["metadata"]["system"], added["metadata"]["event"],
            added["metadata"]["group_name"]) == ([], "Neha added you", True, "added", "SF PARC")
    assert "sender" not in added["metadata"]
    assert (by_line["line 12"]["metadata"]["event"], by_line["line 12"]["from"]) == ("removed", [])
    assert (by_line["line 13"]["metadata"]["event"], by_line["line 13"]["from"]) == ("left", [])   # in German
    # a person's own words stay theirs, even when they sound like an event
    typed = by_line["line 14"]
    assert (typed["from"], typed.get("metadata", {}).get("system")) == (["Ravi"], None)
    assert by_line["line 4"]["from"] == ["Ravi"]


def test_a_poll_is_a_message_by_its_poster_and_deletions_are_marked(ingest, tmp_path):
    records = read(ingest, tmp_path, "_chat.txt", GROUP)
    by_line = {r["source"]["locator"].split("-")[0]: r for r in records}
    poll = by_line["line 5"]
    assert (poll["from"], poll["metadata"].get("poll"), poll["metadata"].get("system")) == (["Neha"], True, None)
    assert poll["text"].startswith("POLL:\nDinner where?") and poll["source"]["locator"] == "line 5-8"
    for line, who in (("line 9", "Ravi"), ("line 10", "You")):
        deleted = by_line[line]
        assert (deleted["from"], deleted["metadata"].get("deleted"), deleted["metadata"].get("system")) == (
            [who], True, None)
    assert by_line["line 11"]["metadata"].get("media_omitted") is True and by_line["line 11"]["from"] == ["Neha"]


def test_in_a_chat_of_two_nobody_is_taken_for_a_group(ingest, tmp_path):
    records = read(ingest, tmp_path, "WhatsApp Chat - Jordan.txt", ONE_TO_ONE)
    assert [(r["from"], r["metadata"].get("system")) for r in records] == [
        (["Jordan"], True), (["Jordan"], None), (["You"], None)]


def test_android_group_events_in_french_and_a_poll(ingest, tmp_path):
    records = read(ingest, tmp_path, "chat.txt", ANDROID)
    assert [(r["from"], r["metadata"].get("event"), r["metadata"].get("poll"), r["metadata"].get("deleted"))
            for r in records] == [([], "group_created", None, None), ([], "added", None, None),
                                  (["Neha"], None, True, None), (["Neha"], None, None, True)]

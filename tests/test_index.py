"""The SQLite index: WAL, a versioned schema moved forward one step at a time."""

import json
import sqlite3

import pytest

import store.index as index_module
from store.index import SCHEMA_VERSION, Index


def test_new_index_is_wal_at_the_current_version(tmp_path):
    index = Index(tmp_path / "index.sqlite")
    assert index.version() == SCHEMA_VERSION == len(index_module.MIGRATIONS)
    assert index.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    index.close()


def test_committed_pages_are_copied_into_the_database_on_a_second_thread_that_ends_with_the_index(tmp_path):
    import threading
    import time

    index = Index(tmp_path / "index.sqlite")
    assert index.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == index_module.BACKSTOP_PAGES
    with index.transaction():
        for number in range(200):
            index.set_meta(f"key {number}", "x" * 2000)
    assert [thread.name for thread in threading.enumerate()].count("index checkpoint") == 1
    database = tmp_path / "index.sqlite"
    for _ in range(200):     # waits for the thread to copy the 400 kB into the database; never timed
        if database.stat().st_size > 400_000:
            break
        time.sleep(0.05)
    assert database.stat().st_size > 400_000    # the writer alone would not copy below BACKSTOP_PAGES
    reader = sqlite3.connect(database)
    assert reader.execute("SELECT count(*) FROM meta WHERE key LIKE 'key %'").fetchone()[0] == 200
    reader.close()
    index.close()
    assert "index checkpoint" not in [thread.name for thread in threading.enumerate()]
    assert not (tmp_path / "index.sqlite-wal").exists()     # the last to close copied the rest


def test_an_older_index_is_migrated_forward_on_open(tmp_path, monkeypatch):
    Index(tmp_path / "index.sqlite").close()
    monkeypatch.setattr(index_module, "MIGRATIONS",
                        [*index_module.MIGRATIONS, "ALTER TABLE records ADD COLUMN reviewed INTEGER"])
    upgraded = Index(tmp_path / "index.sqlite")
    assert upgraded.version() == SCHEMA_VERSION + 1
    columns = [row[1] for row in upgraded.db.execute("PRAGMA table_info(records)")]
    assert columns[-1] == "reviewed"
    upgraded.close()


def test_a_failed_migration_changes_nothing(tmp_path, monkeypatch):
    Index(tmp_path / "index.sqlite").close()
    monkeypatch.setattr(index_module, "MIGRATIONS",
                        [*index_module.MIGRATIONS, "CREATE TABLE extra (x); THIS IS NOT SQL"])
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        Index(tmp_path / "index.sqlite")
    monkeypatch.undo()
    again = Index(tmp_path / "index.sqlite")
    assert again.version() == SCHEMA_VERSION
    assert again.db.execute("SELECT name FROM sqlite_master WHERE name='extra'").fetchone() is None
    again.close()


def _row(record_id, kind, when, *, blake3="b0", source="s", locator=None, parent=None, superseded=False,
         party="+447700900001"):
    body = {"id": record_id, "kind": kind, "from": [party], "to": ["me"], "metadata": {}}
    return (record_id, kind, when, blake3, source, locator, "test 1", parent, None, json.dumps(body), "")


@pytest.fixture
def family(tmp_path):
    """A chat export (container) with two messages, one with a photo; an unrelated call; an unparsed file."""
    index = Index(tmp_path / "index.sqlite")
    index.add_records([
        _row("chat", "file", "2024-03-01T09:00:00Z", blake3="c1"),
        _row("msg1", "whatsapp", "2024-03-01T10:00:00Z", blake3="c1", locator="line 1", parent="chat"),
        _row("msg2", "whatsapp", "2024-03-02T10:00:00Z", blake3="c1", locator="line 2", parent="chat",
             party="+447700900002"),
        _row("photo", "attachment", "2024-03-02T10:00:00Z", blake3="p1", parent="msg2"),
        _row("call", "call", "2024-03-05T08:00:00Z", blake3="k1", locator="row 1", party="+447700900003"),
        _row("junk", "unparsed", "2024-03-06T08:00:00Z", blake3="j1"),
    ])
    yield index
    index.close()


def test_a_selection_holds_the_matches_their_children_and_their_parents(family):
    family.select_with_family("chosen", kinds=["whatsapp"], since="2024-03-02T00:00:00Z")
    assert [r["id"] for r in family.records(within="chosen")] == ["chat", "msg2", "photo"]
    assert family.counts_by_kind(within="chosen") == [("attachment", 1), ("file", 1), ("whatsapp", 1)]
    assert family.time_span(within="chosen") == ("2024-03-01T09:00:00Z", "2024-03-02T10:00:00Z")
    family.drop_temporary("chosen")
    with pytest.raises(sqlite3.OperationalError, match="no such table: temp.chosen"):
        list(family.records(within="chosen"))


def test_a_selection_by_identifiers_takes_a_chat_whole(family):
    family.select_with_family("chosen", identifiers=["+447700900002"])
    assert [r["id"] for r in family.records(within="chosen")] == ["chat", "msg1", "msg2", "photo"]
    family.select_with_family("chosen", identifiers=["+447700900002"], until="2024-03-02T00:00:00Z")
    assert [r["id"] for r in family.records(within="chosen")] == []     # the filters still hold
    family.select_with_family("chosen", identifiers=["+447700900003", "+447700900009"])
    assert [r["id"] for r in family.records(within="chosen")] == ["call"]
    family.select_with_family("chosen", identifiers=[])
    assert family.counts_by_kind(within="chosen") == []
    assert [r["id"] for r in family.records(identifiers=["me"])] == ["chat", "msg1", "msg2", "photo", "call", "junk"]


def test_incidents_leave_out_containers_contained_files_attachments_and_unparsed(family):
    assert sorted(map(tuple, family.incidents())) == [("call", "2024-03-05T08:00:00Z"),
                                                      ("whatsapp", "2024-03-01T10:00:00Z"),
                                                      ("whatsapp", "2024-03-02T10:00:00Z")]
    assert family.time_span() == ("2024-03-01T09:00:00Z", "2024-03-06T08:00:00Z")


def test_a_temporary_map_keeps_values_by_key(family):
    paths = family.temporary_map("copied")
    assert paths.get("c1") is None
    paths.put("c1", "originals/chat_x.txt")
    assert paths.get("c1") == "originals/chat_x.txt"
    assert family.temporary_map("copied").get("c1") is None     # made again: empty


def test_a_temporary_table_name_is_never_sql(family):
    for name in ("x; DROP TABLE records", "records--", "é"):
        with pytest.raises(ValueError, match="not a table name"):
            family.drop_temporary(name)
        with pytest.raises(ValueError, match="not a table name"):
            list(family.records(within=name))
    assert family.count_records() == 6
